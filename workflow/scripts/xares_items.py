"""Build a XARES suite's task items: from the demo corpus, or from the upstream shards."""
from pathlib import Path

from lalm_eval.logs import log_to

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    out_dir = Path(sm.output.item_table).parent
    if "shards" in sm.params.data:
        from lalm_eval.corpora.xares_shards import build_shard_items
        from lalm_eval.suites.xares.tasks import load_task_set

        shards = sm.params.data["shards"]
        items = build_shard_items(load_task_set(sm.params.tasks), shards["root"], out_dir,
                                  max_items=shards["max_items"],
                                  valid_fraction=shards["valid_fraction"])
    else:
        from lalm_eval.corpora.xares_demo import build_demo_items

        items = build_demo_items(Path(sm.input.speech).parent, Path(sm.input.background),
                                 out_dir, sm.params.seed, sm.params.demo)
    log.info("items table %s", items)
