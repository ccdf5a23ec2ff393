"""Linear probes of one encoder on every closed-set task of a XARES suite."""
from lalm_eval.logs import log_to
from lalm_eval.suites.xares.probes import run_probes

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    rows = run_probes(sm.wildcards.suite, sm.wildcards.encoder, sm.params.encoder,
                      sm.input.item_table, sm.params.tasks, sm.params.feature_cache,
                      sm.params.probes, int(sm.params.bootstrap), sm.params.seed)
    rows.to_csv(sm.output.scores, index=False)
    log.info("%d probe score rows", len(rows))
