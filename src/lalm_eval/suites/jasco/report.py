"""JASCO report: Table II (Best-Mean, judges x systems), parsing-mode difference, modality
dependence (table and stacked bars), judge agreement and judge health, results JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lalm_eval.metrics.stats import mean_std
from lalm_eval.reports.figures import _new_figure, _save, _style
from lalm_eval.reports.provenance import results_json
from lalm_eval.reports.tables import format_cell, write_table
from lalm_eval.suites.jasco import judging as J

#: colours of the three dependence classes (Okabe-Ito)
DEPENDENCE_COLOURS = {"audio": "#E69F00", "speech": "#56B4E9", "both": "#009E73"}
AVERAGE = "Avg."


def table2(best_means: pd.DataFrame, mode: str, digits: int = 3) -> pd.DataFrame:
    """Best-Mean (0-2) of each system (rows) under each judge and their average (columns);
    mean ± std over answer runs; a cell with lost or unparsed items is marked with '*'."""
    frame = best_means[best_means["mode"] == mode]
    judges = sorted(frame["judge"].unique())
    rows = {}
    for model, per_model in frame.groupby("model", sort=True):
        row = {}
        for judge in judges:
            cell = per_model[per_model["judge"] == judge]
            mean, std = mean_std(list(cell["best_mean"]))
            flag = " *" if (cell["n_lost"].sum() + cell["n_unparsed"].sum()) else ""
            row[judge] = format_cell(mean, std, digits) + flag
        per_run = per_model.groupby("run")["best_mean"].mean()  # panel average per run
        mean, std = mean_std(list(per_run))
        row[AVERAGE] = format_cell(mean, std, digits)
        rows[model] = row
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[*judges, AVERAGE])
    table.index.name = "system"
    table.attrs["notes"] = [
        f"Best-Mean: mean over clips of the best row score among the clip's 8 instructions; "
        f"a row scores its rating (0-2) only when the judge says the answer used both sound "
        f"and speech, else 0. Parsing mode: {mode}.",
        "Avg.: mean of the judges' Best-Means (per run, then over runs).",
        "* some items of this cell were lost (judge call failed) or unparsed; see "
        "judge_health and best_mean.csv.",
    ]
    return table


def parsing_difference(best_means: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Faithful vs strict Best-Mean per (system, judge), averaged over runs, and the gap."""
    # a mode whose Best-Means are all undefined must still get its column
    pivot = best_means.pivot_table(index=["model", "judge"], columns="mode",
                                   values="best_mean", aggfunc="mean", dropna=False
                                   ).reindex(columns=list(J.PARSING_MODES))
    counts = best_means[best_means["mode"] == "faithful"].groupby(["model", "judge"])[
        ["n_carried_over", "n_unparsed"]].sum()
    strict_unparsed = best_means[best_means["mode"] == "strict"].groupby(
        ["model", "judge"])["n_unparsed"].sum()
    out = pd.DataFrame(index=pivot.index)
    out["faithful"] = [format_cell(v, None, digits) for v in pivot["faithful"]]
    out["strict"] = [format_cell(v, None, digits) for v in pivot["strict"]]
    out["faithful - strict"] = [format_cell(a - b, None, digits)
                                for a, b in zip(pivot["faithful"], pivot["strict"], strict=True)]
    out["carried over (faithful)"] = counts["n_carried_over"].reindex(out.index).astype(int)
    out["unparsed (strict)"] = strict_unparsed.reindex(out.index).astype(int)
    out.index.names = ["system", "judge"]
    out.attrs["notes"] = [
        "faithful reproduces upstream parsing (a missing rating line takes the previous "
        "response's rating; unreadable orientation goes to a second call); strict leaves "
        "unreadable verdicts out and counts them."]
    return out


def dependence_chart(dependence: pd.DataFrame, out_stem: str | Path, mode: str
                     ) -> tuple[Path, Path]:
    """Stacked bars of audio / speech / both shares: one bar per (system, judge)."""
    frame = dependence[dependence["mode"] == mode].sort_values(["model", "judge"])
    labels = [f"{m}\n{j}" for m, j in zip(frame["model"], frame["judge"], strict=True)]
    with _style():
        figure = _new_figure(max(4.0, 0.9 * len(frame) + 2.0), 3.6)
        ax = figure.add_subplot()
        x = np.arange(len(frame))
        bottom = np.zeros(len(frame))
        for label in J.DEPENDENCE_LABELS:
            values = np.nan_to_num(frame[label].to_numpy(dtype=float) * 100.0)
            ax.bar(x, values, 0.7, bottom=bottom, label=label,
                   color=DEPENDENCE_COLOURS[label], edgecolor="white", linewidth=0.5)
            bottom += values
        for xi, n in zip(x, frame["n"], strict=True):
            ax.text(xi, 101, f"n={n}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_ylim(0, 110)
        ax.set_ylabel("share of rated answers (%)")
        ax.set_title(f"Modality dependence ({mode} parsing)", fontsize=9)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        return _save(figure, out_stem)


def _dependence_cells(dependence: pd.DataFrame) -> pd.DataFrame:
    out = dependence.set_index(["mode", "model", "judge"]).copy()
    for label in J.DEPENDENCE_LABELS:
        out[label] = [format_cell(v * 100.0 if v == v else None, None, 1) for v in out[label]]
    out.index.names = ["parsing", "system", "judge"]
    out.attrs["notes"] = ["Shares (%) of answers the judge called audio-, speech- or "
                          "both-oriented; 'neither' and unreadable orientations are excluded."]
    return out


def build_jasco_report(verdicts: pd.DataFrame, out_dir: str | Path, *,
                       config_slice: Mapping[str, Any], seeds: Mapping[str, Any],
                       protocol: Mapping[str, Any]) -> dict[str, Path]:
    """Write every JASCO table (CSV/MD/TeX), the dependence figures and results.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables, figures = out_dir / "tables", out_dir / "figures"
    best = J.best_mean_table(verdicts)
    dependence = J.dependence_table(verdicts)
    agreement = J.agreement_table(verdicts)
    health = J.judge_health_table(verdicts)
    best.to_csv(out_dir / "best_mean.csv", index=False)
    dependence.to_csv(out_dir / "modality_dependence.csv", index=False)
    agreement.to_csv(out_dir / "agreement.csv", index=False)
    health.to_csv(out_dir / "judge_health.csv", index=False)
    paths: dict[str, Path] = {}
    for mode in J.PARSING_MODES:
        paths[f"table2_{mode}"] = write_table(
            table2(best, mode), tables / f"table2_{mode}",
            f"Table II: Best-Mean on JASCO ({mode} parsing)", bold={})[1]
        paths[f"dependence_{mode}"] = dependence_chart(
            dependence, figures / f"modality_dependence_{mode}", mode)[0]
    paths["parsing_difference"] = write_table(
        parsing_difference(best), tables / "parsing_difference",
        "Best-Mean under faithful and strict verdict parsing", bold={})[1]
    paths["dependence_table"] = write_table(
        _dependence_cells(dependence), tables / "modality_dependence",
        "Modality dependence per system and judge", bold={})[1]
    paths["agreement"] = write_table(
        _agreement_cells(agreement), tables / "agreement",
        "Judge agreement on ratings (faithful and strict parsing)", bold={})[1]
    paths["judge_health"] = write_table(
        _health_cells(health), tables / "judge_health",
        "Judge calls: lost items, parse failures, carry-overs", bold={})[1]
    summary = {
        "best_mean": _records(best), "judge_health": _records(health),
        "agreement": _records(agreement),
    }
    paths["results"] = out_dir / "results.json"
    results_json(paths["results"], config_slice=dict(config_slice), seeds=dict(seeds),
                 prompt_hashes={"instructions": protocol["instructions_sha256"],
                                "judge_template": protocol["judge_template_sha256"]},
                 scorer={"parsing_modes": list(J.PARSING_MODES)},
                 extra={"protocol_source": protocol.get("source"), "summary": summary})
    return paths


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


def _agreement_cells(agreement: pd.DataFrame) -> pd.DataFrame:
    out = agreement.set_index(["parsing", "scope", "statistic", "judges"]).copy()
    for column in ("value", "value_linear"):
        out[column] = [format_cell(v if v == v else None, None, 3) for v in out[column]]
    out = out.rename(columns={"value": "value", "value_linear": "kappa (linear weights)"})
    out.attrs["notes"] = [
        "Ratings 0-2; strict: well-formed verdicts only; faithful: any rating the upstream "
        "parser read from the response (carried-over ratings left out). Kappa over items "
        "both judges rated, alpha (ordinal) over the panel with missing values; '-' = "
        "undefined (too few items, one judge only, or no variation)."]
    return out


def _health_cells(health: pd.DataFrame) -> pd.DataFrame:
    out = health.set_index("judge").copy()
    for column in ("parse_failure_rate_strict", "parse_failure_rate_faithful"):
        out[column] = [format_cell(v * 100.0 if v == v else None, None, 1) for v in out[column]]
    out = out.rename(columns={"parse_failure_rate_strict": "parse failures strict (%)",
                              "parse_failure_rate_faithful": "parse failures faithful (%)"})
    out.attrs["notes"] = ["lost: the judge call failed after its retries (the item is left "
                          "out of that judge's scores, never filled from another row)."]
    return out
