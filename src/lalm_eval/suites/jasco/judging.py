"""JASCO ("What Are They Doing") LLM-judge scores and agreement from parsed verdicts.

Verdicts (rating, orientation; faithful and strict parsing) come from
:mod:`lalm_eval.answers.verdicts`. Upstream facts (BenoitWang/What_Are_They_Doing,
``evaluation/eval.py``, read at the stored commit 78b25f64642d6eb29790968450970b6e5544f9c0):

* A row's score is the rating when the orientation is G, else 0. Best-Mean is the mean over
  clips (``groupby("id")``) of the max over the clip's rows. Modality dependence is the
  count of A, S, G each divided by the count of A + S + G (N and ``?`` excluded).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from lalm_eval.answers.verdicts import (
    Verdict,
    apply_orientation_call,
    parse_verdict_faithful,
    parse_verdict_strict,
)

DEPENDENCE_LABELS = ("audio", "speech", "both")


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
