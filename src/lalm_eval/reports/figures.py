"""SSEU-Bench figures from long-format score rows: metric vs SNR, chain-of-thought bars.

Figures are drawn on a bare :class:`~matplotlib.figure.Figure` with the Agg canvas (no pyplot,
so no display is needed and no global figure state is touched) under the default style plus
fixed settings, and saved as PNG (dpi 150) and SVG. The SVG is byte-identical across runs:
fixed ``svg.hashsalt`` for element ids, text as paths, and no creation date.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lalm_eval.reports.tables import (
    AVG,
    MODES,
    TASK_LABELS,
    TASK_METRIC,
    TASKS,
    UNDEFINED,
    lower_is_better,
    metric_label,
    order_splits,
    split_label,
    summarise_runs,
)

#: one colour (Okabe-Ito, colour-blind safe), line style and bar hatch per mode, in every figure
MODE_STYLES: dict[str, dict[str, str]] = {
    "independent": {"color": "#0072B2", "linestyle": "-", "hatch": ""},
    "joint": {"color": "#D55E00", "linestyle": "--", "hatch": "//"},
    "cot": {"color": "#009E73", "linestyle": ":", "hatch": ".."},
}
_EXTRA_STYLES = (
    {"color": "#CC79A7", "linestyle": "-.", "hatch": "xx"},
    {"color": "#E69F00", "linestyle": (0, (5, 1)), "hatch": "\\\\"},
    {"color": "#56B4E9", "linestyle": (0, (1, 1)), "hatch": "--"},
)
#: markers tell models apart (assigned in sorted model order)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")
_RC: dict[str, Any] = {
    "svg.hashsalt": "lalm_eval",
    "svg.fonttype": "path",
    "svg.image_inline": True,
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 150,
}
#: SVG metadata without a date (the default is "now"), so repeated renders are identical
_SVG_METADATA = {"Date": None}


def mode_style(mode: str) -> dict[str, Any]:
    """Colour, line style and hatch of a mode; unknown modes get extra styles by name."""
    if mode in MODE_STYLES:
        return dict(MODE_STYLES[mode])
    index = sum(ord(ch) for ch in mode) % len(_EXTRA_STYLES)
    return dict(_EXTRA_STYLES[index])


@contextmanager
def _style() -> Iterator[None]:
    """Default matplotlib style with this module's fixed settings (rendering and saving)."""
    with matplotlib.style.context("default"), mpl.rc_context(_RC):
        yield


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, out_stem: str | Path) -> tuple[Path, Path]:
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = Path(f"{out_stem}.png"), Path(f"{out_stem}.svg")
    figure.savefig(png, dpi=150, format="png")
    figure.savefig(svg, format="svg", metadata=_SVG_METADATA)
    return png, svg


def _mode_rank(mode: str) -> tuple[int, str]:
    return (MODES.index(mode) if mode in MODES else len(MODES), mode)


def _direction(metric: str) -> str:
    return "lower is better" if lower_is_better(metric) else "higher is better"


def metric_vs_snr(scores: pd.DataFrame, metric: str, out_stem: str | Path, *,
                  suite: str | None = None, task: str | None = None,
                  title: str | None = None) -> tuple[Path, Path]:
    """One line per system (model/mode) of ``metric`` over the SNR splits; returns PNG, SVG.

    The x axis is categorical in the fixed split order ("+∞" ... "−∞"), the same for every
    metric of the suite, so undefined cells (WER at −∞) show as a gap. Error bars are the
    standard deviation over runs. If the metric exists for several tasks and ``task`` is not
    given, there is one line per system and task.
    """
    stats = summarise_runs(scores, suite)
    splits = order_splits(stats.loc[stats["split"] != AVG, "split"])
    chosen = stats[(stats["metric"] == metric) & (stats["split"] != AVG)]
    if task is not None:
        chosen = chosen[chosen["task"] == task]
    if chosen.empty:
        raise ValueError(f"no score rows for metric {metric!r}" + (
            f" and task {task!r}" if task else ""))
    several_tasks = chosen["task"].nunique() > 1
    systems = sorted({(m, mo, t) for m, mo, t in zip(chosen["model"], chosen["mode"],
                                                     chosen["task"], strict=True)},
                     key=lambda s: (s[0], _mode_rank(s[1]), s[2]))
    models = sorted({s[0] for s in systems})
    x = np.arange(len(splits), dtype=float)
    step = min(0.08, 0.6 / max(len(systems), 1))
    with _style():
        figure = _new_figure(7.0, 4.0)
        axes = figure.add_subplot()
        for k, (model, mode, task_name) in enumerate(systems):
            rows = chosen[(chosen["model"] == model) & (chosen["mode"] == mode)
                          & (chosen["task"] == task_name)].set_index("split").reindex(splits)
            style = mode_style(mode)
            label = f"{model}/{mode}" + (f" ({TASK_LABELS.get(task_name, task_name)})"
                                         if several_tasks else "")
            std = rows["std"].to_numpy(dtype=float)
            axes.errorbar(
                x + (k - (len(systems) - 1) / 2) * step, rows["mean"].to_numpy(dtype=float),
                yerr=np.where(np.isfinite(std), std, 0.0), label=label, color=style["color"],
                linestyle=style["linestyle"], marker=MARKERS[models.index(model) % len(MARKERS)],
                markersize=5, linewidth=1.5, capsize=3, elinewidth=1,
            )
        for xi, split in zip(x, splits, strict=True):
            if not (chosen["split"] == split).any():
                why = "undefined" if (metric, split) in UNDEFINED else "no data"
                axes.text(xi, 0.5, why, transform=axes.get_xaxis_transform(), rotation=90,
                          ha="center", va="center", color="0.5", fontsize=8)
        axes.set_xticks(x, [split_label(s) for s in splits])
        axes.set_xlim(-0.5, len(splits) - 0.5)
        axes.set_xlabel("SNR (dB)")
        axes.set_ylabel(f"{metric_label(metric)}, {_direction(metric)}")
        axes.grid(axis="y", alpha=0.3)
        if title:
            axes.set_title(title)
        figure.legend(loc="outside right upper", frameon=False, title="model/mode")
        return _save(figure, out_stem)


def no_data_figure(out_stem: str | Path, message: str) -> tuple[Path, Path]:
    """A figure that says why there is nothing to plot (the report's file set stays fixed)."""
    with _style():
        figure = _new_figure(7.0, 2.0)
        axes = figure.add_subplot()
        axes.axis("off")
        axes.text(0.5, 0.5, message, ha="center", va="center", color="0.35", fontsize=10,
                  wrap=True)
        return _save(figure, out_stem)


def cot_comparison(scores: pd.DataFrame, out_stem: str | Path, *, suite: str | None = None,
                   metrics: Mapping[str, str] | None = None) -> tuple[Path, Path]:
    """Grouped bars per model (independent / joint / cot), one panel per task, showing the
    average over SNRs with std over runs; only models that have ``cot`` rows. Returns
    the PNG and SVG paths."""
    pairs = dict(TASK_METRIC if metrics is None else metrics)
    stats = summarise_runs(scores, suite)
    stats = stats[stats["split"] == AVG]
    models = sorted(stats.loc[stats["mode"] == "cot", "model"].unique())
    if not models:
        raise ValueError("no chain-of-thought (mode 'cot') score rows")
    stats = stats[stats["model"].isin(models)]
    tasks = [t for t in TASKS if t in pairs] + sorted(t for t in pairs if t not in TASKS)
    tasks = [t for t in tasks if ((stats["task"] == t) & (stats["metric"] == pairs[t])).any()]
    modes = sorted(set(stats["mode"]) & set(MODES), key=_mode_rank)
    width = 0.8 / len(modes)
    with _style():
        figure = _new_figure(max(3.2 * len(tasks), 2.0 + 1.4 * len(models) * len(tasks)), 3.6)
        panels = figure.subplots(1, len(tasks), squeeze=False)[0]
        for axes, task in zip(panels, tasks, strict=True):
            metric = pairs[task]
            cells = stats[(stats["task"] == task) & (stats["metric"] == metric)]
            for j, mode in enumerate(modes):
                rows = cells[cells["mode"] == mode].set_index("model").reindex(models)
                xs = np.arange(len(models)) + (j - (len(modes) - 1) / 2) * width
                mean = rows["mean"].to_numpy(dtype=float)
                std = rows["std"].to_numpy(dtype=float)
                shown = np.isfinite(mean)
                style = mode_style(mode)
                axes.bar(xs[shown], mean[shown], width * 0.95,
                         yerr=np.where(np.isfinite(std), std, 0.0)[shown],
                         color=style["color"], hatch=style["hatch"], edgecolor="white",
                         linewidth=0.5, label=mode if axes is panels[0] else None,
                         error_kw={"elinewidth": 1, "capsize": 3})
                for xm in xs[~shown]:
                    axes.text(xm, 0, "–", ha="center", va="bottom", color=style["color"])
            axes.set_xticks(np.arange(len(models)), models)
            axes.set_title(f"{TASK_LABELS.get(task, task)}: {metric_label(metric)}")
            axes.set_ylabel(f"{metric_label(metric, arrow=False)}, avg over SNRs")
            axes.grid(axis="y", alpha=0.3)
            axes.set_axisbelow(True)
        figure.legend(loc="outside upper center", ncol=len(modes), frameon=False)
        return _save(figure, out_stem)
