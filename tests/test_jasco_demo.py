"""Offline tests of the JASCO demo items and of build_jasco_demo (with a fake synthesiser)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lalm_eval.corpora.demo import load_catalog
from lalm_eval.corpora.jasco_demo import (
    SAMPLE_RATE,
    VOICES,
    build_jasco_demo,
    load_jasco_spec,
    validate_spec,
)
from lalm_eval.suites.jasco.data import (
    JUDGE_FIELDS,
    expand_items,
    extract_instructions,
    extract_judge_template,
    read_v0_csv,
)

SPEC = load_jasco_spec()


# --------------------------------------------------------------------------- the YAML


def test_spec_has_enough_items_with_known_labels() -> None:
    items = SPEC["items"]
    assert len(items) >= 12
    labels = {ev["label"] for ev in load_catalog()["events"]}
    for item in items:
        assert item["label"] in labels, item["label"]
        assert item["voice"] in VOICES
        assert 8 <= len(item["speech"].split()) <= 15, item["speech"]
        assert 1 <= len(item["keywords"]) <= 3
        assert len({item["audio_only"], item["speech_only"], item["answer"]}) == 3
    assert len({item["speech"] for item in items}) == len(items)


def test_spec_instructions_and_template() -> None:
    instructions = SPEC["instructions"]
    assert len(instructions) == 8
    assert len(set(instructions)) == 8
    assert all("\n" not in x for x in instructions)
    template = SPEC["judge_template"]
    for field in JUDGE_FIELDS:
        assert "{" + field + "}" in template
    for word in ("Rating:", "Orientation:", "Audio-Oriented", "Speech-Oriented", "Both",
                 "Neither"):
        assert word in template


def test_validate_spec_rejects_missing_placeholder() -> None:
    bad = dict(SPEC, judge_template=SPEC["judge_template"].replace("{prediction}", ""))
    with pytest.raises(ValueError, match="prediction"):
        validate_spec(bad)


# --------------------------------------------------------------------------- the build


def _tone_speech(voice: str, text: str) -> tuple[np.ndarray, int]:
    """A fake 'utterance': one 120 ms tone burst per word, pitch by voice, at 22.05 kHz."""
    sr = 22050
    f0 = 150.0 + 40.0 * VOICES.index(voice)
    t = np.arange(int(0.12 * sr)) / sr
    burst = 0.3 * np.sin(2 * np.pi * f0 * t) * np.hanning(len(t))
    pause = np.zeros(int(0.05 * sr))
    words = text.split()
    return np.concatenate([np.concatenate([burst, pause]) for _ in words]), sr


def _events(tmp_path: Path) -> Path:
    """events.csv with one tiny synthetic recording per label the items use."""
    folder = tmp_path / "events_src"
    (folder / "events").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    labels = sorted({item["label"] for item in SPEC["items"]})
    for i, label in enumerate(labels):
        sr = 44100 if i % 2 else 16000
        dur = 0.3 if i % 3 == 0 else 2.5  # short units exercise the gap looping
        n = int(dur * sr)
        x = 0.2 * rng.standard_normal(n) * np.hanning(n)
        rel = f"events/{label}_01.wav"
        sf.write(folder / rel, np.stack([x, x], axis=1), sr, subtype="PCM_16")
        rows.append({"event_id": f"{label}_01", "label": label, "path": rel,
                     "origin": f"test:{label}", "licence": "CC0-1.0", "sha256": "-",
                     "duration_s": f"{dur:.3f}"})
    path = folder / "events.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("jasco")
    events = _events(tmp)
    out_a, out_b = tmp / "a", tmp / "b"
    for out in (out_a, out_b):
        build_jasco_demo(events, None, tmp / "work", out, seed=7, synthesise=_tone_speech)
    return events, out_a, out_b


def test_build_reads_back_through_the_suite(built: tuple[Path, Path, Path]) -> None:
    _, out, _ = built
    v0 = read_v0_csv(out / "dataset" / "v0" / "v0.csv")
    n = len(SPEC["items"])
    assert list(v0["audio_id"]) == [str(i) for i in range(1, n + 1)]
    assert list(v0["Speech"]) == [" ".join(it["speech"].split()) for it in SPEC["items"]]
    assert v0.loc[0, "Correct Answer Keyword"] == ", ".join(SPEC["items"][0]["keywords"])
    readme = (out / "README.md").read_text(encoding="utf-8")
    instructions, _ = extract_instructions(readme)
    assert instructions == SPEC["instructions"]
    template, _ = extract_judge_template(readme)
    assert template == SPEC["judge_template"].rstrip("\n")
    items = expand_items(v0, instructions, out / "dataset" / "v0")
    assert len(items) == n * 8
    assert items["n_frames"].notna().all()
    sources = (out / "SOURCES.md").read_text(encoding="utf-8")
    assert "CC0-1.0" in sources and "_01" in sources


def test_build_wavs_are_16k_mono_with_speech_and_sound(built: tuple[Path, Path, Path]) -> None:
    _, out, _ = built
    for n in range(1, len(SPEC["items"]) + 1):
        info = sf.info(str(out / "dataset" / "v0" / f"{n}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        assert 5.0 <= info.duration <= 8.01
        x, _ = sf.read(str(out / "dataset" / "v0" / f"{n}.wav"))
        assert 0.01 < np.max(np.abs(x)) < 0.95


def test_build_is_deterministic(built: tuple[Path, Path, Path]) -> None:
    _, out_a, out_b = built
    files = sorted(p.relative_to(out_a) for p in out_a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out_b) for p in out_b.rglob("*") if p.is_file())
    for rel in files:
        assert (out_a / rel).read_bytes() == (out_b / rel).read_bytes(), rel


def test_seed_changes_the_mix(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    events, out_a, _ = built
    build_jasco_demo(events, None, tmp_path / "w", tmp_path / "c", seed=8,
                     synthesise=_tone_speech)
    assert (tmp_path / "c" / "dataset/v0/1.wav").read_bytes() != (
        out_a / "dataset/v0/1.wav"
    ).read_bytes()


def test_build_rejects_missing_label(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("event_id,label,path,origin,licence,sha256,duration_s\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no recordings"):
        build_jasco_demo(events, None, tmp_path / "w", tmp_path / "o", synthesise=_tone_speech)
