"""Full-run XARES data: tiny WebDataset shards (wav + json members) made in the test."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from lalm_eval.corpora.registry import load_registry
from lalm_eval.corpora.xares_shards import (
    build_shard_items,
    expand_braces,
    iter_shard,
    label_value,
    local_shard_path,
    registry_entries,
    registry_snippet,
    shard_files,
)
from lalm_eval.suites.xares.data import read_items
from lalm_eval.suites.xares.tasks import load_task_set


def _wav(seconds: float, rate: int, freq: float, fmt: str = "WAV") -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([x, x], axis=1), rate, format=fmt,
             subtype="PCM_16" if fmt == "WAV" else None)
    return buffer.getvalue()


def _shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return path


def _meta(**fields: object) -> bytes:
    return json.dumps(fields).encode()


TASKS = {
    "name": "tiny",
    "tasks": {
        "sounds": {"track": "A", "dataset": "Sounds", "instruction": "Classify the sound.",
                   "label_key": "text;caption;captions;label;labels", "metric": "accuracy",
                   "num_classes": 2,
                   "shards": {"repo_id": "me/xares_llm_data", "train_key": "label;labels",
                              "train": ["Sounds/train/part_{0..1}.tar"],
                              "test": ["Sounds/test/eval_0000{00..00}.tar.gz"]}},
        "tags": {"track": "A", "instruction": "Multi-label classification.",
                 "label_key": "label;labels", "metric": "map", "num_classes": 3,
                 "shards": {"repo_id": "me/xares_llm_data", "train": ["Tags/t.tar"],
                            "test": ["Tags/e.tar"]}},
        "captions": {"track": "B", "instruction": "Write a caption.", "label_key": "long",
                     "metric": "date",
                     "shards": {"repo_id": "me/MECAT-Caption", "train_key": "captions",
                                "train": ["Cap/train.tar"], "test": ["Cap/test.tar"]}},
    },
}


@pytest.fixture
def shards(tmp_path: Path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TASKS))
    task_set = load_task_set(str(path))
    root = tmp_path / "downloads"
    put = lambda task, shard, members: _shard(local_shard_path(root, task, shard), members)  # noqa: E731
    put("sounds", "Sounds/train/part_0.tar", [
        ("a/s1.wav", _wav(0.5, 44100, 300)), ("a/s1.json", _meta(label="Dog")),
        ("a/s2.flac", _wav(0.4, 22050, 500, "FLAC")), ("a/s2.json", _meta(labels="Cat")),
        ("a/s3.wav", _wav(0.3, 16000, 700)),                      # no json: skipped
        ("a/s4.wav", b"RIFF not audio"), ("a/s4.json", _meta(label="Dog")),  # undecodable
    ])
    put("sounds", "Sounds/train/part_1.tar", [
        ("__meta__.json", b"{}"),
        ("b.x1.wav", _wav(0.5, 8000, 400)), ("b.x1.json", _meta(label="Cat", text=None)),
        ("s5.ogg", _wav(0.5, 16000, 600, "OGG")), ("s5.json", _meta(label=3)),
    ])
    put("sounds", "Sounds/test/eval_000000.tar.gz", [
        ("t1.wav", _wav(0.5, 16000, 300)), ("t1.json", _meta(text="Dog", label="ignored")),
        ("t2.wav", _wav(0.5, 16000, 300)), ("t2.json", _meta(label="Cat")),
    ])
    put("tags", "Tags/t.tar", [("k1.wav", _wav(0.5, 16000, 300)),
                               ("k1.json", _meta(labels=["Dog", "Bark"]))])
    put("tags", "Tags/e.tar", [("k2.wav", _wav(0.5, 16000, 300)),
                               ("k2.json", _meta(label="Dog;Music"))])
    put("captions", "Cap/train.tar", [("c1.wav", _wav(0.5, 16000, 300)),
                                      ("c1.json", _meta(captions=["a dog", "a barking dog"]))])
    put("captions", "Cap/test.tar", [("c2.wav", _wav(0.5, 16000, 300)),
                                     ("c2.json", _meta(long=["rain falls", "it rains"]))])
    return task_set, root


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_expand_braces_and_shard_lists() -> None:
    names = expand_braces("X/train_0000{00..17}.tar.gz")
    assert len(names) == 18 and names[0] == "X/train_000000.tar.gz" and names[-1].endswith(
        "000017.tar.gz")
    assert expand_braces("f_{1..4}_0.tar") == [f"f_{i}_0.tar" for i in range(1, 5)]
    assert expand_braces("{8..10}{a,b}") == ["8a", "8b", "9a", "9b", "10a", "10b"]
    assert expand_braces("plain.tar") == ["plain.tar"]
    assert expand_braces("e_000{00..193}")[:2] == ["e_000000", "e_000001"]
    assert expand_braces("{0..10}")[-2:] == ["9", "10"]
    with pytest.raises(ValueError, match="empty range"):
        expand_braces("{5..1}")
    challenge = load_task_set("challenge").tasks
    assert len(shard_files(challenge["asvspoof2015"], "test")) == 194
    assert len(shard_files(challenge["fsd50k"], "test")) == 32


def test_expansion_matches_braceexpand() -> None:
    braceexpand = pytest.importorskip("braceexpand").braceexpand  # webdataset's expander
    for pattern in ("{00..193}", "{0..10}", "{005..7}", "{0..01}", "a{1..3}b{x,y}"):
        assert expand_braces(pattern) == list(braceexpand(pattern)), pattern


def test_label_keys_are_alternatives() -> None:
    assert label_value({"label": "x", "labels": "y"}, "labels;label") == "y"
    assert label_value({"text": "", "label": "x"}, "text;label") == "x"
    assert label_value({"other": 1}, "label") is None


def test_build_from_tarfile_shards(shards, tmp_path: Path) -> None:
    task_set, root = shards
    items = build_shard_items(task_set, root, tmp_path / "out", backend="tarfile")
    rows = read_items(items, task_set.tasks)  # the suite's checks, leaks included
    got = {(r.task, r.split, r.target) for r in rows}
    assert got == {("sounds", "train", "Dog"), ("sounds", "train", "Cat"),
                   ("sounds", "train", "3"), ("sounds", "test", "Dog"),
                   ("sounds", "test", "Cat"), ("tags", "train", "Dog;Bark"),
                   ("tags", "test", "Dog;Music"), ("captions", "train", "a dog"),
                   ("captions", "train", "a barking dog"), ("captions", "test", "rain falls")}
    assert len([r for r in rows if r.task == "sounds" and r.target == "Cat"]) == 3
    for row in rows:
        info = sf.info(str(row.audio))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    caption_rows = [r for r in rows if r.task == "captions" and r.split == "train"]
    assert len({r.audio for r in caption_rows}) == 1 and len(caption_rows) == 2
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    sounds = summary["tasks"]["sounds"]
    assert sounds["samples"] == {"train": 4, "test": 2}
    assert sounds["skipped"]["no .json member"] == 1
    assert sum(v for k, v in sounds["skipped"].items() if k.startswith("audio")) == 1
    assert summary["tasks"]["captions"]["first_caption_only"] == 1
    provenance = _rows(tmp_path / "out" / "provenance.csv")
    assert {p["key"] for p in provenance if p["task"] == "sounds"} == {
        "a/s1", "a/s2", "b", "s5", "t1", "t2"}


def test_webdataset_backend_gives_the_same_table(shards, tmp_path: Path) -> None:
    pytest.importorskip("webdataset")
    task_set, root = shards
    a = build_shard_items(task_set, root, tmp_path / "a", backend="tarfile")
    b = build_shard_items(task_set, root, tmp_path / "b", backend="webdataset")
    assert a.read_bytes() == b.read_bytes()
    for row in _rows(a):
        assert (tmp_path / "a" / row["audio"]).read_bytes() == (
            tmp_path / "b" / row["audio"]).read_bytes()
    keys = [s.key for s in iter_shard(local_shard_path(root, "sounds", "Sounds/train/part_0.tar"),
                                      "webdataset")]
    assert keys == ["a/s1", "a/s2", "a/s3", "a/s4"]


def test_subsets_valid_rows_and_missing_shards(shards, tmp_path: Path) -> None:
    task_set, root = shards
    items = build_shard_items(task_set, root, tmp_path / "out", tasks=["sounds"], max_items=1,
                              valid_fraction=0.99, backend="tarfile")
    rows = _rows(items)
    assert [(r["split"], r["target"]) for r in rows] == [("valid", "Dog"), ("test", "Dog")]
    local_shard_path(root, "tags", "Tags/e.tar").unlink()
    with pytest.raises(FileNotFoundError, match="fetch the registry entry xares_tags"):
        build_shard_items(task_set, root, tmp_path / "x", tasks=["tags"])
    with pytest.raises(ValueError, match=r"task\(s\) \['nope'\]"):
        build_shard_items(task_set, root, tmp_path / "x", tasks=["nope"])


def test_registry_snippet_is_a_valid_unpinned_registry(tmp_path: Path) -> None:
    challenge = load_task_set("challenge")
    entries = registry_entries(challenge)
    assert len(entries) == len(challenge.tasks) == 20
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"schema_version": 1, "corpora": entries}))
    registry = load_registry(path)  # the registry's own validation
    esc50 = registry["xares_esc50"]
    names = [f.filename for f in esc50.files]
    assert names == [f"ESC-50/train/esc50_fold_{i}_0000000.tar.gz" for i in range(1, 5)] + [
        "ESC-50/test/esc50_fold_5_0000000.tar.gz"]
    for entry in registry.values():
        expected = sum(len(shard_files(challenge.tasks[entry.name[6:]], s))
                       for s in ("train", "test"))
        assert len(entry.files) == expected
        for item in entry.files:
            assert "/resolve/main/" in item.url and not item.pinned and not item.pin_verified
    assert registry["xares_mecat"].files[0].url.startswith(
        "https://huggingface.co/datasets/mispeech/MECAT-Caption/resolve/main/")
    compact = registry_snippet(challenge)
    assert yaml.safe_load(compact) == entries  # ids keep their zeros through YAML
    per_file = yaml.safe_load(registry_snippet(challenge, revision="0123abc", per_file=True))
    first = per_file[0]["files"][0]
    assert first["sha256"] is None and "/resolve/0123abc/" in first["url"]
    assert per_file[0]["version"] == "0123abc"
