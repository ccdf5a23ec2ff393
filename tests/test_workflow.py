"""The Snakemake workflow end to end on a tiny corpus given as source tables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO
from conftest import run_snakemake as _snakemake


@pytest.mark.slow
def test_workflow_builds_every_split_then_has_nothing_to_do(tables_config, tmp_path):
    work = tmp_path / "work"
    run = _snakemake(work, "--configfile", str(tables_config))
    assert run.returncode == 0, run.stderr[-3000:]
    for split in ["snr+inf", "snr+5", "snr-5", "snr-inf"]:
        manifest = pd.read_csv(work / "out" / "sseu" / "manifests" / f"{split}.csv")
        assert len(manifest) == 3
        assert all((work / p).exists() for p in manifest.audio_path)
    summary = (work / "out" / "sseu" / "corpus_summary.md").read_text()
    assert "snr-5" in summary and "Rejected source files: 0" in summary
    for rule in ("prepare_sources", "build_mixtures"):
        assert list((work / "out" / "benchmarks").glob(f"{rule}_*.tsv"))
        assert list((work / "out" / "logs").glob(f"{rule}_*.log"))
    predictions = work / "out" / "sseu" / "predictions" / "whisper_tiny_en" / "independent"
    assert len(list(predictions.glob("*/run0.jsonl"))) == 4
    report = work / "out" / "sseu" / "report"
    assert (report / "tables" / "table1.md").exists() and (report / "results.json").exists()
    assert (report / "figures" / "asr_wer.png").exists()
    reference = pd.read_csv(work / "out" / "sseu" / "scores" / "ground_truth" / "reference.csv")
    assert set(reference.metric) == {"wer", "wer_raw", "macc", "map"}
    again = _snakemake(work, "--configfile", str(tables_config), "-n")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    # changing only a scoring setting reruns scoring and the report, no inference or mixing
    config = yaml.safe_load(tables_config.read_text())
    config["scoring"]["bootstrap"] = 30
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    plan = _snakemake(work, "--configfile", str(changed), "-n", "--quiet", "rules")
    assert plan.returncode == 0, plan.stderr[-2000:]
    jobs = set(re.findall(r"^(\w+)\s+\d+$", plan.stdout + plan.stderr, re.M)) - {"total"}
    assert jobs == {"score", "score_ground_truth", "sseu_report", "run_info", "all"}, jobs
    # a killed or failed `-R infer_...` job leaves its predictions deleted (Snakemake removes
    # the output of a failed job): the next plain run must rebuild them and what uses them
    before = (report / "tables" / "table1.md").stat().st_mtime_ns
    (predictions / "snr+5" / "run0.jsonl").unlink()
    plan = _snakemake(work, "--configfile", str(tables_config), "-n", "--quiet", "rules")
    assert plan.returncode == 0, plan.stderr[-2000:]
    jobs = set(re.findall(r"^(\w+)\s+\d+$", plan.stdout + plan.stderr, re.M)) - {"total"}
    assert {"infer_whisper_tiny_en", "score", "sseu_report", "all"} <= jobs, jobs
    rebuilt = _snakemake(work, "--configfile", str(tables_config))
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert (predictions / "snr+5" / "run0.jsonl").exists()
    assert (report / "tables" / "table1.md").stat().st_mtime_ns > before

    # -R infer_<model>: that model's jobs and what depends on them, nothing else
    downstream = {"infer_whisper_tiny_en", "inference_summary", "score", "sseu_report",
                  "all"}
    assert _planned(work, "--configfile", str(tables_config), "-R",
                    "infer_whisper_tiny_en") == downstream
    # a changed prompt file reruns exactly the jobs that read it
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text((REPO / "src/lalm_eval/prompts/sseu_demo.yaml").read_text())
    config["scoring"]["bootstrap"] = 20
    config["suites"]["sseu"]["prompts"] = str(prompts)
    with_file = tmp_path / "with_file.yaml"
    with_file.write_text(yaml.safe_dump(config))
    assert "infer_whisper_tiny_en" in _planned(work, "--configfile", str(with_file))
    assert _snakemake(work, "--configfile", str(with_file)).returncode == 0
    assert _planned(work, "--configfile", str(with_file)) == set()
    prompts.write_text(prompts.read_text().replace("word for word", "exactly"))
    assert _planned(work, "--configfile", str(with_file)) == downstream
    # select: a subset of SNRs from the command line plans only what is missing for it
    assert _planned(work, "--configfile", str(with_file), "--config",
                    'select={"snrs": ["+inf"]}', "-R", "build_mixtures") == {
        "build_mixtures", "corpus_summary", "infer_whisper_tiny_en", "inference_summary",
        "score", "score_ground_truth", "sseu_report", "run_info", "all"}


def _planned(work: Path, *args: str) -> set[str]:
    """Rules of a dry run's job table (empty when there is nothing to do)."""
    plan = _snakemake(work, *args, "-n", "--quiet", "rules")
    assert plan.returncode == 0, plan.stderr[-2000:]
    return set(re.findall(r"^(\w+)\s+\d+$", plan.stdout + plan.stderr, re.M)) - {"total"}


@pytest.mark.slow
def test_full_reproduction_dag_dry_runs_and_lint_is_clean():
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "8"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert re.search(r"build_mixtures\s+7\n", dry.stdout + dry.stderr)
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
