"""Correlation between metrics over models: Pearson r, Kendall tau, bootstrap intervals.

Input is a wide table: index = model name, columns = metric names, NaN where a model lacks a
metric. Every pair of metrics is compared over the models that have both (``n``). A pair is
*undefined* (all statistics NaN, ``defined`` False) when ``n < min_n`` (reason ``"n<3"`` for
the default) or when either metric is constant over the shared models (reason
``"constant"``); a defined pair has ``reason == ""``.

The bootstrap resamples models (with replacement) jointly for both metrics and reads the
percentile interval of r. Resamples in which a metric is constant have no r; they are dropped
and the number kept is ``n_boot_valid``. It is vectorised with numpy (``scipy.stats.bootstrap``
cannot drop such resamples). Replicate k of every pair with the same ``n`` uses the same
model draw (seeded by ``seed``), so a pair's interval does not depend on the other columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from scipy import stats

#: columns of the long table, in order
COLUMNS: tuple[str, ...] = (
    "metric_a", "metric_b", "n", "pearson_r", "pearson_p", "ci_low", "ci_high", "n_boot_valid",
    "kendall_tau", "kendall_p", "defined", "reason",
)
#: statistics that are NaN for undefined pairs (the other columns are always filled)
STATISTICS: tuple[str, ...] = (
    "pearson_r", "pearson_p", "ci_low", "ci_high", "kendall_tau", "kendall_p",
)
CONSTANT = "constant"


def _check_table(table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Metric names and a float matrix (models x metrics) of a checked wide table."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"metric table must be a pandas DataFrame, got {type(table).__name__}")
    if table.shape[1] == 0:
        raise ValueError("metric table has no metric columns")
    names = list(table.columns)
    bad_names = [repr(c) for c in names if not isinstance(c, str) or not c]
    if bad_names:
        raise ValueError(f"metric names must be non-empty strings: {', '.join(bad_names)}")
    duplicated = sorted(set(table.columns[table.columns.duplicated()]))
    if duplicated:
        raise ValueError(f"metric table has duplicate metric columns: {', '.join(duplicated)}")
    models = table.index[table.index.duplicated()].unique()
    if len(models):
        raise ValueError("metric table has duplicate model rows: "
                         + ", ".join(map(str, models)))
    for name in names:
        column = table[name]
        if not is_numeric_dtype(column) or is_bool_dtype(column):
            raise ValueError(f"metric column {name!r} is not numeric (dtype {column.dtype})")
    values = table.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(values)
    if infinite.any():
        rows, cols = np.nonzero(infinite)
        cells = ", ".join(f"{table.index[r]}/{names[c]}" for r, c in zip(rows, cols, strict=True))
        raise ValueError(f"metric table has infinite values (model/metric): {cells}")
    return names, values


def _check_settings(min_n: int, n_boot: int, confidence: float,
                    min_valid_fraction: float) -> None:
    if isinstance(min_n, bool) or not isinstance(min_n, int | np.integer) or min_n < 2:
        raise ValueError(f"min_n must be an integer >= 2, got {min_n!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not 0 <= min_valid_fraction <= 1:
        raise ValueError(f"min_valid_fraction must be in [0, 1], got {min_valid_fraction!r}")


def _is_constant(values: np.ndarray) -> bool:
    return bool(np.all(values == values[0]))


def bootstrap_pearson(x: np.ndarray, y: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Pearson r of every resample (row of ``draws``, model indices); NaN where x or y is
    constant within the resample."""
    xb, yb = x[draws], y[draws]
    valid = ~(np.all(xb == xb[:, :1], axis=1) | np.all(yb == yb[:, :1], axis=1))
    xc = xb - xb.mean(axis=1, keepdims=True)
    yc = yb - yb.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (xc * yc).sum(axis=1) / np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    return np.where(valid, np.clip(r, -1.0, 1.0), np.nan)


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100.0 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def _pair(x: np.ndarray, y: np.ndarray, *, same: bool, min_n: int, draws: np.ndarray,
          confidence: float, min_valid: float) -> dict[str, Any]:
    """Statistics of one pair over its shared models (x, y already restricted to them)."""
    row: dict[str, Any] = dict.fromkeys(STATISTICS, np.nan)
    row.update(n=len(x), n_boot_valid=0, defined=False, reason="")
    if len(x) < min_n:
        row["reason"] = f"n<{min_n}"
        return row
    if _is_constant(x) or _is_constant(y):
        row["reason"] = CONSTANT
        return row
    pearson = stats.pearsonr(x, y)
    kendall = stats.kendalltau(x, y)
    row.update(defined=True, pearson_r=float(pearson.statistic), pearson_p=float(pearson.pvalue),
               kendall_tau=float(kendall.statistic), kendall_p=float(kendall.pvalue))
    replicates = bootstrap_pearson(x, y, draws)
    kept = replicates[np.isfinite(replicates)]
    row["n_boot_valid"] = int(kept.size)
    if kept.size and kept.size >= min_valid:
        row["ci_low"], row["ci_high"] = _percentile_interval(kept, confidence)
    if same:  # a metric with itself: exact values instead of rounding noise
        row.update(pearson_r=1.0, pearson_p=0.0, kendall_tau=1.0)
        if kept.size and kept.size >= min_valid:
            row.update(ci_low=1.0, ci_high=1.0)
    return row


def pairwise_correlations(table: pd.DataFrame, *, min_n: int = 3, n_boot: int = 1000,
                          seed: int = 0, confidence: float = 0.95,
                          min_valid_fraction: float = 0.5) -> pd.DataFrame:
    """Correlation of every ordered pair of metrics (full square, diagonal included).

    Returns one row per (metric_a, metric_b) in column order (``len(columns)**2`` rows; the
    pair (b, a) repeats (a, b)) with the columns of :data:`COLUMNS`: ``n`` models having
    both metrics; Pearson r and its two-sided p (scipy); the percentile bootstrap interval
    ``ci_low, ci_high`` at ``confidence`` from ``n_boot`` resamples of the shared models, of
    which ``n_boot_valid`` had no constant metric (NaN interval when fewer than
    ``min_valid_fraction * n_boot`` remain); Kendall tau-b and its p (scipy); ``defined`` and
    ``reason`` (see the module docstring). The diagonal has r = tau = 1 (p = 0 for r) with
    ``n`` = models having that metric, under the same ``min_n`` / constant rule.
    ``attrs`` holds the metric order and the settings.
    """
    _check_settings(min_n, n_boot, confidence, min_valid_fraction)
    names, values = _check_table(table)
    present = np.isfinite(values)
    min_valid = min_valid_fraction * n_boot
    draws_by_n: dict[int, np.ndarray] = {}
    results: dict[tuple[int, int], dict[str, Any]] = {}
    for i in range(len(names)):
        for j in range(i, len(names)):
            shared = present[:, i] & present[:, j]
            n = int(shared.sum())
            if n not in draws_by_n:
                draws_by_n[n] = np.random.default_rng(seed).integers(0, max(n, 1),
                                                                      size=(n_boot, n))
            results[i, j] = _pair(values[shared, i], values[shared, j], same=i == j,
                                  min_n=min_n, draws=draws_by_n[n], confidence=confidence,
                                  min_valid=min_valid)
    rows = [
        {"metric_a": a, "metric_b": b, **results[min(i, j), max(i, j)]}
        for i, a in enumerate(names) for j, b in enumerate(names)
    ]
    long = pd.DataFrame(rows, columns=list(COLUMNS))
    long = long.astype({"n": np.int64, "n_boot_valid": np.int64, "defined": bool})
    long.attrs = {
        "metric_order": names, "n_models": int(len(table)), "min_n": int(min_n),
        "n_boot": int(n_boot), "seed": int(seed), "confidence": float(confidence),
        "min_valid_fraction": float(min_valid_fraction),
        "ci_method": "percentile bootstrap over models",
    }
    return long


def _check_long(long: pd.DataFrame, needed: Sequence[str]) -> None:
    if not isinstance(long, pd.DataFrame):
        raise TypeError(f"correlations must be a pandas DataFrame, got {type(long).__name__}")
    missing = [c for c in needed if c not in long.columns]
    if missing:
        raise ValueError(f"correlation rows lack column(s): {', '.join(missing)}")


def resolve_order(long: pd.DataFrame, metric_order: Sequence[str] | None) -> list[str]:
    """The metric order to show: given (checked against ``long``), else ``attrs`` or the
    order of first appearance in ``metric_a``."""
    _check_long(long, ("metric_a", "metric_b"))
    known = list(dict.fromkeys(long["metric_a"]).keys())
    if metric_order is None:
        return list(long.attrs.get("metric_order", known))
    order = list(metric_order)
    if not order:
        raise ValueError("metric_order is empty")
    duplicated = sorted({m for m in order if order.count(m) > 1})
    if duplicated:
        raise ValueError(f"metric_order repeats metric(s): {', '.join(duplicated)}")
    unknown = [m for m in order if m not in set(known) | set(long["metric_b"])]
    if unknown:
        raise ValueError(f"metric_order names metric(s) not in the correlations: "
                         f"{', '.join(map(str, unknown))}")
    return order


def correlation_matrix(long: pd.DataFrame, value: str = "pearson_r", *,
                       metric_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Square matrix (rows metric_a, columns metric_b) of one column of the long table.

    ``metric_order`` picks and orders the metrics (default: the table's own order). A
    statistic is NaN where the pair is undefined; ``n``, ``n_boot_valid``, ``defined`` and
    ``reason`` are shown for every pair. Every ordered pair must be present.
    """
    _check_long(long, ("metric_a", "metric_b", "defined", value))
    order = resolve_order(long, metric_order)
    chosen = long[long["metric_a"].isin(order) & long["metric_b"].isin(order)]
    repeated = chosen[chosen.duplicated(["metric_a", "metric_b"])]
    if not repeated.empty:
        first = repeated.iloc[0]
        raise ValueError(f"correlation rows repeat the pair ({first['metric_a']}, "
                         f"{first['metric_b']})")
    have = set(zip(chosen["metric_a"], chosen["metric_b"], strict=True))
    missing = [(a, b) for a in order for b in order if (a, b) not in have]
    if missing:
        shown = ", ".join(f"({a}, {b})" for a, b in missing[:5])
        raise ValueError(f"correlation rows lack {len(missing)} ordered pair(s), e.g. {shown}; "
                         "pass the full square from pairwise_correlations")
    matrix = chosen.pivot(index="metric_a", columns="metric_b", values=value)
    matrix = matrix.reindex(index=order, columns=order)
    if value not in ("n", "n_boot_valid", "defined", "reason"):
        defined = chosen.pivot(index="metric_a", columns="metric_b", values="defined")
        matrix = matrix.astype(float).where(defined.reindex(index=order, columns=order)
                                            .astype(bool))
    matrix.index.name, matrix.columns.name = "metric_a", "metric_b"
    return matrix


def unordered_pairs(long: pd.DataFrame, *, metric_order: Sequence[str] | None = None,
                    diagonal: bool = False) -> pd.DataFrame:
    """Each pair once (metric_a before metric_b in ``metric_order``), in that order."""
    _check_long(long, ("metric_a", "metric_b"))
    order = resolve_order(long, metric_order)
    rank = {m: k for k, m in enumerate(order)}
    a = long["metric_a"].map(rank)
    b = long["metric_b"].map(rank)
    keep = a.notna() & b.notna() & ((a <= b) if diagonal else (a < b))
    pairs = long[keep].assign(_a=a[keep], _b=b[keep]).sort_values(["_a", "_b"], kind="stable")
    return pairs.drop(columns=["_a", "_b"]).reset_index(drop=True)
