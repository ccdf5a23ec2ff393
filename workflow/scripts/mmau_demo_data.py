"""Build our MMAU-shaped demo question set from the demo corpus."""
from pathlib import Path

from lalm_eval.corpora.mmau_demo import build_mmau_demo
from lalm_eval.logs import log_to

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    corpus_dir = Path(sm.input.events).parent.parent
    path = build_mmau_demo(corpus_dir, Path(sm.output.json).parent, seed=sm.params.seed)
    log.info("demo question set written: %s", path)
