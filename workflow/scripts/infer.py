"""Run (or resume) one inference job: one model on one SSEU split, on the JASCO items, or on
one knowledge-suite split (MCQ set or benchmark)."""
from lalm_eval.logs import log_to
from lalm_eval.suites import jasco, knowledge, sseu

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    common = dict(model_name=sm.params.model, models=sm.params.models,
                  run=int(sm.wildcards.run), seed=sm.params.seed, cache_path=sm.params.cache,
                  out_path=sm.output.predictions, threads=sm.threads)
    if sm.wildcards.suite == "jasco":
        summary = jasco.run_answer_job(items_path=sm.input.item_table, **common)
    elif sm.wildcards.suite == "knowledge":
        summary = knowledge.run_knowledge_job(
            mode=sm.wildcards.mode, inputs=dict(sm.input.items()),
            mcq_prompts=sm.params.prompts["mcq"], choice_prompts=sm.params.prompts["choice"],
            **common)
    else:
        summary = sseu.run_sseu_job(manifest_path=sm.input.manifest,
                                    labels_path=sm.input.labels, prompts=sm.params.prompts,
                                    mode=sm.wildcards.mode, **common)
    log.info("done: %s", summary)
