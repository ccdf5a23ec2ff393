"""The XARES suite's items table and the training mixture written from it (docs/xares.md).

Items table columns: ``task, item_id, audio, target, split, recording``; ``split`` is
``train``, ``valid`` or ``test``; no ``recording`` may be in both train/valid and test.
The mixture is the training set (docs/training.md) every system of the suite trains on: the
train rows of every task (valid rows as the held-out rows), with the task's fixed
instruction as the prompt; with ``mixture_size`` the rows are drawn per task in proportion
to the tasks' weights (a null weight: the task's share of the train rows, as upstream
weights datasets by their share of shards).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lalm_eval.jsonl import write_jsonl

COLUMNS = ("task", "item_id", "audio", "target", "split", "recording")
SPLITS = ("train", "valid", "test")


class ItemsError(ValueError):
    """An items table that breaks the contract; the message names file, row and column."""


@dataclass(frozen=True)
class ItemRow:
    task: str
    item_id: str
    audio: Path
    target: str
    split: str
    recording: str


def read_items(path: str | Path, tasks: Mapping[str, Any] | None = None) -> list[ItemRow]:
    """Every row of an items table, checked (tasks known when ``tasks`` is given)."""
    path = Path(path)
    if not path.is_file():
        raise ItemsError(f"items table {path} not found")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ItemsError(f"items table {path}: missing column(s) {missing}")
    rows: list[ItemRow] = []
    seen: set[str] = set()
    for number, record in enumerate(table.to_dict("records"), start=1):
        where = f"items table {path}: row {number} (item_id={record['item_id']!r})"
        for column in ("task", "item_id", "audio", "split", "recording"):
            if not record[column]:
                raise ItemsError(f"{where}, column {column!r}: must not be empty")
        if record["split"] not in SPLITS:
            raise ItemsError(f"{where}, column 'split': {record['split']!r} is not one of "
                             f"{SPLITS}")
        if tasks is not None and record["task"] not in tasks:
            raise ItemsError(f"{where}, column 'task': {record['task']!r} is not a task of "
                             f"the task set ({', '.join(tasks)})")
        if record["item_id"] in seen:
            raise ItemsError(f"{where}: item_id repeats")
        seen.add(record["item_id"])
        audio = Path(record["audio"])
        audio = audio if audio.is_absolute() else path.parent / audio
        rows.append(ItemRow(record["task"], record["item_id"], audio, record["target"],
                            record["split"], record["recording"]))
    leaks = ({r.recording for r in rows if r.split != "test"}
             & {r.recording for r in rows if r.split == "test"})
    if leaks:
        raise ItemsError(f"items table {path}: recording(s) in both training and test: "
                         f"{sorted(leaks)[:5]}")
    return rows


def mixture_rows(rows: list[ItemRow], tasks: Mapping[str, Any], size: int | None,
                 seed: int) -> list[dict[str, Any]]:
    """The training set rows (train and held-out) of a suite's mixture."""
    train = [r for r in rows if r.split == "train"]
    out: list[dict[str, Any]] = []
    if size is None:
        chosen = train
    else:
        by_task: dict[str, list[ItemRow]] = {}
        for row in train:
            by_task.setdefault(row.task, []).append(row)
        weights = np.array([tasks[t].weight if tasks[t].weight is not None else len(by_task[t])
                            for t in by_task], dtype=float)
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(size, weights / weights.sum())
        chosen = []
        for pool, count in zip(by_task.values(), counts, strict=True):
            picks = rng.choice(len(pool), size=int(count), replace=count > len(pool))
            chosen += [pool[i] for i in sorted(picks)]
    for index, row in enumerate(chosen):
        out.append({"item_id": f"{row.item_id}#{index}" if size is not None else row.item_id,
                    "audio": str(row.audio.resolve()), "prompt": tasks[row.task].instruction,
                    "target": row.target, "split": "train"})
    out += [{"item_id": r.item_id, "audio": str(r.audio.resolve()),
             "prompt": tasks[r.task].instruction, "target": r.target, "split": "heldout"}
            for r in rows if r.split == "valid"]
    return out


def write_mixture(items: str | Path, task_set: str, out: str | Path, size: int | None,
                  seed: int) -> dict[str, int]:
    """Write the mixture training set; returns rows per task (train) for the log."""
    from lalm_eval.suites.xares.tasks import load_task_set

    tasks = load_task_set(task_set).tasks
    rows = read_items(items, tasks)
    mixture = mixture_rows(rows, tasks, size, seed)
    out = Path(out)
    write_jsonl(out, mixture)
    counts: dict[str, int] = {}
    by_id = {r.item_id: r.task for r in rows}
    for r in mixture:
        if r["split"] == "train":
            task = by_id[r["item_id"].split("#")[0]]
            counts[task] = counts.get(task, 0) + 1
    return counts
