"""Expand the JASCO release into (clip, instruction) items and record the protocol."""
import json
from pathlib import Path

from lalm_eval.logs import log_to
from lalm_eval.suites.jasco.data import prepare_items

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]) as log:
    items, protocol = prepare_items(
        sm.params.root, n_clips=sm.params.n_clips, source=sm.params.source,
        instructions_sha256=sm.params.instructions_sha256,
        judge_template_sha256=sm.params.judge_template_sha256,
    )
    items.to_csv(sm.output.item_table, index=False, lineterminator="\n")
    Path(sm.output.protocol).write_text(json.dumps(protocol, indent=2, ensure_ascii=False) + "\n")
    log.info("%d clips, %d items; instructions %s, judge template %s",
             protocol["n_clips"], protocol["n_items"], protocol["instructions_sha256"],
             protocol["judge_template_sha256"])
    if protocol["missing_audio"]:
        log.warning("audio missing for %d clip(s): %s (their answers will record the error)",
                    len(protocol["missing_audio"]), protocol["missing_audio"])
