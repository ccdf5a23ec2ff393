"""Run (or resume) one inference job: one model on one split of one suite, in one mode."""
from lalm_eval.logs import log_to, notice_failures
from lalm_eval.suites import suite_from_params
from lalm_eval.suites.base import InferenceJob

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    suite = suite_from_params(sm.params.suite)
    summary = suite.run_inference(InferenceJob(
        model_name=sm.params.model, models=sm.params.models, mode=sm.wildcards.mode,
        split=sm.wildcards.split, run=int(sm.wildcards.run), seed=sm.params.seed,
        cache_path=sm.params.cache, out_path=sm.output.predictions,
        inputs=dict(sm.input.items()), params=sm.params.job, threads=sm.threads))
    log.info("done: %s", summary)
    notice_failures(f"{sm.params.model} on {suite.name} {sm.wildcards.mode} "
                    f"{sm.wildcards.split} run{sm.wildcards.run}", summary.n_errors,
                    summary.n_items, sm.output.predictions, summary.errors)
