"""SSEU-Bench tables, figures and results JSON of one suite."""
from pathlib import Path

from lalm_eval.logs import log_to
from lalm_eval.metrics.wer import NORMALISER_ID
from lalm_eval.prompts import load_prompt_set
from lalm_eval.suites.sseu.report import build_sseu_report

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]):
    prompts = load_prompt_set(sm.input.prompts)
    build_sseu_report(
        sm.input.scores, Path(sm.output.results).parent, suite=sm.wildcards.suite,
        config_slice={"suite": sm.params.suite_config, "models": sm.params.models},
        seeds={"global": sm.params.seed, "runs": sm.params.suite_config["runs"]},
        prompt_hashes={prompts.name: prompts.sha256},
        scorer={**sm.params.scoring, "normaliser": NORMALISER_ID},
    )
