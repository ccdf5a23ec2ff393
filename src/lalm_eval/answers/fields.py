"""SSEU-Bench answer fields: a model's output text -> transcript / scene / events.

``parse_answer(text, task, mode, family)`` returns a :class:`ParsedAnswer` with the fields
of the scoring contract (``docs/architecture.md``, "Predictions -> scores") plus
``well_formed`` and ``problem``.

Two levels, on purpose:

* **Lenient extraction** fills a field whenever the answer clearly gives it, even in the
  wrong shape: the first of several scenes, a scene inside a sentence ("It sounds like a
  busy street"), an event list inside prose, a CoT that stopped before its final answer but
  already wrote "Transcription: ...". Scoring may use these partial answers.
* **well_formed** stays strict: True only when the expected field(s) came in the expected
  shape. Stripping *known wrappers* never costs well-formedness: surrounding quotes, code
  fences, a label's trailing period (a transcript keeps its own), a JSON envelope around an
  independent answer, a label line naming the asked field ("Scene: park"), "Answer:" /
  "The answer is:", special tokens, ``<think>`` blocks, and the prefixes of the model's
  family (``families.yaml``, see :mod:`lalm_eval.answers.families`).
  Anything else that has to be cut away or interpreted (lead-in chatter, unknown
  "The X is:" prefixes, sentence patterns, several scenes, wrong JSON types, missing keys,
  no final answer) makes the answer not well-formed and ``problem`` says why.

Expected shapes: independent ``asr`` any text (a "no speech" statement gives ``""``),
``asc`` one short label, ``at`` a list (JSON list or comma/line/bullet separated; "none"
gives an empty list); ``joint`` a JSON object with the keys transcript, scene, events
(string, string, list); ``cot`` a final section (the last "Final answer" / "Step 5" /
``<answer>`` marker, else a JSON block with the keys) that gives all three fields.

Nothing is invented: a field the answer does not give stays None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lalm_eval.answers.families import FamilyRules, clean_answer, family_rules
from lalm_eval.answers.json_like import json_array, object_spans, parse_json_like, unfence
from lalm_eval.answers.text import THINK_BLOCK, join_problems

__all__ = [
    "FIELDS",
    "JOINED_LABELS",
    "MODES",
    "TASKS",
    "ParsedAnswer",
    "clean_label",
    "format_compliance",
    "parse_answer",
]

TASKS = ("asr", "asc", "at")
MODES = ("independent", "joint", "cot")
FIELDS = ("transcript", "scene", "events")

#: benchmark label texts that contain a list separator; never split (extend per call)
JOINED_LABELS: tuple[str, ...] = (
    "cutlery and dishes",
    "cafe or restaurant",
    "electric shaver or toothbrush",
    "pots and pans",
)


# --------------------------------------------------------------------------------------------
# result type
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedAnswer:
    """Parsed fields (None: not given), strict shape verdict and why it failed."""

    transcript: str | None = None
    scene: str | None = None
    events: tuple[str, ...] | None = None
    well_formed: bool = False
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record's ``parsed`` dict (events as a list)."""
        return {"transcript": self.transcript, "scene": self.scene,
                "events": None if self.events is None else list(self.events)}


# --------------------------------------------------------------------------------------------
# text helpers
# --------------------------------------------------------------------------------------------

_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "”": "”", "‘": "’", "’": "’", "«": "»",
                "„": "“", "`": "`"}
_SPECIAL_TOKENS = re.compile(r"<\|[^|<>\n]{1,40}\|>|</?s>|\[/?INST\]", re.I)
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.I | re.S)
_MD = r"[*_]{0,2}"


def _preclean(text: str, rules: FamilyRules, keep_think: bool = False) -> str:
    """The family's answer clean-up, then special tokens and think blocks removed;
    whitespace stripped."""
    text = clean_answer(text, rules)
    text = _SPECIAL_TOKENS.sub("", text)
    if not keep_think:
        text = THINK_BLOCK.sub("", text)
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _unquote(text: str) -> str:
    """Surrounding quotes/backticks/markdown emphasis removed (repeatedly)."""
    s = text.strip()
    while True:
        before = s
        if len(s) >= 2 and s[-1] == "." and s[-2] in "\"'”’»`":
            s = s[:-1]
        if len(s) >= 2 and s[0] in _QUOTE_PAIRS and s[-1] == _QUOTE_PAIRS[s[0]]:
            s = s[1:-1].strip()
        elif len(s) >= 4 and s[:2] in ("**", "__") and s[-2:] == s[:2]:
            s = s[2:-2].strip()
        if s == before:
            return s


def _strip_prefixes(text: str, patterns: Iterable[str]) -> tuple[str, bool]:
    """Remove matching prefixes at the start (repeatedly); (text, whether any matched)."""
    s = text.strip()
    hit = False
    changed = True
    while changed:
        changed = False
        for pattern in patterns:
            m = re.match(pattern, s, re.I)
            if m and m.end() > 0:
                s = s[m.end():].strip()
                hit = changed = True
    return s, hit


_GENERIC_PREFIXES = (
    rf"{_MD}(?:final\s+)?answer{_MD}\s*[:：]{_MD}",
    r"the\s+(?:final\s+)?answer\s+is\s*[:：]",
    r"(?:output|response|assistant|prediction)\s*[:：]",
)

_TASK_KEY_PREFIX = {
    "transcript": rf"{_MD}(?:speech\s+)?(?:transcript(?:ion)?|asr){_MD}\s*[:：]{_MD}",
    "scene": rf"{_MD}(?:acoustic\s+)?(?:scene|environment|location){_MD}\s*[:：]{_MD}",
    "events": rf"{_MD}(?:(?:sound|audio)\s+)?(?:events?|tags|sounds)"
              rf"(?:\s+(?:detected|present|heard|identified))?{_MD}\s*[:：]{_MD}",
}


def _known_wrappers(text: str, rules: FamilyRules, field: str | None) -> str:
    """Fences, quotes, generic/family/field-label prefixes removed (all count as wrappers)."""
    patterns = [*_GENERIC_PREFIXES, *rules.wrappers]
    if field is not None:
        patterns.append(_TASK_KEY_PREFIX[field])
    s = text.strip()
    while True:
        before = s
        s = _unquote(unfence(s))
        s, _ = _strip_prefixes(s, patterns)
        if s == before:
            return s


# unknown "The X is:" style prefix before an answer (lenient, costs well-formedness)
_UNKNOWN_PREFIX = re.compile(
    r"^(?P<pre>(?:[\w'’!,.]+\s+){0,8}?[\w'’]*\b(?:audio|speech|speaker|clip|recording|"
    r"transcript|transcription|content|text|answer|person|voice|sentence|words|scene|"
    r"environment|events|sounds|label)\b[^:：\n]{0,20}?)\s*[:：]\s*(?P<rest>\S.*)$",
    re.I | re.S)

# any short "something:" before a label answer (asc/at only; lenient)
_LABEL_PREFIX = re.compile(r"^(?P<pre>[^:：\n]{1,60})[:：]\s*(?P<rest>\S.*)$", re.S)

_LEADIN = re.compile(
    r"^(?:sure|okay|ok|certainly|of course|here|below|the following|alright)\b[^\n]*[:：]\s*\n",
    re.I)

_HEDGES = re.compile(r"^(?:most\s+likely|probably|likely|possibly|maybe|perhaps|definitely|"
                     r"clearly|certainly)\s+", re.I)
_TRAILING_SCORE = re.compile(r"\s*(?:[:=,]|[-–—]|\bscore\b|\bconfidence\b)?\s*"
                             r"\d+(?:\.\d+)?\s*%?\s*$", re.I)


def clean_label(text: str) -> str:
    """A scene/event label: lower case, no numbering, quotes, scores, notes, punctuation."""
    s = _unquote(str(text).strip())
    s = re.sub(r"^\s*(?:\d+\s*[.)]|[-*•·‣▪+])\s+", "", s)
    s = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", s)
    s = _TRAILING_SCORE.sub("", s)
    s = s.replace("_", " ").replace("’", "'").lower()
    s = re.sub(r"[^\w\s'/&-]", " ", s)
    s = re.sub(r"\s+", " ", s).strip(" '-/&")
    s = _HEDGES.sub("", s)
    s = re.sub(r"^(?:an?|the)\s+", "", s)
    return s.strip()


_SENTENCE_START = re.compile(
    r"^(?:i|i'm|i've|im|it|it's|its|this|that|there|there's|these|those|we|you|my|based|"
    r"in\s+this|in\s+the\s+(?:audio|recording|clip)|the\s+(?:audio|recording|clip|sound|"
    r"sounds|speaker|scene|environment|acoustic|answer)|sounds\s+like|here|sure|okay|yes|"
    r"according|from|let's|let\s+me)\b", re.I)


_VERBS = re.compile(r"\b(?:is|are|was|were|can|could|would|seems?|appears?|hear|heard)\b", re.I)


def _is_label_like(text: str, max_words: int = 6) -> bool:
    """Short, not a sentence."""
    s = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", _unquote(text.strip()))
    s = s.replace("’", "'").strip().rstrip(".!")
    if not s or re.search(r"[.!?:]\s+\S", s) or "\n" in s or _VERBS.search(s):
        return False
    if len(s.split()) > max_words:
        return False
    return not _SENTENCE_START.match(s)


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _protect(text: str, phrases: Sequence[str]) -> str:
    """Hide the separators inside known multi-word labels."""
    for phrase in sorted(phrases, key=len, reverse=True):
        words = [re.escape(w) for w in re.split(r"[\s_]+", phrase.strip()) if w]
        if len(words) < 2:
            continue
        pattern = r"\b" + r"[\s_]+".join(words) + r"\b"
        text = re.sub(pattern, "\x00".join(w.replace("\\", "") for w in words).lower(),
                      text, flags=re.I)
    return text


_INLINE_NUMBERED = re.compile(r"(?:^|\s)\(?\d{1,2}[.)]\s+")
_ITEM_SEP_AND = re.compile(r"\s*(?:[,;|]|\s&\s)\s*(?:and\s+|or\s+)?|\s+and\s+|\s+as\s+well\s+as\s+",
                           re.I)
_ITEM_SEP_OR = re.compile(r"\s*[,;|]\s*(?:or\s+|and\s+)?|\s+or\s+", re.I)


def _split_items(text: str, protect: Sequence[str], scene: bool) -> list[str]:
    """Items of a list written as lines, bullets, numbers, commas, ';', 'and' (or 'or')."""
    text = _protect(text, protect)
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    pieces: list[str] = []
    for line in lines:
        line = re.sub(r"^(?:[-*•·‣▪+]|\d{1,2}\s*[.)])\s+", "", line)
        if re.match(r"^\(?1[.)]\s", line) or _INLINE_NUMBERED.search(line):
            parts = [p for p in _INLINE_NUMBERED.split(" " + line) if p.strip()]
            if len(parts) > 1:
                pieces.extend(parts)
                continue
        pieces.append(line)
    sep = _ITEM_SEP_OR if scene else _ITEM_SEP_AND
    items: list[str] = []
    for piece in pieces:
        items.extend(p for p in sep.split(piece) if p and p.strip())
    return [item.replace("\x00", " ").strip() for item in items]


_NONE_LABEL = re.compile(
    r"^(?:none|nothing|null|nil|n/?a|none detected|no(?:\s+other)?(?:\s+(?:sound|audio|"
    r"background|acoustic|non-speech))?\s+(?:events?|sounds?)(?:\s+(?:detected|heard|present|"
    r"identified))?(?:\s+(?:besides|apart\s+from|other\s+than)\s+(?:the\s+)?speech)?|"
    r"only\s+speech)$", re.I)
_NO_SCENE = re.compile(r"^(?:none|unknown|unclear|uncertain|not sure|n/?a|null|nil)$", re.I)

_REFUSAL = re.compile(
    r"^(?:(?:i'?m|i\s+am)\s+sorry|sorry\b|i\s+(?:do\s+not|don'?t)\s+know|(?:i'?m|i\s+am)\s+not\s+"
    r"(?:sure|certain|able)|not\s+sure\b|i\s+(?:cannot|can'?t|can\s+not|am\s+unable|was\s+unable|"
    r"couldn'?t)|i'?m\s+unable|unable\s+to\b|as\s+an\s+ai\b|(?:i\s+have\s+)?no\s+idea\b|"
    r"it\s+is\s+(?:not\s+possible|impossible)|it'?s\s+(?:not\s+possible|impossible)|"
    r"unknown\b|unclear\b|cannot\s+(?:be\s+)?determined?)", re.I)
# ASR: speech may itself start with "Sorry", so only unmistakable meta answers count
_ASR_REFUSAL = re.compile(
    r"^(?:i\s+(?:do\s+not|don'?t)\s+know\.?$|(?:i'?m\s+sorry,?\s+(?:but\s+)?)?i\s+(?:cannot|"
    r"can'?t|am\s+unable\s+to|'m\s+unable\s+to|was\s+unable\s+to)\s+(?:transcribe|hear|"
    r"understand|process|identify|determine|access|listen)|as\s+an\s+ai\b|"
    r"(?:the\s+)?(?:speech|audio)\s+is\s+(?:unintelligible|inaudible)\.?$|\[?inaudible\]?\.?$)",
    re.I)
_NO_SPEECH = re.compile(
    r"^[\[(]?(?:(?:there\s+is\s+|there's\s+)?no\s+(?:speech|spoken\s+words|audible\s+speech|"
    r"one\s+(?:is\s+)?speaking)(?:\s+(?:detected|present))?(?:\s+(?:in|detected\s+in)\s+(?:the|"
    r"this)\s+(?:audio|recording|clip))?|silence|(?:the|this)\s+(?:audio|recording|clip)\s+"
    r"(?:does\s+not|doesn't)\s+contain\s+(?:any\s+)?speech)[\])]?[.!]?$", re.I)


def _lower_ascii(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'").strip()


# --------------------------------------------------------------------------------------------
# answer objects (JSON with the fields' keys)
# --------------------------------------------------------------------------------------------

_KEY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "transcript": ("transcript", "transcription", "speech", "asr", "speech_transcript",
                   "speech_transcription", "spoken_text", "transcribed_text", "speech_content"),
    "scene": ("scene", "acoustic_scene", "environment", "location", "scene_label",
              "acoustic_environment", "setting"),
    "events": ("events", "sound_events", "tags", "sounds", "audio_events", "event",
               "sound_event", "audio_tags", "sound_tags", "event_labels", "sound_event_tags",
               "background_events"),
}
_INDEPENDENT_KEYS = ("answer", "label", "prediction", "result", "output", "text", "labels")


def _norm_key(key: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _lookup(obj: dict[str, Any], names: Sequence[str]) -> tuple[bool, Any]:
    """(found, value) for the first of ``names`` present among the object's keys."""
    keys = {_norm_key(k): k for k in obj}
    for name in names:
        if name in keys:
            return True, obj[keys[name]]
    return False, None


def _has_fields(obj: dict[str, Any], fields: Sequence[str], extra: Sequence[str] = ()) -> bool:
    keys = {_norm_key(k) for k in obj}
    return any(keys & set(_KEY_SYNONYMS[f]) for f in fields) or bool(keys & set(extra))


def _answer_object(text: str, fields: Sequence[str],
                   extra: Sequence[str] = ()) -> tuple[dict[str, Any] | None, bool]:
    """(last object with a key for one of ``fields``, whether any object parsed)."""
    any_object = False
    for start, end in reversed(object_spans(text)):
        value = parse_json_like(text[start:end])
        if not isinstance(value, dict):
            continue
        any_object = True
        for candidate in (value, *[v for v in value.values() if isinstance(v, dict)]):
            if _has_fields(candidate, fields, extra):
                return candidate, True
    return None, any_object


# --------------------------------------------------------------------------------------------
# field values (from JSON values or from free text)
# --------------------------------------------------------------------------------------------


def _transcript_value(raw: Any, rules: FamilyRules, from_json: bool
                      ) -> tuple[str | None, str | None]:
    """(transcript, problem) from a JSON value or a labelled text value."""
    if raw is None:
        return None, "null transcript"
    problem = None
    if isinstance(raw, list | tuple):
        parts = [str(x) for x in raw if isinstance(x, str | int | float)]
        if not parts:
            return None, "transcript is a list"
        raw, problem = " ".join(parts), "transcript is a list"
    elif not isinstance(raw, str):
        return None, "transcript has wrong type"
    text = _known_wrappers(raw, rules, "transcript")
    if _NO_SPEECH.match(_lower_ascii(text)) or re.fullmatch(r"none|n/?a|-+", text, re.I):
        return "", problem
    if _ASR_REFUSAL.match(_lower_ascii(text)):
        return None, "refusal"
    m = _UNKNOWN_PREFIX.match(text)
    if m and not from_json:
        text, problem = _unquote(m.group("rest")), problem or "unexpected prefix"
    return text, problem


def _scene_pattern(text: str) -> str | None:
    """A scene named inside a sentence ("It sounds like a busy street")."""
    for pattern in _SCENE_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        value = _SCENE_CUT.split(m.group("v"))[0]
        label = clean_label(value)
        if label and _is_label_like(label) and not _NO_SCENE.match(label):
            return label
    return None


_SCENE_PATTERNS = [re.compile(p, re.I) for p in (
    r"\b(?:acoustic\s+)?(?:scene|environment|location|setting|place)\s+(?:is|was|would\s+be|"
    r"could\s+be|appears\s+to\s+be|seems\s+to\s+be|sounds\s+like)\s+(?:likely\s+|probably\s+)?"
    r"(?:(?:in|at|on)\s+)?(?P<v>[^.;\n]+)",
    r"\b(?:recorded|made|captured|taking\s+place|takes\s+place|taken|set|located)\s+"
    r"(?:in|at|on|inside|near)\s+"
    r"(?P<v>[^.;\n]+)",
    r"\b(?:sounds|seems|looks)\s+like\s+(?:it\s+(?:is|was)\s+|it's\s+)?(?:(?:in|at|on)\s+)?"
    r"(?P<v>[^.;\n]+)",
    r"\b(?:it\s+is|it's|this\s+is)\s+(?:(?:in|at|on)\s+)?(?P<v>(?:an?|the)\s+[^.;\n]+)",
)]
_SCENE_CUT = re.compile(r"\s*,\s*|\s+(?:with|where|because|due\s+to|since|as|given|based|which|"
                        r"and\s+(?:there|i|you|it|the|a|an))\s+", re.I)


def _scene_value(raw: Any, protect: Sequence[str], from_json: bool
                 ) -> tuple[str | None, str | None]:
    """(scene, problem): one label; the first of several (not well-formed)."""
    if raw is None:
        return None, "null scene"
    if isinstance(raw, dict):
        found, raw = _lookup(raw, ("label", "name", "scene", "class"))
        if not found:
            return None, "scene has wrong type"
        value, _ = _scene_value(raw, protect, from_json)
        return value, "scene has wrong type"
    if isinstance(raw, list | tuple):
        labels = _dedupe(clean_label(x) for x in raw if isinstance(x, str))
        return (labels[0] if labels else None), "scene is a list"
    if not isinstance(raw, str):
        return None, "scene has wrong type"
    text = _unquote(raw.strip())
    if not text:
        return None, "empty scene"
    if _NO_SCENE.match(clean_label(text)) or _REFUSAL.match(_lower_ascii(text)):
        return None, "no scene"
    items = _split_items(text, protect, scene=True)
    labels = _dedupe(clean_label(i) for i in items if _is_label_like(i))
    if items and len(labels) == len(_dedupe(clean_label(i) for i in items)):
        if len(labels) > 1:
            return labels[0], "more than one scene"
        if labels:
            return labels[0], None
    label = _scene_pattern(text)
    if label:
        return label, "scene is not a label"
    if labels:
        return labels[0], "scene is not a label"
    return None, "scene is not a label"


_EVENT_PATTERNS = [re.compile(p, re.I) for p in (
    r"\b(?:i\s+(?:can\s+)?(?:also\s+)?hear|can\s+(?:also\s+)?hear|i\s+heard|we\s+hear)\s+"
    r"(?P<v>[^.\n]+)",
    r"\b(?:(?:sound|audio|background|other)\s+)?(?:events?|sounds)\s+(?:are|is|include|"
    r"includes|(?:detected|present|heard)\s+(?:are|is|include))\s*:?\s*(?P<v>[^.\n]+)",
    r"\bthere\s+(?:is|are|'s)\s+(?P<v>[^.\n]+)",
    r"(?:^|[.!?]\s+)(?P<v>[^.\n]+?)\s+(?:can\s+be\s+heard|(?:is|are)\s+audible)",
    r"\bsounds?\s+of\s+(?P<v>[^.\n]+)",
)]
_EVENT_NOISE = re.compile(r"\s+(?:in\s+the\s+(?:background|distance)|(?:besides|apart\s+from|"
                          r"other\s+than|in\s+addition\s+to)\s+(?:the\s+)?speech|"
                          r"(?:nearby|throughout(?:\s+the\s+clip)?))\b", re.I)


def _event_labels(items: Iterable[str]) -> tuple[list[str], bool]:
    """(cleaned labels without 'none'-like items, whether every item was label-like)."""
    labels = []
    all_labels = True
    for item in items:
        label = clean_label(item)
        if not label or _NONE_LABEL.match(label):
            continue
        if not _is_label_like(item) and not _is_label_like(label):
            all_labels = False
            if len(label.split()) > 10:
                continue
        labels.append(label)
    return _dedupe(labels), all_labels


def _events_pattern(text: str, protect: Sequence[str]) -> list[str] | None:
    """Events named inside a sentence ("I can hear a dog barking and a car horn")."""
    for pattern in _EVENT_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        value = _EVENT_NOISE.sub("", m.group("v"))
        labels, _ = _event_labels(i for i in _split_items(value, protect, scene=False)
                                  if _is_label_like(i))
        if labels:
            return labels
    return None


def _events_value(raw: Any, protect: Sequence[str], from_json: bool
                  ) -> tuple[tuple[str, ...] | None, str | None]:
    """(events, problem): a list of labels; text lists are split."""
    if raw is None:
        return None, "null events"
    if isinstance(raw, list | tuple):
        items: list[str] = []
        problem = None
        for x in raw:
            if isinstance(x, dict):
                found, value = _lookup(x, ("label", "event", "name", "tag", "sound", "class"))
                if found and isinstance(value, str):
                    items.append(value)
                problem = "events items are not strings"
            elif isinstance(x, str):
                items.append(x)
            elif x is not None:
                problem = "events items are not strings"
        labels, _ = _event_labels(items)
        return tuple(labels), problem
    if isinstance(raw, dict):
        return None, "events has wrong type"
    if not isinstance(raw, str):
        return None, "events has wrong type"
    text = _unquote(raw.strip())
    string_problem = "events is a string" if from_json else None
    if not text or _NONE_LABEL.match(clean_label(text)):
        return (), string_problem
    if _REFUSAL.match(_lower_ascii(text)):
        return None, "no events"
    labels, all_labels = _event_labels(_split_items(text, protect, scene=False))
    if all_labels:
        return tuple(labels), string_problem
    from_sentence = _events_pattern(text, protect)
    if from_sentence:
        return tuple(from_sentence), "events are not a list"
    return (tuple(labels) if labels else None), "events are not a list"


# --------------------------------------------------------------------------------------------
# labelled free text ("Scene: park", "**Events**: dog, car", "Step 2: Transcription: ...")
# --------------------------------------------------------------------------------------------

_FIELD_WORDS = {
    "transcript": r"(?:speech\s+|asr\s+)?transcript(?:ion)?|asr(?:\s+output)?|"
                  r"spoken\s+(?:text|content|words)|speech\s+content|what\s+(?:was|is)\s+said",
    "scene": r"(?:acoustic\s+)?scene(?:\s+(?:label|class))?|(?:acoustic\s+)?environment|"
             r"location|setting",
    "events": r"sound\s+event\s+(?:tags|labels)|(?:(?:sound|audio|acoustic|background)\s+)?"
              r"events?(?:\s+(?:tags|labels))?|(?:audio|sound|event)\s+tags|tags|"
              r"(?:background\s+|other\s+)?sounds|audio\s+tagging",
}
_KEY_ALTS = "|".join(f"(?P<{field}>{words})" for field, words in _FIELD_WORDS.items())
_KEY_ANY = "|".join(f"(?:{words})" for words in _FIELD_WORDS.values())
_LINE_KEY = re.compile(
    rf"^[ \t>]*(?:#+\s*)?(?:[-*•+]\s+|\d{{1,2}}[.)]\s+)?{_MD}\s*"
    rf"(?:step\s*\d+\s*{_MD}\s*[:.)\-–—]?\s*)?{_MD}\s*\(?\s*(?:the\s+)?"
    rf"(?P<qual>(?:final|predicted|ranked|top|most\s+likely|detected|identified)\s+)?"
    rf"(?:{_KEY_ALTS})"
    rf"(?:\s+(?:detected|present|heard|identified))?"
    rf"(?P<cand>\s+(?:candidates?|ranking|ranked|list|hypothes[ie]s))?"
    rf"(?P<paren>\s*\([^)\n]{{0,30}}\))?\s*\)?\s*{_MD}"
    rf"\s*(?:[:：=]|[-–—](?=\s)|$)\s*{_MD}[ \t]*(?P<value>.*)$",
    re.I)
_INLINE_KEY = re.compile(rf"(?:[;|,]|\s{{2,}}|\s[-–—]\s)\s*{_MD}\s*(?:{_KEY_ANY})"
                         rf"(?:\s+candidates?)?\s*{_MD}\s*[:：=]", re.I)
_STEP_LINE = re.compile(r"^\W*step\s*\d", re.I)


@dataclass(frozen=True)
class _Label:
    field: str
    value: str
    candidate: bool


def _labelled(text: str) -> list[_Label]:
    """Labelled values in order of appearance; an empty value takes the following block."""
    lines = text.split("\n")
    found: list[_Label] = []
    i = 0
    while i < len(lines):
        segment = lines[i]
        i += 1
        block_used = False
        while segment:
            m = _LINE_KEY.match(segment)
            if not m:
                break
            field = next(f for f in FIELDS if m.group(f) is not None)
            candidate = bool(m.group("cand")) or bool(re.search(
                r"rank|candidate|top", (m.group("qual") or "") + (m.group("paren") or ""), re.I))
            value = m.group("value")
            rest = ""
            inline = _INLINE_KEY.search(value)
            if inline:
                value, rest = value[:inline.start()], value[inline.start() + 1:]
            value = value.strip()
            if not value and not rest and not block_used:
                block = []
                while i < len(lines) and lines[i].strip():
                    if (_LINE_KEY.match(lines[i]) or _STEP_LINE.match(lines[i])
                            or _FINAL_MARK.match(lines[i])):
                        break
                    block.append(lines[i].strip())
                    i += 1
                value = "\n".join(block)
                block_used = True
            if value:
                found.append(_Label(field, value, candidate))
            segment = rest
    return found


def _pick_labels(labels: list[_Label], allow_candidates: bool) -> dict[str, _Label]:
    """Per field the last plain label, else (if allowed) the last candidate label."""
    picked: dict[str, _Label] = {}
    if allow_candidates:
        picked.update((lb.field, lb) for lb in labels if lb.candidate)
    picked.update((lb.field, lb) for lb in labels if not lb.candidate)
    return picked


# --------------------------------------------------------------------------------------------
# assembling answers
# --------------------------------------------------------------------------------------------

_FINAL_MARK = re.compile(
    r"^[ \t>#*_\-]*(?:\d+[.)]\s*)?(?:step\s*\d+\s*[:.)\-–—]?\s*)?[*_]{0,2}\s*final\s+answers?\b"
    r"[^\n:：]*?[*_]{0,2}\s*(?:[:：][*_]{0,2})?", re.I | re.M)
_FINAL_INLINE = re.compile(
    r"final\s+answers?\s*[*_]{0,2}\s*(?:\([^)\n]*\))?\s*[:：]\s*[*_]{0,2}", re.I)
_STEP5 = re.compile(r"^[ \t>#*_\-]*step\s*5\b[^\n]*$", re.I | re.M)
_ANSWER_OPEN = re.compile(r"<answer>", re.I)


def _final_section(text: str) -> str | None:
    """Text after the last final-answer marker (Final answer, Step 5, <answer>), or None."""
    best: tuple[int, int] | None = None
    for pattern in (_FINAL_MARK, _FINAL_INLINE, _STEP5, _ANSWER_OPEN):
        for m in pattern.finditer(text):
            if best is None or m.start() > best[0]:
                best = (m.start(), m.end())
    if best is None:
        return None
    section = re.sub(r"</answer>", "", text[best[1]:], flags=re.I).strip()
    return section


def _problems(*problems: str | None) -> str | None:
    """The distinct non-empty problem notes joined with '; '."""
    return join_problems(*_dedupe(p for p in problems if p))


class _Fields:
    """Collects field values, the fields the answer gave, and problems."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.given: set[str] = set()
        self.problems: list[str] = []

    def set(self, field: str, value: Any, problem: str | None) -> None:
        self.given.add(field)
        if value is not None:
            self.values[field] = value
        if problem:
            self.problems.append(problem)

    def answer(self, well_formed: bool, *extra: str | None) -> ParsedAnswer:
        problem = _problems(*extra, *self.problems)
        return ParsedAnswer(self.values.get("transcript"), self.values.get("scene"),
                            self.values.get("events"), well_formed and problem is None,
                            problem)


def _from_object(obj: dict[str, Any], fields: Sequence[str], rules: FamilyRules,
                 protect: Sequence[str], extra: Sequence[str] = ()) -> _Fields:
    """Fields from a JSON object; a missing key stays None ("missing key <field>")."""
    out = _Fields()
    for field in fields:
        found, raw = _lookup(obj, (*_KEY_SYNONYMS[field], *extra))
        if not found:
            out.problems.append(f"missing key {field}")
            continue
        out.set(field, *_field_value(field, raw, rules, protect, from_json=True))
    return out


def _field_value(field: str, raw: Any, rules: FamilyRules, protect: Sequence[str],
                 from_json: bool) -> tuple[Any, str | None]:
    if field == "transcript":
        return _transcript_value(raw, rules, from_json)
    if field == "scene":
        return _scene_value(raw, protect, from_json)
    return _events_value(raw, protect, from_json)


def _from_labels(text: str, rules: FamilyRules, protect: Sequence[str],
                 allow_candidates: bool) -> _Fields:
    """Fields from labelled lines (last occurrence wins)."""
    out = _Fields()
    picked = _pick_labels(_labelled(text), allow_candidates)
    for field, label in picked.items():
        value, problem = _field_value(field, label.value, rules, protect, from_json=False)
        if label.candidate and problem == "more than one scene":
            problem = None  # a ranked candidate list: its first entry is the answer
        out.set(field, value, problem)
    return out


def _lenient_body(text: str, rules: FamilyRules, protect: Sequence[str]) -> _Fields:
    """Whatever is clearly labelled anywhere: a JSON object with the keys, else label lines."""
    obj, _ = _answer_object(text, FIELDS)
    if obj is not None:
        out = _from_object(obj, FIELDS, rules, protect)
        out.problems = [p for p in out.problems if not p.startswith("missing key")]
        return out
    return _from_labels(text, rules, protect, allow_candidates=True)


def _parse_joint(text: str, rules: FamilyRules, protect: Sequence[str]) -> ParsedAnswer:
    obj, any_object = _answer_object(text, FIELDS)
    if obj is None and any_object:
        return ParsedAnswer(None, None, None, False, _problems(
            *(f"missing key {f}" for f in FIELDS)))
    if obj is not None:
        return _from_object(obj, FIELDS, rules, protect).answer(True)
    fields = _from_labels(text, rules, protect, allow_candidates=False)
    if not fields.values and _REFUSAL.match(_lower_ascii(text)):
        return ParsedAnswer(problem="refusal")
    return fields.answer(False, "no json")


def _parse_cot(text: str, rules: FamilyRules, protect: Sequence[str]) -> ParsedAnswer:
    section = _final_section(text)
    if section:
        obj, _ = _answer_object(section, FIELDS)
        if obj is not None:
            return _from_object(obj, FIELDS, rules, protect).answer(True)
        fields = _from_labels(section, rules, protect, allow_candidates=False)
        if fields.given:
            return fields.answer(True, *(f"missing {f}" for f in FIELDS if f not in fields.given))
        return _lenient_body(text, rules, protect).answer(False, "final answer has no fields")
    obj, _ = _answer_object(text, FIELDS)
    if obj is not None:
        return _from_object(obj, FIELDS, rules, protect).answer(True)
    body = _lenient_body(text, rules, protect)
    if not body.values and _REFUSAL.match(_lower_ascii(text)):
        return ParsedAnswer(problem="refusal")
    return body.answer(False, "no final answer")


# --- independent tasks -----------------------------------------------------------------------


def _parse_asr(text: str, rules: FamilyRules) -> ParsedAnswer:
    obj, any_object = _answer_object(text, ("transcript",), _INDEPENDENT_KEYS)
    if obj is None and any_object:
        return ParsedAnswer(problem="missing key transcript")
    if obj is not None:
        out = _from_object(obj, ("transcript",), rules, (), extra=_INDEPENDENT_KEYS)
        return out.answer(True)
    s = _known_wrappers(text, rules, "transcript")
    if not s:
        return ParsedAnswer(problem="empty")
    if _NO_SPEECH.match(_lower_ascii(s)):
        return ParsedAnswer(transcript="", well_formed=True)
    if _ASR_REFUSAL.match(_lower_ascii(s)):
        return ParsedAnswer(problem="refusal")
    problem = None
    labels = [lb for lb in _labelled(s) if lb.field == "transcript"]
    if labels:
        value, why = _transcript_value(labels[-1].value, rules, from_json=False)
        return ParsedAnswer(transcript=value, problem=_problems(why, "extra text"))
    lead = _LEADIN.match(s)
    if lead:
        s, problem = _known_wrappers(s[lead.end():], rules, "transcript"), "extra text"
    s = re.sub(r"\n\s*\n\s*\(?note\b.*$", "", s, flags=re.I | re.S).strip()
    m = _UNKNOWN_PREFIX.match(s)
    if m:
        s, problem = _unquote(m.group("rest")), problem or "unexpected prefix"
    if not s:
        return ParsedAnswer(problem="empty")
    return ParsedAnswer(transcript=s, well_formed=problem is None, problem=problem)


def _parse_asc(text: str, rules: FamilyRules, protect: Sequence[str]) -> ParsedAnswer:
    obj, any_object = _answer_object(text, ("scene",), _INDEPENDENT_KEYS)
    if obj is None and any_object:
        return ParsedAnswer(problem="missing key scene")
    if obj is not None:
        return _from_object(obj, ("scene",), rules, protect, _INDEPENDENT_KEYS).answer(True)
    array = json_array(text)
    if array is not None:
        value, _ = _scene_value(array, protect, from_json=True)
        return ParsedAnswer(scene=value, problem="scene is a list")
    s = _known_wrappers(text, rules, "scene")
    if not s:
        return ParsedAnswer(problem="empty")
    if _NO_SCENE.match(clean_label(s)):
        return ParsedAnswer(problem="no scene")
    if _REFUSAL.match(_lower_ascii(s)):
        return ParsedAnswer(problem="refusal")
    lines = [ln for ln in s.split("\n") if ln.strip()]
    is_list = all(re.match(r"^\s*(?:[-*•·‣▪+]|\d{1,2}\s*[.)])\s+", ln) for ln in lines)
    if len(lines) == 1 or is_list:
        value, problem = _scene_value(s, protect, from_json=False)
        if value is not None:
            return ParsedAnswer(scene=value, well_formed=problem is None, problem=problem)
    labels = [lb for lb in _labelled(s) if lb.field == "scene"]
    if labels:
        value, why = _scene_value(labels[-1].value, protect, from_json=False)
        return ParsedAnswer(scene=value, problem=_problems(why, "extra text"))
    m = _LABEL_PREFIX.match(s)
    if m and "\n" not in m.group("rest").strip():
        value, why = _scene_value(m.group("rest"), protect, from_json=False)
        if value is not None:
            return ParsedAnswer(scene=value, problem=_problems("unexpected prefix", why))
    label = _scene_pattern(s)
    if label:
        return ParsedAnswer(scene=label, problem="scene is not a label")
    return ParsedAnswer(problem="no scene label")


def _parse_at(text: str, rules: FamilyRules, protect: Sequence[str]) -> ParsedAnswer:
    obj, any_object = _answer_object(text, ("events",), _INDEPENDENT_KEYS)
    if obj is None and any_object:
        return ParsedAnswer(problem="missing key events")
    if obj is not None:
        return _from_object(obj, ("events",), rules, protect, _INDEPENDENT_KEYS).answer(True)
    array = json_array(text)
    if array is not None:
        events, problem = _events_value(array, protect, from_json=True)
        return ParsedAnswer(events=events, well_formed=problem is None, problem=problem)
    s = _known_wrappers(text, rules, "events")
    if not s:
        return ParsedAnswer(problem="empty")
    if _NONE_LABEL.match(clean_label(s)):
        return ParsedAnswer(events=(), well_formed=True)
    if _REFUSAL.match(_lower_ascii(s)):
        return ParsedAnswer(problem="refusal")
    items = _split_items(s, protect, scene=False)
    labels, all_labels = _event_labels(items)
    if all_labels and items:
        return ParsedAnswer(events=tuple(labels), well_formed=True)
    tagged = [lb for lb in _labelled(s) if lb.field == "events"]
    if tagged:
        events, why = _events_value(tagged[-1].value, protect, from_json=False)
        return ParsedAnswer(events=events, problem=_problems(why, "extra text"))
    m = _LABEL_PREFIX.match(s)
    if m:
        events, why = _events_value(m.group("rest"), protect, from_json=False)
        if events is not None:
            return ParsedAnswer(events=events, problem=_problems("unexpected prefix", why))
    from_sentence = _events_pattern(s, protect)
    if from_sentence:
        return ParsedAnswer(events=tuple(from_sentence), problem="events are not a list")
    return ParsedAnswer(problem="no event list")


# --------------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------------


def parse_answer(text: str | None, task: str, mode: str, family: str = "generic", *,
                 labels: Iterable[str] = ()) -> ParsedAnswer:
    """Parse one model answer.

    ``task``: asr/asc/at for ``independent`` (only that field is filled); ignored for
    ``joint``/``cot`` (all three fields). ``family``: a family of ``families.yaml`` (unknown ->
    generic). ``labels``: the suite's label texts; those containing " and " / " or " are
    never split (the benchmark's own are in :data:`JOINED_LABELS`).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    if mode == "independent" and task not in TASKS:
        raise ValueError(f"unknown task {task!r} for independent mode "
                         f"(tasks: {', '.join(TASKS)})")
    if text is None or not str(text).strip():
        return ParsedAnswer(problem="empty")
    rules = family_rules(family)
    protect = _dedupe([*JOINED_LABELS, *(lb for lb in labels if re.search(
        r"\s(?:and|or|&)\s|,", lb))])
    raw = _preclean(str(text), rules, keep_think=mode == "cot")
    if mode != "cot":
        tags = _ANSWER_TAG.findall(raw)
        if tags and tags[-1].strip():
            raw = tags[-1].strip()
    if not raw:
        return ParsedAnswer(problem="empty")
    if mode == "joint":
        return _parse_joint(raw, rules, protect)
    if mode == "cot":
        return _parse_cot(raw, rules, protect)
    if task == "asr":
        return _parse_asr(raw, rules)
    if task == "asc":
        return _parse_asc(raw, rules, protect)
    return _parse_at(raw, rules, protect)


def format_compliance(parsed: Iterable[ParsedAnswer]) -> float:
    """Percentage of well-formed answers (NaN for no answers)."""
    items = list(parsed)
    if not items:
        return math.nan
    return 100.0 * sum(1 for p in items if p.well_formed) / len(items)
