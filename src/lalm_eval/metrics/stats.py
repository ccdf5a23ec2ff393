"""Summary statistics over repeated runs, as reported in the tables."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["mean_std"]


def mean_std(values: Iterable[float | None] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) over runs: the "mean ± std" of a cell.

    NaN policy: a NaN (or None) is a run with no value (e.g. every item of it failed, or
    the metric is undefined for it). Such runs are left out, so the mean and std are over
    the runs that have a value, like the per-split cells of :mod:`lalm_eval.reports.tables`
    (which drop non-finite scores before aggregating). Infinite values are kept.

    * no run with a value: ``(nan, nan)`` (the cell is shown as missing);
    * one run with a value: ``(value, nan)``: the spread of a single run is undefined and
      never reported as 0 (the cell shows the mean only);
    * otherwise ``(mean, std)`` with ``ddof=1``, the unbiased sample variance's root, as
      the papers' "mean ± std over runs".
    """
    items = np.ravel(values) if isinstance(values, np.ndarray) else values
    kept = [float(v) for v in items if v is not None and not math.isnan(float(v))]
    if not kept:
        return math.nan, math.nan
    array = np.asarray(kept, dtype=np.float64)
    std = float(np.std(array, ddof=1)) if array.size > 1 else math.nan
    return float(np.mean(array)), std
