"""Read a four-option question file (or our packaged set) and check its answer positions."""
import json

from lalm_eval.logs import log_to
from lalm_eval.suites.knowledge.akb import demo_mcq_path, position_balance, read_mcq

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    table = read_mcq(sm.params.path or demo_mcq_path(),
                     strict_categories=sm.params.strict_categories)
    table.to_csv(sm.output.table, index=False, lineterminator="\n")
    balance = position_balance(table)
    balance["source"], balance["sha256"] = table.attrs["source"], table.attrs["sha256"]
    with open(sm.output.balance, "w", encoding="utf-8") as handle:
        json.dump(balance, handle, indent=2, default=float)
    log.info("%d questions; answer positions %s (balanced: %s)", len(table),
             balance["counts"], balance["balanced"])
