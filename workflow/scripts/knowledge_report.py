"""Score every knowledge-suite job and write the study's tables and correlation heatmap."""
from pathlib import Path

from lalm_eval.logs import log_to
from lalm_eval.suites.knowledge.report import report_from_jobs

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]):
    report_from_jobs(
        sm.params.jobs, mcq_tables=sm.input.mcq, benchmark_tables=sm.input.benchmarks,
        suite_config=sm.params.suite_config, models=sm.params.models, seed=sm.params.seed,
        out_dir=Path(sm.output.results).parent)
