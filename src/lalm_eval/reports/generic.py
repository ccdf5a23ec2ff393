"""The report every suite kind gets unless it writes its own: the long-format score rows as
one table (mean and std over runs per model, mode, split, task and metric), as a page of
the HTML report, plus the results JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lalm_eval.metrics.stats import mean_std
from lalm_eval.reports.provenance import results_json
from lalm_eval.reports.tables import format_cell, write_table

GROUP = ["model", "mode", "split", "task", "metric"]


def summarise_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, mode, split, task, metric): mean and std over runs, run count."""
    rows = []
    for key, frame in scores.groupby(GROUP, sort=True):
        mean, std = mean_std(frame["value"].to_numpy(dtype=float))
        rows.append({**dict(zip(GROUP, key, strict=True)), "mean": mean, "std": std,
                     "runs": int(frame["run"].nunique()),
                     "n_items": int(frame["n_items"].sum()),
                     "n_failed": int(frame["n_failed"].sum())})
    return pd.DataFrame(rows, columns=[*GROUP, "mean", "std", "runs", "n_items", "n_failed"])


def write_generic_report(suite: str, kind: str, score_files: Sequence[str | Path],
                         out_dir: str | Path, *, params: Mapping[str, Any] | None = None,
                         seed: int = 0) -> dict[str, Any]:
    """Write ``pages/scores.{csv,md,tex,html}``, ``scores.csv`` and ``results.json``."""
    out = Path(out_dir)
    (out / "pages").mkdir(parents=True, exist_ok=True)
    frames = [pd.read_csv(p) for p in score_files]
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["suite", *GROUP, "run", "value", "n_items", "n_failed"])
    scores.to_csv(out / "scores.csv", index=False, lineterminator="\n")
    summary = summarise_scores(scores)
    table = pd.DataFrame({
        "score": [format_cell(m, s if r > 1 else None) for m, s, r in
                  zip(summary["mean"], summary["std"], summary["runs"], strict=True)],
        "runs": summary["runs"], "items": summary["n_items"], "failed": summary["n_failed"],
    }, index=pd.MultiIndex.from_frame(summary[GROUP]) if len(summary) else None)
    write_table(table, out / "pages" / "scores",
                f"{suite} ({kind}): every score, mean ± std over runs", notes=[])
    return results_json(out / "results.json", config_slice=dict(params or {}),
                        seeds={"global": seed}, prompt_hashes={}, scorer={},
                        extra={"suite": suite, "kind": kind, "n_score_rows": len(scores)})
