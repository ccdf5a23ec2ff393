"""The run's configuration, code version and packages as one HTML page for the report."""
from lalm_eval.logs import log_to
from lalm_eval.reports.run_info import write_run_info

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as logger:
    write_run_info(sm.output.html, sm.params.config, configfiles=sm.params.configfiles,
                   code=sm.params.code)
    logger.info("run information written to %s", sm.output.html)
