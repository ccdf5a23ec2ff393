"""``beats``: Microsoft's BEATs through a pinned checkout of microsoft/unilm's ``beats`` folder.

BEATs has no PyPI package. Spec::

    {kind: beats, source: /opt/unilm/beats, revision: <unilm commit>,
     options: {checkpoint: /models/BEATs_iter3_plus_AS2M.pt}}

``source``: the checkout's ``beats`` folder (holding ``BEATs.py``, ``backbone.py``,
``modules.py``; upstream imports them as top-level modules, so the folder is put on
``sys.path`` while ``BEATs.py`` is imported, and its ``backbone``/``modules`` stay in
``sys.modules``: one checkout per process). ``revision``: the checkout's commit (part of the
encoder id; the files are not hashed). ``options.checkpoint``: the released ``.pt`` file,
a dict with ``cfg`` (for ``BEATsConfig``) and ``model`` (the state dict). Upstream needs
torchaudio (``torchaudio.compliance.kaldi.fbank``).

Upstream's API (unilm ``beats/BEATs.py``): ``BEATs(BEATsConfig(cfg))``,
``extract_features(source[B, T], padding_mask=[B, T] bool, True = padding)`` ->
``(features[B, N, 768], padding_mask)``; the features are 16x16 patches of a 128-band
fbank (25 ms / 10 ms), flattened time-major: ``N = n_time * 8`` with
``n_time = n_fbank_frames // 16`` (160 ms per time step). A fine-tuned checkpoint's
classifier head (``predictor``) is dropped, so the encoder's features come out.

Options: ``checkpoint``; ``freq_pool``: ``mean`` (default; average the 8 frequency patches of
each time step: ``[B, n_time, D]`` at 6.25 Hz) or ``none`` (upstream's token sequence,
``T' = n_time * 8``, 50 tokens/s); ``device`` (cpu); ``pool_frames`` (1). Valid frames are
computed from the input lengths (kaldi frames ``1 + (n - 400) // 160``, then ``// 16``, at
least 1); upstream's returned padding mask is not used. Clips shorter than 0.175 s (one
time step) are zero-padded. Final layer only (``layers`` refused).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lalm_eval.encoders import EncoderError
from lalm_eval.encoders.base import FrozenEncoder, lengths_to_mask, resolve_device
from lalm_eval.hashing import text_sha256

CODE_VERSION = "1"
FRAME_SHIFT = 160
FRAME_LENGTH = 400
PATCH = 16
#: samples giving one time step: 16 kaldi frames
MIN_SAMPLES = FRAME_LENGTH + (PATCH - 1) * FRAME_SHIFT


def import_checkout(folder: Path, label: str) -> Any:
    """Import ``folder/BEATs.py`` (with ``folder`` on sys.path for its flat imports)."""
    beats_file = folder / "BEATs.py"
    if not beats_file.is_file():
        raise EncoderError(f"{label}: no BEATs checkout at {folder} (expected {beats_file}); "
                           "clone microsoft/unilm at a pinned commit and set source to its "
                           "'beats' folder")
    module_name = f"lalm_eval_beats_{text_sha256(str(beats_file.resolve()))[:12]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, beats_file)
    if spec is None or spec.loader is None:
        raise EncoderError(f"{label}: cannot import {beats_file}")
    module = importlib.util.module_from_spec(spec)
    folder_text = str(folder.resolve())
    added = folder_text not in sys.path
    if added:
        sys.path.insert(0, folder_text)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise EncoderError(f"{label}: importing {beats_file} failed ({exc}); upstream BEATs "
                           "needs torch and torchaudio") from exc
    except Exception as exc:
        raise EncoderError(f"{label}: importing {beats_file} failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    finally:
        if added and folder_text in sys.path:
            sys.path.remove(folder_text)
    for name in ("BEATs", "BEATsConfig"):
        if not hasattr(module, name):
            raise EncoderError(f"{label}: {beats_file} has no {name}; is it unilm's beats "
                               "folder?")
    sys.modules[module_name] = module
    return module


def time_steps(n_samples: Tensor) -> Tensor:
    frames = 1 + (n_samples - FRAME_LENGTH).clamp(min=0) // FRAME_SHIFT
    return (frames // PATCH).clamp(min=1)


class BeatsEncoder(FrozenEncoder):
    """BEATs patch features (module docstring)."""

    option_keys = frozenset({"checkpoint", "freq_pool", "device"})

    def _load(self) -> None:
        if not self.spec.source:
            raise EncoderError(f"{self.label}: kind beats needs source: the 'beats' folder of a "
                               "microsoft/unilm checkout")
        folder = Path(self.spec.source).expanduser()
        module = import_checkout(folder, self.label)
        self.freq_pool = str(self.option("freq_pool", "mean"))
        if self.freq_pool not in ("mean", "none"):
            raise EncoderError(f"{self.label}.options.freq_pool must be 'mean' or 'none'")
        checkpoint = self.option("checkpoint")
        if not checkpoint:
            raise EncoderError(f"{self.label}: options.checkpoint (the released BEATs .pt "
                               "file) is required")
        checkpoint = Path(str(checkpoint)).expanduser()
        if not checkpoint.is_file():
            raise EncoderError(f"{self.label}.options.checkpoint: {checkpoint} does not exist")
        try:
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
            config = module.BEATsConfig(saved["cfg"])
            model = module.BEATs(config)
            model.load_state_dict(saved["model"])
        except Exception as exc:  # noqa: BLE001 - the message says what to fix
            raise EncoderError(f"{self.label}: cannot load BEATs from {checkpoint}: "
                               f"{type(exc).__name__}: {exc}") from exc
        if getattr(model, "predictor", None) is not None:
            model.predictor = None  # a fine-tuned checkpoint: keep the encoder features
        self.device_name = resolve_device(self.option("device", "cpu"), self.label)
        self.model = model.to(self.device_name).eval()
        self.output_dim = int(config.encoder_embed_dim)
        self.frame_rate = 16000 / (PATCH * FRAME_SHIFT)
        if self.freq_pool == "none":
            self.frame_rate = None  # tokens per second depend on the fbank patch grid

    def _encode(self, audio: Tensor, lengths: Tensor) -> tuple[list[Tensor], Tensor]:
        if audio.shape[1] < MIN_SAMPLES:
            audio = torch.nn.functional.pad(audio, (0, MIN_SAMPLES - audio.shape[1]))
        padding_mask = lengths_to_mask(lengths, audio.shape[1]) == 0
        features, _ = self.model.extract_features(audio.to(self.device_name),
                                                  padding_mask=padding_mask.to(self.device_name))
        features = features.float().cpu()
        total_steps = int(time_steps(torch.tensor(audio.shape[1])))
        if features.shape[1] % total_steps:
            raise EncoderError(f"{self.label}: BEATs returned {features.shape[1]} tokens, not a "
                               f"multiple of its {total_steps} time steps")
        per_step = features.shape[1] // total_steps
        steps = time_steps(lengths).clamp(max=total_steps)
        if self.freq_pool == "mean":
            grid = features.view(features.shape[0], total_steps, per_step, features.shape[-1])
            return [grid.mean(2)], steps
        return [features], steps * per_step
