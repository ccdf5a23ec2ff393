"""Build the XARES demo's task items from the demo corpus."""
from pathlib import Path

from lalm_eval.corpora.xares_demo import build_demo_items
from lalm_eval.logs import log_to

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    items = build_demo_items(Path(sm.input.speech).parent, Path(sm.input.background),
                             Path(sm.output.item_table).parent, sm.params.seed, sm.params.demo)
    log.info("items table %s", items)
