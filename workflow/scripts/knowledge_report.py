"""Score every knowledge-suite job and write the study's tables and correlation heatmap."""
import json
from pathlib import Path

from lalm_eval.logs import log_to
from lalm_eval.reports.knowledge import build_knowledge_report
from lalm_eval.suites import knowledge

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]):
    suite = sm.params.suite_config
    mcq_files, choice_files = {}, {}
    for key, path in sm.params.files.items():
        kind, model, mode, split, run = key.split("|")
        if kind == "text":
            mcq_files[(model, int(run))] = path
        elif kind != "caption":
            choice_files[(split, model, mode, int(run))] = path
    balance, hashes = {}, {}
    mcq_acc = knowledge.pd.DataFrame()
    if mcq_files:
        mcq = knowledge.read_mcq_table(sm.input.mcq[0])
        balance = json.loads(Path(sm.input.mcq[0]).with_suffix(".balance.json").read_text())
        hashes["mcq_set"] = balance.get("sha256")
        _, mcq_acc = knowledge.score_mcq_runs(mcq, mcq_files)
    tables = {Path(p).stem: knowledge.read_benchmark_table(p) for p in sm.input.benchmarks}
    _, choice_acc = knowledge.score_choice_runs(tables, choice_files)
    metrics, blocks = knowledge.metric_table(mcq_acc, choice_acc, suite["correlation"]["matcher"])
    build_knowledge_report(
        mcq_accuracy=mcq_acc, choice_accuracy=choice_acc, metrics=metrics, blocks=blocks,
        balance=balance, out_dir=Path(sm.output.results).parent,
        correlation=suite["correlation"], config_slice={"suite": suite, "models": sm.params.models},
        seeds={"global": sm.params.seed, "runs": suite["runs"]}, prompt_hashes=hashes,
    )
