"""Parse every JASCO verdict (faithful and strict) and write Table II, figures, agreement."""
import json
from pathlib import Path

from lalm_eval.logs import log_to
from lalm_eval.suites.jasco.data import read_records
from lalm_eval.suites.jasco.judging import score_judgements
from lalm_eval.suites.jasco.report import build_jasco_report

sm = snakemake  # noqa: F821  (injected by Snakemake)
with log_to(sm.log[0]):
    records = [r for path in sm.input.judgements for r in read_records(path)]
    verdicts = score_judgements(records)
    Path(sm.output.verdicts).parent.mkdir(parents=True, exist_ok=True)
    verdicts.to_csv(sm.output.verdicts, index=False, lineterminator="\n")
    build_jasco_report(
        verdicts, Path(sm.output.results).parent,
        config_slice={"suite": sm.params.suite_config, "models": sm.params.models},
        seeds={"global": sm.params.seed, "runs": sm.params.suite_config["runs"]},
        protocol=json.loads(Path(sm.input.protocol).read_text()),
    )
