"""The option a model chose in a multiple-choice answer.

:func:`extract_choice` reads a letter ("B", "(B)", "Answer: B", "I'd pick B"), a letter
with its option's text, or the text of exactly one option from free text, and says how it
found it. Scoring (accuracy, per-position counts) is the suites' business; the MMAU / MMAR
token rule, which never extracts a choice but compares the whole prediction with the
answer, is a metric (:mod:`lalm_eval.metrics.choice`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from lalm_eval.answers.text import THINK_BLOCK

__all__ = ["METHODS", "extract_choice"]

#: how :func:`extract_choice` found (or failed to find) the choice
METHODS: tuple[str, ...] = ("letter", "letter_and_text", "option_text", "ambiguous", "none")

_WS = re.compile(r"\s+")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_MARKUP = re.compile(r"\*\*|__|[*`]")
_QUOTES = "\"'“”‘’"
_SEPARATORS = " \t.:;,)]-–—"
#: answer cues after which a letter is the model's choice
_CUE = (r"(?i:\b(?:(?:final|correct|right|best)\s+)?answer\b\s*(?:is|would\s+be|should\s+be)?"
        r"|\b(?:correct|right|best)\s+(?:option|choice)\b\s*(?:is|would\s+be)?"
        r"|\bI\s*(?:would|will|'d|’d)?\s*(?:choose|pick|select|go\s+with)\b)")
_LEAD = r"\s*[:=\-]?\s*(?i:(?:option|choice|letter)\s+)?[(\[]?\s*"
_TAIL = r"(?![\w'’])"


@lru_cache(maxsize=32)
def _letter_regexes(n: int) -> tuple[re.Pattern[str], ...]:
    """Letter-choice patterns for ``n`` options, strongest first: after an answer cue, at the
    start of a line, anywhere else ("(B)", "option B", "B." alone, "B or C")."""
    last = chr(ord("A") + n - 1)
    upper, both = f"A-{last}", f"A-{last}a-{last.lower()}"
    more = rf"(?P<more>(?:\s*(?:,|/|&|\bor\b|\band\b)\s*[(\[]?[{upper}][)\]]?{_TAIL})*)"
    cue = re.compile(_CUE + _LEAD + rf"(?P<letter>[{both}]){_TAIL}\s*[)\]]?" + more)
    start = re.compile(rf"(?m)^[ \t]*[-•]?[ \t]*[(\[]?[ \t]*(?P<letter>[{both}]){_TAIL}[ \t]*"
                       rf"[)\]]?(?=[ \t]*$|[ \t]*[.:;,)\]\-–—])" + more)
    weak = re.compile(
        rf"\((?P<p>[{upper}])\)"  # (B) anywhere
        rf"|(?i:\b(?:option|choice)\s+)[(\[]?(?P<o>[{upper}]){_TAIL}"  # option B
        rf"|(?<![\w'’\-])(?P<alone>[{upper}])(?=\s*(?:[.!?,;:]|$))"  # "It is B."
        rf"|(?<![\w'’])(?P<list>[{upper}](?:\s*(?:,|/|&|\bor\b|\band\b)\s*[{upper}]{_TAIL})+)"
    )
    return cue, start, weak


def _norm(text: str) -> str:
    """Whitespace collapsed, outer quotes and punctuation stripped, case folded."""
    return _WS.sub(" ", text).strip().strip(_QUOTES + " .!?;:,").strip().casefold()


def _loose(text: str) -> str:
    """Case folded words only (punctuation blind)."""
    return _WS.sub(" ", re.sub(r"[^\w]+", " ", text.casefold())).strip()


_Form = Callable[[str], str]


def _text_forms(options: Sequence[str]) -> tuple[list[str], _Form]:
    """Comparable option forms: punctuation-blind when that keeps the options distinct."""
    loose = [_loose(o) for o in options]
    if all(loose) and len(set(loose)) == len(loose):
        return loose, _loose
    return [_norm(o) for o in options], _norm


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


def _mentioned(text: str, forms: Sequence[str], form: _Form) -> set[int]:
    """Options whose text occurs in ``text`` (an option inside a longer matched one is dropped)."""
    hay = form(text)
    found = {i for i, f in enumerate(forms) if _contains(hay, f)}
    return {i for i in found if not any(j != i and _contains(forms[j], forms[i]) for j in found)}


def _starts_with_option(text: str, forms: Sequence[str], form: _Form) -> set[int]:
    """Options whose text ``text`` begins with."""
    head = form(text)
    return {i for i, f in enumerate(forms) if f and (head == f or head.startswith(f + " "))}


def _mentions(
    cleaned: str, regexes: Sequence[re.Pattern[str]], forms: Sequence[str], form: _Form
) -> tuple[int, list[tuple[set[int], str]]]:
    """Letter mentions of the strongest tier present: (tier, [(letters, text after them)])."""
    for tier, regex in enumerate(regexes):
        found: list[tuple[set[int], str]] = []
        for match in regex.finditer(cleaned):
            groups = match.groupdict()
            key, letter = next((k, v) for k, v in groups.items() if v and k != "more")
            after = cleaned[match.start(key) + len(letter):]
            if len(letter) == 1 and re.match(r"\s+\w", after):
                if letter.islower():
                    continue  # "the answer is a violin": an article
                if _starts_with_option(cleaned[match.start(key):], forms, form):
                    continue  # "Answer: A major" where "A major" is an option
            named = (letter.upper() if len(letter) == 1 else letter) + (groups.get("more") or "")
            tail = cleaned[match.end():].split("\n", 1)[0].lstrip(_SEPARATORS)
            found.append(({ord(x) - ord("A") for x in re.findall(r"[A-Z]", named)}, tail))
        if found:
            return tier, found
    return -1, []


def extract_choice(text: str | None, options: Sequence[str]) -> tuple[int | None, str]:
    """The option a model chose and how it was found.

    Methods: ``letter`` (a clear choice pattern: "B", "(B)", "B.", "Answer: B", "The answer is
    B: ..."), ``letter_and_text`` (a letter followed by its own option's text),
    ``option_text`` (the text of exactly one option, case and punctuation aside),
    ``ambiguous`` (several different letters or options, or a letter followed by another
    option's text) and ``none``. An English article ("A dog barks") is not read as letter A.
    """
    if not 2 <= len(options) <= 26:
        raise ValueError(f"extract_choice needs 2-26 options, got {len(options)}")
    if text is None or not str(text).strip():
        return None, "none"
    cleaned = _MARKUP.sub("", _BOXED.sub(r"\1", THINK_BLOCK.sub(" ", str(text))))
    cleaned = cleaned.strip().strip(_QUOTES).strip()
    if not cleaned:
        return None, "none"
    forms, form = _text_forms(options)
    whole = [i for i, f in enumerate(forms) if f and f == form(cleaned)]
    if len(whole) == 1:
        return whole[0], "option_text"
    regexes = _letter_regexes(len(options))
    tier, mentions = _mentions(cleaned, regexes, forms, form)
    letters = set().union(*(m[0] for m in mentions)) if mentions else set()
    if len(letters) > 1:
        return None, "ambiguous"
    if len(letters) == 1:
        (chosen,) = letters
        with_text = False
        for _, tail in mentions:
            named = _starts_with_option(tail, forms, form)
            if named and chosen not in named:
                return None, "ambiguous"
            with_text = with_text or chosen in named
        if tier == len(regexes) - 1 and _mentioned(cleaned, forms, form) - {chosen}:
            return None, "ambiguous"
        return chosen, "letter_and_text" if with_text else "letter"
    cue = list(re.finditer(_CUE, cleaned))
    if cue:
        tail = re.split(r"[.!?](?:\s|$)|\n", cleaned[cue[-1].end():], maxsplit=1)[0]
        named = _mentioned(tail, forms, form)
        if len(named) == 1:
            return next(iter(named)), "option_text"
    named = _mentioned(cleaned, forms, form)
    if len(named) == 1:
        return next(iter(named)), "option_text"
    return (None, "ambiguous") if named else (None, "none")
