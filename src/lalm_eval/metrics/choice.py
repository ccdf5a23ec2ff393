"""Multiple-choice answers scored with the MMAU / MMAR token rule, and their accuracy tables.

The rule (same in MMAU ``evaluation.py`` and MMAR ``code/evaluation.py``): a text is reduced
to the set of its lower-cased word tokens (``\\b\\w+\\b``, so punctuation only separates
tokens, ``_`` belongs to a word, ``men's`` gives ``men`` and ``s``). A prediction is correct
when it has at least one token, contains every token of the answer, and contains no token of
a wrong choice, where a wrong choice's tokens that also occur in the answer do not count and
a choice with exactly the answer's token set is not a wrong choice. Nothing else is
normalised. An empty choice (MMAR has a few) has no tokens, so it forbids nothing.

Two scoring modes:

- ``faithful``: as the official scripts, an item without a prediction is skipped (not in the
  denominator). A failed model call has no prediction either, so it is skipped too.
- ``strict``: every item counts; a missing or failed prediction is wrong.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

MODES = ("faithful", "strict")
#: status of one item's prediction
ANSWERED, MISSING, FAILED = "answered", "missing", "failed"
#: item-table columns carried into the per-item rows when present
BREAKDOWN_COLUMNS = (
    "benchmark", "task", "difficulty", "modality", "category", "sub_category", "language",
)
ACCURACY_COLUMNS = (
    "breakdown", "value", "n", "n_correct", "accuracy", "n_skipped", "n_missing", "n_failed",
)
OVERALL = "overall"

_TOKEN = re.compile(r"\b\w+\b")


def answer_tokens(text: str) -> set[str]:
    """The set of lower-cased word tokens (``\\b\\w+\\b``) of ``text``."""
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}: {text!r}")
    return set(_TOKEN.findall(text.lower()))


def match_choice(prediction: str, answer: str, choices: Sequence[str]) -> bool:
    """True when ``prediction`` picks ``answer`` among ``choices`` by the official rule."""
    predicted = answer_tokens(prediction)
    if not predicted:
        return False
    expected = answer_tokens(answer)
    wrong: set[str] = set()
    for choice in choices:
        tokens = answer_tokens(choice)
        if tokens != expected:
            wrong |= tokens - expected
    return expected <= predicted and predicted.isdisjoint(wrong)


def predictions_from_records(records: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """item_id -> output text of inference records; None where the record has an error.

    Records without ``item_id`` or with a duplicate one are refused.
    """
    out: dict[str, str | None] = {}
    for n, record in enumerate(records):
        item_id = record.get("item_id")
        if not item_id:
            raise ValueError(f"prediction record {n}: no item_id")
        if item_id in out:
            raise ValueError(f"prediction record {n}: duplicate item_id {item_id!r}")
        text = record.get("output_text")
        if record.get("error") or text is None:
            out[str(item_id)] = None
        elif not isinstance(text, str):
            raise ValueError(f"prediction record {item_id!r}: output_text is "
                             f"{type(text).__name__}, not a string")
        else:
            out[str(item_id)] = text
    return out


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r} (modes: {', '.join(MODES)})")


def _choices_of(item_id: str, value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise ValueError(f"item {item_id!r}: choices must be a list of strings, got {value!r}")
    return list(value)


def score_choice(
    items: pd.DataFrame,
    predictions: Mapping[str, str | None],
    mode: str,
    *,
    breakdown: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per item: ``item_id``, breakdown columns, ``status``, ``counted``, ``correct``,
    ``prediction``.

    ``items`` needs ``item_id``, ``answer`` and ``choices`` (list of strings);
    ``predictions`` maps item_id to the model's text, or None when the call failed (an item
    absent from it is missing). ``breakdown`` names the item columns to keep (default: those
    of :data:`BREAKDOWN_COLUMNS` present). ``correct`` is None for items not counted
    (faithful mode: missing and failed ones).
    """
    _check_mode(mode)
    for column in ("item_id", "answer", "choices"):
        if column not in items.columns:
            raise ValueError(f"item table lacks column {column!r}")
    keep = list(breakdown) if breakdown is not None else [
        c for c in BREAKDOWN_COLUMNS if c in items.columns]
    absent = [c for c in keep if c not in items.columns]
    if absent:
        raise ValueError(f"item table lacks breakdown column(s) {absent}")
    ids = [str(x) for x in items["item_id"]]
    dupes = sorted(x for x, k in Counter(ids).items() if k > 1)
    if dupes:
        raise ValueError(f"item table has duplicate item_id(s) {dupes[:5]}")
    unknown = sorted(set(predictions) - set(ids))
    if unknown:
        raise ValueError(f"{len(unknown)} prediction(s) for unknown item(s), e.g. {unknown[:5]}")

    rows: list[dict[str, Any]] = []
    for item_id, row in zip(ids, items.to_dict("records"), strict=True):
        choices = _choices_of(item_id, row["choices"])
        if not isinstance(row["answer"], str):
            raise ValueError(f"item {item_id!r}: answer must be a string, got {row['answer']!r}")
        prediction = predictions.get(item_id)
        if item_id not in predictions:
            status = MISSING
        elif prediction is None:
            status = FAILED
        elif isinstance(prediction, str):
            status = ANSWERED
        else:
            raise ValueError(f"item {item_id!r}: prediction must be a string or None, got "
                             f"{type(prediction).__name__}")
        counted = status == ANSWERED or mode == "strict"
        correct: bool | None
        if status == ANSWERED:
            correct = match_choice(prediction, row["answer"], choices)
        else:
            correct = False if counted else None
        rows.append({"item_id": item_id, **{c: row[c] for c in keep}, "status": status,
                     "counted": counted, "correct": correct, "prediction": prediction})
    columns = ["item_id", *keep, "status", "counted", "correct", "prediction"]
    return pd.DataFrame(rows, columns=columns)


def _accuracy_row(breakdown: str, value: Any, group: pd.DataFrame) -> dict[str, Any]:
    counted = group[group["counted"].astype(bool)]
    n = len(counted)
    n_correct = int(counted["correct"].astype(bool).sum())
    return {
        "breakdown": breakdown,
        "value": value,
        "n": n,
        "n_correct": n_correct,
        "accuracy": 100.0 * n_correct / n if n else math.nan,
        "n_skipped": int(len(group) - n),
        "n_missing": int((group["status"] == MISSING).sum()),
        "n_failed": int((group["status"] == FAILED).sum()),
    }


def choice_accuracy(per_item: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Accuracy (%) overall and per value of each ``by`` column of :func:`score_choice` rows.

    Columns: ``breakdown`` (``overall`` or the column name), ``value`` (``all`` or the
    column value; values in sorted order), ``n`` (items counted), ``n_correct``,
    ``accuracy`` (NaN when nothing was counted), ``n_skipped`` (items not counted),
    ``n_missing``, ``n_failed``. An item whose value is an empty string is in no group of
    that column (as the official scripts leave an item without a ``sub-category`` out of
    the sub-category breakdown); it still counts overall.
    """
    for column in ("status", "counted", "correct", *by):
        if column not in per_item.columns:
            raise ValueError(f"per-item table lacks column {column!r}")
    rows = [_accuracy_row(OVERALL, "all", per_item)]
    for column in by:
        values = per_item[column]
        if values.isna().any():
            missing = per_item.loc[values.isna(), "item_id"].tolist()[:5]
            raise ValueError(f"breakdown column {column!r} is empty for item(s) {missing}")
        for value in sorted(values.unique(), key=str):
            if value == "":
                continue
            rows.append(_accuracy_row(column, value, per_item[values == value]))
    return pd.DataFrame(rows, columns=list(ACCURACY_COLUMNS))
