"""Inference engine: batched, content-keyed cache, resumable after any kill, repeatable.

One job = one (suite, split, model, mode, run). Each item's record is appended to the job's
cache file as soon as its batch finishes (flushed and fsynced), keyed by a hash of
everything that determines the output: model fingerprint (adapter, source, revision,
decoding, options), request kind, prompt hash, audio content hash, label set and run. A
killed job loses at most the batch in flight; a rerun with nothing changed loads no model.
The job's output (one JSON line per item, in item order) is written atomically at the end.

Cache file: one JSON object per line, each with a ``checksum`` field (:func:`cache_line`), so
a damaged line is recognised and skipped alone (:func:`scan_cache`); one job at a time
writes a cache file (:func:`cache_lock`); a key recorded twice is harmless (:func:`_store`).

Cache policy: outputs (including empty ones) and deterministic input problems (unreadable or
invalid audio, :func:`input_error`) satisfy a lookup; any other failure stays in the cache
file as history and is computed again on the next run of the job.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import random
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lalm_eval.audio import AudioError, load_audio
from lalm_eval.hashing import memo_file_sha256, text_sha256
from lalm_eval.jsonl import write_jsonl
from lalm_eval.models.base import AudioModel, Request, Response

log = logging.getLogger("lalm_eval.inference")

#: the error recorded for a call that returned only whitespace
EMPTY_OUTPUT = "empty model output"

#: how errors that describe the input itself begin: the engine's ``AudioError: ...`` (the file
#: cannot be read or decoded) and the messages of :func:`lalm_eval.audio.audio_problem`, which
#: adapters return for audio they cannot take. Given the same input (its sha256 is part of the
#: cache key) they recur, so they are cached like outputs.
INPUT_ERROR_PREFIXES = (
    "AudioError", "request has no audio", "audio must be mono", "audio is empty",
    "audio must be float", "audio is too short", "audio contains NaN or infinite samples",
)

RECORD_FIELDS = (
    "item_id", "clip_id", "model", "model_revision", "mode", "task", "request", "prompt_id",
    "prompt_sha256", "run", "seed", "output_text", "scores", "parsed", "well_formed", "error",
    "latency_s", "n_output_tokens", "audio_sha256", "cache_key", "attempts",
)

#: the field of a cache line that holds its checksum (:func:`record_checksum`)
CHECKSUM_FIELD = "checksum"

#: hex digits of the sha256 kept as a cache line's checksum
CHECKSUM_HEX_DIGITS = 16

#: corrupt line numbers named in the warning about a cache file (the count is always given)
MAX_LINES_NAMED = 20


class CacheLockedError(RuntimeError):
    """The cache file is being written by another job (another process or run_job call)."""


@dataclass(frozen=True)
class WorkItem:
    """One request of a job: a clip (or none, for text-only work) and what to ask of it."""

    item_id: str
    clip_id: str
    task: str  # benchmark task, e.g. asr / asc / at
    request: str  # adapter task: transcribe / generate / classify / caption / ...
    audio_path: str | None = None
    prompt_id: str | None = None
    prompt: str | None = None
    system: str | None = None
    labels: tuple[str, ...] | None = None
    multi_label: bool = False

    @property
    def prompt_sha256(self) -> str | None:
        if self.prompt is None and self.system is None:
            return None
        text = json.dumps([self.system, self.prompt])
        return text_sha256(text)


@dataclass
class JobSummary:
    n_items: int = 0
    n_cached: int = 0
    n_computed: int = 0
    n_errors: int = 0
    n_retried: int = 0  # items whose cached record was a failure, computed again
    n_batches: int = 0
    n_corrupt: int = 0  # corrupt cache lines skipped when the cache was read
    model_loaded: bool = False
    errors: dict[str, int] = field(default_factory=dict)


def _audio_sha256(path: str | Path | None) -> str | None:
    """sha256 of an item's audio (None without audio). A missing file gives a marker naming
    it instead: the item then fails alone when its audio is loaded ("audio file not found"),
    and its key changes once the file is back."""
    if not path:
        return None
    try:
        return memo_file_sha256(path)
    except FileNotFoundError:
        return f"missing:{path}"


def cache_key(model_fingerprint: str, item: WorkItem, audio_sha256: str | None, run: int,
              seed: int) -> str:
    """Content key of one item's output."""
    payload = {
        "model": model_fingerprint, "request": item.request, "prompt": item.prompt_sha256,
        "audio": audio_sha256, "labels": list(item.labels) if item.labels else None,
        "multi_label": item.multi_label, "run": run, "seed": seed,
    }
    return text_sha256(json.dumps(payload, sort_keys=True))


def input_error(error: str | None) -> bool:
    """Whether ``error`` is a deterministic problem of the input (unreadable or invalid
    audio), which recurs until the input changes, rather than a failure of the call."""
    return bool(error) and error.startswith(INPUT_ERROR_PREFIXES)


def reusable(record: dict) -> bool:
    """Whether a cached record satisfies a lookup: an output (an empty one included: it is
    an answer) or an input error. Other failures (timeouts, HTTP 5xx, out of memory, a
    crashed backend, ...) are history: the next run of the job computes them again."""
    error = record.get("error")
    return not error or error == EMPTY_OUTPUT or input_error(error)


def _store(cache: dict[str, dict], record: dict) -> None:
    """Keep ``record`` as its key's latest, unless it is a failure and the key already holds
    a reusable record (a failure never hides an answer). Applied line by line in file order,
    this makes a key recorded more than once (a retried failure, an item computed twice)
    harmless: the lookup holds one record per key, the same one on every read."""
    old = cache.get(record["cache_key"])
    if old is None or reusable(record) or not reusable(old):
        cache[record["cache_key"]] = record


def record_checksum(record: dict) -> str:
    """First :data:`CHECKSUM_HEX_DIGITS` hex digits of the sha256 of ``record``'s canonical
    JSON (sorted keys, no spaces, UTF-8), the record taken without its checksum field."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text_sha256(canonical)[:CHECKSUM_HEX_DIGITS]


def cache_line(record: dict) -> str:
    """``record`` as one cache line: its JSON with the checksum as last field, and a newline."""
    checked = {**record, CHECKSUM_FIELD: record_checksum(record)}
    return json.dumps(checked, ensure_ascii=False) + "\n"


def parse_cache_line(line: bytes) -> dict | None:
    """The record on one cache line (without its checksum field), or None when the line is
    corrupt: not a JSON object with a ``cache_key``, or its checksum does not match. A line
    without a checksum (written before checksums were added) is taken as it parses."""
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or not isinstance(record.get("cache_key"), str):
            return None
        checksum = record.pop(CHECKSUM_FIELD, None)
        if checksum is not None and checksum != record_checksum(record):
            return None
    except (ValueError, RecursionError):  # bad JSON or UTF-8 (UnicodeError is a ValueError)
        return None
    return record


@dataclass
class CacheScan:
    """What reading a cache file found."""

    records: dict[str, dict] = field(default_factory=dict)  # by cache key (:func:`_store`)
    n_kept: int = 0  # good lines, a key recorded twice counted twice
    corrupt_lines: list[int] = field(default_factory=list)  # 1-based numbers of skipped lines
    torn_bytes: int = 0  # size of the torn last line cut off the file


def scan_cache(path: Path) -> CacheScan:
    """Read a cache file line by line, keeping one record per key (:func:`_store`).

    A corrupt line (:func:`parse_cache_line`) is skipped alone, counted and named in one
    warning; it stays in the file (it ends with a newline, so later appends stay aligned)
    and its item is computed again, as if never cached. A last line without a newline is
    the torn write of a killed job: it is cut off the file, unless it is a whole record
    that only lacks its newline, which is then kept and the newline added."""
    scan = CacheScan()
    if not path.exists():
        return scan
    aligned_bytes = 0  # bytes up to the end of the last complete line
    unterminated: tuple[int, bytes] | None = None  # number and bytes of a last line
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                unterminated = number, line
                break
            aligned_bytes += len(line)
            record = parse_cache_line(line)
            if record is None:
                scan.corrupt_lines.append(number)
            else:
                _store(scan.records, record)
                scan.n_kept += 1
    if unterminated is not None:
        _mend_last_line(path, scan, *unterminated, aligned_bytes)
    if scan.corrupt_lines:
        n = len(scan.corrupt_lines)
        named = ", ".join(map(str, scan.corrupt_lines[:MAX_LINES_NAMED]))
        more = f", and {n - MAX_LINES_NAMED} more" if n > MAX_LINES_NAMED else ""
        log.warning("cache %s: skipped %d corrupt record%s (line%s %s%s); %d kept", path, n,
                    "s" if n > 1 else "", "s" if n > 1 else "", named, more, scan.n_kept)
    return scan


def _mend_last_line(path: Path, scan: CacheScan, number: int, line: bytes,
                    aligned_bytes: int) -> None:
    """End the file with a newline: keep a whole last record, cut off a torn one."""
    record = parse_cache_line(line)
    if record is not None:
        with open(path, "ab") as handle:
            handle.write(b"\n")
        _store(scan.records, record)
        scan.n_kept += 1
        log.info("cache %s: added the missing newline after the last record", path)
        return
    log.warning("cache %s: cut off a torn last record (line %d, %d bytes)", path, number,
                len(line))
    with open(path, "r+b") as handle:
        handle.truncate(aligned_bytes)
    scan.torn_bytes = len(line)


def read_cache(path: Path) -> dict[str, dict]:
    """Records by cache key (:func:`scan_cache`): the latest per key, except that a failure
    never replaces a reusable record (:func:`reusable`). Corrupt lines are skipped, a torn
    last line is cut off the file."""
    return scan_cache(path).records


@contextmanager
def cache_lock(cache_path: Path) -> Iterator[None]:
    """Hold the exclusive lock of one cache file (an ``flock`` on ``<cache>.lock``, which
    records the holder), or raise :class:`CacheLockedError` at once if another job holds it.

    The lock belongs to the open file, so a second :func:`run_job` in the same process is
    refused too, and the OS releases it when its process dies: a killed job leaves no stale
    lock. The lock file stays (removing it would let two jobs lock two different files).
    On a file system without ``flock`` the job runs unlocked, with a warning."""
    lock_path = cache_path.with_name(cache_path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        locked = _try_flock(fd, cache_path)
        if locked:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            if locked:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_flock(fd: int, cache_path: Path) -> bool:
    """Lock ``fd`` without waiting: True when locked, False when the file system has no
    ``flock``; :class:`CacheLockedError` (naming the holder) when another job holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "pid unknown"
        raise CacheLockedError(
            f"cache {cache_path} is being written by another job ({holder}); wait for it to "
            f"finish or kill it, then rerun") from None
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
        log.warning("cache %s: file locking not supported here (%s); running unlocked",
                    cache_path, exc)
        return False
    return True


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if loaded) torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def run_seed(seed: int, run: int) -> int:
    """The seed of repeat ``run`` (distinct, stable)."""
    return int(text_sha256(f"{seed}:{run}")[:8], 16)


def _batches(items: Sequence[WorkItem], size: int) -> Iterable[list[WorkItem]]:
    by_request: dict[str, list[WorkItem]] = {}
    for item in items:
        by_request.setdefault(item.request, []).append(item)
    for group in by_request.values():
        for start in range(0, len(group), size):
            yield group[start : start + size]


def _predict_isolating_failures(model: AudioModel, requests: list[Request]) -> list[Response]:
    """Call the adapter; if the batch call raises, retry item by item so one bad item
    cannot take the others down."""
    try:
        responses = model.predict(requests)
        if len(responses) != len(requests):
            raise RuntimeError(f"adapter returned {len(responses)} responses "
                               f"for {len(requests)} requests")
        return responses
    except Exception as batch_error:  # noqa: BLE001 - adapters may raise anything
        if len(requests) == 1:
            return [Response.failed(f"{type(batch_error).__name__}: {batch_error}")]
        out = []
        for request in requests:
            try:
                out.extend(model.predict([request]))
            except Exception as exc:  # noqa: BLE001
                out.append(Response.failed(f"{type(exc).__name__}: {exc}"))
        return out


def _error_of(response: Response) -> str | None:
    if response.error:
        return response.error
    if response.scores is None and response.embedding is None and not (response.text or "")\
            .strip():
        return EMPTY_OUTPUT
    return None


def run_job(
    model_factory: Callable[[], AudioModel],
    model_fingerprint: str,
    items: Sequence[WorkItem],
    cache_path: str | Path,
    out_path: str | Path,
    *,
    model_name: str,
    model_revision: str | None,
    mode: str,
    run: int,
    seed: int,
    sample_rate: int | None,
    batch_size: int,
    progress: bool = False,
    max_attempts: int = 1,
) -> JobSummary:
    """Run (or resume) one inference job and write its predictions file.

    Every computed record is appended to the cache (``cache_path``), failures included. An
    item is taken from the cache when its key holds a :func:`reusable` record: an output
    (an empty output is an answer) or an input error (unreadable or invalid audio:
    :func:`input_error`; the audio's sha256 is in the key, so a changed file is computed
    again). Any other failure never satisfies a lookup: it stays in the cache file as
    history and is computed again on every run of the job until it succeeds or fails on
    its input (``JobSummary.n_retried`` counts these items). The predictions file holds one
    record per item, the one the lookup keeps however often its key is in the cache file.

    The job holds the cache's lock (:func:`cache_lock`) from reading it to writing the
    predictions: a second job on the same cache raises :class:`CacheLockedError` at once.
    Corrupt cache lines are skipped and their items computed again (``n_corrupt``).

    ``max_attempts`` > 1 retries, within the batch, the items whose call failed (the adapter
    reported an error or raised; input errors and empty outputs are not retried); the
    record keeps the last attempt and its number (``attempts``).
    """
    from tqdm import tqdm

    cache_path, out_path = Path(cache_path), Path(out_path)
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    seed_r = run_seed(seed, run)
    with cache_lock(cache_path):
        scan = scan_cache(cache_path)
        cache = scan.records
        audio_hash = {it.item_id: _audio_sha256(it.audio_path) for it in items}
        keys = {it.item_id: cache_key(model_fingerprint, it, audio_hash[it.item_id], run, seed_r)
                for it in items}
        pending = [it for it in items
                   if keys[it.item_id] not in cache or not reusable(cache[keys[it.item_id]])]
        summary = JobSummary(n_items=len(items), n_cached=len(items) - len(pending),
                             n_retried=sum(keys[it.item_id] in cache for it in pending),
                             n_corrupt=len(scan.corrupt_lines))
        log.info("%s %s run %d: %d items, %d cached, %d to compute (%d failed before)",
                 model_name, mode, run, len(items), summary.n_cached, len(pending),
                 summary.n_retried)
        model: AudioModel | None = None
        bar = tqdm(total=len(pending), disable=not progress, unit="item", mininterval=2.0,
                   desc=f"{model_name}/{mode}/run{run}")
        with open(cache_path, "a", encoding="utf-8") as cache_file:
            for batch_no, batch in enumerate(_batches(pending, max(1, batch_size))):
                if model is None:
                    model = model_factory()
                    model.load()
                    summary.model_loaded = True
                print(f"batch-start {batch_no} n={len(batch)}", file=sys.stderr, flush=True)
                batch_seed = seed_r * 1000003 + batch_no
                records, attempts = _run_with_retries(model, batch, sample_rate, batch_seed,
                                                      max_attempts)
                for item, (response, latency), tries in zip(batch, records, attempts, strict=True):
                    record = _record(item, response, latency, model_name, model_revision, mode,
                                     run, seed_r, audio_hash[item.item_id], keys[item.item_id])
                    record["attempts"] = tries
                    _store(cache, record)
                    cache_file.write(cache_line(record))
                cache_file.flush()
                os.fsync(cache_file.fileno())
                print(f"batch-done {batch_no} n={len(batch)}", file=sys.stderr, flush=True)
                summary.n_computed += len(batch)
                summary.n_batches += 1
                bar.update(len(batch))
        bar.close()
        if model is not None:
            model.close()
        # the cache is keyed by content: the same audio and request under another clip id (e.g.
        # a -inf mixture equal to an earlier one) reuses the output, never the old identity
        ordered = [_identified(cache[keys[it.item_id]], it, model_name, model_revision, mode, run)
                   for it in items]
        for record in ordered:
            if record["error"]:
                summary.n_errors += 1
                kind = record["error"].split(":")[0][:60]
                summary.errors[kind] = summary.errors.get(kind, 0) + 1
        write_jsonl(out_path, ordered)
    log.info("summary: %s", json.dumps(asdict(summary)))
    return summary


def _retryable(response: Response) -> bool:
    return bool(response.error) and not input_error(response.error)


def _run_with_retries(model: AudioModel, batch: list[WorkItem], sample_rate: int | None,
                      batch_seed: int, max_attempts: int
                      ) -> tuple[list[tuple[Response, float]], list[int]]:
    """``_run_batch``, then up to ``max_attempts - 1`` more calls for the failed items."""
    records = _run_batch(model, batch, sample_rate, batch_seed)
    attempts = [1] * len(batch)
    for attempt in range(2, max_attempts + 1):
        failed = [i for i, (response, _) in enumerate(records) if _retryable(response)]
        if not failed:
            break
        log.info("retrying %d failed item(s), attempt %d of %d", len(failed), attempt,
                 max_attempts)
        again = _run_batch(model, [batch[i] for i in failed], sample_rate,
                           batch_seed + attempt)
        for i, record in zip(failed, again, strict=True):
            records[i], attempts[i] = record, attempt
    return records, attempts


def _run_batch(model: AudioModel, batch: list[WorkItem], sample_rate: int | None,
               batch_seed: int) -> list[tuple[Response, float]]:
    """Load audio (unreadable items fail alone), predict, time. Latency is per item."""
    requests: list[Request] = []
    slots: list[Response | None] = []
    for item in batch:
        audio = None
        if item.audio_path is not None:
            try:
                audio = load_audio(item.audio_path, sample_rate or 16000).samples
            except AudioError as exc:
                slots.append(Response.failed(f"AudioError: {exc}"))
                continue
        slots.append(None)
        requests.append(Request(item_id=item.item_id, task=item.request, audio=audio,
                                prompt=item.prompt, system=item.system, labels=item.labels,
                                multi_label=item.multi_label, audio_path=item.audio_path))
    latency = 0.0
    responses: list[Response] = []
    if requests:
        seed_everything(batch_seed)
        start = time.perf_counter()
        responses = _predict_isolating_failures(model, requests)
        latency = (time.perf_counter() - start) / len(requests)
    it = iter(responses)
    return [(slot, 0.0) if slot is not None else (next(it), latency) for slot in slots]


def _record(item: WorkItem, response: Response, latency: float, model_name: str,
            revision: str | None, mode: str, run: int, seed: int, audio_sha: str | None,
            key: str) -> dict[str, Any]:
    return {
        "item_id": item.item_id, "clip_id": item.clip_id, "model": model_name,
        "model_revision": revision, "mode": mode, "task": item.task, "request": item.request,
        "prompt_id": item.prompt_id, "prompt_sha256": item.prompt_sha256, "run": run,
        "seed": seed, "output_text": response.text, "scores": response.scores,
        "parsed": None, "well_formed": None, "error": _error_of(response),
        "latency_s": round(latency, 6), "n_output_tokens": response.n_output_tokens,
        "audio_sha256": audio_sha, "cache_key": key,
    }


def _identified(record: dict, item: WorkItem, model_name: str, revision: str | None,
                mode: str, run: int) -> dict[str, Any]:
    """A cached record with the identity fields of ``item`` (outputs unchanged)."""
    return {**record, "item_id": item.item_id, "clip_id": item.clip_id, "model": model_name,
            "model_revision": revision, "mode": mode, "task": item.task,
            "request": item.request, "prompt_id": item.prompt_id,
            "prompt_sha256": item.prompt_sha256, "run": run}


