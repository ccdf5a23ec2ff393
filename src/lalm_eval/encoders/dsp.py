"""Small signal-processing helpers shared by the encoders' front ends (numpy and torch)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def hz_to_slaney_mel(frequency: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    f = np.asarray(frequency, dtype=np.float64)
    linear = f / (200.0 / 3.0)
    log_start = 1000.0 / (200.0 / 3.0)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, log_start + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep,
                    linear)


def slaney_mel_to_hz(mels: np.ndarray) -> np.ndarray:
    m = np.asarray(mels, dtype=np.float64)
    log_start = 1000.0 / (200.0 / 3.0)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= log_start, 1000.0 * np.exp(logstep * (m - log_start)),
                    m * (200.0 / 3.0))


def slaney_mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                       fmax: float | None = None) -> np.ndarray:
    """``[n_mels, n_fft // 2 + 1]`` triangular filters on the Slaney mel scale with Slaney
    area normalisation (what ``librosa.filters.mel`` returns by default, and Whisper's)."""
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = slaney_mel_to_hz(np.linspace(hz_to_slaney_mel(fmin), hz_to_slaney_mel(fmax),
                                         n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:n_mels + 2] - edges[:n_mels]))[:, None]
    return weights


def periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def power_frames(audio: Tensor, n_fft: int, hop: int, window: Tensor, n_frames: int,
                 left_pad: int = 0, pad_mode: str = "constant") -> Tensor:
    """``[B, T]`` -> ``[B, n_frames, n_fft // 2 + 1]`` power spectra of frames starting every
    ``hop`` samples (after ``left_pad`` samples of padding on the left, zeros on the right as
    needed)."""
    needed = (n_frames - 1) * hop + n_fft
    if left_pad:
        if pad_mode == "reflect" and audio.shape[1] > left_pad:
            audio = torch.nn.functional.pad(audio[:, None], (left_pad, 0), mode="reflect")[:, 0]
        else:
            audio = torch.nn.functional.pad(audio, (left_pad, 0))
    if audio.shape[1] < needed:
        audio = torch.nn.functional.pad(audio, (0, needed - audio.shape[1]))
    frames = audio[:, :needed].unfold(1, n_fft, hop)  # [B, n_frames, n_fft]
    spectrum = torch.fft.rfft(frames * window, n=n_fft)
    return spectrum.real ** 2 + spectrum.imag ** 2
