"""Local and SLURM runs of the same demo selection give the same results.

The comparison helper is tested here on tiny trees (always). The end-to-end check runs
when cluster/run-demo-on-slurm.sh (make test-cluster) has made both runs and points
LALM_CLUSTER_WORK at them; otherwise it is skipped.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pytest
from compare_results import compare_trees, main, result_files


def _write_run(root: Path, *, text: str = "hello world", latency: float = 0.5,
               wer: float = 12.5, audio: bytes = b"RIFF0000") -> Path:
    out = root / "out"
    (out / "sseu" / "predictions" / "m" / "independent" / "snr0").mkdir(parents=True)
    (out / "sseu" / "scores" / "m").mkdir(parents=True)
    (out / "sseu" / "audio" / "snr0").mkdir(parents=True)
    (out / "logs").mkdir()
    records = [
        {"item_id": "c1:asr", "output_text": text, "latency_s": latency, "scores": None},
        {"item_id": "c2:asr", "output_text": "second", "latency_s": latency * 2,
         "scores": {"dog": 0.25}},
    ]
    (out / "sseu" / "predictions" / "m" / "independent" / "snr0" / "run0.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records))
    (out / "sseu" / "scores" / "m" / "independent.csv").write_text(
        f"model,split,metric,value,ci_low\nm,snr0,wer,{wer},\n")
    with gzip.open(out / "sseu" / "scores" / "m" / "independent.items.csv.gz", "wt") as handle:
        handle.write("clip_id,problem\nc1,\n")
    (out / "sseu" / "manifests").mkdir()
    (out / "sseu" / "manifests" / "snr0.csv").write_text(
        f"clip_id,audio_path,duration_s\nc1,{out}/sseu/audio/snr0/c1.wav,9.0\n")
    (out / "sseu" / "audio" / "snr0" / "c1.wav").write_bytes(audio)
    (out / "sseu" / "audio" / "snr0" / ".snakemake_timestamp").write_text("")
    (out / "sseu" / "report").mkdir()
    (out / "sseu" / "report" / "results.json").write_text(json.dumps(
        {"timestamp_utc": f"2026-01-01T00:00:0{int(latency)}Z",
         "config": {"paths": {"results": str(out)}}, "seeds": {"global": 1}}))
    (out / "sseu" / "report" / "figure.png").write_bytes(os.urandom(16))
    (out / "logs" / "infer.log").write_text(f"took {latency} s\n")
    return out


def test_runs_that_differ_only_in_timing_paths_and_figures_agree(tmp_path):
    left = _write_run(tmp_path / "local", latency=0.5)
    right = _write_run(tmp_path / "slurm", latency=3.0)
    comparison = compare_trees(left, right)
    assert comparison.same, comparison.differences
    assert comparison.compared == {"audio": 1, "json": 1, "jsonl": 1, "tables": 3, "other": 1}
    assert "logs/infer.log" not in result_files(left)
    assert main([str(left), str(right)]) == 0


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"text": "hello word"}, "run0.jsonl: [0].output_text"),
        ({"wer": 12.6}, "independent.csv: [0].value"),
        ({"audio": b"RIFF0001"}, "c1.wav: audio bytes differ"),
    ],
)
def test_a_different_answer_score_or_mixture_is_reported(tmp_path, change, where):
    left = _write_run(tmp_path / "local")
    right = _write_run(tmp_path / "slurm", **change)
    comparison = compare_trees(left, right)
    assert len(comparison.differences) == 1
    assert where in comparison.differences[0]
    assert main([str(left), str(right)]) == 1


def test_a_missing_file_is_reported(tmp_path):
    left = _write_run(tmp_path / "local")
    right = _write_run(tmp_path / "slurm")
    (right / "sseu" / "scores" / "m" / "independent.csv").unlink()
    differences = compare_trees(left, right).differences
    assert differences == [f"sseu/scores/m/independent.csv: only in {left}"]


def test_an_empty_table_without_columns_is_an_empty_table(tmp_path):
    # e.g. the knowledge report's choice_accuracy.csv when no benchmark job is selected
    left = _write_run(tmp_path / "local")
    right = _write_run(tmp_path / "slurm")
    for out in (left, right):
        (out / "sseu" / "report" / "empty.csv").write_text("\n")
    comparison = compare_trees(left, right)
    assert comparison.same, comparison.differences
    (right / "sseu" / "report" / "empty.csv").write_text("a,b\n1,2\n")
    differences = compare_trees(left, right).differences
    assert differences == ["sseu/report/empty.csv: top: 0 vs 1 entries"]


WORK = os.environ.get("LALM_CLUSTER_WORK")


def _matching(files: set[str], pattern: str) -> dict[str, str]:
    """The files whose whole relative path matches ``pattern``, each with its first group
    (or the path when the pattern has none)."""
    found = {}
    for rel in sorted(files):
        match = re.fullmatch(pattern, rel)
        if match:
            found[rel] = match.group(1) if match.groups() else rel
    return found


def test_matching_picks_whole_paths_and_their_group():
    files = {"jasco/judgements/j1/cascade/run0.jsonl", "jasco/judgements/j1/cascade/x.csv",
             "k/report/tables/mcq_accuracy.csv"}
    assert _matching(files, r"[^/]+/judgements/([^/]+)/[^/]+/run\d+\.jsonl") == {
        "jasco/judgements/j1/cascade/run0.jsonl": "j1"}
    assert list(_matching(files, r"[^/]+/report/tables/mcq_accuracy\.csv")) == [
        "k/report/tables/mcq_accuracy.csv"]
    assert not _matching(files, r"judgements/.*")


@pytest.mark.skipif(not WORK, reason="needs the runs of cluster/run-demo-on-slurm.sh "
                    "(make test-cluster)")
def test_demo_selection_has_the_same_results_locally_and_through_slurm():
    work = Path(WORK)
    local, slurm = work / "local", work / "slurm"
    comparison = compare_trees(local / "out", slurm / "out", {local / "res": slurm / "res"})
    print(comparison.summary())
    assert comparison.same, "\n".join(comparison.differences)
    # the comparison covered mixtures, predictions and scores
    assert comparison.compared["audio"] > 0 and comparison.compared["jsonl"] > 0
    scores = sorted((slurm / "out").glob("*/scores/*/*.csv"))
    assert len(scores) >= 2, scores
    # ... and the other suite kinds' job paths (both trees hold the same files, all compared
    # equal above): JASCO judgements of both judges, the sampled one included, with
    # verdicts and report tables; the knowledge suite's MCQ predictions and report tables
    files = result_files(local / "out")
    judgements = _matching(files, r"[^/]+/judgements/([^/]+)/[^/]+/run\d+\.jsonl")
    assert {"smollm2_judge", "smollm2_judge_sampled"} <= set(judgements.values()), judgements
    for rel in judgements:
        records = [json.loads(line) for line in (local / "out" / rel).read_text().splitlines()]
        assert records and all(r["judge_output"] for r in records), rel
    assert _matching(files, r"[^/]+/scores/verdicts\.csv"), "no JASCO verdicts"
    assert _matching(files, r"[^/]+/report/tables/table2_faithful\.csv"), "no JASCO Table 2"
    mcq = _matching(files, r"[^/]+/predictions/([^/]+)/text/[^/]+/run\d+\.jsonl")
    assert "smollm2" in mcq.values(), "no knowledge (MCQ, mode text) predictions"
    assert _matching(files, r"[^/]+/mcq/[^/]+\.csv"), "no MCQ table"
    assert _matching(files, r"[^/]+/report/tables/mcq_accuracy\.csv"), "no knowledge report"

    # every job of the SLURM run went through SLURM and completed there
    log = (work / "slurm.log").read_text()
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
    assert steps, "the SLURM run did not finish"
    n_steps = int(steps[-1][1])
    jobs = [line.split("|") for line in (work / "slurm-jobs.txt").read_text().splitlines()]
    assert {state for _, state, *_ in jobs} == {"COMPLETED"}, jobs
    # `all` only gathers inputs and runs in the main process; the rest are SLURM jobs
    # (one line per array task)
    assert len(jobs) == n_steps - 1, (len(jobs), n_steps)
    assert any("_" in job_id for job_id, *_ in jobs), "no array job (slurm-array-jobs)"
    assert {partition for _, _, partition, *_ in jobs} == {"lalm"}
    assert "Auto-selected partition 'lalm'" in log
