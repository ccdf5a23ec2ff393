"""Rate one system's JASCO answers (one run) with one judge model."""
from lalm_eval.logs import log_to, notice_failures
from lalm_eval.suites.jasco.data import run_judge_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    summary = run_judge_job(
        items_path=sm.input.item_table, protocol_path=sm.input.protocol,
        answers_path=sm.input.answers, judge_name=sm.params.judge, models=sm.params.models,
        run=int(sm.wildcards.run), seed=sm.params.seed, cache_dir=sm.params.cache_dir,
        out_path=sm.output.judgements, system=sm.params.system, retries=sm.params.retries,
        orientation_call=sm.params.orientation_call, threads=sm.threads,
    )
    log.info("done: %s", summary)
    lost = {k: v for k, v in summary["statuses"].items() if k != "judged"}
    notice_failures(f"judge {sm.params.judge} on {sm.wildcards.model} run{sm.wildcards.run}",
                    sum(lost.values()), summary["items"], sm.output.judgements, lost)
