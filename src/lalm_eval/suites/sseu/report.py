"""SSEU-Bench outputs: Table 1, Table 2, the CoT comparison, format compliance, figures and
the results JSON, all views of the long-format score rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lalm_eval.reports import figures, tables
from lalm_eval.reports.provenance import results_json
from lalm_eval.reports.tables import metric_label

TASK_METRICS = {"asr": "wer", "asc": "macc", "at": "map"}


def build_sseu_report(
    score_files: Sequence[str | Path], out_dir: str | Path, *, suite: str,
    config_slice: dict[str, Any], seeds: dict[str, Any], prompt_hashes: dict[str, str],
    scorer: dict[str, Any],
) -> list[Path]:
    """Write every table (CSV/MD/TeX), figure (PNG/SVG) and ``results.json``; return paths."""
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    scores = pd.concat([pd.read_csv(p) for p in score_files], ignore_index=True)
    scores.to_csv(out / "scores.csv", index=False)
    written: list[Path] = [out / "scores.csv"]
    modes = set(scores["mode"])
    written += tables.write_table(
        tables.table1(scores, suite=suite), out / "tables" / "table1",
        "SSEU-Bench Table 1: WER, mACC and mAP (%) per SNR (mean ± std over runs)")
    if {"independent", "joint"} <= modes:
        written += tables.write_table(
            tables.table2_independent_vs_joint(scores, suite=suite),
            out / "tables" / "table2", "Table 2: independent vs joint prompting (avg over SNRs)")
    if "cot" in modes:
        written += tables.write_table(
            tables.table_cot(scores, suite=suite, per_snr=False), out / "tables" / "cot",
            "Chain-of-thought vs independent and joint prompting (avg over SNRs)")
        written += figures.cot_comparison(scores, out / "figures" / "cot_comparison",
                                          suite=suite)
    if (scores["metric"] == "format_compliance").any():
        written += tables.write_table(
            tables.format_compliance_table(scores, suite=suite),
            out / "tables" / "format_compliance",
            "Format compliance (%): answers with the expected shape, per system and SNR")
    for task, metric in TASK_METRICS.items():
        stem = out / "figures" / f"{task}_{metric}"
        if (scores["metric"] == metric).any():
            written += figures.metric_vs_snr(scores, metric, stem, suite=suite, task=task)
        else:  # e.g. only ASR systems, or only +inf selected: say so instead of failing
            written += figures.no_data_figure(
                stem, f"No {metric_label(metric, arrow=False)} scores in this run: no system "
                      f"was run on {task.upper()} at an SNR where it is defined.")
    results_json(out / "results.json", config_slice=config_slice, seeds=seeds,
                 prompt_hashes=prompt_hashes, scorer=scorer,
                 extra={"score_files": [str(p) for p in score_files]})
    written.append(out / "results.json")
    return written
