"""JASCO ("What Are They Doing") LLM-judge verdicts: parsing, scores and agreement.

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
* A row's score is the rating when the orientation is G, else 0. Best-Mean is the mean over
  clips (``groupby("id")``) of the max over the clip's rows. Modality dependence is the
  count of A, S, G each divided by the count of A + S + G (N and ``?`` excluded).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

ORIENTATIONS = ("audio", "speech", "both", "neither")
DEPENDENCE_LABELS = ("audio", "speech", "both")


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


def _join(*problems: str | None) -> str | None:
    """Join the non-empty problem notes with '; '."""
    kept = [p for p in problems if p]
    return "; ".join(kept) if kept else None


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
        problem=_join(rating_problem, orientation_problem),
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
        problem=_join(*rating_problems, note),
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
        problem=_join(r_problem, o_problem),
    )


# --------------------------------------------------------------------------- scores


def effective_score(verdict: Verdict, faithful: bool) -> float | None:
    """Row score: the rating when the orientation is "both", else 0 (upstream rule).

    Faithful: None only when upstream would have crashed (no rating ever seen) on a "both"
    row; an unresolved orientation counts as not "both" (0). Strict: None unless parsed_ok.
    """
    if not faithful and not verdict.parsed_ok:
        return None
    if verdict.orientation != "both":
        return 0.0
    return None if verdict.rating is None else float(verdict.rating)


def best_mean_detail(scores: pd.DataFrame) -> tuple[float, int]:
    """(Best-Mean, number of clips excluded because all their scores are None/NaN)."""
    missing = {"clip_id", "prompt_id", "score"} - set(scores.columns)
    if missing:
        raise ValueError(f"scores lacks columns: {sorted(missing)}")
    values = pd.to_numeric(scores["score"], errors="coerce")
    best = values.groupby(scores["clip_id"]).max()  # NaN skipped; all-NaN clip -> NaN
    excluded = int(best.isna().sum())
    kept = best.dropna()
    return (float(kept.mean()) if len(kept) else math.nan), excluded


def best_mean(scores: pd.DataFrame) -> float:
    """Mean over clips of the best score among the clip's prompts (one judge)."""
    return best_mean_detail(scores)[0]


def panel_best_mean(per_judge: Mapping[str, float]) -> float:
    """Mean of the per-judge Best-Means."""
    if not per_judge:
        raise ValueError("no judges")
    return float(np.mean([float(v) for v in per_judge.values()]))


def modality_dependence(verdicts: Iterable[Verdict], only_parsed: bool = True) -> dict[str, float]:
    """Shares of audio / speech / both among responses with one of those orientations.

    "neither" and missing orientations are excluded. ``only_parsed`` (default) also drops
    verdicts with ``parsed_ok`` False; False mirrors upstream, which counts every row's
    orientation whatever its rating. NaN shares when nothing is left.
    """
    counts = dict.fromkeys(DEPENDENCE_LABELS, 0)
    for v in verdicts:
        if only_parsed and not v.parsed_ok:
            continue
        if v.orientation in counts:
            counts[v.orientation] += 1
    total = sum(counts.values())
    return {k: (c / total if total else math.nan) for k, c in counts.items()}


# --------------------------------------------------------------------------- agreement


def _rating_or_none(x: Verdict | float | int | None) -> float | None:
    """A parsed rating, or None for unparsed verdicts / missing values."""
    if isinstance(x, Verdict):
        return float(x.rating) if x.parsed_ok and x.rating is not None else None
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def cohen_kappa(
    a: Sequence[Verdict | float | int | None],
    b: Sequence[Verdict | float | int | None],
    weights: str | None = None,
) -> float:
    """Cohen's kappa between two judges' ratings on the items both parsed (sklearn)."""
    if len(a) != len(b):
        raise ValueError("judges rated different numbers of items")
    ra, rb = [_rating_or_none(x) for x in a], [_rating_or_none(y) for y in b]
    pairs = [(x, y) for x, y in zip(ra, rb, strict=True) if x is not None and y is not None]
    if not pairs:
        return math.nan
    ya, yb = zip(*pairs, strict=True)
    return float(cohen_kappa_score(ya, yb, labels=[0.0, 1.0, 2.0], weights=weights))


def rating_matrix(per_judge: Mapping[str, Sequence[Verdict]]) -> np.ndarray:
    """Judges x items matrix of parsed ratings, NaN where a verdict did not parse."""
    rows = [[_rating_or_none(v) for v in verdicts] for verdicts in per_judge.values()]
    if len({len(r) for r in rows}) > 1:
        raise ValueError("judges rated different numbers of items")
    return np.array([[math.nan if v is None else v for v in r] for r in rows], dtype=float)


def krippendorff_alpha(
    matrix: np.ndarray | Sequence[Sequence[float]], level: str = "ordinal"
) -> float:
    """Krippendorff's alpha over a judges x items matrix (NaN = missing)."""
    data = np.asarray(matrix, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        raise ValueError("need a judges x items matrix with at least two judges")
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def parse_failure_rate(verdicts: Iterable[Verdict]) -> float:
    """Share of verdicts with parsed_ok False (NaN for no verdicts)."""
    flags = [not v.parsed_ok for v in verdicts]
    return sum(flags) / len(flags) if flags else math.nan


# --------------------------------------------------------------------------- panels

PARSING_MODES = ("faithful", "strict")
JUDGED, NO_ANSWER, JUDGE_FAILED = "judged", "no_answer", "judge_failed"


def score_judgements(records: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """One row per judgement record with both parsing modes' verdicts and row scores.

    ``records`` come from judge jobs (one file per judge, system and run, in item order).
    Faithful parsing runs in that order, so a response without a rating line takes the
    previous *response's* rating (flagged ``carried_over``); lost rows (failed judge call)
    and unanswered rows are never a source of carry-over. A failed answer scores 0 in both
    modes (the system gave nothing to rate); a failed judge call scores nothing (lost).
    """
    rows = []
    previous: dict[tuple, Verdict] = {}
    for rec in records:
        key = (rec["judge"], rec["model"], rec["run"])
        status = rec["status"]
        row: dict[str, object] = {k: rec[k] for k in
                                  ("judge", "model", "run", "item_id", "clip_id", "prompt_id")}
        row["status"] = status
        if status == JUDGED:
            faithful = parse_verdict_faithful(rec.get("judge_output"), previous.get(key))
            called = faithful.needs_orientation_call and rec.get("orientation_output") is not None
            if called:
                faithful = apply_orientation_call(faithful, rec.get("orientation_output"))
            previous[key] = faithful
            strict = parse_verdict_strict(rec.get("judge_output"))
            row.update(_verdict_columns("faithful", faithful, effective_score(faithful, True)))
            row.update(_verdict_columns("strict", strict, effective_score(strict, False)))
            row["carried_over"] = faithful.carried_over
            row["orientation_call"] = called
        else:
            score = 0.0 if status == NO_ANSWER else None
            for mode in PARSING_MODES:
                row.update({f"{mode}_rating": None, f"{mode}_orientation": None,
                            f"{mode}_ok": None, f"{mode}_problem": None,
                            f"{mode}_score": score})
            row["carried_over"] = False
            row["orientation_call"] = False
        rows.append(row)
    return pd.DataFrame(rows)


def _verdict_columns(mode: str, verdict: Verdict, score: float | None) -> dict[str, object]:
    return {f"{mode}_rating": verdict.rating, f"{mode}_orientation": verdict.orientation,
            f"{mode}_ok": verdict.parsed_ok, f"{mode}_problem": verdict.problem,
            f"{mode}_score": score}


def _as_verdicts(frame: pd.DataFrame, mode: str) -> list[Verdict]:
    judged = frame[frame["status"] == JUDGED]
    return [Verdict(rating=None if pd.isna(r) else int(r),
                    orientation=None if pd.isna(o) else str(o), parsed_ok=bool(ok))
            for r, o, ok in zip(judged[f"{mode}_rating"], judged[f"{mode}_orientation"],
                                judged[f"{mode}_ok"], strict=True)]


def best_mean_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Best-Mean per (mode, model, judge, run), with the counts behind it."""
    rows = []
    for (model, judge, run), frame in verdicts.groupby(["model", "judge", "run"], sort=True):
        for mode in PARSING_MODES:
            scores = frame.rename(columns={f"{mode}_score": "score"})
            value, excluded = best_mean_detail(scores[["clip_id", "prompt_id", "score"]])
            rows.append({
                "mode": mode, "model": model, "judge": judge, "run": run,
                "best_mean": value, "n_clips": int(frame["clip_id"].nunique()),
                "n_clips_excluded": excluded, "n_items": len(frame),
                "n_scored": int(frame[f"{mode}_score"].notna().sum()),
                "n_lost": int((frame["status"] == JUDGE_FAILED).sum()),
                "n_no_answer": int((frame["status"] == NO_ANSWER).sum()),
                "n_unparsed": int(((frame["status"] == JUDGED)
                                   & ~frame[f"{mode}_ok"].fillna(False).astype(bool)).sum()),
                "n_carried_over": int(frame["carried_over"].sum()) if mode == "faithful" else 0,
            })
    return pd.DataFrame(rows)


def dependence_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Modality-dependence shares per (mode, model, judge), pooled over runs.

    Faithful counts every judged row's orientation as upstream does; strict only rows whose
    verdict parsed.
    """
    rows = []
    for (model, judge), frame in verdicts.groupby(["model", "judge"], sort=True):
        for mode in PARSING_MODES:
            shares = modality_dependence(_as_verdicts(frame, mode),
                                         only_parsed=(mode == "strict"))
            counted = frame[(frame["status"] == JUDGED)
                            & frame[f"{mode}_orientation"].isin(DEPENDENCE_LABELS)]
            if mode == "strict":
                counted = counted[counted["strict_ok"].astype(bool)]
            rows.append({"mode": mode, "model": model, "judge": judge, "n": len(counted),
                         **shares})
    return pd.DataFrame(rows)


def judge_health_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per judge: items, lost calls, parse failures (strict), carry-overs and second calls."""
    rows = []
    for judge, frame in verdicts.groupby("judge", sort=True):
        judged = frame[frame["status"] == JUDGED]
        rows.append({
            "judge": judge, "n_items": len(frame), "n_judged": len(judged),
            "n_lost": int((frame["status"] == JUDGE_FAILED).sum()),
            "n_no_answer": int((frame["status"] == NO_ANSWER).sum()),
            "parse_failure_rate_strict": parse_failure_rate(_as_verdicts(frame, "strict")),
            "parse_failure_rate_faithful": parse_failure_rate(_as_verdicts(frame, "faithful")),
            "n_carried_over": int(frame["carried_over"].sum()),
            "n_orientation_calls": int(frame["orientation_call"].sum()),
        })
    return pd.DataFrame(rows)


def _rating_grid(frame: pd.DataFrame, mode: str, judges: Sequence[str]) -> pd.DataFrame:
    """Items x judges ratings read by ``mode``; NaN where missing.

    Strict: parsed verdicts only. Faithful: any rating the upstream parser read from the
    response itself (carried-over ratings are not the judge's and are left out).
    """
    judged = frame[frame["status"] == JUDGED]
    ratings = judged.pivot_table(index="_key", columns="judge", values=f"{mode}_rating",
                                 aggfunc="first")
    if mode == "strict":
        usable = judged.pivot_table(index="_key", columns="judge", values="strict_ok",
                                    aggfunc="first").fillna(False).astype(bool)
    else:
        usable = ~judged.pivot_table(index="_key", columns="judge", values="carried_over",
                                     aggfunc="first").fillna(True).astype(bool)
    return ratings.where(usable).reindex(columns=list(judges))


def agreement_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa (unweighted and linear) per judge pair and Krippendorff's alpha
    (ordinal) over the panel, per parsing mode, per model and over all models.

    Items are (model, run, item); an item a judge lost or whose rating the mode cannot read
    is missing for that judge (kappa uses the items both rated, alpha handles missing values).
    """
    judges = sorted(verdicts["judge"].unique())
    keyed = verdicts.assign(_key=list(zip(verdicts["model"], verdicts["run"],
                                          verdicts["item_id"], strict=True)))
    rows = []
    scopes = [("all", keyed)] + [(m, f) for m, f in keyed.groupby("model", sort=True)]
    for mode in PARSING_MODES:
        for scope, frame in scopes:
            ratings = _rating_grid(frame, mode, judges)
            for i, a in enumerate(judges):
                for b in judges[i + 1:]:
                    both = ratings[[a, b]].dropna()
                    pair = (list(both[a]), list(both[b]))
                    rows.append({
                        "parsing": mode, "scope": scope, "statistic": "cohen_kappa",
                        "judges": f"{a} | {b}", "n": len(both),
                        "value": cohen_kappa(*pair) if len(both) else math.nan,
                        "value_linear": cohen_kappa(*pair, "linear") if len(both) else math.nan,
                    })
            if len(judges) >= 2:
                matrix = ratings.T.to_numpy(dtype=float)
                usable = int((np.sum(~np.isnan(matrix), axis=0) >= 2).sum())
                value = krippendorff_alpha(matrix) if usable and _varies(matrix) else math.nan
                rows.append({"parsing": mode, "scope": scope,
                             "statistic": "krippendorff_alpha_ordinal",
                             "judges": " | ".join(judges), "n": usable, "value": value,
                             "value_linear": math.nan})
    return pd.DataFrame(rows, columns=["parsing", "scope", "statistic", "judges", "n", "value",
                                       "value_linear"])


def _varies(matrix: np.ndarray) -> bool:
    """Krippendorff's alpha needs more than one distinct value among the pairable units."""
    values = matrix[:, np.sum(~np.isnan(matrix), axis=0) >= 2]
    return np.unique(values[~np.isnan(values)]).size > 1
