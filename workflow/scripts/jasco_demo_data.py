"""Build the demo JASCO co-reasoning set (upstream layout) from the demo corpus's events."""
from pathlib import Path

from lalm_eval.corpora.jasco_demo import build_jasco_demo
from lalm_eval.logs import log_to

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    v0 = build_jasco_demo(
        Path(sm.input.events), sm.params.catalog and Path(sm.params.catalog),
        work_dir=Path(sm.params.work_dir), out_dir=Path(sm.output.readme).parent,
        seed=sm.params.seed, spec_path=sm.params.spec and Path(sm.params.spec),
    )
    log.info("demo co-reasoning set written: %s", v0)
