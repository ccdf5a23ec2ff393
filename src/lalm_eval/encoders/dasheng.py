"""``dasheng``: Dasheng (Xiaomi's audio MAE encoder, XARES-LLM's baseline) via PyPI ``dasheng``.

Spec::

    {kind: dasheng, source: dasheng_base, options: {checkpoint: /path/dasheng_base.pt}}

``source`` names the model: ``dasheng_base`` (768-d, 12 layers), ``dasheng_06B`` (1280-d, 32
layers) or ``dasheng_12B`` (1536-d, 40 layers); the package's constructors of those names
build it (``dasheng.dasheng_base(path)`` etc.). ``options.checkpoint``: a local checkpoint
file (as released: a dict with ``model`` and ``config``); without it the package downloads
the released weights from Zenodo, which needs the network. ``revision`` names the weights
version for the encoder id.

Needs ``pip install dasheng`` (0.0.9 checked; it depends on torch, torchaudio, einops and
pytorch-ignite). Its API, as read from the 0.0.9 wheel: ``model(wave[B, T], x_length=[B])``
returns ``[B, T', D]``, one frame per 40 ms (4 mel frames of 10 ms), the clip processed in
chunks of ``target_length`` mel frames (10.08 s) whose outputs are concatenated;
``x_length`` masks padded frames in attention.

``layers`` (optional): 0-based indices into ``model.blocks``; each tap is that block's raw
output (before the final norm), concatenated over the chunks like the output; ``forward``
returns the last tap. Valid frames per item: ``(samples // 160 + 1) // 4`` (centred mel
frames grouped by 4), at least 1. Options: ``checkpoint``, ``device`` (cpu), ``pool_frames``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lalm_eval.encoders import EncoderError
from lalm_eval.encoders.base import FrozenEncoder, resolve_device, resolve_taps

CODE_VERSION = "1"
MODELS = ("dasheng_base", "dasheng_06B", "dasheng_12B")
INSTALL_HINT = ("kind dasheng needs the PyPI package 'dasheng' (pip install dasheng==0.0.9; "
                "it pulls torchaudio, einops and pytorch-ignite)")
SAMPLES_PER_FRAME = 640  # 40 ms


def import_dasheng(label: str) -> Any:
    try:
        return importlib.import_module("dasheng")
    except ImportError as exc:
        raise EncoderError(f"{label}: {INSTALL_HINT}; import failed: {exc}") from exc


class DashengEncoder(FrozenEncoder):
    """Dasheng frames at 25 Hz (module docstring)."""

    option_keys = frozenset({"checkpoint", "device"})
    supports_layers = True

    def _load(self) -> None:
        model_name = self.spec.source or "dasheng_base"
        if model_name not in MODELS:
            raise EncoderError(f"{self.label}.source must name a Dasheng model "
                               f"({', '.join(MODELS)}), got {model_name!r}; the weights file "
                               "goes in options.checkpoint")
        package = import_dasheng(self.label)
        build = getattr(package, model_name, None)
        if build is None:
            raise EncoderError(f"{self.label}: the installed dasheng package has no "
                               f"{model_name}()")
        checkpoint = self.option("checkpoint")
        if checkpoint is not None:
            checkpoint = Path(str(checkpoint)).expanduser()
            if not checkpoint.is_file():
                raise EncoderError(f"{self.label}.options.checkpoint: {checkpoint} does not "
                                   "exist")
        self.device_name = resolve_device(self.option("device", "cpu"), self.label)
        try:
            model = build(str(checkpoint)) if checkpoint is not None else build()
        except Exception as exc:  # noqa: BLE001 - the message says what to fix
            where = checkpoint or "its default download URL (needs the network)"
            raise EncoderError(f"{self.label}: {model_name} could not be loaded from {where}: "
                               f"{type(exc).__name__}: {exc}") from exc
        self.model = model.to(self.device_name).eval()
        blocks = list(getattr(self.model, "blocks", []))
        self.taps = resolve_taps(self.spec.layers, len(blocks), self.label)
        self.n_layers = 1 if self.taps is None else len(self.taps)
        self.output_dim = int(self.model.embed_dim)
        self.frame_rate = 16000 / SAMPLES_PER_FRAME

    def _encode(self, audio: Tensor, lengths: Tensor) -> tuple[list[Tensor], Tensor]:
        wave = audio.to(self.device_name)
        x_length = lengths.to(self.device_name)
        captured: dict[int, list[Tensor]] = {}
        handles = []
        if self.taps is not None:
            for index in sorted(set(self.taps)):
                captured[index] = []

                def hook(_module, _inputs, output, index=index):
                    captured[index].append(output[0] if isinstance(output, tuple | list)
                                           else output)
                handles.append(self.model.blocks[index].register_forward_hook(hook))
        try:
            final = self.model(wave, x_length=x_length)
        finally:
            for handle in handles:
                handle.remove()
        if self.taps is None:
            layers = [final.float().cpu()]
        else:
            layers = [torch.cat(captured[index], dim=1).float().cpu() for index in self.taps]
        frames = layers[0].shape[1]
        if any(layer.shape[1] != final.shape[1] for layer in layers):
            raise EncoderError(f"{self.label}: tapped blocks gave a different number of frames "
                               "than the output (a class token?); taps are not supported for "
                               "this model")
        frame_lengths = ((lengths // 160 + 1) // 4).clamp(min=1, max=frames)
        return layers, frame_lengths.to(torch.long)
