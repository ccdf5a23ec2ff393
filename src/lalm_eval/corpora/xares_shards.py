"""Full XARES runs: the upstream WebDataset shards turned into the suite's items table.

The challenge's data are WebDataset tar shards on the Hugging Face hub
(``mispeech/xares_llm_data``, ``mispeech/MECAT-Caption``); each task of a task set lists its
shards (``tasks.<name>.shards``: ``repo_id``, ``train`` / ``test`` path patterns with
``{a..b}`` ranges, ``train_key``). One sample is the members of a shard that share a key
(the member path up to the first "." of its file name): an audio member (flac, wav, mp3,
ogg, opus) and a ``.json`` whose label field is the task's ``label_key`` (test) or
``train_key`` (train); ``a;b;c`` names alternatives, the first one present is used.

* :func:`registry_entries` / :func:`registry_snippet`: the corpus-registry entries
  (``lalm_eval/corpora/registry.yaml``), one per task, named ``xares_<task>``; the hub
  revision and the shard checksums are not known here, so the entries use ``main``, carry
  no checksum (trust on first use) and say that a full run must pin both.
* :func:`iter_shard`: the samples of one shard, with the ``webdataset`` package when it is
  installed (``webdataset==1.0.2``) and with the standard ``tarfile`` module otherwise
  (same grouping rules, same result).
* :func:`build_shard_items`: the items table (docs/xares.md) from local shards laid out as
  the registry downloads them (``<root>/xares_<task>/downloads/<shard path>``), every clip
  decoded with :mod:`lalm_eval.audio` to 16 kHz mono and written as PCM16 WAV.

Labels: a list of labels (mAP tasks) is ";"-joined; a list of captions gives one training
row per caption (as upstream, each caption is a sample) and, for test, the first caption
(counted in ``summary.json``); numbers become their decimal text. ``recording`` is the
sample's shard and key: upstream's train/test split is taken as given.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lalm_eval.audio import AudioError, load_audio, to_pcm16, write_audio
from lalm_eval.corpora.tables import write_rows
from lalm_eval.hashing import text_sha256

__all__ = [
    "AUDIO_EXTENSIONS",
    "ITEM_COLUMNS",
    "ShardSample",
    "build_shard_items",
    "expand_braces",
    "iter_shard",
    "label_value",
    "local_shard_path",
    "registry_entries",
    "registry_name",
    "registry_snippet",
    "shard_files",
]

AUDIO_EXTENSIONS = ("flac", "wav", "mp3", "ogg", "opus")
ITEM_COLUMNS = ("task", "item_id", "audio", "target", "split", "recording")
PROVENANCE_COLUMNS = ("item_id", "task", "split", "shard", "key", "audio_member", "label_key")
CAPTION_METRICS = ("fense", "date", "caption_similarity")
HUB = "https://huggingface.co/datasets"

_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_BRACE = re.compile(r"\{([^{}]*)\}")
_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")
_META = re.compile(r"__[^/]*__($|/)")


# --------------------------------------------------------------------------- shard lists


def _alternatives(body: str) -> list[str]:
    match = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if match:
        first, last = match.group(1), match.group(2)
        # as braceexpand (which webdataset uses): a bound written with a leading zero pads
        # every number to the longer bound's width
        padded = any(len(b) > 1 and b.startswith("0") for b in (first, last))
        width = max(len(first), len(last)) if padded else 0
        lo, hi = int(first), int(last)
        if hi < lo:
            raise ValueError(f"empty range {{{body}}}")
        return [str(i).zfill(width) for i in range(lo, hi + 1)]
    if "," in body:
        return body.split(",")
    raise ValueError(f"cannot expand {{{body}}}: use {{a..b}} or {{x,y}}")


def expand_braces(pattern: str) -> list[str]:
    """Every name a shard pattern stands for: ``{00..17}`` (zero padded as braceexpand
    pads) and ``{x,y}``."""
    match = _BRACE.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [name for alt in _alternatives(match.group(1))
            for name in expand_braces(head + alt + tail)]


def _shards_spec(task: Any) -> Mapping[str, Any]:
    spec = task.shards if hasattr(task, "shards") else task.get("shards")
    name = task.name if hasattr(task, "name") else task.get("name", "?")
    if not spec or not spec.get("repo_id"):
        raise ValueError(f"task {name}: no 'shards' (repo_id, train, test) in its definition")
    return spec


def shard_files(task: Any, split: str) -> list[str]:
    """The shard paths (inside the hub repository) of a task's ``train`` or ``test`` split."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    return [name for pattern in _shards_spec(task).get(split) or []
            for name in expand_braces(str(pattern))]


def registry_name(task_name: str) -> str:
    """The registry entry of a task's shards."""
    return "xares_" + re.sub(r"[^a-z0-9_]", "_", task_name.lower())


def local_shard_path(root: str | Path, task_name: str, shard: str) -> Path:
    """Where :func:`lalm_eval.corpora.registry.fetch_corpus` puts a shard of a task."""
    return Path(root) / registry_name(task_name) / "downloads" / shard


# --------------------------------------------------------------------------- registry


def _file_items(repo_id: str, revision: str, patterns: Sequence[str],
                per_file: bool) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    unpinned = ("Unverified: revision and checksum unknown when this entry was written. A "
                "full run must replace 'main' in the URL by the dataset commit and pin the "
                "sha256 (trust on first use until then).")
    for pattern in patterns:
        ranges = _BRACE.findall(pattern)
        if not per_file and len(ranges) == 1:
            ids = _alternatives(ranges[0])
            template = _BRACE.sub("{id}", pattern)
            items.append({"file_pattern": {"url": f"{HUB}/{repo_id}/resolve/{revision}/"
                                                  f"{template}",
                                           "filename": template, "ids": ids},
                          "size": None, "sha256": None, "md5": None, "pin_verified": False,
                          "extract": False, "note": unpinned})
            continue
        for name in expand_braces(pattern):
            items.append({"url": f"{HUB}/{repo_id}/resolve/{revision}/{name}",
                          "filename": name, "size": None, "sha256": None, "md5": None,
                          "pin_verified": False, "extract": False, "note": unpinned})
    return items


def registry_entries(task_set: Any, revision: str = "main", per_file: bool = False,
                     suite: str = "xares") -> list[dict[str, Any]]:
    """Registry entries (``registry.yaml`` ``corpora`` items) for every task with shards.

    ``per_file`` lists every shard on its own (so each can get its sha256) instead of one
    ``file_pattern`` per shard range.
    """
    entries = []
    for name, task in task_set.tasks.items():
        if not task.shards:
            continue
        spec = _shards_spec(task)
        repo_id = str(spec["repo_id"])
        patterns = [str(p) for p in (spec.get("train") or []) + (spec.get("test") or [])]
        entries.append({
            "name": registry_name(name),
            "version": f"{revision} (unpinned)" if revision == "main" else revision,
            "description": (f"XARES-LLM WebDataset shards of {task.dataset or name} (train and "
                            f"test) from the Hugging Face dataset {repo_id}."),
            "homepage": f"{HUB}/{repo_id}",
            "licence": "NOASSERTION",
            "licence_note": ("Licence of the repackaged shards not read; each source dataset "
                             "keeps its own licence (see the dataset card and the source)."),
            "used_by": [suite],
            "released": True,
            "files": _file_items(repo_id, revision, patterns, per_file),
            "layout_note": ("WebDataset tar shards, read in place (not extracted): per sample "
                            "an audio member (flac/wav/mp3/ogg/opus) and a .json with the "
                            f"label key {task.label_key!r} (train: "
                            f"{spec.get('train_key')!r}); json contents unverified."),
        })
    return entries


def registry_snippet(task_set: Any, revision: str = "main", per_file: bool = False) -> str:
    """:func:`registry_entries` as YAML, to paste under ``corpora:`` in registry.yaml."""
    return yaml.safe_dump(registry_entries(task_set, revision, per_file), sort_keys=False,
                          allow_unicode=True, width=100, default_flow_style=None)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ShardSample:
    """One sample of a shard: its key, audio member and parsed json."""

    shard: str
    key: str
    audio: bytes
    audio_ext: str
    meta: Mapping[str, Any] | None
    problem: str = ""   # why the sample cannot be used ('' when it can)


def _split_key(name: str) -> tuple[str | None, str]:
    match = _KEY.match(name)
    return (match.group(1), match.group(2).lower()) if match else (None, "")


def _tar_groups(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per run of consecutive members sharing a key, as
    webdataset groups them (regular files only, ``__meta__`` names skipped)."""
    key: str | None = None
    group: dict[str, bytes] = {}
    with tarfile.open(path, mode="r|*") as stream:
        for member in stream:
            if not member.isreg() or _META.match(member.name):
                continue
            prefix, ext = _split_key(member.name)
            if prefix is None:
                continue
            handle = stream.extractfile(member)
            data = handle.read() if handle is not None else b""
            if prefix != key:
                if key is not None and group:
                    yield key, group
                key, group = prefix, {}
            if ext in group:
                raise ValueError(f"{path}: member {member.name} repeats extension {ext!r}")
            group[ext] = data
    if key is not None and group:
        yield key, group


def _wds_groups(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    import webdataset as wds

    dataset = wds.WebDataset(str(path), shardshuffle=False, empty_check=False)
    for sample in dataset:
        yield sample["__key__"], {k: v for k, v in sample.items() if not k.startswith("__")}


def _sample(shard: str, key: str, group: Mapping[str, bytes]) -> ShardSample:
    audio = [ext for ext in sorted(group) if ext.rsplit(".", 1)[-1] in AUDIO_EXTENSIONS]
    metas = [ext for ext in sorted(group) if ext.rsplit(".", 1)[-1] == "json"]
    if not audio:
        return ShardSample(shard, key, b"", "", None, "no audio member")
    if not metas:
        return ShardSample(shard, key, b"", audio[0], None, "no .json member")
    try:
        meta = json.loads(group[metas[0]].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return ShardSample(shard, key, b"", audio[0], None, f"bad json ({exc})")
    if not isinstance(meta, Mapping):
        return ShardSample(shard, key, b"", audio[0], None, "json is not an object")
    return ShardSample(shard, key, group[audio[0]], audio[0], meta)


def _backend(backend: str) -> str:
    if backend not in ("auto", "webdataset", "tarfile"):
        raise ValueError(f"backend must be auto, webdataset or tarfile, got {backend!r}")
    if backend == "auto":
        try:
            import webdataset  # noqa: F401
        except ImportError:
            return "tarfile"
        return "webdataset"
    return backend


def iter_shard(path: str | Path, backend: str = "auto") -> Iterator[ShardSample]:
    """The samples of one shard in member order (``.tar`` or compressed ``.tar.gz``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"shard not found: {path}")
    groups = _wds_groups(path) if _backend(backend) == "webdataset" else _tar_groups(path)
    for key, group in groups:
        yield _sample(path.name, key, group)


def label_value(meta: Mapping[str, Any], label_key: str) -> Any:
    """The value of the first of ``label_key``'s ";"-separated keys that ``meta`` has."""
    for key in str(label_key).split(";"):
        if key in meta and meta[key] not in (None, ""):
            return meta[key]
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return " ".join(str(value).split())


def _targets(value: Any, metric: str, split: str) -> tuple[list[str], bool]:
    """Target texts of one sample, and whether a list was cut to its first caption."""
    if isinstance(value, list | tuple):
        values = [_text(v) for v in value if v not in (None, "")]
        if not values:
            return [], False
        if metric in CAPTION_METRICS:
            return (values, False) if split == "train" else ([values[0]], len(values) > 1)
        return [";".join(values)], False
    return [_text(value)], False


# --------------------------------------------------------------------------- build


def _decode(data: bytes, ext: str, sample_rate: int, tmp_dir: Path):
    """Decoded samples via lalm_eval.audio (the bytes written to a temporary file)."""
    tmp = tmp_dir / f"member.{ext.rsplit('.', 1)[-1]}"
    tmp.write_bytes(data)
    try:
        return load_audio(tmp, sample_rate).samples
    finally:
        tmp.unlink(missing_ok=True)


def build_shard_items(
    task_set: Any,
    shard_root: str | Path,
    out_dir: str | Path,
    *,
    tasks: Sequence[str] | None = None,
    max_items: int | None = None,
    valid_fraction: float = 0.0,
    sample_rate: int = 16000,
    backend: str = "auto",
    shard_path: Callable[[str, str], Path] | None = None,
) -> Path:
    """Write ``out_dir/items.csv`` (and ``audio/``, ``provenance.csv``, ``summary.json``)
    from the local shards of every task of ``task_set`` with shards (or of ``tasks``).

    ``max_items`` keeps the first rows of each task and split in shard order (a quick
    subset; never compare a subset's DATE with a full-set number). ``valid_fraction`` of
    the training samples (chosen by a hash of their key) become ``valid`` rows.
    ``shard_path(task, shard)`` locates a shard (default :func:`local_shard_path` under
    ``shard_root``). A sample without audio, json or label, or whose audio cannot be
    decoded, is skipped and counted; a task split that yields no row is an error.
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError("valid_fraction must be within [0, 1)")
    if max_items is not None and max_items < 1:
        raise ValueError("max_items must be >= 1 or None")
    out_dir = Path(out_dir)
    locate = shard_path or (lambda task, shard: local_shard_path(shard_root, task, shard))
    names = list(tasks) if tasks is not None else [n for n, t in task_set.tasks.items()
                                                   if t.shards]
    unknown = [n for n in names if n not in task_set.tasks]
    if unknown:
        raise ValueError(f"task(s) {unknown} not in task set {task_set.name}")
    rows: list[dict[str, Any]] = []
    provenance: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"task_set": task_set.name, "backend": _backend(backend),
                               "sample_rate": sample_rate, "max_items": max_items,
                               "valid_fraction": valid_fraction, "tasks": {}}
    if (out_dir / "audio").exists():
        shutil.rmtree(out_dir / "audio")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp_name:
        tmp_dir = Path(tmp_name)
        for name in names:
            task = task_set.tasks[name]
            spec = _shards_spec(task)
            info: dict[str, Any] = {"samples": {}, "skipped": {}, "first_caption_only": 0,
                                    "shards": {}}
            for split in ("train", "test"):
                key_name = (spec.get("train_key") or task.label_key) if split == "train" \
                    else task.label_key
                if not key_name:
                    raise ValueError(f"task {name}: no label key for its {split} shards")
                made = 0
                for shard in shard_files(task, split):
                    path = locate(name, shard)
                    if not path.is_file():
                        raise FileNotFoundError(
                            f"task {name}: shard {shard} not found at {path} (fetch the "
                            f"registry entry {registry_name(name)})")
                    info["shards"][shard] = path.stat().st_size
                    for sample in iter_shard(path, backend):
                        if max_items is not None and made >= max_items:
                            break
                        problem = sample.problem
                        value = None if problem else label_value(sample.meta or {}, key_name)
                        if not problem and value is None:
                            problem = f"no label ({key_name})"
                        targets, cut = ([], False) if problem else _targets(value, task.metric,
                                                                            split)
                        if not problem and not targets:
                            problem = f"empty label ({key_name})"
                        samples = None
                        if not problem:
                            try:
                                samples = _decode(sample.audio, sample.audio_ext, sample_rate,
                                                  tmp_dir)
                            except AudioError as exc:
                                problem = f"audio: {exc}".replace(str(tmp_dir), "<tmp>")
                        if problem:
                            reason = problem.split(" (")[0]
                            info["skipped"][reason] = info["skipped"].get(reason, 0) + 1
                            continue
                        info["first_caption_only"] += int(cut)
                        recording = f"{name}/{shard}/{sample.key}"
                        row_split = split
                        if split == "train" and valid_fraction > 0:
                            bucket = int(text_sha256(recording)[:8], 16) / 0xFFFFFFFF
                            row_split = "valid" if bucket < valid_fraction else "train"
                        index = made
                        rel = f"audio/{name}/{split}/{index:07d}.wav"
                        write_audio(out_dir / rel, to_pcm16(samples), sample_rate, "PCM_16")
                        for j, target in enumerate(targets):
                            item_id = f"{name}_{split}_{index:07d}" + (f"_{j}" if j else "")
                            rows.append({"task": name, "item_id": item_id, "audio": rel,
                                         "target": target, "split": row_split,
                                         "recording": recording})
                            provenance.append({"item_id": item_id, "task": name,
                                               "split": row_split, "shard": shard,
                                               "key": sample.key,
                                               "audio_member": f"{sample.key}.{sample.audio_ext}",
                                               "label_key": key_name})
                        made += 1
                    if max_items is not None and made >= max_items:
                        break
                if not made:
                    raise ValueError(f"task {name}: no usable sample in its {split} shards "
                                     f"(skipped: {info['skipped']})")
                info["samples"][split] = made
            summary["tasks"][name] = info
    write_rows(out_dir / "provenance.csv", PROVENANCE_COLUMNS, provenance)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                                          encoding="utf-8")
    items = out_dir / "items.csv"
    write_rows(items, ITEM_COLUMNS, rows)
    return items

