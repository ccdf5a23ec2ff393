"""The XARES demo items: built from a tiny corpus in the demo layout, made in the test."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lalm_eval.corpora.demo import load_catalog, text_label
from lalm_eval.corpora.xares_demo import (
    DEFAULT_COUNTS,
    EVENT_PHRASES,
    ITEM_COLUMNS,
    SCENE_PHRASES,
    VOICE_GENDER,
    _caption_text,
    build_demo_items,
)
from lalm_eval.suites.xares.data import read_items
from lalm_eval.suites.xares.tasks import load_task_set

VOICES = {"asterisk": (8, 8000), "slt": (3, 16000), "rms": (3, 16000), "awb": (3, 22050),
          "kal16": (3, 16000)}
EVENT_CLASSES = ["bird", "bus", "cash_register", "cat_meow", "dog_bark", "footsteps",
                 "laughter", "train", "vehicle_passing"]
SCENES = {"cafe": ["laughter", "cash register", "cough", "crowd"],
          "home": ["dog bark", "door", "typing"],
          "park": ["bird", "goose", "wind"],
          "street": ["car horn", "bus", "wind"],
          "transport station": ["train", "footsteps", "crowd"]}
WORDS = ("the quick brown fox jumps over a lazy dog while seven green parrots sing loudly "
         "near old stone bridges every morning").split()


def _voice(seconds: float, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 100 + 120 * rng.random()
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 3.5 * t), 0, None)
    return 0.1 * tone * envelope


def _burst(seconds: float, rate: int, freq: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    return 0.2 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(len(t))


def _table(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return make_corpus(tmp_path / "demo")


def make_corpus(root: Path) -> Path:
    """A demo-shaped corpus: 5 voices, 9 event classes x 2 recordings, 5 scenes x 3 clips."""
    src = root / "sources"
    rows = []
    n = 0
    for voice, (count, rate) in VOICES.items():
        for i in range(count):
            n += 1
            sid = f"{voice}_{i:02d}"
            rel = f"speech/{sid}.wav"
            (src / "speech").mkdir(parents=True, exist_ok=True)
            sf.write(src / rel, _voice(1.5 + 0.4 * (i % 4), rate, n), rate, subtype="PCM_16")
            text = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(5 + i % 3))
            rows.append({"source_id": sid, "path": rel, "start_s": "", "end_s": "",
                         "transcript": text.capitalize() + ".", "speaker": voice,
                         "origin": f"test=1:{rel}", "licence": "CC0-1.0", "sha256": ""})
    _table(src / "speech.csv", rows)
    rows = []
    for j, label in enumerate(EVENT_CLASSES + ["wind"]):
        for k in range(1 if label == "wind" else 2):
            eid = f"{label}_{k + 1:02d}"
            rel = f"events/{eid}.wav"
            (src / "events").mkdir(parents=True, exist_ok=True)
            sf.write(src / rel, _burst(0.4 + 0.5 * k, 22050, 300 + 90 * j, j), 22050,
                     subtype="PCM_16")
            rows.append({"event_id": eid, "label": label, "path": rel, "origin": "test=1",
                         "licence": "CC-BY-3.0", "sha256": "", "duration_s": "1"})
    _table(src / "events.csv", rows)
    rows = []
    for s, (scene, labels) in enumerate(SCENES.items()):
        for i in range(3):
            sid = f"demo_bg_{scene.replace(' ', '_')}_{i:03d}"
            rel = f"clips/{sid}.wav"
            (root / "backgrounds" / "clips").mkdir(parents=True, exist_ok=True)
            sf.write(root / "backgrounds" / rel, _burst(6.0, 44100, 500 + 100 * s, 10 * s + i),
                     44100, subtype="PCM_16")
            events = [{"label": lab, "onset": round(1.7 * k + 0.3 * i, 3),
                       "offset": round(1.7 * k + 0.3 * i + 1.2, 3)}
                      for k, lab in enumerate(labels)]
            if scene == "park":  # a bed over the whole clip
                events[-1] = {"label": "wind", "onset": 0.0, "offset": 6.0}
            rows.append({"source_id": sid, "path": rel, "start_s": "", "end_s": "",
                         "origin": f"demo-compose=seed0:bird_01+{EVENT_CLASSES[s]}_02",
                         "licence": "CC-BY-3.0", "sha256": "", "scene": scene,
                         "events": json.dumps(events)})
    _table(root / "backgrounds" / "background.csv", rows)
    return root


SMALL = {"counts": {t: {"train": 6, "valid": 1, "test": 5} for t in DEFAULT_COUNTS}}


def _build(corpus: Path, out: Path, seed: int = 3, settings: dict | None = None) -> Path:
    return build_demo_items(corpus / "sources", corpus / "backgrounds" / "background.csv", out,
                            seed, settings)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _parts(recording: str) -> set[str]:
    return set(recording.replace("@", "+").split("+"))


def test_default_build_meets_the_contract(corpus: Path, tmp_path: Path) -> None:
    path = _build(corpus, tmp_path / "out")
    assert path == tmp_path / "out" / "items.csv"
    with open(path, encoding="utf-8") as handle:
        assert tuple(next(csv.reader(handle))) == ITEM_COLUMNS
    tasks = load_task_set("demo").tasks
    rows = read_items(path, tasks)  # the suite's reader: columns, splits, no leaks
    counts = Counter((r.task, r.split) for r in rows)
    for task, spec in DEFAULT_COUNTS.items():
        for split, n in spec.items():
            assert counts[(task, split)] == n, (task, split)
    assert sum(n for (_, s), n in counts.items() if s == "train") == 305

    # no source recording on both sides, counting every source a clip is mixed from
    train = set().union(*(_parts(r.recording) for r in rows if r.split != "test"))
    test = set().union(*(_parts(r.recording) for r in rows if r.split == "test"))
    assert not train & test
    for row in rows:
        info = sf.info(str(row.audio))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.duration <= (8.0 if row.task == "asr" else 4.0) + 1e-6
        x, _ = sf.read(str(row.audio))
        assert np.max(np.abs(x)) <= 10 ** (-1 / 20) + 1e-3 and np.std(x) > 1e-3

    for name, task in tasks.items():
        test_targets = [r.target for r in rows if r.task == name and r.split == "test"]
        if task.metric == "accuracy":
            assert set(r.target for r in rows if r.task == name) <= set(task.labels)
            share = Counter(test_targets).most_common(1)[0][1] / len(test_targets)
            assert share == pytest.approx(1 / task.num_classes)  # balanced: majority == chance
            assert task.chance == pytest.approx(1 / task.num_classes, abs=1e-5)
    for row in rows:
        if row.task == "tagging":
            labels = row.target.split(";")
            assert labels and set(labels) <= set(tasks["tagging"].labels)
            assert labels == sorted(labels)
        if row.task == "caption":
            assert row.target.endswith(".") and row.target[0].isupper()
    asr_train = {r.target for r in rows if r.task == "asr" and r.split != "test"}
    asr_test = {r.target for r in rows if r.task == "asr" and r.split == "test"}
    assert asr_test and not asr_test & asr_train  # held-out recordings: unseen sentences

    # gender follows the voice of the utterance
    provenance = {r["item_id"]: r for r in _rows(tmp_path / "out" / "provenance.csv")}
    for row in rows:
        if row.task == "gender":
            (utt,) = [p for p in provenance[row.item_id]["sources"].split("+")
                      if not p.startswith("demo_bg_")]
            voice = utt.rsplit("_", 1)[0]
            assert VOICE_GENDER[voice] == row.target
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pools"]["speech"] == {"train": 14, "test": 6}
    assert summary["pools"]["background"] == {"train": 10, "test": 5}
    assert summary["test_majority_rate"]["speaker"] == pytest.approx(0.2)
    # every background says it holds bird_01, so the test bird recording is bird_02
    assert "bird_01" not in summary["test_events_in_training_backgrounds"]
    assert "| speaker | 60 | 5 | 15 | 0.200 | 0.200 |" in (
        tmp_path / "out" / "README.md").read_text()


def test_same_seed_same_bytes_other_seed_other_items(corpus: Path, tmp_path: Path) -> None:
    def snapshot(out: Path) -> dict[str, bytes]:
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                if p.is_file()}

    a = _build(corpus, tmp_path / "a", 5, SMALL)
    _build(corpus, tmp_path / "b", 5, SMALL)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    c = _build(corpus, tmp_path / "c", 6, SMALL)
    assert a.read_bytes() != c.read_bytes()
    _build(corpus, tmp_path / "a", 5, {"counts": {"asr": {"train": 2}}, "tasks": "demo"})
    assert not (tmp_path / "a" / "audio" / "asr" / "asr_train_005.wav").exists()  # stale clips go


def test_closed_set_asr_over_held_out_backgrounds(corpus: Path, tmp_path: Path) -> None:
    path = _build(corpus, tmp_path / "out", 1, {**SMALL, "asr_holdout": "mixture"})
    rows = read_items(path, load_task_set("demo").tasks)
    asr = [r for r in rows if r.task == "asr"]
    train = {r.target for r in asr if r.split != "test"}
    test = [r for r in asr if r.split == "test"]
    assert test and {r.target for r in test} <= train  # closed set: training sentences
    speech_train = {p for r in rows if r.split != "test" for p in _parts(r.recording)}
    for row in test:
        utt, bg = row.recording.split("@")
        assert utt in speech_train and bg not in speech_train  # heard speech, new background
    assert "asr_holdout=mixture" in (tmp_path / "out" / "README.md").read_text()


def test_settings_and_corpus_problems_are_refused(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown key 'clip_len'"):
        _build(corpus, tmp_path / "x", settings={"clip_len": 3})
    with pytest.raises(ValueError, match="counts.scene.test"):
        _build(corpus, tmp_path / "x", settings={"counts": {"scene": {"test": -1}}})
    table = corpus / "sources" / "events.csv"
    kept = [r for r in _rows(table) if r["event_id"] != "train_02"]
    _table(table, kept)
    with pytest.raises(ValueError, match="'train' on the test side"):
        _build(corpus, tmp_path / "x", settings=SMALL)
    bg = corpus / "backgrounds" / "background.csv"
    rows = _rows(bg)
    rows[0]["events"] = json.dumps([{"label": "thunder", "onset": 0.0, "offset": 1.0}])
    _table(bg, rows)
    small = {"counts": {t: {"train": 0, "valid": 0, "test": 0} for t in DEFAULT_COUNTS}}
    small["counts"]["tagging"] = {"train": 2, "valid": 0, "test": 0}
    with pytest.raises(ValueError, match=r"\['thunder'\] are not in the task's labels"):
        _build(corpus, tmp_path / "x", settings=small)


def test_caption_sentences() -> None:
    assert (_caption_text("male", ["dog bark"], "park")
            == "A man speaks while a dog barks in a park.")
    assert _caption_text("female", [], "home") == "A woman speaks at home."
    assert (_caption_text(None, ["bird", "wind"], "street")
            == "Birds sing and the wind blows on a street.")


def test_task_set_matches_the_demo_catalog() -> None:
    catalog = load_catalog()
    tasks = load_task_set("demo").tasks
    assert set(tasks) == set(DEFAULT_COUNTS)
    scene_labels = {text_label(label) for spec in catalog["scenes"].values()
                    for label in spec["events"] + (spec.get("bed") or [])}
    assert set(tasks["tagging"].labels) == scene_labels
    assert tasks["tagging"].num_classes == len(scene_labels)
    per_class = Counter(text_label(e["label"]) for e in catalog["events"])
    assert set(tasks["event"].labels) == {c for c, n in per_class.items() if n >= 2}
    voices = {item["voice"] for item in catalog["speech_tts"]} | {"asterisk"}
    assert set(tasks["speaker"].labels) == voices == set(VOICE_GENDER)
    assert set(tasks["scene"].labels) == {text_label(s) for s in catalog["scenes"]}
    assert set(SCENE_PHRASES) == set(tasks["scene"].labels)
    assert set(EVENT_PHRASES) >= {text_label(e["label"]) for e in catalog["events"]}
    for task in tasks.values():
        if task.labels:
            assert len(task.labels) == task.num_classes
        assert "ASR" not in task.description or task.name == "asr"
        assert task.weight is None and task.worst == 0.0 and task.best == 1.0 and task.description
        if task.metric == "accuracy":
            assert task.chance == pytest.approx(1 / task.num_classes, abs=1e-5)
    assert "cannot teach open ASR" in tasks["asr"].description
