"""SSEU-Bench tables as views of long-format score rows, written as CSV, Markdown and LaTeX.

Score rows are ``suite, model, mode, split, run, task, metric, value, n_items, n_failed``
(see docs/architecture.md). Every table cell is the mean over runs with the sample standard
deviation (ddof=1) over runs, formatted by :func:`format_cell`; a missing cell is "–".
Table builders return a DataFrame of display strings whose ``attrs`` carry the notes and the
rule for bolding the best system; :func:`write_table` renders it.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from lalm_eval.mixing import snr_of_split

#: SNR conditions in table/figure order (clean speech first, background only last)
SPLITS: tuple[str, ...] = ("snr+inf", "snr+10", "snr+5", "snr0", "snr-5", "snr-10", "snr-inf")
MODES: tuple[str, ...] = ("independent", "joint", "cot")
TASKS: tuple[str, ...] = ("asr", "asc", "at")
#: the headline metric of each task (paper Table 1)
TASK_METRIC: dict[str, str] = {"asr": "wer", "asc": "macc", "at": "map"}
LOWER_IS_BETTER = frozenset({"wer", "wer_raw"})
#: (metric, split) cells that are meaningless (no speech at -inf, no background at +inf)
UNDEFINED = frozenset(
    {("wer", "snr-inf"), ("wer_raw", "snr-inf"), ("macc", "snr+inf"), ("map", "snr+inf")}
)
METRIC_LABELS: dict[str, str] = {
    "wer": "WER",
    "wer_raw": "raw WER",
    "macc": "mACC",
    "map": "mAP",
    "format_compliance": "format compliance",
}
TASK_LABELS: dict[str, str] = {"asr": "ASR", "asc": "ASC", "at": "AT"}
MISSING = "–"
AVG = "avg"
PARTIAL = "†"
#: mark of a cell whose score includes failed items (no usable answer, scored as wrong)
FAILED = "*"

_REQUIRED = ("suite", "model", "mode", "split", "run", "task", "metric", "value")
_NUMBER_CELL = re.compile(r"^(?P<mean>[+-]?\d+(?:\.\d+)?)(?: ± \d+(?:\.\d+)?)?(?: \*)?$")
_TEX_MAP = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "−": r"$-$",
    "∞": r"$\infty$",
    "Δ": r"$\Delta$",
    "↓": r"$\downarrow$",
    "↑": r"$\uparrow$",
    "–": "--",
    "†": r"$^\dagger$",
}
_LEVEL_LABELS = {"system": "System", "model": "Model", "mode": "Mode", "task": "Task",
                 "metric": "Metric"}


# ---------------------------------------------------------------------------- SNR splits
def snr_db(split: str) -> float | None:
    """The SNR in dB a split name stands for (``snr-inf`` -> -inf), None if not an SNR.

    Parsed by :func:`lalm_eval.mixing.snr_of_split`, the one split-name parser (an
    infinity needs its sign: ``snrinf`` is not an SNR split).
    """
    return snr_of_split(str(split))


def order_splits(splits: Iterable[str]) -> list[str]:
    """Distinct splits from clean (+inf) to background only (-inf); non-SNR names last."""
    unique = {str(s) for s in splits}
    snrs = sorted((s for s in unique if snr_db(s) is not None), key=lambda s: -snr_db(s))
    return snrs + sorted(s for s in unique if snr_db(s) is None)


def split_label(split: str) -> str:
    """Display label of a split: "+∞", "10", "0", "−5", "−∞" (other names unchanged)."""
    value = snr_db(split)
    if value is None:
        return str(split)
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value:g}".replace("-", "−")


def lower_is_better(metric: str) -> bool:
    """Direction of a metric: True for error rates (WER), False for accuracies."""
    return metric in LOWER_IS_BETTER


def metric_label(metric: str, *, unit: bool = True, arrow: bool = True) -> str:
    """Human label of a metric, e.g. "WER (%) ↓"."""
    text = METRIC_LABELS.get(metric, metric)
    if unit:
        text += " (%)"
    if arrow:
        text += " ↓" if lower_is_better(metric) else " ↑"
    return text


# ------------------------------------------------------------------------------ cells
def _fixed(value: float, digits: int, sign: bool = False) -> str:
    rounded = round(float(value), digits) + 0.0  # no "-0.0"
    return f"{rounded:{'+' if sign else ''}.{digits}f}"


def format_cell(mean: float | None, std: float | None = None, digits: int = 1) -> str:
    """ "12.3 ± 0.4"; just "12.3" when std is NaN/None (one run); "–" when mean is missing."""
    if mean is None or not np.isfinite(mean):
        return MISSING
    text = _fixed(mean, digits)
    if std is None or not np.isfinite(std):
        return text
    return f"{text} ± {_fixed(std, digits)}"


def cell_value(cell: Any) -> float:
    """The mean shown in a plain numeric cell ("12.3 ± 0.4" -> 12.3); NaN otherwise."""
    match = _NUMBER_CELL.match(str(cell).strip())
    return float(match["mean"]) if match else math.nan


# --------------------------------------------------------------------- run statistics
def _prepare(scores: pd.DataFrame, suite: str | None) -> tuple[pd.DataFrame, list[str]]:
    """Checked rows of one suite (undefined cells and NaN values dropped) and its splits."""
    missing = [c for c in _REQUIRED if c not in scores.columns]
    if missing:
        raise ValueError(f"score rows lack column(s): {', '.join(missing)}")
    columns = list(_REQUIRED) + [c for c in ("n_items", "n_failed") if c in scores.columns]
    df = scores.loc[:, columns].copy()
    for column in ("suite", "model", "mode", "split", "task", "metric"):
        df[column] = df[column].astype(str)
    if suite is not None:
        df = df[df["suite"] == suite]
    suites = sorted(df["suite"].unique())
    if len(suites) > 1:
        raise ValueError(f"score rows hold several suites ({', '.join(suites)}): pass suite=")
    splits = order_splits(df["split"])
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    undefined = [(m, s) in UNDEFINED for m, s in zip(df["metric"], df["split"], strict=True)]
    df = df[np.isfinite(df["value"]) & ~np.asarray(undefined, dtype=bool)]
    key = ["model", "mode", "task", "metric", "split", "run"]
    duplicated = df.duplicated(key, keep=False)
    if duplicated.any():
        first = df.loc[duplicated, key].iloc[0].to_dict()
        raise ValueError(f"duplicate score rows for {first}")
    return df, splits


def _summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean/std/n over runs per split, plus an ``avg`` row per (model, mode, task, metric).

    ``avg`` is the mean of the split means over the splits present for that row (listed in
    ``covers``); its std is over the per-run averages of runs that have all those splits.
    """
    keys = ["model", "mode", "task", "metric"]
    columns = keys + ["split", "mean", "std", "n_runs", "covers", "n_failed", "n_items"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    df = df.assign(
        n_failed=pd.to_numeric(df["n_failed"], errors="coerce").fillna(0)
        if "n_failed" in df else 0,
        n_items=pd.to_numeric(df["n_items"], errors="coerce").fillna(0)
        if "n_items" in df else 0)
    per_split = (
        df.groupby(keys + ["split"], sort=True)
        .agg(mean=("value", "mean"), std=("value", "std"), n_runs=("value", "count"),
             n_failed=("n_failed", "sum"), n_items=("n_items", "sum"))
        .reset_index()
    )
    per_split["covers"] = per_split["split"]
    averages = []
    for key, group in df.groupby(keys, sort=True):
        wide = group.pivot(index="run", columns="split", values="value")
        per_run = wide.dropna().mean(axis=1)
        averages.append({
            **dict(zip(keys, key, strict=True)),
            "split": AVG,
            "mean": float(wide.mean(axis=0).mean()),
            "std": float(per_run.std()) if len(per_run) >= 2 else math.nan,
            "n_runs": len(per_run),
            "covers": "|".join(order_splits(wide.columns)),
            "n_failed": float(group["n_failed"].sum()),
            "n_items": float(group["n_items"].sum()),
        })
    return pd.concat([per_split, pd.DataFrame(averages)], ignore_index=True)[columns]


def summarise_runs(scores: pd.DataFrame, suite: str | None = None) -> pd.DataFrame:
    """Long table ``model, mode, task, metric, split, mean, std, n_runs, covers`` where
    ``split`` is an SNR split or ``avg`` (mean over the splits in ``covers``)."""
    df, _ = _prepare(scores, suite)
    return _summarise(df)


def present_splits(scores: pd.DataFrame, suite: str | None = None) -> list[str]:
    """The suite's splits in display order (over all metrics, before undefined cells go)."""
    return _prepare(scores, suite)[1]


# ---------------------------------------------------------------------- table building
def _rank(level: str, value: Any) -> tuple:
    """Sort key of an index value: known modes/tasks/metrics in their order, else by name."""
    if level == "system":
        model, _, mode = str(value).rpartition("/")
        return (model, _rank("mode", mode))
    order = {"mode": MODES, "task": TASKS, "metric": tuple(METRIC_LABELS)}.get(level, ())
    position = order.index(value) if value in order else len(order)
    return (position, str(value))


def _sorted_index(frame: pd.DataFrame, levels: Sequence[str]) -> pd.MultiIndex:
    rows = {tuple(r) for r in frame[list(levels)].itertuples(index=False)}
    ordered = sorted(rows, key=lambda r: tuple(_rank(lv, v) for lv, v in zip(levels, r,
                                                                              strict=True)))
    return pd.MultiIndex.from_tuples(ordered, names=list(levels))


def _mark_partial(stats: pd.DataFrame, group: Sequence[str]) -> pd.DataFrame:
    """Flag ``avg`` rows that cover fewer splits than other rows of their group."""
    stats = stats.copy()
    stats["partial"] = False
    avg = stats["split"] == AVG
    for _, rows in stats[avg].groupby(list(group), sort=False):
        union = set().union(*(c.split("|") for c in rows["covers"]))
        short = rows.index[[set(c.split("|")) != union for c in rows["covers"]]]
        stats.loc[short, "partial"] = True
    return stats


def _cells(stats: pd.DataFrame, digits: int, mark_failed: bool = True) -> list[str]:
    out = []
    failed = (stats["n_failed"] if mark_failed and "n_failed" in stats
              else pd.Series(0, index=stats.index))
    for mean, std, partial, n_failed in zip(
            stats["mean"], stats["std"], stats.get("partial", [False] * len(stats)), failed,
            strict=True):
        text = format_cell(mean, std, digits)
        if text != MISSING and n_failed > 0:
            text = f"{text} {FAILED}"
        out.append(f"{text} {PARTIAL}" if partial and text != MISSING else text)
    return out


def _failed_note(stats: pd.DataFrame, label: str = "system") -> str | None:
    """Which cells include failed items, with counts (failed of items, over runs)."""
    if "n_failed" not in stats:
        return None
    rows = stats[(stats["n_failed"] > 0) & (stats["split"] != AVG)]
    if rows.empty:
        return None
    listed = [f"{r.model}/{r.mode} {TASK_LABELS.get(r.task, r.task)} "
              f"{split_label(r.split)} dB: {int(r.n_failed)} of {int(r.n_items)}"
              for r in rows.itertuples()]
    more = f" and {len(listed) - 8} more cells" if len(listed) > 8 else ""
    return (f"{FAILED}: the score includes failed items (no usable answer: scored as wrong, "
            f"an unanswered ASR item as all deletions; see scores/ and the per-item files): "
            + "; ".join(listed[:8]) + more + ".")


def _grid(stats: pd.DataFrame, levels: Sequence[str], columns: Sequence[str],
          column_field: str, digits: int, mark_failed: bool = True) -> pd.DataFrame:
    """Display table: index ``levels``, one column per value of ``column_field``."""
    stats = stats.assign(cell=_cells(stats, digits, mark_failed))
    wide = stats.pivot(index=list(levels), columns=column_field, values="cell")
    wide = wide.reindex(index=_sorted_index(stats, levels), columns=list(columns))
    wide.columns.name = None
    return wide.astype(object).fillna(MISSING)


def _with_system(stats: pd.DataFrame) -> pd.DataFrame:
    return stats.assign(system=stats["model"] + "/" + stats["mode"])


def _select(stats: pd.DataFrame, metrics: Mapping[str, str] | None) -> pd.DataFrame:
    pairs = dict(TASK_METRIC if metrics is None else metrics)
    keep = [pairs.get(t) == m for t, m in zip(stats["task"], stats["metric"], strict=True)]
    chosen = stats[np.asarray(keep, dtype=bool)]
    if chosen.empty:
        raise ValueError(f"no score rows for task/metric pairs {pairs}")
    return chosen


def _runs_note(stats: pd.DataFrame) -> str:
    counts = stats.loc[stats["split"] != AVG, "n_runs"].astype(int)
    low, high = int(counts.min()), int(counts.max())
    n = str(low) if low == high else f"{low}–{high}"
    return (f"Cells: mean ± sample standard deviation (ddof = 1) over runs (n = {n}); "
            "a cell from a single run shows the mean only.")


def _avg_note(stats: pd.DataFrame) -> str:
    parts = []
    avg = stats[stats["split"] == AVG]
    for (task, metric), rows in sorted(avg.groupby(["task", "metric"]),
                                       key=lambda kv: (_rank("task", kv[0][0]),
                                                       _rank("metric", kv[0][1]))):
        union = order_splits(set().union(*(c.split("|") for c in rows["covers"])))
        name = f"{TASK_LABELS.get(task, task)} {METRIC_LABELS.get(metric, metric)}"
        parts.append(f"{name} over {', '.join(split_label(s) for s in union)} dB")
    note = "avg: mean over the SNR conditions present, " + "; ".join(parts) + "."
    if stats.get("partial", pd.Series(dtype=bool)).any():
        note += f" {PARTIAL}: average over fewer conditions than other rows (not bolded)."
    return note


_MISSING_NOTE = (f"{MISSING}: no score (WER is undefined at −∞, where there is no speech; "
                 "mACC and mAP at +∞, where there is no background).")


def _direction_note(stats: pd.DataFrame) -> str:
    metrics = sorted(stats["metric"].unique(), key=lambda m: _rank("metric", m))
    low = [METRIC_LABELS.get(m, m) for m in metrics if lower_is_better(m)]
    high = [METRIC_LABELS.get(m, m) for m in metrics if not lower_is_better(m)]
    parts = ([f"lower is better for {', '.join(low)}"] if low else []) + (
        [f"higher is better for {', '.join(high)}"] if high else [])
    return "; ".join(parts)


def table1(scores: pd.DataFrame, *, suite: str | None = None,
           metrics: Mapping[str, str] | None = None, digits: int = 1) -> pd.DataFrame:
    """Paper Table 1: rows system (model/mode) × task × metric, columns SNR splits + avg.

    ``metrics`` maps task -> metric (default ASR→wer, ASC→macc, AT→map).
    """
    df, splits = _prepare(scores, suite)
    stats = _mark_partial(_with_system(_select(_summarise(df), metrics)), ["task", "metric"])
    table = _grid(stats, ["system", "task", "metric"], splits + [AVG], "split", digits)
    items = _items_note(_select(df, metrics))
    table.attrs = {
        "bold": {"axis": "rows", "group": ["task", "metric"], "columns": splits + [AVG]},
        "notes": [
            _runs_note(stats),
            _avg_note(stats),
            _MISSING_NOTE,
            *([items] if items else []),
            *([failed] if (failed := _failed_note(stats)) else []),
            f"Bold: best system per column and task ({_direction_note(stats)}).",
        ],
    }
    return table


def _compare(scores: pd.DataFrame, modes: Sequence[str], deltas: Sequence[tuple[str, str]],
             *, suite: str | None, per_snr: bool, metrics: Mapping[str, str] | None,
             digits: int, models_with: str | None = None) -> pd.DataFrame:
    """Modes side by side per model and task (shared by Table 2 and the CoT table)."""
    df, splits = _prepare(scores, suite)
    if not per_snr:
        df = _common_splits(df, modes)
    stats = _select(_summarise(df), metrics)
    if models_with is not None:
        stats = stats[stats["model"].isin(stats.loc[stats["mode"] == models_with, "model"])]
    stats = stats[stats["mode"].isin(modes)]
    if stats.empty:
        raise ValueError(f"no score rows for modes {', '.join(modes)}")
    group = ["model", "task", "metric"]
    stats = _mark_partial(stats, group)
    notes = [_runs_note(stats), _avg_note(stats),
             *([failed] if (failed := _failed_note(stats)) else [])]
    if per_snr:
        table = _grid(stats, group + ["mode"], splits + [AVG], "split", digits)
        bold = {"axis": "rows", "group": group, "columns": splits + [AVG]}
        notes += [_MISSING_NOTE,
                  f"Bold: best mode per column, model and task ({_direction_note(stats)})."]
    else:
        averages = stats[stats["split"] == AVG]
        table = _grid(averages, group, list(modes), "mode", digits)
        means = averages.pivot(index=group, columns="mode", values="mean")
        for a, b in deltas:
            name = f"{a} - {b}"
            table[name] = [
                _fixed(means.loc[i, a] - means.loc[i, b], digits, sign=True)
                if a in means and b in means and i in means.index
                and np.isfinite(means.loc[i, a] - means.loc[i, b]) else MISSING
                for i in table.index
            ]
        bold = {"axis": "cols", "columns": list(modes)}
        notes += ["Cells are averages over the SNR conditions that every compared mode of "
                  "the model ran (avg). Δ a−b: difference of the mean averages (negative is "
                  "better for WER, positive for mACC and mAP).",
                  f"{MISSING}: mode not evaluated.",
                  f"Bold: best mode per row ({_direction_note(stats)})."]
    table.attrs = {"bold": bold, "notes": notes}
    return table


def _common_splits(df: pd.DataFrame, modes: Sequence[str]) -> pd.DataFrame:
    """Rows of ``modes`` only, per (model, task, metric) at the splits that every one of
    those modes the model ran has: averages of different modes then cover the same SNRs."""
    df = df[df["mode"].isin(modes)]
    keep = pd.Series(True, index=df.index)
    for _, group in df.groupby(["model", "task", "metric"], sort=False):
        common = set.intersection(*(set(g["split"]) for _, g in group.groupby("mode")))
        keep[group.index] = group["split"].isin(common)
    return df[keep]


def _items_note(stats_rows: pd.DataFrame) -> str | None:
    """"Items per cell" when systems were run on different numbers of clips."""
    if "n_items" not in stats_rows or stats_rows.empty:
        return None
    counts = (stats_rows.assign(n=pd.to_numeric(stats_rows["n_items"], errors="coerce"))
              .groupby(["model", "mode"])["n"].max().dropna().astype(int))
    if counts.nunique() <= 1:
        return None
    listed = ", ".join(f"{model}/{mode} {n}" for (model, mode), n in counts.items())
    return f"Items per cell (largest over SNRs and tasks): {listed}."


def table2_independent_vs_joint(scores: pd.DataFrame, *, suite: str | None = None,
                                per_snr: bool = False, metrics: Mapping[str, str] | None = None,
                                digits: int = 1) -> pd.DataFrame:
    """Paper Table 2: independent vs joint prompting per model and task.

    ``per_snr=False``: rows model × task × metric, columns independent, joint and
    "joint - independent" (averages over SNRs). ``per_snr=True``: rows model × task × metric ×
    mode, columns SNR splits + avg.
    """
    return _compare(scores, ("independent", "joint"), [("joint", "independent")], suite=suite,
                    per_snr=per_snr, metrics=metrics, digits=digits)


def table_cot(scores: pd.DataFrame, *, suite: str | None = None, per_snr: bool = True,
              metrics: Mapping[str, str] | None = None, digits: int = 1) -> pd.DataFrame:
    """Chain-of-thought vs independent vs joint for every model that has ``cot`` rows.

    ``per_snr=True`` (default): rows model × task × metric × mode, columns SNR splits + avg;
    ``per_snr=False``: columns independent, joint, cot and the cot deltas (averages).
    """
    return _compare(scores, MODES, [("cot", "independent"), ("cot", "joint")], suite=suite,
                    per_snr=per_snr, metrics=metrics, digits=digits, models_with="cot")


def format_compliance_table(scores: pd.DataFrame, *, suite: str | None = None,
                            by_task: bool = False, digits: int = 1) -> pd.DataFrame:
    """Format compliance (%), rows model × mode (× task if ``by_task``), columns SNR + avg.

    Without ``by_task`` each run's tasks are pooled, weighted by ``n_items`` when present.
    """
    df, splits = _prepare(scores, suite)
    df = df[df["metric"] == "format_compliance"]
    if df.empty:
        raise ValueError("no format_compliance score rows")
    if not by_task:
        weights = (pd.to_numeric(df["n_items"], errors="coerce") if "n_items" in df
                   else pd.Series(1.0, index=df.index))
        weights = weights.where(np.isfinite(weights) & (weights > 0), 1.0)
        df = (df.assign(weighted=df["value"] * weights, weight=weights)
              .groupby(["suite", "model", "mode", "split", "run", "metric"], as_index=False)
              [["weighted", "weight"]].sum())
        df = df.assign(value=df["weighted"] / df["weight"], task="all")
    levels = ["model", "mode"] + (["task"] if by_task else [])
    stats = _mark_partial(_summarise(df), ["task"])
    table = _grid(stats, levels, splits + [AVG], "split", digits, mark_failed=False)
    pooled = "" if by_task else " Tasks pooled per run, weighted by item count."
    table.attrs = {
        "metric": "format_compliance",
        "bold": {"axis": "rows", "group": ["task"] if by_task else [],
                 "columns": splits + [AVG]},
        "notes": [_runs_note(stats) + pooled,
                  "avg: mean over the SNR conditions present." + (
                      f" {PARTIAL}: fewer conditions than other rows." if stats["partial"].any()
                      else ""),
                  f"{MISSING}: no score. Bold: highest compliance per column."],
    }
    return table


# --------------------------------------------------------------------------- writing
def best_mask(table: pd.DataFrame, bold: Mapping[str, Any] | None) -> pd.DataFrame:
    """True where a cell shows the best mean of its comparison (ties all win).

    ``bold = {"axis": "rows", "group": [index levels], "columns": [...]}`` compares the rows
    of each group column by column; ``{"axis": "cols", "columns": [...]}`` compares those
    columns within each row. Direction comes from the ``metric`` index level (or
    ``table.attrs["metric"]``). Only plain numeric cells take part, and only when at least
    two do.
    """
    mask = pd.DataFrame(False, index=table.index, columns=table.columns)
    if not bold:
        return mask
    values = table.map(cell_value)
    names = list(table.index.names)
    if "metric" in names:
        metric_of = list(table.index.get_level_values("metric"))
    else:
        metric_of = [table.attrs.get("metric", "")] * len(table)
    columns = [c for c in bold.get("columns", table.columns) if c in table.columns]
    positions = np.arange(len(table))
    if bold["axis"] == "rows":
        group = list(bold.get("group", []))
        keys = (list(zip(*(table.index.get_level_values(g) for g in group), strict=True))
                if group else [()] * len(table))
        for key in dict.fromkeys(keys):
            rows = positions[[k == key for k in keys]]
            lower = lower_is_better(metric_of[rows[0]])
            for column in columns:
                j = table.columns.get_loc(column)
                _mark(mask, rows, [j] * len(rows), values.iloc[rows, j].to_numpy(), lower)
    else:
        js = [table.columns.get_loc(c) for c in columns]
        for i in positions:
            _mark(mask, [i] * len(js), js, values.iloc[i, js].to_numpy(dtype=float),
                  lower_is_better(metric_of[i]))
    return mask


def _mark(mask: pd.DataFrame, rows: Sequence[int], cols: Sequence[int], values: np.ndarray,
          lower: bool) -> None:
    finite = np.isfinite(values)
    if finite.sum() < 2:
        return
    best = values[finite].min() if lower else values[finite].max()
    for i, j, v in zip(rows, cols, values, strict=True):
        if np.isfinite(v) and v == best:
            mask.iat[i, j] = True


def _value_label(level: str, value: Any) -> str:
    if level == "task":
        return TASK_LABELS.get(str(value), str(value))
    if level == "metric":
        return metric_label(str(value))
    return str(value)


def column_label(column: Any) -> str:
    """Display header of a column: SNR labels, "avg", "Δ cot−joint", mode names."""
    text = str(column)
    if snr_db(text) is not None:
        return split_label(text)
    if " - " in text:
        a, b = text.split(" - ", 1)
        return f"Δ {a}−{b}"
    return text


def tex_escape(text: str) -> str:
    """Escape LaTeX specials and turn ±, −, ∞, Δ, arrows, – and † into LaTeX (adjacent
    math symbols share one ``$...$``, e.g. "−∞" -> ``$-\\infty$``)."""
    parts: list[str] = []
    math_open = False
    text = str(text)
    for k, ch in enumerate(text):
        mapped = _TEX_MAP.get(ch, ch)
        if ch == "+" and text[k + 1: k + 2] == "∞":
            mapped = "$+$"
        is_math = len(mapped) > 2 and mapped.startswith("$") and mapped.endswith("$")
        if is_math and math_open:
            parts[-1] = parts[-1][:-1] + mapped[1:]
        else:
            parts.append(mapped)
        math_open = is_math
    return "".join(parts)


def _tex_cell(cell: str) -> str:
    """A display cell in LaTeX; a leading sign of a number becomes a math sign."""
    if re.match(r"^[+-]\d", cell):
        return f"${cell[0]}${tex_escape(cell[1:])}"
    return tex_escape(cell)


def _index_rows(table: pd.DataFrame) -> list[tuple]:
    return [i if isinstance(i, tuple) else (i,) for i in table.index]


def _display_rows(table: pd.DataFrame, mask: pd.DataFrame, bold: str
                  ) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, rows (best cells wrapped in ``bold`` % cell) and column alignment."""
    names = [str(n) for n in table.index.names]
    headers = [_LEVEL_LABELS.get(n, n) for n in names] + [column_label(c) for c in table.columns]
    rows = []
    for i, index in enumerate(_index_rows(table)):
        labels = [_value_label(n, v) for n, v in zip(names, index, strict=True)]
        cells = [bold % c if mask.iat[i, j] else str(c) for j, c in enumerate(table.iloc[i])]
        rows.append(labels + cells)
    return headers, rows, ["left"] * len(names) + ["right"] * table.shape[1]


def to_markdown(table: pd.DataFrame, caption: str, mask: pd.DataFrame,
                notes: Sequence[str]) -> str:
    """Pipe table (tabulate) with a bold caption, **best** cells and notes below."""
    headers, rows, align = _display_rows(table, mask, "**%s**")
    body = tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True,
                    colalign=align)
    text = f"**{caption}**\n\n{body}\n"
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return text


_HTML_STYLE = ("body{font-family:sans-serif;font-size:14px;margin:1em}"
               "table{border-collapse:collapse}th,td{padding:3px 8px;border-bottom:1px "
               "solid #ccc}th{text-align:left}td{text-align:right}"
               "p.note{color:#444;font-size:12px;max-width:60em}")


def to_html(table: pd.DataFrame, caption: str, mask: pd.DataFrame,
            notes: Sequence[str]) -> str:
    """A standalone HTML page (no scripts, no external files): caption, table, notes."""
    headers, rows, align = _display_rows(table, mask, "\x00%s\x01")
    body = tabulate([[html.escape(c) for c in r] for r in rows],
                    headers=[html.escape(h) for h in headers], tablefmt="unsafehtml",
                    disable_numparse=True, colalign=align)
    body = body.replace("\x00", "<b>").replace("\x01", "</b>")
    notes_html = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(caption)}'
            f"</title><style>{_HTML_STYLE}</style></head><body><h3>{html.escape(caption)}</h3>"
            f"{body}{notes_html}</body></html>\n")


def to_latex(table: pd.DataFrame, caption: str, mask: pd.DataFrame, notes: Sequence[str],
             label: str) -> str:
    """booktabs table float: SNR header span, repeated labels blanked, bold best cells."""
    names = [str(n) for n in table.index.names]
    n_index, n_total = len(names), len(names) + table.shape[1]
    lines = [
        "% Generated by lalm_eval.reports.tables; needs \\usepackage{booktabs}.",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{tex_escape(caption)}}}",
        rf"\label{{tab:{label}}}",
        rf"\begin{{tabular}}{{{'l' * n_index}{'c' * table.shape[1]}}}",
        r"\toprule",
    ]
    snr_columns = [j for j, c in enumerate(table.columns) if snr_db(str(c)) is not None]
    if snr_columns and snr_columns == list(range(snr_columns[0], snr_columns[-1] + 1)):
        first, last = n_index + snr_columns[0] + 1, n_index + snr_columns[-1] + 1
        span = [""] * (first - 1) + [rf"\multicolumn{{{last - first + 1}}}{{c}}{{SNR (dB)}}"]
        lines.append(" & ".join(span + [""] * (n_total - last)) + r" \\")
        lines.append(rf"\cmidrule(lr){{{first}-{last}}}")
    headers = [_LEVEL_LABELS.get(n, n) for n in names] + [column_label(c) for c in table.columns]
    lines.append(" & ".join(tex_escape(h) for h in headers) + r" \\")
    lines.append(r"\midrule")
    previous: tuple | None = None
    for i, index in enumerate(_index_rows(table)):
        if previous is not None and index[0] != previous[0]:
            lines.append(r"\midrule")
        labels = []
        for k, (name, value) in enumerate(zip(names, index, strict=True)):
            repeated = previous is not None and index[: k + 1] == previous[: k + 1]
            labels.append("" if repeated else tex_escape(_value_label(name, value)))
        cells = [rf"\textbf{{{_tex_cell(str(c))}}}" if mask.iat[i, j] else _tex_cell(str(c))
                 for j, c in enumerate(table.iloc[i])]
        lines.append(" & ".join(labels + cells) + r" \\")
        previous = index
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines.append(r"\par\smallskip\footnotesize")
        lines += [tex_escape(n) + r"\par" for n in notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, stem: str | Path, caption: str, *,
                notes: Sequence[str] | None = None,
                bold: Mapping[str, Any] | None = None) -> tuple[Path, Path, Path]:
    """Write ``stem.csv`` (cells as shown), ``stem.md``, ``stem.tex`` and ``stem.html`` (for
    the HTML report); return the csv, md and tex paths.

    ``notes``/``bold`` default to ``table.attrs["notes"]``/``table.attrs["bold"]``.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    notes = list(table.attrs.get("notes", [])) if notes is None else list(notes)
    mask = best_mask(table, table.attrs.get("bold") if bold is None else bold)
    csv_path, md_path, tex_path = (Path(f"{stem}.{ext}") for ext in ("csv", "md", "tex"))
    table.to_csv(csv_path, encoding="utf-8", lineterminator="\n")
    md_path.write_text(to_markdown(table, caption, mask, notes), encoding="utf-8")
    Path(f"{stem}.html").write_text(to_html(table, caption, mask, notes), encoding="utf-8")
    label = re.sub(r"[^A-Za-z0-9:-]+", "-", stem.name)
    tex_path.write_text(to_latex(table, caption, mask, notes, label), encoding="utf-8")
    return csv_path, md_path, tex_path
