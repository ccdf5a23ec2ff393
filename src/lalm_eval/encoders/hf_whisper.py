"""``hf_whisper``: the encoder of a transformers Whisper model, with optional layer taps.

Spec::

    {kind: hf_whisper, source: openai/whisper-large-v3, revision: <commit>,
     layers: [7, 15, 23, 31]}                 # DeSTA2.5's taps (0-based encoder layers)

``source``: a hub id (with ``revision``; offline it must be in the hub cache), a local
folder saved with ``save_pretrained`` or a ``pkg:`` source. ``layers`` (optional): 0-based
indices into ``encoder.layers`` (negative counts from the end); each tap is that layer's raw
output, *before* the encoder's final LayerNorm, as DeSTA2.5 taps them; ``n_layers`` =
``len(layers)`` and ``forward`` returns the last tap. Without ``layers`` the output is the
encoder's ``last_hidden_state`` (after the final LayerNorm), ``n_layers`` 1.

Options: ``device`` (``cpu``; ``cuda``, ``auto``), ``dtype`` (``float32``; ``bfloat16``,
``float16``), ``attn_implementation`` (transformers' default), ``batch_windows`` (8 windows
per forward), ``pool_frames`` (1).

The encoder takes a fixed window of ``2 * max_source_positions`` mel frames (3000 = 30 s for
every released Whisper); a clip is cut into consecutive windows, the last zero-padded, and
each window's log-mel comes from transformers' ``WhisperFeatureExtractor`` (``num_mel_bins``
bands, Whisper's per-window normalisation). Outputs are 50 Hz; only the frames covering the
real audio are kept (``T' = ceil(samples / 320)``), with the mask to match.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from lalm_eval.encoders import EncoderError
from lalm_eval.encoders.base import (
    SAMPLE_RATE,
    FrozenEncoder,
    resolve_device,
    resolve_encoder_source,
    resolve_taps,
    split_windows,
)

CODE_VERSION = "1"
SAMPLES_PER_FRAME = 320
DTYPES = ("float32", "bfloat16", "float16")


class HFWhisperEncoder(FrozenEncoder):
    """Whisper encoder states (final, or raw taps of chosen layers) at 50 Hz."""

    option_keys = frozenset({"device", "dtype", "attn_implementation", "batch_windows"})
    supports_layers = True

    def _load(self) -> None:
        try:
            import transformers
        except ImportError as exc:
            raise EncoderError(f"{self.label}: kind hf_whisper needs transformers "
                               f"(pip install transformers): {exc}") from exc
        self.device_name = resolve_device(self.option("device", "cpu"), self.label)
        dtype_name = str(self.option("dtype", "float32"))
        if dtype_name not in DTYPES:
            raise EncoderError(f"{self.label}.options.dtype must be one of {DTYPES}")
        self.batch_windows = int(self.option("batch_windows", 8))
        if self.batch_windows < 1:
            raise EncoderError(f"{self.label}.options.batch_windows must be >= 1")
        resolved = resolve_encoder_source(self.spec)
        kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype_name)}
        if isinstance(resolved, str) and self.spec.revision:
            kwargs["revision"] = self.spec.revision
        from lalm_eval.models.sources import hub_offline

        if isinstance(resolved, str) and hub_offline():
            kwargs["local_files_only"] = True
        if self.option("attn_implementation"):
            kwargs["attn_implementation"] = str(self.option("attn_implementation"))
        try:
            full = transformers.WhisperModel.from_pretrained(str(resolved), **kwargs)
        except Exception as exc:  # noqa: BLE001 - the message says what to fix
            raise EncoderError(f"{self.label}: cannot load a Whisper model from {resolved!r} "
                               f"(revision {self.spec.revision or 'default'}): "
                               f"{type(exc).__name__}: {exc}") from exc
        self.encoder = full.get_encoder()
        del full  # the decoder is not kept
        self.encoder.to(self.device_name)
        self.encoder.eval()
        config = self.encoder.config
        self.window_frames = int(config.max_source_positions) * 2  # mel frames per window
        self.window_samples = self.window_frames * 160
        self.features = transformers.WhisperFeatureExtractor(
            feature_size=int(config.num_mel_bins), sampling_rate=SAMPLE_RATE, hop_length=160,
            n_fft=400, chunk_length=self.window_samples / SAMPLE_RATE)
        self.features.n_samples = self.window_samples
        self.features.nb_max_frames = self.window_frames
        self.taps = resolve_taps(self.spec.layers, len(self.encoder.layers), self.label)
        self.n_layers = 1 if self.taps is None else len(self.taps)
        self.output_dim = int(config.d_model)
        self.frame_rate = SAMPLE_RATE / SAMPLES_PER_FRAME

    def _windows(self, samples: np.ndarray) -> list[np.ndarray]:
        return split_windows(samples, self.window_samples)

    def _run(self, windows: list[np.ndarray]) -> list[Tensor]:
        """Windows -> one ``[n, window_frames / 2, D]`` tensor per tap."""
        extracted = self.features(windows, sampling_rate=SAMPLE_RATE, return_tensors="np",
                                  padding="max_length", max_length=self.window_samples,
                                  truncation=True)
        mels = torch.from_numpy(np.asarray(extracted["input_features"],
                                           dtype=np.float32)[..., : self.window_frames])
        dtype = next(self.encoder.parameters()).dtype
        mels = mels.to(self.device_name, dtype)
        if self.taps is None:
            return [self.encoder(mels).last_hidden_state.float().cpu()]
        captured: dict[int, Tensor] = {}
        handles = []
        for index in sorted(set(self.taps)):
            def hook(_module, _inputs, output, index=index):
                captured[index] = output[0] if isinstance(output, tuple | list) else output
            handles.append(self.encoder.layers[index].register_forward_hook(hook))
        try:
            self.encoder(mels)
        finally:
            for handle in handles:
                handle.remove()
        return [captured[index].float().cpu() for index in self.taps]

    def _encode(self, audio: Tensor, lengths: Tensor) -> tuple[list[Tensor], Tensor]:
        windows: list[np.ndarray] = []
        owners: list[int] = []
        for index, length in enumerate(lengths.tolist()):
            for window in self._windows(audio[index, :length].numpy()):
                windows.append(window)
                owners.append(index)
        taps_out: list[list[Tensor]] = []
        for start in range(0, len(windows), self.batch_windows):
            taps_out.append(self._run(windows[start:start + self.batch_windows]))
        per_tap = [torch.cat([chunk[t] for chunk in taps_out]) for t in range(self.n_layers)]
        frame_lengths = (lengths + SAMPLES_PER_FRAME - 1) // SAMPLES_PER_FRAME
        longest = int(frame_lengths.max())
        layers = []
        for states in per_tap:  # [n_windows, frames per window, D]
            feats = torch.zeros(len(lengths), longest, states.shape[-1])
            for item in range(len(lengths)):
                rows = [states[w] for w, owner in enumerate(owners) if owner == item]
                joined = torch.cat(rows)[: int(frame_lengths[item])]
                feats[item, : joined.shape[0]] = joined
            layers.append(feats)
        return layers, frame_lengths.to(torch.long)
