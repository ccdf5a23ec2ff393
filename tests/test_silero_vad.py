"""The silero_vad adapter with the real packaged model (silero-vad==6.2.3, installed --no-deps).

Speech: the flite recording shipped in tests/data and a synthetic voiced signal (harmonic
source with moving pitch through moving formant resonators, syllable envelope, pauses).
"""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from lalm_eval.models.base import ModelEntry, ModelError, Request, Response
from lalm_eval.models.registry import ADAPTERS, allowed_options, build_model
from lalm_eval.models.silero_vad import SileroVAD, has_speech

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
SPEECH_WAV = REPO / "tests" / "data" / "speech_check_number_16k.wav"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("silero_vad") is None,
                                reason="silero-vad not installed (make install)")

MODELS: dict[str, dict] = {
    "vad": {"adapter": "silero_vad", "source": "pkg:silero_vad/data"},
    "vad_jit": {"adapter": "silero_vad", "source": "pkg:silero_vad/data",
                "options": {"onnx": False}},
}


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    model = build_model("vad", MODELS)
    model.load()
    return model


def detect(model: SileroVAD, audio: np.ndarray | None) -> Response:
    (response,) = model.predict([Request(item_id="x", task="detect_speech", audio=audio)])
    return response


def segments(response: Response) -> list[list[float]]:
    assert response.error is None, response.error
    return json.loads(response.text)


@pytest.fixture(scope="module")
def recorded_speech() -> np.ndarray:
    """'please check the number and dial again' (flite, 16 kHz; tests/data/README.md)."""
    import soundfile as sf

    audio, rate = sf.read(SPEECH_WAV, dtype="float32")
    assert rate == RATE and audio.ndim == 1
    return audio


def synthetic_speech(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """A voiced harmonic source with moving pitch through moving formant resonators (random
    vowels, 4 syllables a second), a syllable envelope and a pause after each word."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 120 + 25 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 3.1 * t)
    source = signal.sawtooth(2 * np.pi * np.cumsum(f0) / RATE, 0.9)
    source += 0.02 * rng.standard_normal(n)
    vowels = np.array([(730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480),
                       (300, 870, 2240), (660, 1720, 2410)], dtype=float)
    syllable_s = 0.25
    syllable = (t // syllable_s).astype(int)
    targets = vowels[rng.integers(0, len(vowels), syllable.max() + 1)][syllable]
    formants = signal.savgol_filter(targets, 801, 2, axis=0)  # glide between vowels
    out = np.zeros(n)
    states = [np.zeros(2) for _ in range(3)]
    block = 160  # formants move every 10 ms
    for start in range(0, n, block):
        piece = source[start:start + block]
        for j, (bandwidth, gain) in enumerate(((80, 1.0), (100, 0.5), (140, 0.25))):
            radius = np.exp(-np.pi * bandwidth / RATE)
            theta = 2 * np.pi * formants[start, j] / RATE
            y, states[j] = signal.lfilter([1 - radius],
                                          [1, -2 * radius * np.cos(theta), radius ** 2],
                                          piece, zi=states[j])
            out[start:start + block] += gain * y
    envelope = np.sin(np.pi * (t % syllable_s) / syllable_s) ** 1.5
    words = (t % 1.0) < 0.75  # three syllables, then a 0.25 s pause
    out = np.convolve(out * envelope * words, [1.0, -0.9])[:n]  # lip radiation
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


# ---------------------------------------------------------------------------------------
# what the model says


def test_silence_has_no_speech(vad: SileroVAD) -> None:
    response = detect(vad, np.zeros(2 * RATE, dtype=np.float32))
    assert segments(response) == []
    assert response.scores["speech"] == 0.0 and response.scores["speech_s"] == 0.0
    assert response.scores["max_prob"] < 0.1
    assert not has_speech(response)


@pytest.mark.parametrize("level", [0.001, 0.01])
def test_low_white_noise_has_no_speech(vad: SileroVAD, level: float) -> None:
    noise = level * np.random.default_rng(3).standard_normal(3 * RATE)
    response = detect(vad, noise.astype(np.float32))
    assert segments(response) == [] and not has_speech(response)
    assert response.scores["max_prob"] < 0.3


def test_steady_tone_has_no_speech(vad: SileroVAD) -> None:
    t = np.arange(2 * RATE) / RATE
    response = detect(vad, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    assert not has_speech(response)


def test_recorded_speech_is_one_segment(vad: SileroVAD, recorded_speech: np.ndarray) -> None:
    response = detect(vad, recorded_speech)
    assert has_speech(response)
    (span,) = segments(response)  # one sentence, no pause of 100 ms or more
    duration = len(recorded_speech) / RATE  # 2.53 s, the voice starts after ~0.3 s
    assert 0.1 < span[0] < 0.5 and duration - 0.3 < span[1] <= duration
    assert response.scores["speech_s"] == pytest.approx(span[1] - span[0], abs=1e-3)
    assert response.scores["max_prob"] > 0.99


@pytest.mark.parametrize("seed", [0, 3])
def test_synthetic_voiced_signal_is_called_speech(vad: SileroVAD, seed: int) -> None:
    response = detect(vad, synthetic_speech(seed=seed))
    assert has_speech(response)
    assert response.scores["max_prob"] > 0.9
    assert 0.5 <= response.scores["speech_s"] <= 3.0


def test_batch_answers_in_order(vad: SileroVAD, recorded_speech: np.ndarray) -> None:
    audios = [recorded_speech, np.zeros(RATE, dtype=np.float32), None]
    responses = vad.predict([Request(item_id=str(i), task="detect_speech", audio=a)
                             for i, a in enumerate(audios)])
    assert [r.error is None for r in responses] == [True, True, False]
    assert [has_speech(r) for r in responses[:2]] == [True, False]


def test_segments_equal_the_package_get_speech_timestamps(
        vad: SileroVAD, recorded_speech: np.ndarray) -> None:
    """The decision DeSTA2.5 makes (get_speech_timestamps with the package defaults)."""
    import torch
    from silero_vad.utils_vad import get_speech_timestamps

    audio = np.concatenate([recorded_speech, np.zeros(RATE // 2, np.float32), recorded_speech])
    expected = get_speech_timestamps(torch.from_numpy(audio), vad._model)
    probabilities = vad.frame_probabilities(audio)
    assert vad.segments(probabilities, len(audio)) == [(s["start"], s["end"])
                                                        for s in expected]
    assert len(expected) == 2


def test_torchscript_model_agrees_with_onnx(vad: SileroVAD, recorded_speech: np.ndarray) -> None:
    jit = build_model("vad_jit", MODELS)
    assert jit.model_path().name == "silero_vad.jit"
    with_jit, with_onnx = detect(jit, recorded_speech), detect(vad, recorded_speech)
    assert segments(with_jit) == segments(with_onnx)
    assert with_jit.scores["max_prob"] == pytest.approx(with_onnx.scores["max_prob"], abs=1e-3)


def test_runs_at_8_khz(recorded_speech: np.ndarray) -> None:
    import soxr

    model = build_model("v8", {"v8": {"adapter": "silero_vad", "source": "-",
                                      "sample_rate": 8000}})
    narrow = soxr.resample(recorded_speech, RATE, 8000).astype(np.float32)
    assert has_speech(detect(model, narrow))
    assert not has_speech(detect(model, np.zeros(8000, np.float32)))


def test_options_change_the_decision(recorded_speech: np.ndarray) -> None:
    models = {"long": {"adapter": "silero_vad", "source": "-",
                       "options": {"min_speech_ms": 5000, "threshold": 0.6}}}
    model = build_model("long", models)
    response = detect(model, recorded_speech)
    assert segments(response) == [] and not has_speech(response)
    assert response.scores["max_prob"] > 0.99  # frames are speech, the segment too short


# ---------------------------------------------------------------------------------------
# configuration, bad input, fingerprint, registry


@pytest.mark.parametrize("options, message", [
    ({"threshold": 1.5}, "options.threshold must be a number strictly between 0 and 1"),
    ({"threshold": 0}, "options.threshold"),
    ({"threshold": "high"}, "options.threshold"),
    ({"threshold": True}, "options.threshold"),
    ({"min_speech_ms": -1}, "options.min_speech_ms must be a whole number of milliseconds"),
    ({"min_speech_ms": 2.5}, "options.min_speech_ms"),
    ({"min_silence_ms": "100"}, "options.min_silence_ms"),
    ({"onnx": "yes"}, "options.onnx must be true or false"),
    ({"treshold": 0.4}, "unknown key(s) ['treshold']"),
])
def test_bad_options_are_refused_naming_the_option(options: dict, message: str) -> None:
    with pytest.raises(ModelError) as error:
        build_model("v", {"v": {"adapter": "silero_vad", "source": "-", "options": options}})
    assert message in str(error.value)
    assert "models.v" in str(error.value)


def test_unsupported_sample_rate_is_refused_at_load() -> None:
    model = build_model("v", {"v": {"adapter": "silero_vad", "source": "-",
                                    "sample_rate": 22050}})
    with pytest.raises(ModelError, match="sample_rate 16000 or 8000, got 22050"):
        model.load()


def test_source_must_hold_the_selected_model(tmp_path: Path) -> None:
    (tmp_path / "silero_vad.jit").write_bytes(b"x")
    folder = build_model("v", {"v": {"adapter": "silero_vad", "source": str(tmp_path)}})
    with pytest.raises(ModelError, match="has no silero_vad.onnx"):
        folder.model_path()
    single = build_model("v", {"v": {"adapter": "silero_vad",
                                     "source": str(tmp_path / "silero_vad.jit")}})
    with pytest.raises(ModelError, match="not a .onnx model but options.onnx is true"):
        single.model_path()


@pytest.mark.parametrize("audio, message", [
    (None, "request has no audio"),
    (np.zeros(0, np.float32), "audio is empty"),
    (np.full(RATE, np.nan, np.float32), "NaN"),
    (np.zeros((RATE, 2), np.float32), "mono"),
    (np.zeros(RATE, np.int16), "must be float"),
])
def test_bad_audio_fails_only_that_item(vad: SileroVAD, audio, message: str) -> None:
    response = detect(vad, audio)
    assert response.error and message in response.error
    assert response.text is None and response.scores is None
    with pytest.raises(ValueError, match="speech detection failed"):
        has_speech(response)


def test_other_tasks_are_refused(vad: SileroVAD) -> None:
    with pytest.raises(ModelError, match="not supported"):
        vad.predict([Request(item_id="x", task="transcribe", audio=np.zeros(RATE))])
    with pytest.raises(ValueError, match="not a detect_speech response"):
        has_speech(Response(text="hello"))


def test_fingerprint_follows_threshold_runtime_and_weights() -> None:
    def fingerprint(options: dict, source: str = "pkg:silero_vad/data") -> str:
        entry = {"adapter": "silero_vad", "source": source, "options": options}
        return build_model("v", {"v": entry}).fingerprint()

    base = fingerprint({})
    assert base == fingerprint({})
    assert base != fingerprint({"threshold": 0.6})
    assert base != fingerprint({"onnx": False})  # another weights file
    # the effective settings count: "-" is the packaged model, 0.5 the default threshold
    assert base == fingerprint({"threshold": 0.5, "onnx": True}, source="-")


def test_fingerprint_includes_the_model_file_hash(tmp_path: Path) -> None:
    from lalm_eval.models.sources import package_dir

    packaged = package_dir("silero_vad") / "data" / "silero_vad.onnx"
    copy = tmp_path / "silero_vad.onnx"
    copy.write_bytes(packaged.read_bytes())
    models = {"v": {"adapter": "silero_vad", "source": str(tmp_path)}}
    before = build_model("v", models).fingerprint()
    copy.write_bytes(packaged.read_bytes()[:-1] + b"\0")
    assert build_model("v", models).fingerprint() != before


def test_registry_builds_it_by_adapter_name() -> None:
    assert ADAPTERS["silero_vad"] == "lalm_eval.models.silero_vad:SileroVAD"
    assert allowed_options("silero_vad") == {"threshold", "min_speech_ms", "min_silence_ms",
                                             "onnx"}
    model = build_model("vad", MODELS)
    assert isinstance(model, SileroVAD)
    assert model.supports("detect_speech") and not model.supports("transcribe")
    assert model.sample_rate == 16000
    entry = ModelEntry.from_config("d", {"adapter": "silero_vad", "source": "-"})
    assert SileroVAD(entry).model_path() == model.model_path()  # "-": the packaged model


def test_loads_and_runs_without_network_and_keeps_torch_threads(
        monkeypatch: pytest.MonkeyPatch, recorded_speech: np.ndarray) -> None:
    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("silero_vad tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model = build_model("fresh", {"fresh": {"adapter": "silero_vad", "source": "-"}})
        model.load()
        assert has_speech(detect(model, recorded_speech))
        assert torch.get_num_threads() == 2  # one thread inside predict only
    finally:
        torch.set_num_threads(previous)
