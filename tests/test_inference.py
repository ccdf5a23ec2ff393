"""Inference engine: per-item failures, content-keyed cache, torn-line recovery, no-op reruns,
and the cache policy for failures (transient ones are computed again on the next run, input
errors only when the input changes).

The adapter here is a small deterministic signal model defined in the test (it measures
each clip's level and reports it as text) so that failures can be injected on chosen items;
the kill-and-resume test with a real packaged model is in test_inference_resume.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lalm_eval.inference import EMPTY_OUTPUT, WorkItem, input_error, read_cache, run_job
from lalm_eval.models.base import AudioModel, ModelEntry, Request, Response


class LevelMeter(AudioModel):
    """Reports each clip's RMS level in dBFS; raises on clips whose id contains 'boom' and
    answers nothing for ids containing 'mute' (to exercise the engine's error paths)."""

    capabilities = frozenset({"generate"})
    loads = 0
    calls: list[list[str]] = []

    def _load(self) -> None:
        type(self).loads += 1

    def predict(self, requests: list[Request]) -> list[Response]:
        type(self).calls.append([r.item_id for r in requests])
        out = []
        for r in requests:
            if "boom" in r.item_id:
                raise RuntimeError(f"model failure on {r.item_id}")
            if "mute" in r.item_id:
                out.append(Response(text="   "))
                continue
            rms = float(np.sqrt(np.mean(np.square(r.audio, dtype=np.float64))))
            out.append(Response(text=f"{20 * np.log10(rms):.2f} dBFS", n_output_tokens=2))
        return out


def _entry(**decoding) -> ModelEntry:
    return ModelEntry(name="meter", adapter="test", source="test", revision="r1",
                      sample_rate=16000, batch_size=3, decoding=decoding)


@pytest.fixture
def clips(tmp_path: Path) -> list[WorkItem]:
    rng = np.random.default_rng(0)
    items = []
    for i, name in enumerate(["a", "b", "boom", "c", "mute", "d", "bad"]):
        path = tmp_path / f"{name}.wav"
        if name == "bad":
            path.write_bytes(b"not audio")
        else:
            sf.write(path, (0.05 * (i + 1) * rng.standard_normal(8000)).astype(np.float32), 16000)
        items.append(WorkItem(item_id=f"{name}:asr", clip_id=name, task="asr",
                              request="generate", audio_path=str(path), prompt_id="p",
                              prompt="level?"))
    return items


def _run(model: LevelMeter, items, tmp_path: Path, run: int = 0):
    return run_job(lambda: model, model.fingerprint(), items, tmp_path / "cache.jsonl",
                   tmp_path / f"out{run}.jsonl", model_name="meter", model_revision="r1",
                   mode="independent", run=run, seed=1, sample_rate=16000, batch_size=3)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_failures_are_recorded_per_item_and_the_job_goes_on(clips, tmp_path):
    LevelMeter.calls = []
    summary = _run(LevelMeter(_entry()), clips, tmp_path)
    records = {r["clip_id"]: r for r in _records(tmp_path / "out0.jsonl")}
    assert list(records) == ["a", "b", "boom", "c", "mute", "d", "bad"]
    assert records["boom"]["error"] == "RuntimeError: model failure on boom:asr"
    assert records["mute"]["error"] == "empty model output"
    bad = records["bad"]["error"]
    assert bad.startswith("AudioError:") and "bad.wav" in bad
    for ok in "abcd":
        assert records[ok]["error"] is None and records[ok]["output_text"].endswith("dBFS")
    assert summary.n_errors == 3 and summary.n_items == 7
    # the failing batch was retried item by item, so its neighbours still got answers
    assert ["a:asr", "b:asr", "boom:asr"] in LevelMeter.calls and ["a:asr"] in LevelMeter.calls


def test_rerun_with_nothing_changed_loads_no_model(clips, tmp_path):
    """Outputs, empty outputs ('mute') and unreadable audio ('bad') all come from the cache."""
    clips = [it for it in clips if it.clip_id != "boom"]
    LevelMeter.loads = 0
    _run(LevelMeter(_entry()), clips, tmp_path)
    first = (tmp_path / "out0.jsonl").read_bytes()
    (tmp_path / "out0.jsonl").unlink()
    summary = _run(LevelMeter(_entry()), clips, tmp_path)
    assert LevelMeter.loads == 1 and not summary.model_loaded and summary.n_computed == 0
    assert summary.n_cached == 6 and summary.n_retried == 0 and summary.n_errors == 2
    assert (tmp_path / "out0.jsonl").read_bytes() == first


def test_a_failure_that_persists_is_computed_on_every_run_and_kept_as_history(clips, tmp_path):
    """'boom' raises every time: each run computes it (and only it) again; the cache file
    keeps every attempt, the predictions the latest one."""
    _run(LevelMeter(_entry()), clips, tmp_path)
    LevelMeter.calls = []
    summary = _run(LevelMeter(_entry()), clips, tmp_path)
    assert summary.model_loaded and summary.n_computed == 1 and summary.n_retried == 1
    assert summary.n_cached == 6 and LevelMeter.calls == [["boom:asr"]]
    cache_lines = _records(tmp_path / "cache.jsonl")
    assert len(cache_lines) == 8 and [r["clip_id"] for r in cache_lines].count("boom") == 2
    records = _records(tmp_path / "out0.jsonl")
    assert [r["clip_id"] for r in records] == ["a", "b", "boom", "c", "mute", "d", "bad"]
    assert records[2]["error"] == "RuntimeError: model failure on boom:asr"


def test_cache_key_follows_decoding_run_and_audio(clips, tmp_path):
    _run(LevelMeter(_entry()), clips, tmp_path)
    assert _run(LevelMeter(_entry(temperature=0.7)), clips, tmp_path).n_computed == 7
    assert _run(LevelMeter(_entry()), clips, tmp_path, run=1).n_computed == 7
    rng = np.random.default_rng(5)
    sf.write(clips[0].audio_path, 0.3 * rng.standard_normal(8000).astype(np.float32), 16000)
    summary = _run(LevelMeter(_entry()), clips, tmp_path)
    assert summary.n_computed == 2 and summary.n_retried == 1  # 'a' changed; 'boom' failed


def test_torn_last_line_is_dropped_and_recomputed(clips, tmp_path):
    _run(LevelMeter(_entry()), clips, tmp_path)
    cache = tmp_path / "cache.jsonl"
    text = cache.read_bytes()
    cache.write_bytes(text[: len(text) - 40])  # a kill in the middle of the last write
    assert len(read_cache(cache)) == 6
    assert cache.read_bytes().endswith(b"\n")
    summary = _run(LevelMeter(_entry()), clips, tmp_path)
    assert summary.n_computed == 2 and summary.n_retried == 1  # the torn 'bad'; 'boom' failed


def test_inference_summary_counts_failures_by_kind(clips, tmp_path):
    from lalm_eval.reports.inference import summarise_predictions

    folder = tmp_path / "predictions" / "meter" / "independent" / "snr+5"
    folder.mkdir(parents=True)
    run_job(lambda: LevelMeter(_entry()), LevelMeter(_entry()).fingerprint(), clips,
            tmp_path / "cache.jsonl", folder / "run0.jsonl", model_name="meter",
            model_revision="r1", mode="independent", run=0, seed=1, sample_rate=16000,
            batch_size=3)
    table = summarise_predictions([folder / "run0.jsonl"], tmp_path / "s.csv", tmp_path / "s.md")
    row = table.iloc[0]
    assert (row.model, row["mode"], row.split, row.run) == ("meter", "independent", "snr+5", 0)
    assert row["items"] == 7 and row["failed"] == 3
    assert "AudioError x1" in row.failure_kinds and "empty model output x1" in row.failure_kinds
    assert "RuntimeError x1" in row.failure_kinds


def test_cached_output_takes_the_identity_of_the_current_item(clips, tmp_path):
    """Same audio bytes under a new clip id (as at -inf, where a mixture is its background):
    the output is reused from the cache, the record carries the new ids."""
    import shutil

    _run(LevelMeter(_entry()), clips[:2], tmp_path)
    renamed = []
    for item in clips[:2]:
        copy = Path(item.audio_path).with_name(f"renamed_{item.clip_id}.wav")
        shutil.copy(item.audio_path, copy)
        renamed.append(WorkItem(item_id=f"new_{item.clip_id}:asr", clip_id=f"new_{item.clip_id}",
                                task="asr", request="generate", audio_path=str(copy),
                                prompt_id="p", prompt="level?"))
    summary = _run(LevelMeter(_entry()), renamed, tmp_path, run=0)
    assert summary.n_computed == 0
    records = _records(tmp_path / "out0.jsonl")
    assert [r["clip_id"] for r in records] == ["new_a", "new_b"]
    assert [r["item_id"] for r in records] == ["new_a:asr", "new_b:asr"]


class Flaky(AudioModel):
    """Answers each request with its item id; while ``down`` (a backend having a bad
    moment), 'timeout' items make the call raise and 'http' items come back as an HTTP 503."""

    capabilities = frozenset({"generate"})

    def __init__(self, entry: ModelEntry) -> None:
        super().__init__(entry)
        self.down = True
        self.calls: list[list[str]] = []

    def _load(self) -> None:
        pass

    def predict(self, requests: list[Request]) -> list[Response]:
        self.calls.append([r.item_id for r in requests])
        if self.down and any(r.item_id.startswith("timeout") for r in requests):
            raise TimeoutError("backend did not answer in 60 s")
        return [Response.failed("HTTPError: 503 Service Unavailable")
                if self.down and r.item_id.startswith("http")
                else Response(text=f"answer to {r.item_id}") for r in requests]


def _text_items(names: list[str]) -> list[WorkItem]:
    return [WorkItem(item_id=n, clip_id=n, task="qa", request="generate", prompt_id="q",
                     prompt=f"question {n}") for n in names]


def test_transient_failures_are_computed_again_on_the_rerun_and_only_they(tmp_path):
    names = ["a", "timeout1", "b", "http1", "c", "d", "http2"]
    items = _text_items(names)
    model = Flaky(_entry())

    def run():
        return run_job(lambda: model, model.fingerprint(), items, tmp_path / "cache.jsonl",
                       tmp_path / "out.jsonl", model_name="flaky", model_revision="r1",
                       mode="open", run=0, seed=1, sample_rate=None, batch_size=3)

    first = run()
    records = {r["item_id"]: r for r in _records(tmp_path / "out.jsonl")}
    assert records["timeout1"]["error"] == "TimeoutError: backend did not answer in 60 s"
    assert records["http1"]["error"] == records["http2"]["error"] == \
        "HTTPError: 503 Service Unavailable"
    assert first.n_errors == 3 and first.n_retried == 0 and first.n_computed == 7

    model.down, model.calls = False, []  # the backend is back
    second = run()
    # exactly the three failures were computed, in one batch; the four answers were reused
    assert model.calls == [["timeout1", "http1", "http2"]]
    assert (second.n_computed, second.n_retried, second.n_cached) == (3, 3, 4)
    assert second.n_errors == 0 and second.errors == {}
    records = _records(tmp_path / "out.jsonl")
    assert [r["item_id"] for r in records] == names  # one record per item, in item order
    assert all(r["error"] is None and r["output_text"] == f"answer to {r['item_id']}"
               for r in records)
    # the failures stay in the cache file as history; the lookup takes the answers
    history = _records(tmp_path / "cache.jsonl")
    assert len(history) == 10 and sum(bool(r["error"]) for r in history) == 3
    assert all(r["error"] is None for r in read_cache(tmp_path / "cache.jsonl").values())

    model.calls = []
    third = run()
    assert model.calls == [] and not third.model_loaded and third.n_cached == 7


def test_unreadable_audio_is_reused_until_the_file_changes(clips, tmp_path):
    bad = next(it for it in clips if it.clip_id == "bad")
    good = next(it for it in clips if it.clip_id == "a")
    items = [good, bad]
    first = _run(LevelMeter(_entry()), items, tmp_path)
    assert first.n_errors == 1 and first.errors == {"AudioError": 1}

    LevelMeter.loads, LevelMeter.calls = 0, []
    again = _run(LevelMeter(_entry()), items, tmp_path)
    assert (again.n_computed, again.n_retried, again.n_cached) == (0, 0, 2)
    assert LevelMeter.loads == 0 and not again.model_loaded
    assert _records(tmp_path / "out0.jsonl")[1]["error"].startswith("AudioError:")

    rng = np.random.default_rng(9)  # the file is fixed: its content hash changes
    sf.write(bad.audio_path, 0.1 * rng.standard_normal(8000).astype(np.float32), 16000)
    fixed = _run(LevelMeter(_entry()), items, tmp_path)
    assert (fixed.n_computed, fixed.n_cached, fixed.n_errors) == (1, 1, 0)
    assert LevelMeter.calls == [["bad:asr"]]
    record = _records(tmp_path / "out0.jsonl")[1]
    assert record["error"] is None and record["output_text"].endswith("dBFS")


def test_input_errors_are_the_engines_audio_errors_and_every_audio_problem():
    from lalm_eval.audio import audio_problem

    problems = [audio_problem(None), audio_problem(np.zeros((2, 5), np.float32)),
                audio_problem(np.zeros(0, np.float32)), audio_problem(np.zeros(5, np.int16)),
                audio_problem(np.zeros(5, np.float32), 16000, min_seconds=1.0),
                audio_problem(np.array([0.0, np.nan], np.float32))]
    assert all(problems) and all(input_error(p) for p in problems)
    assert input_error("AudioError: x.wav: unreadable audio file (format not recognised)")
    for transient in ["TimeoutError: timed out", "HTTPError: 503 Service Unavailable",
                      "whisper failed: RuntimeError: CUDA out of memory", "no output",
                      EMPTY_OUTPUT, None, ""]:
        assert not input_error(transient)
