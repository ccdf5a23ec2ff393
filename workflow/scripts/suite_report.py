"""The generic report of one suite (kinds without a report of their own)."""
from pathlib import Path

from lalm_eval.logs import log_to
from lalm_eval.suites import suite_from_params

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]):
    suite = suite_from_params(sm.params.suite)
    suite.report(dict(sm.input.items()), sm.params.job, Path(sm.output.results).parent,
                 sm.params.seed)
