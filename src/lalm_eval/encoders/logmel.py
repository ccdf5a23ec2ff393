"""``logmel``: a log-mel filterbank with no learned weights (the floor every encoder must beat).

Options: ``n_mels`` (80), ``hop_ms`` (10), ``win_ms`` (25), ``fmin`` (0 Hz), ``fmax``
(8000 Hz), ``pool_frames`` (1).

Frame ``k`` covers samples ``[k * hop, k * hop + win)`` (periodic Hann window, zeros past
the end of the clip), so a clip of ``n`` samples has ``ceil(n / hop)`` frames: 100 Hz at the
default hop. Each frame is the power spectrum through Slaney-scale mel filters (as
librosa's and Whisper's), as ``(log10(max(mel, 1e-10)) + 4) / 4`` (Whisper's scaling,
without its per-clip dynamic-range clamp, so a frame does not depend on the rest of the
clip). ``output_dim = n_mels``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lalm_eval.encoders import EncoderError
from lalm_eval.encoders.base import SAMPLE_RATE, FrozenEncoder
from lalm_eval.encoders.dsp import periodic_hann, power_frames, slaney_mel_filters

CODE_VERSION = "1"


class LogMelEncoder(FrozenEncoder):
    """Log-mel frames (see the module docstring)."""

    option_keys = frozenset({"n_mels", "hop_ms", "win_ms", "fmin", "fmax"})

    def _load(self) -> None:
        n_mels = self.option("n_mels", 80)
        hop_ms = float(self.option("hop_ms", 10))
        win_ms = float(self.option("win_ms", 25))
        fmin = float(self.option("fmin", 0.0))
        fmax = float(self.option("fmax", SAMPLE_RATE / 2))
        if isinstance(n_mels, bool) or not isinstance(n_mels, int) or n_mels < 1:
            raise EncoderError(f"{self.label}.options.n_mels must be a positive integer")
        self.hop = int(round(hop_ms * SAMPLE_RATE / 1000))
        self.win = int(round(win_ms * SAMPLE_RATE / 1000))
        if self.hop < 1 or self.win < self.hop:
            raise EncoderError(f"{self.label}.options: need 0 < hop_ms <= win_ms")
        if not 0 <= fmin < fmax <= SAMPLE_RATE / 2:
            raise EncoderError(f"{self.label}.options: need 0 <= fmin < fmax <= 8000")
        filters = slaney_mel_filters(SAMPLE_RATE, self.win, n_mels, fmin, fmax)
        self.register_buffer("mel_filters", torch.tensor(filters.T, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("window", torch.tensor(periodic_hann(self.win), dtype=torch.float32),
                             persistent=False)
        self.output_dim = int(n_mels)
        self.frame_rate = SAMPLE_RATE / self.hop

    def _encode(self, audio: Tensor, lengths: Tensor) -> tuple[list[Tensor], Tensor]:
        n_frames = math.ceil(audio.shape[1] / self.hop)
        power = power_frames(audio, self.win, self.hop, self.window, n_frames)
        mel = power @ self.mel_filters
        feats = (torch.log10(mel.clamp(min=1e-10)) + 4.0) / 4.0
        return [feats], (lengths + self.hop - 1) // self.hop
