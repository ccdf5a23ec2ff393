"""Scores of one XARES system in one mode: every task's metric as upstream computes it (and
ours beside it for mAP), with its n and a bootstrap interval over the task's items.

A failed item (no answer) is scored as the empty answer: wrong for accuracy, no labels for
mAP, all words deleted for iWER / iCER; it is counted in ``n_failed``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lalm_eval.suites.xares.data import read_items

#: our corrected mAP beside upstream's (named as ours)
MAP_PRESENT = "map_present"


def _metric_function(metric: str, task: Any):
    from lalm_eval.metrics import xares

    def compute(predictions: Sequence[str], references: Sequence[str]) -> float:
        return float(xares.task_score(metric, list(predictions), list(references), task))

    return compute


def task_rows(name: str, model: str, mode: str, task_name: str, task: Any,
              predictions: list[str], references: list[str], n_failed: int,
              n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Score rows of one task: its metric (and ``map_present`` for mAP tasks)."""
    from lalm_eval.metrics.scores import bootstrap_ci

    metrics = [task.metric] + ([MAP_PRESENT] if task.metric == "map" else [])
    rows = []
    for metric in metrics:
        compute = _metric_function(metric, task)
        value = compute(predictions, references)
        low = high = float("nan")
        if n_boot and len(predictions) > 1:
            low, high = bootstrap_ci(compute, np.array(predictions, dtype=object),
                                     np.array(references, dtype=object), n_boot=n_boot,
                                     seed=seed)
        rows.append({"suite": name, "model": model, "mode": mode, "split": "test", "run": 0,
                     "task": task_name, "metric": metric, "value": value,
                     "n_items": len(predictions), "n_failed": n_failed,
                     "ci_low": low, "ci_high": high, "track": task.track})
    return rows


def score_predictions(name: str, model: str, mode: str, items_path: str,
                      predictions: list[Mapping[str, Any]], task_set: str, n_boot: int,
                      seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(score rows, per-item rows) of one system in one mode over every task."""
    from lalm_eval.suites.xares.tasks import load_task_set

    tasks = load_task_set(task_set).tasks
    test = {r.item_id: r for r in read_items(items_path, tasks) if r.split == "test"}
    answers: dict[str, dict[str, Any]] = {}
    for entry in predictions:
        with open(entry["path"], encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    answers[record["item_id"]] = record
    missing = sorted(set(test) - set(answers))
    if missing:
        raise ValueError(f"{model} {mode}: no prediction for {len(missing)} test item(s), "
                         f"e.g. {missing[:3]}")
    rows: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for task_name, task in tasks.items():
        ids = [i for i, r in test.items() if r.task == task_name]
        if not ids:
            continue
        texts = [answers[i]["output_text"] or "" for i in ids]
        failed = [answers[i]["error"] is not None for i in ids]
        refs = [test[i].target for i in ids]
        rows += task_rows(name, model, mode, task_name, task, texts, refs, sum(failed),
                          n_boot, seed)
        items += [{"item_id": i, "task": task_name, "prediction": t, "reference": r,
                   "failed": f} for i, t, r, f in zip(ids, texts, refs, failed, strict=True)]
    return pd.DataFrame(rows), pd.DataFrame(items)
