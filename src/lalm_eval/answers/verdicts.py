"""JASCO ("What Are They Doing") judge verdicts: rating and orientation from a judge's text.

Upstream facts (BenoitWang/What_Are_They_Doing, ``evaluation/eval.py``; read at the stored
commit 78b25f64642d6eb29790968450970b6e5544f9c0, the only stored version of that file, and
``README.md``):

* The judge's answer has a line ``Rating: (int)`` and a line
  ``Orientation: Audio-Oriented/Speech-Oriented/Good/Neither``. The code's prompt calls the
  "both" label **Good**; the README's copy of the template calls it **Both**.
* Orientation is read by substring tests, in this order (first hit wins, case-sensitive):
  ``Orientation: Neither`` / ``Orientation: \\nNeither`` -> N;
  ``Orientation: Audio-Oriented`` / ``Orientation: \\nAudio-Oriented`` -> A;
  ``Orientation: Speech-Oriented`` / ``Orientation: \\nSpeech-Oriented`` -> S;
  ``Orientation: Good`` / ``Orientation: \\nGood`` / ``Orientation: Both`` -> G
  (``Orientation: \\nBoth`` is *not* recognised). Otherwise the text after the last
  ``Explanation2: `` goes to a second judge call whose output is searched for ``Neither``,
  ``Audio-Oriented``, ``Speech-Oriented``, ``Good`` in that order, else ``?``.
* Rating: every line containing ``Rating: `` (with the space) is searched for "0", then
  "1", then "2" (no digit -> 0); the last such line wins. With no such line the variable
  keeps the previous row's value (a bug; on the very first row it would raise).

:func:`parse_verdict_faithful` (with :func:`orientation_call_input` and
:func:`apply_orientation_call` for the second call) reproduces that;
:func:`parse_verdict_strict` records every missing, empty or contradictory field as a
failure. Row scores, Best-Mean, modality dependence and agreement are in
:mod:`lalm_eval.suites.jasco.judging`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from lalm_eval.answers.text import join_problems

__all__ = [
    "ORIENTATIONS",
    "Verdict",
    "apply_orientation_call",
    "orientation_call_input",
    "parse_verdict_faithful",
    "parse_verdict_strict",
]

ORIENTATIONS = ("audio", "speech", "both", "neither")


@dataclass(frozen=True)
class Verdict:
    """One judge response, parsed.

    ``parsed_ok`` is True only when rating and orientation were both read from this response
    (in faithful mode a post-processing call's orientation also counts). ``carried_over``
    marks a faithful rating copied from the previous response (upstream bug).
    """

    rating: int | None
    orientation: str | None
    parsed_ok: bool
    problem: str | None = None
    needs_orientation_call: bool = False
    carried_over: bool = False


# --------------------------------------------------------------------------- faithful


_FAITHFUL_ORIENTATION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("neither", ("Orientation: Neither", "Orientation: \nNeither")),
    ("audio", ("Orientation: Audio-Oriented", "Orientation: \nAudio-Oriented")),
    ("speech", ("Orientation: Speech-Oriented", "Orientation: \nSpeech-Oriented")),
    ("both", ("Orientation: Good", "Orientation: \nGood", "Orientation: Both")),
)

_POSTPROCESS_ORIENTATION: tuple[tuple[str, str], ...] = (
    ("neither", "Neither"),
    ("audio", "Audio-Oriented"),
    ("speech", "Speech-Oriented"),
    ("both", "Good"),
)


def parse_verdict_faithful(text: str | None, previous: Verdict | None) -> Verdict:
    """Parse like upstream ``stats()``, including the rating carry-over bug.

    A response with no ``Rating: `` line takes ``previous.rating`` (``carried_over`` True,
    ``parsed_ok`` False). With no previous verdict upstream would crash; here the rating is
    None. An unrecognised orientation gives ``orientation=None`` and
    ``needs_orientation_call=True``; resolve it with :func:`apply_orientation_call`.
    """
    text = "" if text is None else str(text)
    orientation: str | None = None
    for label, needles in _FAITHFUL_ORIENTATION:
        if any(n in text for n in needles):
            orientation = label
            break
    needs_call = orientation is None

    rating: int | None = None
    rating_problem: str | None = None
    found_line = False
    defaulted = False
    for line in text.split("\n"):
        if "Rating: " in line:
            found_line = True
            defaulted = False
            if "0" in line:
                rating = 0
            elif "1" in line:
                rating = 1
            elif "2" in line:
                rating = 2
            else:
                rating, defaulted = 0, True
    carried = False
    if not found_line:
        if previous is not None:
            rating = previous.rating
            carried = True
            rating_problem = "no rating line: rating carried over from previous response"
        else:
            rating_problem = "no rating line and no previous response (upstream would crash)"
    elif defaulted:
        rating_problem = "rating line without 0/1/2: upstream default 0"

    orientation_problem = (
        "orientation not recognised: needs post-processing call" if needs_call else None
    )
    return Verdict(
        rating=rating,
        orientation=orientation,
        parsed_ok=rating_problem is None and not needs_call,
        problem=join_problems(rating_problem, orientation_problem),
        needs_orientation_call=needs_call,
        carried_over=carried,
    )


def orientation_call_input(text: str | None) -> str:
    """The text upstream sends to the post-processing call: after the last 'Explanation2: '."""
    return ("" if text is None else str(text)).split("Explanation2: ")[-1]


def apply_orientation_call(verdict: Verdict, call_output: str | None) -> Verdict:
    """Fill a faithful verdict's orientation from the post-processing call's output.

    Upstream searches the output for Neither, Audio-Oriented, Speech-Oriented, Good (in that
    order); nothing found is upstream's ``?``, here orientation None (never "both").
    """
    if not verdict.needs_orientation_call:
        return verdict
    out = "" if call_output is None else str(call_output)
    orientation = next((lab for lab, needle in _POSTPROCESS_ORIENTATION if needle in out), None)
    rating_problems = [
        p for p in (verdict.problem or "").split("; ") if p and not p.startswith("orientation")
    ]
    note = (
        "orientation from post-processing call"
        if orientation is not None
        else "orientation unresolved after post-processing call ('?')"
    )
    return replace(
        verdict,
        orientation=orientation,
        needs_orientation_call=False,
        parsed_ok=not rating_problems and orientation is not None,
        problem=join_problems(*rating_problems, note),
    )


# --------------------------------------------------------------------------- strict


_RATING_LINE = re.compile(r"^[\s*#_>-]*rating[\s*_]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_ORIENT_LINE = re.compile(r"^[\s*#_>-]*orientation[\s*_]*:(.*)$", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ORIENT_WORD = re.compile(
    r"\b(audio(?:-oriented)?|speech(?:-oriented)?|both(?:-oriented)?|good|neither)\b",
    re.IGNORECASE,
)


def _orientation_label(word: str) -> str:
    """Map an orientation spelling to audio / speech / both / neither."""
    w = word.lower()
    if w.startswith("audio"):
        return "audio"
    if w.startswith("speech"):
        return "speech"
    if w.startswith("neither"):
        return "neither"
    return "both"  # both, both-oriented, good


def _strict_rating(text: str) -> tuple[int | None, str | None]:
    """Rating from all 'Rating:' lines; (None, reason) when missing/empty/contradictory."""
    values = [v for line in _RATING_LINE.findall(text) for v in _NUMBER.findall(line)]
    if not _RATING_LINE.search(text):
        return None, "missing rating"
    if not values:
        return None, "empty rating"
    distinct = sorted(set(values), key=float)
    if len(distinct) > 1:
        return None, f"contradictory rating: {', '.join(distinct)}"
    if distinct[0] not in ("0", "1", "2"):
        return None, f"rating out of range: {distinct[0]}"
    return int(distinct[0]), None


def _strict_orientation(text: str) -> tuple[str | None, str | None]:
    """Orientation from all 'Orientation:' lines (an empty line takes the next non-empty)."""
    matches = list(_ORIENT_LINE.finditer(text))
    if not matches:
        return None, "missing orientation"
    labels: set[str] = set()
    for m in matches:
        value = m.group(1).strip(" \t*_`.")
        if not value:
            rest = [ln.strip(" \t*_`.") for ln in text[m.end() :].split("\n")]
            value = next((ln for ln in rest if ln), "")
        labels.update(_orientation_label(w) for w in _ORIENT_WORD.findall(value))
    if not labels:
        return None, "empty orientation"
    if len(labels) > 1:
        return None, f"contradictory orientation: {', '.join(sorted(labels))}"
    return labels.pop(), None


def parse_verdict_strict(text: str | None) -> Verdict:
    """Parse a verdict with every missing, empty or contradictory field a recorded failure.

    Accepts 'Rating:' / 'Orientation:' in any case, with markdown emphasis, and the spellings
    Audio(-Oriented), Speech(-Oriented), Both(-Oriented), Good, Neither. The orientation value
    may sit on the next line. Nothing is carried over and no second call is requested; the
    fields that did parse are kept for diagnostics.
    """
    text = "" if text is None else str(text)
    if not text.strip():
        return Verdict(None, None, parsed_ok=False, problem="empty response")
    rating, r_problem = _strict_rating(text)
    orientation, o_problem = _strict_orientation(text)
    return Verdict(
        rating=rating,
        orientation=orientation,
        parsed_ok=r_problem is None and o_problem is None,
        problem=join_problems(r_problem, o_problem),
    )
