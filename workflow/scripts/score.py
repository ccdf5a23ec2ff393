"""Score one system (model, mode) of one suite over all its splits and runs."""
from lalm_eval.logs import log_to
from lalm_eval.suites import suite_from_params

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    suite = suite_from_params(sm.params.suite)
    scores, items = suite.score(sm.wildcards.model, sm.wildcards.mode, dict(sm.input.items()),
                                sm.params.job, sm.params.seed)
    scores.to_csv(sm.output.scores, index=False)
    items.to_csv(sm.output.per_item, index=False)
    log.info("%s %s %s: %d score rows, %d item rows", suite.name, sm.wildcards.model,
             sm.wildcards.mode, len(scores), len(items))
