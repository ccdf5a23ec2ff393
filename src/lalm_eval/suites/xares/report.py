"""The XARES report: the leaderboard (encoders x tasks, track scores), trained vs untrained,
the published baselines, the linear probes and their ranking agreement, a per-task chart and
the loss curves, and results.json (config, every training manifest, data hashes).

How a cell is computed (also in the captions):

* task value: the task's metric as upstream computes it (accuracy, mAP, iWER, iCER, ...),
  normalised between the metric's theoretical worst (0) and best (1) value; with
  ``score.normalise: chance_floor`` the chance level maps to 0 (values below it clip to 0);
* interval: 95 % percentile bootstrap over the task's test items; ``n`` = test items;
* track score: the (weighted; default equal) mean of the track's normalised task values;
  its interval resamples the items of every task of the track together (B = min(bootstrap,
  200) replicates);
* ties: systems whose shown (rounded) track scores are equal share a rank, written ``=``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lalm_eval.reports.tables import write_table

TRACK_BOOT_MAX = 200
DIGITS = 3


def _normaliser(task: Any, mode: str):
    from lalm_eval.metrics.xares import normalised

    chance = getattr(task, "chance", None) if mode == "chance_floor" else None
    return lambda v: float(normalised(v, task.worst, task.best, chance))


def _cell(value: float, low: float, high: float, n: int) -> str:
    if not np.isfinite(value):
        return "n/a"
    interval = (f" [{low:.{DIGITS}f}, {high:.{DIGITS}f}]"
                if np.isfinite(low) and np.isfinite(high) else "")
    return f"{value:.{DIGITS}f}{interval} (n={n})"


def _track_weights(settings: Mapping[str, Any], tasks: Mapping[str, Any]) -> dict[str, float]:
    weights = settings.get("score", {}).get("track_weights", "equal")
    if weights == "equal":
        return {t: 1.0 for t in tasks}
    return {t: float(weights.get(t, 0.0)) for t in tasks}


def track_bootstrap(items: pd.DataFrame, tasks: Mapping[str, Any], track: str,
                    weights: Mapping[str, float], norm: Mapping[str, Any], n_boot: int,
                    seed: int) -> tuple[float, float]:
    """Interval of a track score: every task's items resampled in each replicate."""
    from lalm_eval.metrics.xares import task_score

    names = [t for t in tasks if tasks[t].track == track and t in set(items["task"])
             and weights.get(t, 0) > 0]
    if not names or n_boot <= 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    groups = {t: items[items["task"] == t] for t in names}
    values = []
    for _ in range(n_boot):
        total = 0.0
        for t in names:
            group = groups[t]
            pick = rng.integers(0, len(group), len(group))
            preds = group["prediction"].fillna("").astype(str).to_numpy()[pick]
            refs = group["reference"].fillna("").astype(str).to_numpy()[pick]
            total += weights[t] * norm[t](task_score(tasks[t].metric, list(preds), list(refs),
                                                     tasks[t]))
        values.append(total / sum(weights[t] for t in names))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _ranks(values: list[float]) -> list[str]:
    """Competition ranks on the shown (rounded) values; ties share a rank marked '='."""
    shown = [round(v, DIGITS) if np.isfinite(v) else -np.inf for v in values]
    ranks = []
    for v in shown:
        rank = 1 + sum(other > v for other in shown)
        tied = sum(other == v for other in shown) > 1
        ranks.append(f"={rank}" if tied else str(rank))
    return ranks


def write_report(name: str, inputs: Mapping[str, Any], params: Mapping[str, Any],
                 out_dir: Path, seed: int) -> dict[str, Any]:
    """Every table and figure of one XARES suite; returns the results JSON."""
    from lalm_eval.reports.provenance import results_json
    from lalm_eval.suites.xares.tasks import load_task_set

    settings = params["settings"]
    task_set = load_task_set(settings["tasks"])
    tasks = task_set.tasks
    systems: Mapping[str, Mapping[str, Any]] = params["systems"]
    norm_mode = settings.get("score", {}).get("normalise", "identity")
    norm = {t: _normaliser(task, norm_mode) for t, task in tasks.items()}
    weights = _track_weights(settings, tasks)
    n_boot = int(settings.get("bootstrap", 1000))
    scores = pd.concat([pd.read_csv(p) for p in inputs["scores"]], ignore_index=True)
    primary = scores[[row.metric == tasks[row.task].metric for row in scores.itertuples()]]
    primary = primary.assign(normalised=[norm[r.task](r.value) for r in primary.itertuples()],
                             norm_low=[norm[r.task](r.ci_low) if np.isfinite(r.ci_low)
                                       else np.nan for r in primary.itertuples()],
                             norm_high=[norm[r.task](r.ci_high) if np.isfinite(r.ci_high)
                                        else np.nan for r in primary.itertuples()])
    out_dir.mkdir(parents=True, exist_ok=True)
    tables, figures = out_dir / "tables", out_dir / "figures"
    task_order = [t for t in tasks if t in set(primary["task"])]
    tracks = sorted({tasks[t].track for t in task_order})
    item_files = {(Path(p).parent.name, Path(p).name.split(".")[0]): p
                  for p in inputs.get("item_scores", [])}

    # ---------------------------------------------------------------- leaderboard
    def track_value(model: str, mode: str, track: str) -> tuple[float, int]:
        rows = primary[(primary.model == model) & (primary["mode"] == mode)]
        rows = rows[[tasks[t].track == track and weights[t] > 0 for t in rows.task]]
        if rows.empty:
            return float("nan"), 0
        w = np.array([weights[t] for t in rows.task])
        return float(np.dot(w, rows.normalised) / w.sum()), len(rows)

    board_rows, summary = [], {}
    for model, info in systems.items():
        row: dict[str, Any] = {"encoder": info["encoder"], "system": model}
        for track in tracks:
            value, n_tasks = track_value(model, "trained", track)
            low = high = float("nan")
            key = (model, "trained")
            if key in item_files and n_boot:
                items = pd.read_csv(item_files[key], keep_default_na=False)
                low, high = track_bootstrap(items, tasks, track, weights, norm,
                                            min(n_boot, TRACK_BOOT_MAX), seed)
            row[f"Track {track}"] = _cell(value, low, high, n_tasks).replace("(n=", "(tasks=")
            summary.setdefault(model, {})[f"track_{track}"] = value
        for task in task_order:
            hit = primary[(primary.model == model) & (primary["mode"] == "trained")
                          & (primary.task == task)]
            if hit.empty:
                row[task] = "n/a"
                continue
            r = hit.iloc[0]
            row[task] = _cell(r.normalised, r.norm_low, r.norm_high, int(r.n_items))
            summary[model][task] = float(r.normalised)
        board_rows.append(row)
    board = pd.DataFrame(board_rows)
    first_track = f"Track {tracks[0]}" if tracks else None
    if first_track:
        values = [summary[m].get(f"track_{tracks[0]}", float("nan")) for m in board.system]
        board.insert(0, "rank", _ranks(values))
        board = board.iloc[np.argsort([-v if np.isfinite(v) else np.inf for v in values],
                                      kind="stable")]
    board = board.set_index(["rank", "encoder", "system"] if first_track else
                            ["encoder", "system"])
    weighting = "equal-weight" if len(set(weights.values())) <= 1 else "weighted"
    normalise_note = ("normalised between the metric's worst (0) and best (1) value"
                      if norm_mode == "identity" else
                      "normalised so that chance level is 0 and the best value 1")
    notes = [f"Each task cell: the task's metric ({normalise_note}), its 95 % bootstrap "
             "interval over the test items and n test items; mAP as upstream computes it "
             "(classes absent from the test targets count as AP 0).",
             f"Track scores: {weighting} "
             "mean of the track's task values; interval from resampling every task's items "
             "together. Ranks by the first track; '=' marks a tie on the shown digits.",
             f"Task set {task_set.name}; metrics: " + ", ".join(
                 f"{t} {tasks[t].metric}" for t in task_order) + "."]
    paths = {"leaderboard": write_table(board, tables / "leaderboard",
                                        f"XARES leaderboard ({name})", notes=notes, bold={})}

    # ---------------------------------------------------------------- trained vs untrained
    if "untrained" in set(primary["mode"]):
        pairs = []
        for model, info in systems.items():
            for task in task_order:
                cells = {}
                for mode in ("trained", "untrained"):
                    hit = primary[(primary.model == model) & (primary["mode"] == mode)
                                  & (primary.task == task)]
                    cells[mode] = float(hit.iloc[0].normalised) if len(hit) else float("nan")
                pairs.append({"encoder": info["encoder"], "task": task,
                              "trained": f"{cells['trained']:.{DIGITS}f}",
                              "untrained": f"{cells['untrained']:.{DIGITS}f}",
                              "delta": f"{cells['trained'] - cells['untrained']:+.{DIGITS}f}"})
                summary[model][f"{task}_untrained"] = cells["untrained"]
        paths["untrained"] = write_table(
            pd.DataFrame(pairs).set_index(["encoder", "task"]), tables / "trained_vs_untrained",
            "Each system against its own untrained connector (normalised task values)",
            notes=["untrained: the same LALM with its connector and LoRA as initialised from "
                   "the recipe's seed."], bold={})

    # ---------------------------------------------------------------- held-out loss
    manifests = {m: json.loads(Path(info["manifest"]).read_text())
                 for m, info in systems.items()}
    paths["heldout_loss"] = write_table(
        heldout_loss_table(manifests, {m: info["encoder"] for m, info in systems.items()}),
        tables / "heldout_loss", "Held-out loss: each trained system against its own "
        "untrained connector", notes=[
            "Mean cross-entropy per target token on the training set's held-out rows, from "
            "each training manifest: the untrained connector (and LoRA) as initialised from "
            "the recipe's seed, and after training; lower is better."], bold={})

    # ---------------------------------------------------------------- published baselines
    baselines = getattr(task_set, "baselines", None) or {}
    published = settings.get("published", {})
    rows = []
    for model, baseline in published.items():
        for task in task_order:
            reference = (baselines.get(baseline) or {}).get(task)
            value = summary.get(model, {}).get(task, float("nan"))
            known = reference is not None
            rows.append({"system": model, "baseline": baseline, "task": task,
                         "value": f"{value:.{DIGITS}f}",
                         "published": f"{reference:.{DIGITS}f}" if known else "n/a",
                         "delta": f"{value - reference:+.{DIGITS}f}" if known else "n/a"})
    table = (pd.DataFrame(rows).set_index(["system", "task"]) if rows else
             pd.DataFrame({"note": ["no system of this suite is set as a published baseline "
                                    "(suites.<name>.published: {system: baseline})"]}))
    paths["published"] = write_table(table, tables / "published_baselines",
                                     "Our numbers against the published baselines", bold={})

    # ---------------------------------------------------------------- probes
    probe_summary: dict[str, Any] = {}
    if inputs.get("probes"):
        from lalm_eval.suites.xares.probes import rank_agreement

        probes = pd.concat([pd.read_csv(p) for p in inputs["probes"] if Path(p).stat().st_size],
                           ignore_index=True) if any(Path(p).stat().st_size
                                                     for p in inputs["probes"]) else pd.DataFrame()
        if not probes.empty:
            probes = probes[[r.metric == tasks[r.task].metric for r in probes.itertuples()]]
            probes = probes.assign(normalised=[norm[r.task](r.value)
                                               for r in probes.itertuples()])
            cells = probes.assign(cell=[_cell(norm[r.task](r.value),
                                              norm[r.task](r.ci_low), norm[r.task](r.ci_high),
                                              int(r.n_items)) for r in probes.itertuples()])
            grid = cells.pivot(index="model", columns="task", values="cell")
            grid.index.name = "encoder"
            paths["probes"] = write_table(
                grid, tables / "linear_probes",
                "Linear probes on the same cached features (closed-set tasks)",
                notes=["Probe: logistic regression (or MLP) on clip-pooled, standardised "
                       "features, trained on the train and valid rows; scored like the "
                       "LALMs. Open tasks have no probe."], bold={})
            agreement_rows = []
            encoder_of = {m: info["encoder"] for m, info in systems.items()}
            for track in tracks:
                track_tasks = [t for t in task_order if tasks[t].track == track
                               and t in set(probes.task)]
                if not track_tasks:
                    continue
                lalm = {encoder_of[m]: float(np.mean([summary[m].get(t, np.nan)
                                                      for t in track_tasks]))
                        for m in systems}
                probe = {e: float(probes[(probes.model == e)
                                         & probes.task.isin(track_tasks)].normalised.mean())
                         for e in set(probes.model)}
                agreement = rank_agreement(lalm, probe)
                agreement_rows.append({"track": track, "tasks": ", ".join(track_tasks),
                                       **{k: (f"{v:.3f}" if isinstance(v, float) else v)
                                          for k, v in agreement.items()}})
                probe_summary[track] = {"lalm": lalm, "probe": probe, **agreement}
            if agreement_rows:
                paths["agreement"] = write_table(
                    pd.DataFrame(agreement_rows).set_index("track"),
                    tables / "ranking_agreement",
                    "Probe ranking vs LALM ranking of the encoders",
                    notes=["Over the closed-set tasks both score; n = encoders. Kendall tau "
                           "and Spearman rho with their p-values (undefined below n = 3 or when "
                           "either ranking is one tie)."],
                    bold={})

    # ---------------------------------------------------------------- figures
    figures.mkdir(parents=True, exist_ok=True)
    paths["per_task"] = _per_task_chart(primary, systems, task_order, figures / "per_task.png")
    from lalm_eval.training.engine import plot_loss_curves

    plot_loss_curves({m: Path(info["loss"]) for m, info in systems.items()},
                     figures / "loss_curves.png", title=f"Training loss ({name})")
    paths["loss_curves"] = figures / "loss_curves.png"

    # ---------------------------------------------------------------- results.json
    paths["results"] = out_dir / "results.json"
    results_json(paths["results"], config_slice=dict(settings), seeds={"report": seed},
                 prompt_hashes={}, scorer={"normalise": norm_mode, "track_weights": weights,
                                           "bootstrap": n_boot},
                 extra={"task_set": {"name": task_set.name, "source": task_set.source},
                        "summary": summary, "probes": probe_summary,
                        "manifests": manifests,
                        "data_hashes": {m: man.get("identity", {}).get("data_hash")
                                        for m, man in manifests.items()},
                        "scores": primary.to_dict("records")})
    return {k: str(v) for k, v in paths.items()}


def heldout_loss_table(manifests: Mapping[str, Mapping[str, Any]],
                       encoders: Mapping[str, str]) -> pd.DataFrame:
    """One row per trained system: steps, held-out loss untrained and trained, and whether
    training beat the untrained connector (from the training manifests)."""
    rows = []
    for model, manifest in manifests.items():
        before, after = manifest.get("heldout_loss_untrained"), manifest.get("heldout_loss")
        known = before is not None and after is not None
        rows.append({"system": model, "encoder": encoders.get(model, ""),
                     "steps": manifest.get("steps_done"),
                     "untrained": f"{before:.3f}" if before is not None else "n/a",
                     "trained": f"{after:.3f}" if after is not None else "n/a",
                     "beats untrained": ("yes" if after < before else "no") if known else "n/a",
                     "train s": f"{manifest.get('elapsed_s', float('nan')):.0f}",
                     "precision": manifest.get("precision", "")})
    return pd.DataFrame(rows).set_index("system")


def _per_task_chart(primary: pd.DataFrame, systems: Mapping[str, Mapping[str, Any]],
                    task_order: list[str], path: Path) -> Path:
    """Grouped bars: normalised value per task and encoder (trained), with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(task_order)), 3.6))
    width = 0.8 / max(1, len(systems))
    for k, (model, info) in enumerate(systems.items()):
        rows = primary[(primary.model == model) & (primary["mode"] == "trained")]
        rows = rows.set_index("task").reindex(task_order)
        x = np.arange(len(task_order)) + k * width
        err = np.vstack([rows.normalised - rows.norm_low, rows.norm_high - rows.normalised])
        ax.bar(x, rows.normalised, width, label=info["encoder"],
               yerr=np.nan_to_num(np.clip(err, 0, None)), capsize=2)
    ax.set_xticks(np.arange(len(task_order)) + 0.4 - width / 2, task_order, rotation=30,
                  ha="right")
    ax.set_ylabel("normalised score")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=min(5, len(systems)))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
