"""Write the XARES training mixture (every system of the suite trains on it)."""
from lalm_eval.logs import log_to
from lalm_eval.suites.xares.data import write_mixture

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    counts = write_mixture(sm.input.item_table, sm.params.tasks, sm.output.mixture, sm.params.size,
                           sm.params.seed)
    log.info("mixture train rows per task: %s", counts)
