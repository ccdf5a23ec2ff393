"""Inference cache robustness (issue 13): a corrupt line costs only its own record, a torn
last line is cut off, one job at a time writes a cache (a second one fails at once, naming
the cache and the holder), duplicate records are harmless, and caches written before
checksums still read.

Each fault is made with the real :func:`run_job` on text-only items answered by the
``Flaky`` test model of test_inference.py (backend up: every item gets an answer).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_inference import Flaky, _entry, _records, _text_items

import lalm_eval
from lalm_eval.inference import (
    CHECKSUM_FIELD,
    CacheLockedError,
    JobSummary,
    WorkItem,
    cache_line,
    read_cache,
    run_job,
    scan_cache,
)
from lalm_eval.models.base import ModelEntry, Request, Response

N_ITEMS = 20
ITEMS = _text_items([f"q{i:02d}" for i in range(N_ITEMS)])


def _answering() -> Flaky:
    model = Flaky(_entry())
    model.down = False
    return model


def _job(model: Flaky, tmp_path: Path, items: list[WorkItem] = ITEMS) -> JobSummary:
    return run_job(lambda: model, model.fingerprint(), items, tmp_path / "cache.jsonl",
                   tmp_path / "out.jsonl", model_name="flaky", model_revision="r1",
                   mode="open", run=0, seed=1, sample_rate=None, batch_size=4)


def _computed(model: Flaky) -> list[str]:
    return [item_id for call in model.calls for item_id in call]


def _cache_with_all_items(tmp_path: Path) -> Path:
    assert _job(_answering(), tmp_path).n_computed == N_ITEMS
    cache = tmp_path / "cache.jsonl"
    assert cache.read_bytes().count(b"\n") == N_ITEMS
    return cache


def _replace_line(cache: Path, number: int, new: bytes) -> dict:
    """Overwrite line ``number`` (1-based) of ``cache``; the record it held."""
    lines = cache.read_bytes().splitlines(keepends=True)
    old = json.loads(lines[number - 1])
    lines[number - 1] = new
    cache.write_bytes(b"".join(lines))
    return old


def _garbage_of_the_same_length(line: bytes) -> bytes:
    return b"\x00#garbage" + b"#" * (len(line) - 10) + b"\n"


def _valid_json_with_a_wrong_checksum(line: bytes) -> bytes:
    record = json.loads(line)
    record["output_text"] = "an answer changed on disk"
    return json.dumps(record, ensure_ascii=False).encode() + b"\n"


@pytest.mark.parametrize("corrupt", [_garbage_of_the_same_length,
                                     _valid_json_with_a_wrong_checksum])
def test_a_corrupt_middle_line_is_skipped_alone_and_only_its_item_recomputed(
        tmp_path, caplog, corrupt):
    cache = _cache_with_all_items(tmp_path)
    line_5 = cache.read_bytes().splitlines(keepends=True)[4]
    lost = _replace_line(cache, 5, corrupt(line_5))
    size = cache.stat().st_size

    with caplog.at_level(logging.WARNING, logger="lalm_eval.inference"):
        scan = scan_cache(cache)
    assert scan.n_kept == N_ITEMS - 1 and len(scan.records) == N_ITEMS - 1
    assert scan.corrupt_lines == [5] and lost["cache_key"] not in scan.records
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"cache {cache}: skipped 1 corrupt record (line 5); 19 kept"]
    assert cache.stat().st_size == size  # nothing after the bad line was cut off

    model = _answering()
    summary = _job(model, tmp_path)
    assert _computed(model) == [lost["item_id"]]
    assert (summary.n_computed, summary.n_cached, summary.n_corrupt) == (1, N_ITEMS - 1, 1)
    records = _records(tmp_path / "out.jsonl")
    assert [r["item_id"] for r in records] == [it.item_id for it in ITEMS]
    assert all(r["output_text"] == f"answer to {r['item_id']}" for r in records)
    assert all(CHECKSUM_FIELD not in r for r in records)


def test_several_corrupt_lines_are_named_in_one_warning(tmp_path, caplog):
    cache = _cache_with_all_items(tmp_path)
    for number in (2, 11, 20):
        _replace_line(cache, number, b"{not json\n")
    with caplog.at_level(logging.WARNING, logger="lalm_eval.inference"):
        assert len(read_cache(cache)) == N_ITEMS - 3
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"cache {cache}: skipped 3 corrupt records (lines 2, 11, 20); 17 kept"]


def test_a_torn_last_line_is_cut_off_and_the_rest_kept(tmp_path):
    cache = _cache_with_all_items(tmp_path)
    text = cache.read_bytes()
    last = text.splitlines(keepends=True)[-1]
    cache.write_bytes(text[:-10])  # a kill in the middle of the last write
    scan = scan_cache(cache)
    assert scan.n_kept == N_ITEMS - 1 and scan.corrupt_lines == []
    assert scan.torn_bytes == len(last) - 10
    assert cache.read_bytes() == text[: len(text) - len(last)]

    model = _answering()
    assert _job(model, tmp_path).n_computed == 1
    assert _computed(model) == [json.loads(last)["item_id"]]
    assert len(read_cache(cache)) == N_ITEMS


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    cache = _cache_with_all_items(tmp_path)
    text = cache.read_bytes()
    cache.write_bytes(text[:-1])
    assert len(read_cache(cache)) == N_ITEMS
    assert cache.read_bytes() == text
    assert _job(_answering(), tmp_path).n_computed == 0


def test_old_lines_without_a_checksum_still_read(tmp_path):
    cache = _cache_with_all_items(tmp_path)
    old_lines = []
    for record in _records(cache):
        del record[CHECKSUM_FIELD]
        old_lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    cache.write_text("".join(old_lines[:-5]), encoding="utf-8")  # as written before checksums
    scan = scan_cache(cache)
    assert scan.n_kept == N_ITEMS - 5 and scan.corrupt_lines == []

    model = _answering()
    assert _job(model, tmp_path).n_computed == 5  # the old lines are reused, the rest appended
    lines = _records(cache)
    assert [CHECKSUM_FIELD in r for r in lines] == [False] * 15 + [True] * 5
    assert _job(_answering(), tmp_path).n_computed == 0


def test_duplicate_records_of_one_key_give_each_item_once(tmp_path):
    """As an orphaned job would leave it: every record twice, and for one key a later
    failure after its answer (a failure never hides an answer)."""
    cache = _cache_with_all_items(tmp_path)
    first = _records(cache)[0]
    failure = {**first, "output_text": None, "error": "TimeoutError: late orphan"}
    del failure[CHECKSUM_FIELD]
    cache.write_bytes(cache.read_bytes() * 2 + cache_line(failure).encode())
    assert len(read_cache(cache)) == N_ITEMS
    assert read_cache(cache)[first["cache_key"]]["error"] is None

    model = _answering()
    summary = _job(model, tmp_path)
    assert model.calls == [] and summary.n_computed == 0 and summary.n_cached == N_ITEMS
    records = _records(tmp_path / "out.jsonl")
    assert [r["item_id"] for r in records] == [it.item_id for it in ITEMS]
    assert all(r["error"] is None for r in records)


class Gated(Flaky):
    """Answers every request, but each call first reports ``entered`` and then waits for
    ``release``: a job caught in the middle of its work."""

    def __init__(self, entry: ModelEntry) -> None:
        super().__init__(entry)
        self.down = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def predict(self, requests: list[Request]) -> list[Response]:
        self.entered.set()
        if not self.release.wait(timeout=60):
            raise TimeoutError("the test never released the model")
        return super().predict(requests)


def test_a_second_job_on_a_cache_being_written_fails_at_once(tmp_path):
    gated = Gated(_entry())
    outcome: list[object] = []
    writer = threading.Thread(target=lambda: outcome.append(_job(gated, tmp_path)))
    writer.start()
    try:
        assert gated.entered.wait(timeout=30)
        cache = tmp_path / "cache.jsonl"
        second = _answering()
        start = time.monotonic()
        with pytest.raises(CacheLockedError) as raised:
            _job(second, tmp_path)
        assert time.monotonic() - start < 5
        assert str(raised.value) == (
            f"cache {cache} is being written by another job (pid {os.getpid()} on "
            f"{socket.gethostname()}); wait for it to finish or kill it, then rerun")
        assert second.calls == []
    finally:
        gated.release.set()
        writer.join(timeout=60)
    assert isinstance(outcome[0], JobSummary) and outcome[0].n_computed == N_ITEMS
    rerun = _job(gated, tmp_path)  # released: the same model, now free to answer
    assert rerun.n_computed == 0 and rerun.n_cached == N_ITEMS
    assert cache.read_bytes().count(b"\n") == N_ITEMS  # one writer: no duplicates


HOLD_LOCK = """
import sys
from pathlib import Path
from lalm_eval.inference import cache_lock
with cache_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_job_in_another_process_holds_the_lock_until_it_dies(tmp_path):
    cache = tmp_path / "cache.jsonl"
    src = str(Path(lalm_eval.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(cache)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(CacheLockedError, match=f"pid {holder.pid} on "):
            _job(_answering(), tmp_path)
        assert not cache.exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # as a killed orphan: the OS releases its lock
        holder.wait(timeout=30)
        holder.stdin.close()
        holder.stdout.close()
    assert _job(_answering(), tmp_path).n_computed == N_ITEMS
