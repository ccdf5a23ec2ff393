"""Tolerant extraction of JSON values from model answers.

Models wrap JSON in prose or code fences, use curly or single quotes, trailing commas,
Python literals (``True``, ``None``) or bare keys. :func:`parse_json_like` repairs those
(never executing anything: Python literals go through bounded ``ast.literal_eval``),
:func:`object_spans` finds balanced ``{...}`` spans in free text (braces inside quoted
strings ignored), :func:`find_json_object` returns the last span that parses to an object,
and :func:`json_array` a list that is the whole (possibly fenced) answer.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "find_json_object",
    "json_array",
    "object_spans",
    "parse_json_like",
    "unfence",
]

_MAX_LITERAL_CHARS = 20_000
_MAX_UNMATCHED_STARTS = 16
_FENCE = re.compile(r"^```[\w+-]*[ \t]*\n?(.*?)\n?[ \t]*```$", re.S)


def unfence(text: str) -> str:
    """The body of a code fence that is the whole text (else the stripped text)."""
    m = _FENCE.match(text.strip())
    return m.group(1).strip() if m else text.strip()


_CURLY = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "‘": "'", "’": "'"})
_CURLY_DOUBLE = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"'})


def _single_quote_end(s: str, start: int) -> int | None:
    """End of a single-quoted string: the next quote followed by , } ] : or the end."""
    j = start + 1
    n = len(s)
    while j < n:
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == "'":
            k = j + 1
            while k < n and s[k] in " \t\r\n":
                k += 1
            if k == n or s[k] in ",}]:)":
                return j
        j += 1
    return None


def _match_brace(s: str, start: int, quotes: bool) -> int | None:
    """Index of the '}' closing s[start] (string-aware when ``quotes``)."""
    depth = 0
    prev = ""
    j = start
    n = len(s)
    while j < n:
        c = s[j]
        if quotes and c == '"':
            k = j + 1
            while k < n and s[k] != '"':
                k += 2 if s[k] == "\\" else 1
            if k >= n:
                return None
            j, prev = k + 1, '"'
            continue
        if quotes and c == "'" and prev in "{[,:(":
            k = _single_quote_end(s, j)
            if k is None:
                return None
            j, prev = k + 1, "'"
            continue
        if c in "{[":
            depth += 1 if c == "{" else 0
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j
        if not c.isspace():
            prev = c
        j += 1
    return None


def object_spans(text: str) -> list[tuple[int, int]]:
    """Top-level balanced {...} spans, left to right.

    A linear plain-brace pass finds the candidates; string-aware matching (braces inside
    quoted strings ignored) is then tried from those starts and from the last few unmatched
    '{' (bounded work on pathological text)."""
    scan = text.translate(_CURLY)
    stack: list[int] = []
    pairs: list[tuple[int, int]] = []
    for i, c in enumerate(scan):
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs.append((stack.pop(), i + 1))
    outer = _outer(pairs)
    starts = {a for a, _ in outer}
    starts.update(stack[-_MAX_UNMATCHED_STARTS:])
    plain_end = dict(outer)
    spans = []
    for a in sorted(starts):
        end = _match_brace(scan, a, quotes=True)
        if end is not None:
            spans.append((a, end + 1))
        elif a in plain_end:
            spans.append((a, plain_end[a]))
    top: list[tuple[int, int]] = []
    for a, b in sorted(spans, key=lambda span: (span[0], -span[1])):
        if not top or a >= top[-1][1]:
            top.append((a, b))
    return top


def _outer(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Pairs not nested in another pair (pairs arrive ordered by their closing brace)."""
    outer: list[tuple[int, int]] = []
    for a, b in pairs:
        while outer and outer[-1][0] > a:
            outer.pop()
        outer.append((a, b))
    return outer


def _requote(s: str) -> str:
    """Single-quoted strings rewritten as JSON strings."""
    out: list[str] = []
    prev = ""
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            k = i + 1
            while k < n and s[k] != '"':
                k += 2 if s[k] == "\\" else 1
            out.append(s[i:k + 1])
            i, prev = k + 1, '"'
            continue
        if c == "'" and prev in "{[,:(":
            k = _single_quote_end(s, i)
            if k is not None:
                inner = s[i + 1:k].replace("\\'", "'").replace('\\"', '"')
                out.append(json.dumps(inner, ensure_ascii=False))
                i, prev = k + 1, '"'
                continue
        out.append(c)
        if not c.isspace():
            prev = c
        i += 1
    return "".join(out)


_JSON_STRING = r'"(?:\\.|[^"\\])*"'


def _outside_strings(s: str, pattern: str, repl: Callable[[re.Match[str]], str]) -> str:
    """Apply a substitution only outside JSON strings."""
    def sub(m: re.Match[str]) -> str:
        return m.group(0) if m.group("str") is not None else repl(m)
    return re.sub(rf"(?P<str>{_JSON_STRING})|{pattern}", sub, s)


def _no_trailing_commas(s: str) -> str:
    return _outside_strings(s, r",(?P<ws>\s*)(?P<close>[}\]])",
                            lambda m: m.group("ws") + m.group("close"))


def _python_literals(s: str) -> str:
    names = {"True": "true", "False": "false", "None": "null"}
    return _outside_strings(s, r"\b(?P<lit>True|False|None)\b", lambda m: names[m.group("lit")])


def _quote_keys(s: str) -> str:
    return _outside_strings(s, r"(?P<pre>[{,]\s*)(?P<key>[A-Za-z_][\w \-]*?)(?P<post>\s*:)",
                            lambda m: f'{m.group("pre")}"{m.group("key")}"{m.group("post")}')


def _literal(s: str) -> Any:
    """``ast.literal_eval`` on bounded input (literals only, never code)."""
    if len(s) > _MAX_LITERAL_CHARS:
        return None
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _loads(s: str) -> Any:
    try:
        return json.loads(s, strict=False)
    except (ValueError, RecursionError):
        return None


def parse_json_like(text: str) -> Any:
    """A JSON value from strict JSON, then repaired JSON (curly quotes, trailing commas,
    single quotes, Python literals, bare keys), then a Python literal; None if none works."""
    s = text.strip()
    value = _loads(s)
    if value is not None:
        return value
    s1 = _no_trailing_commas(s.translate(_CURLY_DOUBLE))
    value = _loads(s1)
    if value is not None:
        return value
    s2 = _python_literals(_no_trailing_commas(_requote(s1.translate(_CURLY))))
    value = _loads(s2)
    if value is not None:
        return value
    value = _literal(s1)
    if value is not None:
        return value
    return _loads(_quote_keys(s2))


def find_json_object(text: str) -> dict[str, Any] | None:
    """The last balanced ``{...}`` in the text that parses to an object (lenient JSON)."""
    for start, end in reversed(object_spans(text)):
        value = parse_json_like(text[start:end])
        if isinstance(value, dict):
            return value
    return None


def json_array(text: str) -> list[Any] | None:
    """A JSON array that is the whole (possibly fenced) text, else None."""
    s = unfence(text)
    if s.startswith("[") and s.endswith("]"):
        value = parse_json_like(s)
        if isinstance(value, list | tuple):
            return list(value)
    return None
