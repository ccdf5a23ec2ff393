"""The encoder API class and the frozen base every built-in encoder derives from.

:class:`AudioEncoder` is the XARES-LLM API (``output_dim``, ``forward(audio, mask)``) plus
``n_layers``/``forward_layers`` for multi-tap encoders. :class:`FrozenEncoder` does what
every built-in shares: options checking, input validation, masks (1 = keep, returned as
int64 like upstream's examples), the ``pool_frames`` option, zeroed padding frames, no_grad
and a module that stays in eval mode. A built-in implements :meth:`FrozenEncoder._encode`.

Input masks are read as *lengths* (``mask.sum(-1)``): the valid samples of an item are taken
to be its first ones, as a padded batch has them.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from lalm_eval.encoders import EncoderError, EncoderSpec

SAMPLE_RATE = 16000


class AudioEncoder(nn.Module):
    """An audio encoder: 16 kHz mono float32 audio ``[B, T]`` -> frames ``[B, T', D]``.

    ``forward`` returns ``(feats, mask)`` with mask ``[B, T']`` (1 = valid frame) or None
    (all valid). ``forward_layers`` returns one ``[B, T', D]`` tensor per tapped layer
    (``n_layers`` of them); the default wraps ``forward``."""

    output_dim: int
    n_layers: int = 1
    sample_rate: int = SAMPLE_RATE
    #: frames per second of the output (None: not fixed), for documentation and sizing
    frame_rate: float | None = None

    def forward(self, audio: Tensor, mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_layers(self, audio: Tensor, mask: Tensor | None = None
                       ) -> tuple[list[Tensor], Tensor | None]:
        feats, out_mask = self.forward(audio, mask)
        return [feats], out_mask


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """``[B]`` lengths -> ``[B, max_len]`` int64 mask (1 for the first ``length`` frames)."""
    positions = torch.arange(max_len, device=lengths.device)[None, :]
    return (positions < lengths[:, None]).long()


def input_lengths(audio: Tensor, mask: Tensor | None) -> Tensor:
    """Valid samples per item (``mask.sum(-1)``, or the full length)."""
    if mask is None:
        return torch.full((audio.shape[0],), audio.shape[1], dtype=torch.long)
    if tuple(mask.shape) != tuple(audio.shape):
        raise EncoderError(f"mask shape {tuple(mask.shape)} differs from audio shape "
                           f"{tuple(audio.shape)}")
    return (mask != 0).sum(-1).long().cpu()


def pool_frames(layers: list[Tensor], lengths: Tensor, k: int) -> tuple[list[Tensor], Tensor]:
    """Average groups of ``k`` consecutive frames (the last group over its valid frames only).

    ``[B, T, D]`` -> ``[B, ceil(T / k), D]``; lengths become ``ceil(lengths / k)``."""
    if k <= 1:
        return layers, lengths
    batch, frames = layers[0].shape[:2]
    groups = math.ceil(frames / k)
    valid = lengths_to_mask(lengths.to(layers[0].device), groups * k).to(layers[0].dtype)
    counts = valid.view(batch, groups, k).sum(-1).clamp(min=1.0)[..., None]
    pooled = []
    for feats in layers:
        padded = torch.nn.functional.pad(feats, (0, 0, 0, groups * k - frames))
        summed = (padded * valid[..., None]).view(batch, groups, k, -1).sum(2)
        pooled.append(summed / counts)
    return pooled, (lengths + k - 1) // k


def check_pool_option(spec: EncoderSpec) -> int:
    value = spec.options.get("pool_frames", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EncoderError(f"{spec.label}.options.pool_frames must be an integer >= 1, "
                           f"got {value!r}")
    return int(value)


def resolve_encoder_source(spec: EncoderSpec, *, default: str | None = None) -> Any:
    """The spec's source (or ``default``) as a local Path or a hub id string
    (:func:`lalm_eval.models.sources.resolve_source`), errors naming the encoder."""
    from lalm_eval.models.base import ModelEntry, ModelError
    from lalm_eval.models.sources import resolve_source

    source = spec.source or default
    if not source:
        raise EncoderError(f"{spec.label}: kind {spec.kind} needs a 'source'")
    entry = ModelEntry(name=f"encoder:{spec.name}", adapter=f"encoder:{spec.kind}",
                       source=source, revision=spec.revision)
    try:
        return resolve_source(entry)
    except ModelError as exc:
        message = str(exc).replace(f"models.encoder:{spec.name}", spec.label)
        raise EncoderError(f"{spec.label}: {message}") from exc


def resolve_taps(layers: list[int] | None, n_total: int, label: str) -> list[int] | None:
    """Tapped layer indices (negative counts from the end) checked against ``n_total``
    layers; None when no layers are listed (the encoder's output only)."""
    if layers is None:
        return None
    taps = []
    for layer in layers:
        index = layer + n_total if layer < 0 else layer
        if not 0 <= index < n_total:
            from lalm_eval.encoders import EncoderError

            raise EncoderError(f"{label}.layers: {layer} is out of range for an encoder of "
                               f"{n_total} layers (0..{n_total - 1})")
        taps.append(index)
    return taps


def split_windows(samples: np.ndarray, window_samples: int) -> list[np.ndarray]:
    """``samples`` zero-padded to whole windows and cut into them (at least one)."""
    count = max(1, math.ceil(len(samples) / window_samples))
    padded = np.zeros(count * window_samples, dtype=np.float32)
    padded[: len(samples)] = samples
    return [padded[i * window_samples:(i + 1) * window_samples] for i in range(count)]


def resolve_device(value: Any, label: str) -> str:
    value = str(value or "cpu").lower()
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value != "cpu" and not value.startswith("cuda"):
        raise EncoderError(f"{label}.options.device must be cpu, cuda[:N] or auto, got {value!r}")
    if value.startswith("cuda") and not torch.cuda.is_available():
        raise EncoderError(f"{label}.options.device asks for {value} but torch sees no CUDA "
                           "device")
    return value


class FrozenEncoder(AudioEncoder):
    """Base of the built-in encoders: frozen, no_grad, masks and ``pool_frames`` handled.

    Subclasses set ``option_keys`` (their own options; ``pool_frames`` is always accepted),
    ``supports_layers`` (whether ``layers`` may be set), and implement :meth:`_load` (read
    weights; set ``output_dim``, ``n_layers``, ``frame_rate``) and :meth:`_encode`."""

    option_keys: ClassVar[frozenset[str]] = frozenset()
    supports_layers: ClassVar[bool] = False

    def __init__(self, spec: EncoderSpec):
        super().__init__()
        self.check_spec(spec)
        self.spec = spec
        self.name = spec.name
        self.label = spec.label
        self.pool = check_pool_option(spec)
        self._load()
        if self.pool > 1 and self.frame_rate:
            self.frame_rate = self.frame_rate / self.pool
        for param in self.parameters():
            param.requires_grad_(False)
        super().train(False)

    # -- configuration -------------------------------------------------------------------
    @classmethod
    def check_spec(cls, spec: EncoderSpec) -> None:
        """Raise :class:`EncoderError` for options or layers this kind does not take."""
        known = set(cls.option_keys) | {"pool_frames"}
        unknown = set(spec.options) - known
        if unknown:
            raise EncoderError(f"{spec.label}.options: unknown key(s) {sorted(unknown)} for "
                               f"kind {spec.kind} (known: {sorted(known)})")
        if spec.layers is not None and not cls.supports_layers:
            raise EncoderError(f"{spec.label}: kind {spec.kind} exposes only its final "
                               "output; remove 'layers'")
        check_pool_option(spec)

    def option(self, key: str, default: Any = None) -> Any:
        return self.spec.options.get(key, default)

    def train(self, mode: bool = True) -> FrozenEncoder:
        """Frozen: always stays in eval mode (a training loop calling ``model.train()`` on a
        model holding this encoder does not turn dropout on in it)."""
        return super().train(False)

    # -- to implement --------------------------------------------------------------------
    def _load(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode(self, audio: Tensor, lengths: Tensor) -> tuple[list[Tensor], Tensor]:
        """``audio [B, T]`` float32 on CPU with zeros past each item's length, ``lengths [B]``
        -> (one ``[B, T', D]`` float32 tensor per tapped layer, valid frames per item)."""
        raise NotImplementedError  # pragma: no cover - abstract

    # -- the API -------------------------------------------------------------------------
    def forward_layers(self, audio: Tensor, mask: Tensor | None = None
                       ) -> tuple[list[Tensor], Tensor]:
        audio = torch.as_tensor(audio)
        if audio.ndim == 1:
            audio = audio[None]
            mask = None if mask is None else torch.as_tensor(mask)[None]
        if audio.ndim != 2:
            raise EncoderError(f"{self.label}: audio must be [B, T], got shape "
                               f"{tuple(audio.shape)}")
        if audio.shape[0] == 0 or audio.shape[1] == 0:
            raise EncoderError(f"{self.label}: empty audio batch {tuple(audio.shape)}")
        device = audio.device
        lengths = input_lengths(audio, None if mask is None else torch.as_tensor(mask))
        if int(lengths.min()) <= 0:
            raise EncoderError(f"{self.label}: item {int(lengths.argmin())} of the batch has no "
                               "valid samples")
        with torch.no_grad():
            samples = audio.detach().to("cpu", torch.float32)
            if mask is not None:
                samples = samples * lengths_to_mask(lengths, samples.shape[1]).to(samples.dtype)
            layers, frame_lengths = self._encode(samples, lengths)
            frame_lengths = frame_lengths.to("cpu", torch.long)
            layers, frame_lengths = pool_frames(layers, frame_lengths, self.pool)
            frames = layers[0].shape[1]
            frame_lengths = frame_lengths.clamp(min=1, max=frames)
            out_mask = lengths_to_mask(frame_lengths, frames)
            keep = out_mask.to(layers[0].device, layers[0].dtype)[..., None]
            layers = [(feats.to(torch.float32) * keep).to(device) for feats in layers]
        return layers, out_mask.to(device)

    def forward(self, audio: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The last tapped layer (the final output when ``layers`` is not set)."""
        layers, out_mask = self.forward_layers(audio, mask)
        return layers[-1], out_mask


def pad_stack(arrays: list[np.ndarray], length: int | None = None) -> Tensor:
    """``[T_i, D]`` arrays -> zero-padded ``[B, max T_i, D]`` float32 tensor."""
    length = length or max(a.shape[0] for a in arrays)
    out = np.zeros((len(arrays), length, arrays[0].shape[1]), dtype=np.float32)
    for i, array in enumerate(arrays):
        out[i, : array.shape[0]] = array[:length]
    return torch.from_numpy(out)
