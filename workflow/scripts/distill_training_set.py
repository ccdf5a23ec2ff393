"""Stage-2 training set of one backbone's LALM: its stage-1 responses as the targets."""
from lalm_eval.jsonl import read_jsonl
from lalm_eval.logs import log_to
from lalm_eval.suites.knowledge import distill

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    prompts = distill.load_distill_prompts(sm.params.prompts)
    clips = read_jsonl(sm.input.clips)
    rows, left_out = distill.training_rows(clips, read_jsonl(sm.input.responses), prompts,
                                           sm.params.seed)
    distill.write_training_set(rows, left_out, sm.output.data, sm.output.summary,
                               {"backbone": sm.wildcards.backbone, "lalm": sm.params.lalm,
                                "prompts": prompts.name, "prompts_sha256": prompts.sha256})
    log.info("%d rows, %d clips left out (see %s)", len(rows), len(left_out), sm.output.summary)
