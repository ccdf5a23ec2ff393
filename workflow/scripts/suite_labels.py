"""The scene and event label sets of a suite (prompts and scorers use them)."""
import json

from lalm_eval.logs import log_to
from lalm_eval.suites.sseu.items import collect_labels

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]):
    labels = collect_labels(sm.input.background)
    with open(sm.output.labels, "w") as handle:
        json.dump(labels, handle, indent=2)
