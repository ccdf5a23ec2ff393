"""Auditory-knowledge report: MCQ accuracy per category, cascade results, audio-grounded
results, and the correlation heatmap across every metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lalm_eval.metrics.correlation import pairwise_correlations
from lalm_eval.reports.heatmap import correlation_heatmap, correlation_table
from lalm_eval.reports.provenance import results_json
from lalm_eval.reports.tables import format_cell, write_table
from lalm_eval.suites.knowledge import (
    CASCADE_PREFIX,
    GROUNDED,
    JUDGE_PREFIX,
    QUESTION,
    UNTRAINED,
    grounded_settings,
)
from lalm_eval.suites.knowledge.mmau import (
    MMAR_LAYERS,
    MMAR_MODALITIES,
    MMAU_DIFFICULTIES,
    MMAU_TASKS,
)

#: display name of each accuracy breakdown (common-table column), per benchmark kind
BREAKDOWN_LABELS = {
    "mmau": {"task": "task", "difficulty": "difficulty", "sub_category": "sub-category"},
    "mmar": {"task": "modality", "category": "layer", "sub_category": "sub-category"},
}
#: the order the official scripts print these groups in (others: sorted)
_GROUP_ORDER = {("mmau", "task"): MMAU_TASKS, ("mmau", "difficulty"): MMAU_DIFFICULTIES,
                ("mmar", "task"): MMAR_MODALITIES, ("mmar", "category"): MMAR_LAYERS}


def _cell(values: pd.Series, digits: int = 1) -> str:
    finite = values.dropna()
    if finite.empty:
        return format_cell(None)
    std = float(finite.std(ddof=1)) if len(finite) > 1 else None
    return format_cell(float(finite.mean()), std, digits)


def mcq_table(accuracy: pd.DataFrame, balance: Mapping[str, Any]) -> pd.DataFrame:
    """Rows: text LLMs; columns: overall accuracy (%) then each category; mean ± std over runs."""
    levels = accuracy[accuracy["level"].isin(["overall", "category"])]
    columns = ["overall"] + [g for g in dict.fromkeys(levels[levels["level"] == "category"]
                                                       ["group"])]
    rows = {}
    for model, frame in levels.groupby("model", sort=True):
        row = {}
        for column in columns:
            part = frame[(frame["level"] == "overall") if column == "overall"
                         else (frame["group"] == column)]
            row[column] = _cell(part["accuracy"])
        unanswered = frame[frame["level"] == "overall"][["n_unparsed", "n_failed",
                                                         "n_missing"]].sum().sum()
        row["unanswered"] = int(unanswered)
        rows[model] = row
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[*columns, "unanswered"])
    table.index.name = "model"
    counts = balance.get("counts", {})
    table.attrs["notes"] = [
        "Accuracy (%) on four-option questions answered from text only (chance 25 %); "
        "unparsed, failed and missing answers count as wrong (column 'unanswered').",
        "Answer positions of the set: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f" (chi-square p = {balance.get('p_value', float('nan')):.3f}).",
    ]
    table.attrs["bold"] = {"axis": "rows", "columns": columns}
    table.attrs["metric"] = "accuracy"
    return table


def _choice_rows(accuracy: pd.DataFrame, modes: Sequence[str]) -> pd.DataFrame:
    frame = accuracy[accuracy["mode"].isin(modes)
                     & accuracy["breakdown"].isin(["overall", "task"])]
    if frame.empty:
        return pd.DataFrame()
    judges = sorted(m for m in frame["matcher"].unique() if str(m).startswith("judge:"))
    keys = sorted({(b, f"{v}" if k == "overall" else f"{v}")
                   for b, k, v in zip(frame["benchmark"], frame["breakdown"], frame["value"],
                                      strict=True) if k in ("overall", "task")})
    rows = {}
    for (model, mode), part in frame.groupby(["model", "mode"], sort=True):
        # cascades by captioner; a LALM's modes (grounded, untrained, ...) by mode name
        label = (model, mode[len(CASCADE_PREFIX):] if mode.startswith(CASCADE_PREFIX)
                 else ("-" if mode == "audio" else mode))
        row = {}
        for benchmark, value in keys:
            for matcher in ("faithful", "strict", *judges):
                if matcher != "faithful" and value != "all":
                    continue
                cell = part[(part["benchmark"] == benchmark) & (part["value"] == value)
                            & (part["matcher"] == matcher)]
                if matcher in judges and cell.empty:
                    continue
                name = f"{benchmark} {value}" + ("" if matcher == "faithful"
                                                 else f" ({matcher})")
                row[name] = _cell(cell["accuracy"])
        rows[label] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table = table.fillna(format_cell(None))          # e.g. a judge column of unjudged rows
    table.index = pd.MultiIndex.from_tuples(table.index, names=["model", "captioner / mode"])
    table.attrs["notes"] = [
        "Accuracy (%) with the official MMAU/MMAR matcher (a prediction is right when it "
        "holds every word of the answer and no word only found in a wrong choice). "
        "Faithful: items without a prediction are skipped, as upstream; strict: counted "
        "wrong. 'all' = every item; sound / music / speech (MMAR: modality) break it down. "
        "(judge:<model>): an LLM judge's verdict of the answer against the reference "
        "(items with a parsed verdict)."]
    table.attrs["bold"] = {"axis": "rows", "columns": list(table.columns)}
    table.attrs["metric"] = "accuracy"
    return table


def _system_label(model: str, mode: str) -> str:
    if mode.startswith(CASCADE_PREFIX):
        return f"{model} via {mode[len(CASCADE_PREFIX):]}"
    return f"{model} {mode}"


def breakdown_table(accuracy: pd.DataFrame, benchmark: str,
                    items: pd.DataFrame | None = None) -> pd.DataFrame:
    """One benchmark's accuracy broken down as its official script does.

    Rows: ``all``, then every group of each breakdown (MMAU: task, difficulty,
    sub-category; MMAR: modality, layer, sub-category; the kind is read from the
    breakdowns present: only MMAR has ``category`` rows); columns: ``items`` (questions in
    the group), then one per system (``<model> via <captioner>`` for cascades, ``<model>
    audio``): faithful accuracy (%), mean ± std over runs. ``items`` (the benchmark's
    common table), when given, adds a note counting its items with a ``note`` / ``problem``.
    """
    frame = accuracy[(accuracy["benchmark"] == benchmark)
                     & (accuracy["matcher"] == "faithful") & (accuracy["mode"] != "caption")]
    if frame.empty:
        return pd.DataFrame()
    present = set(frame["breakdown"]) - {"overall"}
    kind = "mmar" if "category" in present else "mmau"
    labels = BREAKDOWN_LABELS[kind]
    systems = sorted({(str(m), str(o)) for m, o in zip(frame["model"], frame["mode"],
                                                       strict=True)},
                     key=lambda s: (s[1] == "audio", s[0], s[1]))
    groups: list[tuple[str, str]] = [("overall", "all")]
    for column in [c for c in labels if c in present]:
        values = list(dict.fromkeys(frame.loc[frame["breakdown"] == column, "value"]))
        order = _GROUP_ORDER.get((kind, column), ())
        groups += [(column, v) for v in sorted(
            values, key=lambda v: (order.index(v) if v in order else len(order), str(v)))]
    rows = {}
    for column, value in groups:
        part = frame[(frame["breakdown"] == column) & (frame["value"] == value)]
        size = (part["n"] + part["n_skipped"]).max()
        row: dict[str, Any] = {"items": int(size) if len(part) else 0}
        for model, mode in systems:
            cell = part[(part["model"] == model) & (part["mode"] == mode)]
            row[_system_label(model, mode)] = _cell(cell["accuracy"])
        rows[("overall" if column == "overall" else labels[column], value)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["breakdown", "group"])
    breakdowns = ", ".join(labels[c] for c in labels if c in present)
    notes = [
        f"Accuracy (%) with the official {kind.upper()} matcher, faithful (items without a "
        f"prediction skipped, as upstream), by {breakdowns} as the official script breaks "
        "it down; 'items' = questions in the group. Items without a sub-category are in "
        "none of its groups."]
    if items is not None and len(items):
        noted = int(items["note"].astype(bool).sum()) if "note" in items else 0
        problems = int(items["problem"].astype(bool).sum()) if "problem" in items else 0
        notes.append(f"{noted} question(s) with a note (e.g. an empty choice, kept and scored "
                     f"as upstream) and {problems} with a problem (e.g. audio not found, "
                     "answer not among the choices); see the benchmark table.")
    table.attrs["notes"] = notes
    table.attrs["bold"] = {"axis": "cols",
                           "columns": [_system_label(m, o) for m, o in systems]}
    table.attrs["metric"] = "accuracy"
    return table


def build_knowledge_report(*, mcq_accuracy: pd.DataFrame, choice_accuracy: pd.DataFrame,
                           metrics: pd.DataFrame, blocks: Mapping[str, Sequence[str]],
                           balance: Mapping[str, Any], out_dir: str | Path,
                           correlation: Mapping[str, Any], config_slice: Mapping[str, Any],
                           seeds: Mapping[str, Any], prompt_hashes: Mapping[str, str],
                           benchmarks: Mapping[str, pd.DataFrame] | None = None,
                           backbone_of: Mapping[str, str] | None = None,
                           training: Mapping[str, Mapping[str, Any]] | None = None,
                           judge_agreement: pd.DataFrame | None = None
                           ) -> dict[str, Path]:
    """Write the study's three tables, one breakdown table per benchmark
    (``breakdown_<benchmark>``, see :func:`breakdown_table`; ``benchmarks`` maps its name to
    its common table), the correlation table and heatmap, results.json."""
    out_dir = Path(out_dir)
    tables, figures = out_dir / "tables", out_dir / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    mcq_accuracy.to_csv(out_dir / "mcq_accuracy.csv", index=False)
    choice_accuracy.to_csv(out_dir / "choice_accuracy.csv", index=False)
    metrics.to_csv(out_dir / "metrics.csv", index_label="model")
    if len(mcq_accuracy):
        paths["mcq"] = write_table(mcq_table(mcq_accuracy, balance), tables / "mcq_accuracy",
                                   "Auditory knowledge from text only: accuracy per "
                                   "category")[1]
    for name, modes, caption in (
            ("cascade", [m for m in choice_accuracy.get("mode", pd.Series(dtype=str)).unique()
                         if str(m).startswith(CASCADE_PREFIX)],
             "Cascade: captioner description, then a text LLM answers"),
            ("audio_grounded", ["audio", GROUNDED, UNTRAINED, QUESTION],
             "Audio-grounded: the model answers from the audio (and the baselines)")):
        table = _choice_rows(choice_accuracy, modes) if len(choice_accuracy) else pd.DataFrame()
        if len(table):
            paths[name] = write_table(table, tables / name, caption)[1]
    backbone_of = dict(backbone_of or {})
    if backbone_of and len(choice_accuracy):
        table = three_settings_table(mcq_accuracy, choice_accuracy, backbone_of, training or {})
        paths["three_settings"] = write_table(
            table, tables / "three_settings",
            "Each backbone three ways: from text, through a captioner, and as its own LALM")[1]
        paths["grounded_scatter"] = domain_scatter(choice_accuracy, backbone_of,
                                                   figures / "cascade_vs_grounded.png")
    if judge_agreement is not None and len(judge_agreement):
        paths["judge_agreement"] = write_table(
            judge_agreement, tables / "judge_agreement",
            "LLM judge against the official matcher, item by item")[1]
    for benchmark in (sorted(choice_accuracy["benchmark"].unique())
                      if len(choice_accuracy) else []):
        table = breakdown_table(choice_accuracy, benchmark, (benchmarks or {}).get(benchmark))
        if len(table):
            paths[f"breakdown_{benchmark}"] = write_table(
                table, tables / f"breakdown_{benchmark}",
                f"{benchmark}: accuracy by the official breakdowns")[1]
    order = [m for block in blocks.values() for m in block]
    long = pairwise_correlations(metrics[order], min_n=int(correlation["min_n"]),
                                 n_boot=int(correlation["bootstrap"]),
                                 seed=int(seeds["global"]))
    long.to_csv(out_dir / "correlations.csv", index=False)
    png, _ = correlation_heatmap(long, figures / "correlation_heatmap", metric_order=order,
                                 blocks=dict(blocks),
                                 title="Pearson r between metrics over models (n per cell)")
    paths["heatmap"] = png
    paths["correlation_table"] = correlation_table(long, tables / "correlations",
                                                   metric_order=order)[1]
    defined = long[long["defined"] & (long["metric_a"] != long["metric_b"])]
    paths["results"] = out_dir / "results.json"
    results_json(paths["results"], config_slice=dict(config_slice), seeds=dict(seeds),
                 prompt_hashes=dict(prompt_hashes),
                 scorer={"matcher": "MMAU/MMAR official token rule, faithful and strict",
                         "correlation": dict(correlation)},
                 extra={"metrics": {m: {k: (None if np.isnan(v) else float(v))
                                        for k, v in metrics[m].items()} for m in order},
                        "n_defined_pairs": int(len(defined) // 2),
                        "position_balance": dict(balance)})
    return paths


def report_from_jobs(jobs: Sequence[Mapping[str, Any]], *, mcq_tables: Sequence[str],
                     benchmark_tables: Sequence[str], suite_config: Mapping[str, Any],
                     models: Mapping[str, Any], seed: int, out_dir: str | Path) -> None:
    """Score every prediction file of a knowledge suite and write its report.

    ``jobs`` are the suite's prediction jobs (model, mode, split, run, role, path); caption
    jobs are inputs of the cascades, not scored themselves.
    """
    import json

    from lalm_eval.suites.knowledge import jobs as knowledge
    from lalm_eval.suites.knowledge.mmau import load_choice_prompts

    mcq_files = {(j["model"], int(j["run"])): j["path"] for j in jobs if j["role"] == "text"}
    choice_files = {(j["split"], j["model"], j["mode"], int(j["run"])): j["path"]
                    for j in jobs if j["role"] in ("cascade", "audio", GROUNDED, UNTRAINED,
                                                   QUESTION)}
    grounded = grounded_settings(suite_config)
    backbone_of = {lalm: backbone for backbone, lalm in grounded["models"].items()}
    grounded_prompts = grounded["choice_prompts"] or suite_config["choice_prompts"]
    prefix = load_choice_prompts(grounded_prompts).answer_prefix
    prefixes = {mode: prefix for mode in (GROUNDED, UNTRAINED, QUESTION)}
    balance, hashes = {}, {}
    mcq_acc = pd.DataFrame()
    if mcq_files:
        mcq = knowledge.read_mcq_table(mcq_tables[0])
        balance = json.loads(Path(mcq_tables[0]).with_suffix(".balance.json").read_text())
        hashes["mcq_set"] = balance.get("sha256")
        _, mcq_acc = knowledge.score_mcq_runs(mcq, mcq_files)
    tables = {Path(p).stem: knowledge.read_benchmark_table(p) for p in benchmark_tables}
    choice_items, choice_acc = knowledge.score_choice_runs(tables, choice_files, prefixes)
    judge_files = {(j["split"], j["mode"][len(JUDGE_PREFIX):], j["model"], int(j["run"])):
                   j["path"] for j in jobs if j["role"] == "judge"}
    agreement = pd.DataFrame()
    if judge_files:
        judge_items, judged = knowledge.score_judge_runs(tables, judge_files)
        choice_acc = pd.concat([choice_acc, judged], ignore_index=True)
        agreement = judge_agreement_table(choice_items, judge_items)
    correlation = suite_config["correlation"]
    metrics, blocks = knowledge.metric_table(mcq_acc, choice_acc, correlation["matcher"],
                                             backbone_of)
    build_knowledge_report(
        mcq_accuracy=mcq_acc, choice_accuracy=choice_acc, metrics=metrics, blocks=blocks,
        balance=balance, out_dir=Path(out_dir), correlation=correlation,
        config_slice={"suite": dict(suite_config), "models": dict(models)},
        seeds={"global": seed, "runs": suite_config["runs"]}, prompt_hashes=hashes,
        benchmarks=tables, backbone_of=backbone_of, training=_training_summaries(jobs, models),
        judge_agreement=agreement,
    )


# --------------------------------------------------------------------------- grounded arm


def _training_summaries(jobs: Sequence[Mapping[str, Any]], models: Mapping[str, Any]
                        ) -> dict[str, dict[str, Any]]:
    """Per grounded LALM: steps, held-out loss untrained / trained and seconds, from its
    training manifest (when the model entry names a finished training folder)."""
    import json

    out: dict[str, dict[str, Any]] = {}
    for job in jobs:
        if job["role"] != GROUNDED or job["model"] in out:
            continue
        source = (models.get(job["model"]) or {}).get("source")
        manifest = Path(str(source)) / "manifest.json" if source else None
        if manifest is not None and manifest.is_file():
            data = json.loads(manifest.read_text())
            out[job["model"]] = {k: data.get(k) for k in (
                "steps_done", "heldout_loss_untrained", "heldout_loss", "elapsed_s",
                "precision")}
    return out


def _accuracy(frame: pd.DataFrame, benchmark: str, model: str, mode: str,
              value: str = "all", matcher: str = "faithful") -> tuple[float, int]:
    """Accuracy (mean over runs; faithful matcher unless named) and n of one system on
    one group."""
    part = frame[(frame["benchmark"] == benchmark) & (frame["model"] == model)
                 & (frame["mode"] == mode) & (frame["value"] == value)
                 & (frame["matcher"] == matcher)]
    if part.empty:
        return float("nan"), 0
    return float(part["accuracy"].mean()), int(part["n"].max())


def three_settings_table(mcq_accuracy: pd.DataFrame, choice_accuracy: pd.DataFrame,
                         backbone_of: Mapping[str, str],
                         training: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Rows: backbones with a grounded LALM; columns: MCQ overall, cascade accuracy per
    (benchmark, captioner), the grounded LALM's accuracy per benchmark beside its untrained
    connector and the question-only baseline, and the held-out stage-2 loss (untrained ->
    trained). Faithful matcher, accuracy (%) with n."""
    overall = choice_accuracy[choice_accuracy["breakdown"] == "overall"]
    judges = sorted(m for m in overall["matcher"].unique() if str(m).startswith("judge:"))
    rows = {}
    for lalm, backbone in sorted(backbone_of.items(), key=lambda kv: kv[1]):
        row: dict[str, Any] = {}
        mcq = mcq_accuracy[(mcq_accuracy.get("model") == backbone)
                           & (mcq_accuracy.get("level") == "overall")] if len(mcq_accuracy) \
            else pd.DataFrame()
        row["MCQ overall"] = _cell(mcq["accuracy"]) if len(mcq) else format_cell(None)
        for benchmark in sorted(overall["benchmark"].unique()):
            for mode in sorted(m for m in overall["mode"].unique()
                               if str(m).startswith(CASCADE_PREFIX)):
                value, n = _accuracy(overall, benchmark, backbone, mode)
                row[f"{benchmark} via {mode[len(CASCADE_PREFIX):]}"] = _with_n(value, n)
            for mode, label in ((GROUNDED, "audio-grounded"), (UNTRAINED, "untrained"),
                                (QUESTION, "question only")):
                model = backbone if mode == QUESTION else lalm
                value, n = _accuracy(overall, benchmark, model, mode)
                row[f"{benchmark} {label}"] = _with_n(value, n)
                if mode == GROUNDED:
                    for matcher in judges:
                        value, n = _accuracy(overall, benchmark, lalm, mode, matcher=matcher)
                        row[f"{benchmark} {label} ({matcher})"] = _with_n(value, n)
        info = training.get(lalm) or {}
        before, after = info.get("heldout_loss_untrained"), info.get("heldout_loss")
        row["held-out loss"] = (f"{before:.3f} -> {after:.3f}"
                                if before is not None and after is not None else "n/a")
        row["steps"] = info.get("steps_done", "n/a")
        rows[(backbone, lalm)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["backbone", "LALM"])
    table.attrs["notes"] = [
        "Accuracy (%), faithful official matcher, mean over runs (n = items scored). "
        "audio-grounded: the backbone's own LALM (DeSTA-style self-distillation: frozen "
        "encoder and LLM, trained connector) answering from the audio; untrained: the same "
        "LALM with its connector as initialised; question only: the backbone answering from "
        "the question and options alone. held-out loss: stage-2 cross-entropy per target "
        "token on the held-out clips, untrained -> trained. (judge:<model>): the share of "
        "the audio-grounded answers an LLM judge accepts against the reference."]
    table.attrs["bold"] = {}
    return table


def judge_agreement_table(choice_items: pd.DataFrame, judge_items: pd.DataFrame
                          ) -> pd.DataFrame:
    """Per (benchmark, judged LALM, judge): items both scored, the share where the judge's
    verdict equals the faithful matcher's, and the two kinds of disagreement."""
    matcher = choice_items[(choice_items["mode"] == GROUNDED)
                           & (choice_items["matcher"] == "faithful")
                           & choice_items["counted"].astype(bool)]
    keys = ["benchmark", "model", "run", "item_id"]
    verdicts = judge_items[judge_items["counted"].astype(bool)]
    both = verdicts.merge(matcher[[*keys, "correct"]], on=keys, suffixes=("_judge", ""))
    rows = {}
    for (benchmark, model, judge), part in both.groupby(["benchmark", "model", "matcher"]):
        said, right = part["correct_judge"].astype(bool), part["correct"].astype(bool)
        rows[(benchmark, model, judge.split(":", 1)[1])] = {
            "n": str(len(part)),
            "agreement (%)": f"{100.0 * float((said == right).mean()):.1f}",
            "judge yes, matcher wrong": str(int((said & ~right).sum())),
            "judge no, matcher right": str(int((~said & right).sum()))}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if len(table):
        table.index = pd.MultiIndex.from_tuples(table.index,
                                                names=["benchmark", "LALM", "judge"])
    table.attrs["notes"] = [
        "Items with a parsed verdict and a matcher score (faithful), all runs together. "
        "The matcher is the official MMAU/MMAR rule; the judge reads question, options, "
        "reference and answer."]
    table.attrs["bold"] = {}
    return table


def _with_n(value: float, n: int) -> str:
    return "n/a" if n == 0 or np.isnan(value) else f"{value:.1f} (n={n})"


def domain_scatter(choice_accuracy: pd.DataFrame, backbone_of: Mapping[str, str],
                   path: Path) -> Path:
    """Per domain (MMAU task: sound, music, speech), cascade vs audio-grounded accuracy, one
    point per (benchmark, backbone, captioner); a domain without questions is drawn as n/a.
    The points (with their n) are written beside the figure as ``<stem>.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = choice_accuracy[(choice_accuracy["breakdown"] == "task")
                            & (choice_accuracy["matcher"] == "faithful")]
    cascades = sorted(m for m in frame["mode"].unique() if str(m).startswith(CASCADE_PREFIX))
    benchmarks = sorted(frame["benchmark"].unique())
    fig, axes = plt.subplots(1, len(MMAU_TASKS), figsize=(4 * len(MMAU_TASKS), 4.6),
                             squeeze=False)
    backbones = sorted(set(backbone_of.values()))
    captioners = [m[len(CASCADE_PREFIX):] for m in cascades]
    colours = {b: plt.get_cmap("tab10")(i % 10) for i, b in enumerate(backbones)}
    markers = {c: "osD^v<>p*"[i % 9] for i, c in enumerate(captioners)}
    rows = []
    for ax, domain in zip(axes[0], MMAU_TASKS, strict=True):
        points = []
        for benchmark in benchmarks:
            for lalm, backbone in sorted(backbone_of.items(), key=lambda kv: kv[1]):
                y, ny = _accuracy(frame, benchmark, lalm, GROUNDED, domain)
                for mode in cascades:
                    x, nx = _accuracy(frame, benchmark, backbone, mode, domain)
                    captioner = mode[len(CASCADE_PREFIX):]
                    if nx and ny:
                        points.append((x, y, backbone, captioner))
                    rows.append({"domain": domain, "benchmark": benchmark,
                                 "backbone": backbone, "lalm": lalm, "captioner": captioner,
                                 "cascade_accuracy": x if nx else None, "cascade_n": nx,
                                 "grounded_accuracy": y if ny else None, "grounded_n": ny})
        ax.set_title(f"{domain}")
        ax.set_xlim(-5, 105)
        ax.set_ylim(-5, 105)
        ax.plot([0, 100], [0, 100], color="0.8", lw=1)
        ax.set_xlabel("cascade accuracy (%)")
        ax.set_ylabel("audio-grounded accuracy (%)")
        if not points:
            ax.text(50, 50, "n/a (no questions)", ha="center", va="center", color="0.4")
        for x, y, backbone, captioner in points:
            ax.scatter([x], [y], s=40, color=colours[backbone], marker=markers[captioner],
                       alpha=0.8, edgecolors="black", linewidths=0.5)
    handles = [plt.Line2D([], [], color=colours[b], marker="o", ls="", label=b)
               for b in backbones] + [
        plt.Line2D([], [], color="0.4", marker=markers[c], ls="", label=f"via {c}")
        for c in captioners]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6),
                   fontsize=8, frameon=False)
    fig.suptitle("Cascade vs audio-grounded accuracy per domain (one point per backbone "
                 "and captioner)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    pd.DataFrame(rows, columns=["domain", "benchmark", "backbone", "lalm", "captioner",
                                "cascade_accuracy", "cascade_n", "grounded_accuracy",
                                "grounded_n"]).to_csv(path.with_suffix(".csv"), index=False)
    return path
