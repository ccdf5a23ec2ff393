"""Correlation heatmap and pair table from the rows of ``pairwise_correlations``
(:mod:`lalm_eval.metrics.correlation`).

The heatmap uses the house figure style of :mod:`lalm_eval.reports.figures` (bare Agg figure,
fixed rc settings, reproducible SVG) and is saved as PNG (dpi 200) and SVG.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from lalm_eval.metrics.correlation import (
    correlation_matrix,
    resolve_order,
    unordered_pairs,
)
from lalm_eval.reports.figures import _SVG_METADATA, _new_figure, _style
from lalm_eval.reports.tables import write_table

#: columns that can be drawn on the fixed [-1, 1] colour scale, with their colour bar label
HEATMAP_VALUES: dict[str, str] = {
    "pearson_r": "Pearson r",
    "kendall_tau": "Kendall τ",
    "ci_low": "Pearson r, lower bootstrap bound",
    "ci_high": "Pearson r, upper bootstrap bound",
}
CMAP = "RdBu_r"
PNG_DPI = 200
UNDEFINED_FACE = "0.92"
UNDEFINED_HATCH = "0.7"
NOT_AVAILABLE = "n/a"
_TEXT_BOX = {"facecolor": UNDEFINED_FACE, "edgecolor": "none", "pad": 0.6}
_BREAK = re.compile(r"[^\s_/-]+[\s_/-]*|[\s_/-]+")


def wrap_label(name: str, width: int = 16) -> str:
    """Break a metric name into lines of at most ``width`` characters at spaces, "_", "-"
    or "/" (kept at the line end); a longer unbroken run is cut."""
    lines: list[str] = []
    line = ""
    for token in _BREAK.findall(str(name)):
        while len(token) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(token[:width])
            token = token[width:]
        if line and len(line.rstrip()) + len(token.rstrip()) > width:
            lines.append(line)
            line = ""
        line += token
    if line:
        lines.append(line)
    return "\n".join(s.rstrip() for s in lines)


def _check_blocks(blocks: Mapping[str, Sequence[str]], order: Sequence[str]) -> list[int]:
    """Sizes of the blocks, which must list the metrics of ``order`` in that order."""
    seen: dict[str, str] = {}
    for block, metrics in blocks.items():
        if isinstance(metrics, str) or not len(metrics):
            raise ValueError(f"block {block!r} must be a non-empty sequence of metric names")
        for metric in metrics:
            if metric in seen:
                raise ValueError(f"metric {metric!r} is in blocks {seen[metric]!r} and "
                                 f"{block!r}")
            seen[metric] = block
    unknown = [m for m in seen if m not in order]
    if unknown:
        raise ValueError(f"blocks name metric(s) not in metric_order: {', '.join(unknown)}")
    loose = [m for m in order if m not in seen]
    if loose:
        raise ValueError(f"metric(s) in no block: {', '.join(loose)}")
    listed = [m for metrics in blocks.values() for m in metrics]
    if listed != list(order):
        k = next(k for k, (a, b) in enumerate(zip(listed, order, strict=True)) if a != b)
        raise ValueError(f"blocks must list the metrics in metric_order's order; position {k} "
                         f"is {listed[k]!r} in blocks but {order[k]!r} in metric_order")
    return [len(metrics) for metrics in blocks.values()]


def _number(value: float, digits: int = 2) -> str:
    """Fixed decimals, no "-0.00", typographic minus."""
    return f"{round(float(value), digits) + 0.0:.{digits}f}".replace("-", "−")


def correlation_heatmap(long: pd.DataFrame, out_stem: str | Path, *,
                        metric_order: Sequence[str],
                        blocks: Mapping[str, Sequence[str]] | None = None,
                        title: str | None = None, value: str = "pearson_r",
                        labels: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Heatmap of ``value`` for every ordered pair of ``metric_order``; returns PNG, SVG.

    Colours are a diverging map fixed to [-1, 1]. A defined cell shows the value (2 decimals)
    and "n=<n>" below; an undefined cell (or a NaN value) is light grey, hatched, with "n/a"
    and "n=<n>". ``blocks`` (e.g. {"text-only": [...], "audio-grounded": [...]}) must list
    the metrics of ``metric_order`` in that order; thick lines separate them and their names
    label the top and right axes. ``labels`` maps metric names to display names.
    """
    if value not in HEATMAP_VALUES:
        raise ValueError(f"value must be one of {', '.join(HEATMAP_VALUES)} (colour scale "
                         f"[-1, 1]), got {value!r}")
    order = resolve_order(long, metric_order)
    sizes = _check_blocks(blocks, order) if blocks else []
    values = correlation_matrix(long, value, metric_order=order).to_numpy(dtype=float)
    counts = correlation_matrix(long, "n", metric_order=order).to_numpy()
    shown = values[np.isfinite(values)]
    if shown.size and (shown.min() < -1 - 1e-9 or shown.max() > 1 + 1e-9):
        raise ValueError(f"{value} values outside [-1, 1]: cannot share the fixed colour scale")
    names = [wrap_label((labels or {}).get(m, m)) for m in order]
    n = len(order)
    cell = 0.62 if n <= 24 else 0.5
    big, small = (7.5, 5.5) if n <= 24 else (6.0, 4.5)
    with _style():
        figure = _new_figure(n * cell + 3.6, n * cell + 2.6)
        axes = figure.add_subplot()
        cmap = mpl.colormaps[CMAP].with_extremes(bad=UNDEFINED_FACE)
        image = axes.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1.0, vmax=1.0,
                            interpolation="nearest")
        for i in range(n):
            for j in range(n):
                count = f"n={int(counts[i, j])}"
                if np.isfinite(values[i, j]):
                    dark = abs(values[i, j]) >= 0.6
                    color = "white" if dark else "black"
                    text = _number(values[i, j])
                else:
                    axes.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1,
                                             facecolor=UNDEFINED_FACE,
                                             edgecolor=UNDEFINED_HATCH, hatch="///",
                                             linewidth=0))
                    color, text = "0.2", NOT_AVAILABLE
                box = None if np.isfinite(values[i, j]) else _TEXT_BOX
                axes.text(j, i - 0.1, text, ha="center", va="center", color=color,
                          fontsize=big, bbox=box)
                axes.text(j, i + 0.24, count, ha="center", va="center", color=color,
                          fontsize=small, bbox=box)
        ticks = np.arange(n)
        axes.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
        axes.set_yticks(ticks, names)
        axes.set_xticks(ticks[:-1] + 0.5, minor=True)
        axes.set_yticks(ticks[:-1] + 0.5, minor=True)
        axes.grid(which="minor", color="white", linewidth=0.8)
        axes.tick_params(which="minor", length=0)
        axes.tick_params(which="major", length=2)
        axes.spines[:].set_visible(True)
        if len(sizes) > 1:
            _draw_blocks(axes, list(blocks), sizes)
        bar = figure.colorbar(image, ax=axes, shrink=0.8, pad=0.02)
        bar.set_label(HEATMAP_VALUES[value])
        bar.set_ticks(np.linspace(-1, 1, 5))
        if title:
            figure.suptitle(title)
        return _save(figure, out_stem)


def _draw_blocks(axes: Axes, names: Sequence[str], sizes: Sequence[int]) -> None:
    """Thick separators between blocks and block names on the top and right axes."""
    edges = np.concatenate([[0], np.cumsum(sizes)]) - 0.5
    for edge in edges[1:-1]:
        axes.axhline(edge, color="black", linewidth=2.2)
        axes.axvline(edge, color="black", linewidth=2.2)
    centers = (edges[:-1] + edges[1:]) / 2
    top = axes.secondary_xaxis("top")
    top.set_xticks(centers, list(names), fontweight="bold")
    top.set_xticks(edges, minor=True)
    right = axes.secondary_yaxis("right")
    right.set_yticks(centers, list(names), rotation=270, va="center", fontweight="bold")
    right.set_yticks(edges, minor=True)
    for side in (top, right):
        side.tick_params(which="major", length=0, pad=6)
        side.tick_params(which="minor", length=10, width=1.2)
        side.spines[:].set_visible(False)


def _save(figure: Figure, out_stem: str | Path) -> tuple[Path, Path]:
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = Path(f"{out_stem}.png"), Path(f"{out_stem}.svg")
    figure.savefig(png, dpi=PNG_DPI, format="png")
    figure.savefig(svg, format="svg", metadata=_SVG_METADATA)
    return png, svg


def _reason_text(reason: str) -> str:
    """Table wording of an undefined reason ("n<3" -> "too few models": no "<", which
    LaTeX text fonts may lack)."""
    return "too few models" if str(reason).startswith("n<") else str(reason)


def correlation_table(long: pd.DataFrame, stem: str | Path, *,
                      metric_order: Sequence[str] | None = None, caption: str | None = None,
                      digits: int = 2) -> tuple[Path, Path, Path]:
    """Write every unordered pair (metric_a before metric_b in ``metric_order``) as
    ``stem.csv``, ``stem.md`` and ``stem.tex``: n, Pearson r [bootstrap CI], its p and Kendall
    tau; undefined pairs read "n/a (<reason>)"."""
    pairs = unordered_pairs(long, metric_order=metric_order)
    needed = ("n", "pearson_r", "pearson_p", "ci_low", "ci_high", "kendall_tau", "defined",
              "reason")
    missing = [c for c in needed if c not in pairs.columns]
    if missing:
        raise ValueError(f"correlation rows lack column(s): {', '.join(missing)}")
    if pairs.empty:
        raise ValueError("no pair of distinct metrics to tabulate")
    few = long.attrs.get("min_n")
    few = f"fewer than {few} models" if few else "too few models"
    level = f"{round(100 * long.attrs['confidence'])}% " if "confidence" in long.attrs else ""
    rows = []
    for row in pairs.itertuples(index=False):
        if not row.defined:
            why = f"{NOT_AVAILABLE} ({_reason_text(row.reason)})"
            rows.append((row.metric_a, row.metric_b, str(row.n), why, NOT_AVAILABLE,
                         NOT_AVAILABLE))
            continue
        interval = (f" [{_number(row.ci_low, digits)}, {_number(row.ci_high, digits)}]"
                    if np.isfinite(row.ci_low) and np.isfinite(row.ci_high) else " [n/a]")
        rows.append((row.metric_a, row.metric_b, str(row.n),
                     _number(row.pearson_r, digits) + interval, f"{row.pearson_p:.2g}",
                     _number(row.kendall_tau, digits)))
    table = pd.DataFrame(rows, columns=["metric_a", "metric_b", "n", f"r [{level}CI]", "p",
                                        "Kendall tau"])
    table = table.set_index(["metric_a", "metric_b"])
    notes = [
        "n: models with both metrics. r: Pearson correlation over those models, p its "
        "two-sided p-value; Kendall tau: tau-b.",
        f"[ ]: {level}percentile bootstrap interval over models; resamples with a constant "
        "metric are dropped (n/a when too few remain).",
        f"n/a: undefined, because {few} share the pair or a metric is constant over them.",
    ]
    table.attrs = {"notes": notes}
    return write_table(table, stem, caption or "Correlation between metrics over models",
                       notes=notes)
