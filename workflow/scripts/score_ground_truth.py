"""Upper bound: the references scored as predictions must give WER 0, mACC 100, mAP 100."""
import json
from pathlib import Path

from lalm_eval.logs import log_to
from lalm_eval.suites.sseu.scoring import make_embedder, score_ground_truth

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]):
    table = score_ground_truth(
        suite=sm.wildcards.suite, manifests={Path(p).stem: p for p in sm.input.manifests},
        labels=json.loads(Path(sm.input.labels).read_text()),
        embedder=make_embedder(sm.params.scoring["embedder"]),
    )
    table.to_csv(sm.output.scores, index=False)
