"""Build our self-distillation clips (seed descriptions) from the demo corpus."""
from pathlib import Path

from lalm_eval.corpora.distill_demo import build_distill_demo
from lalm_eval.corpora.mmau_demo import read_sources
from lalm_eval.logs import log_to

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    exclude = read_sources(sm.input.exclude) if "exclude" in sm.input.keys() else []
    table = build_distill_demo(Path(sm.input.events).parent, Path(sm.input.background),
                               Path(sm.output.table).parent, sm.params.seed,
                               sm.params.settings, exclude=exclude)
    log.info("distillation clips: %s (%d recordings of the evaluation set left out)", table,
             len(exclude))
