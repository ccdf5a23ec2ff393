"""The common clip table of a knowledge suite's distillation corpus (demo set or AQA5M)."""
from lalm_eval.logs import log_to
from lalm_eval.suites.knowledge.distill import read_clip_source, write_clip_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    clips, left_out = read_clip_source(dict(sm.input), sm.params.source, sm.params.seed)
    write_clip_table(clips, left_out, sm.output.clips, sm.output.summary)
    log.info("%d clips, %d left out (audio missing; listed in %s)", len(clips), len(left_out),
             sm.output.summary)
