"""Small signal helpers the demo-derived sets share (XARES demo tasks, the distillation set).

All work on float64 mono arrays at one sample rate; levels are RMS in dBFS.
"""

from __future__ import annotations

import numpy as np

from .demo import active_span

__all__ = ["LEVEL_DB", "active", "crop", "finish", "fit", "mix_at_snr", "pad", "rms_db"]

LEVEL_DB = -23.0            # RMS of a clip's active part, before a random +-3 dB
PEAK = 10 ** (-1.0 / 20)    # -1 dBFS
FLOOR_DB = -72.0            # faint noise floor, so no clip holds digital silence
PAD_S = 0.1


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS (-200 for an empty array)."""
    return float(10 * np.log10(np.mean(np.square(x)) + 1e-20)) if len(x) else -200.0


def active(x: np.ndarray, sr: int) -> np.ndarray:
    """The audibly non-silent part of ``x`` (all of it when nothing is found)."""
    span = active_span(x, sr)
    return x if span is None else x[span[0] : span[1]]


def crop(x: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """At most ``n`` samples of ``x`` from a seeded offset; (crop, offset)."""
    if len(x) <= n:
        return x, 0
    offset = int(rng.integers(len(x) - n + 1))
    return x[offset : offset + n], offset


def fit(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` repeated or cut to ``n`` samples."""
    return np.resize(x, n) if len(x) else np.zeros(n)


def pad(x: np.ndarray, sr: int, seconds: float = PAD_S) -> np.ndarray:
    """``x`` with ``seconds`` of silence on both sides."""
    zeros = np.zeros(int(round(seconds * sr)))
    return np.concatenate([zeros, x, zeros])


def mix_at_snr(fg: np.ndarray, bg: np.ndarray, snr_db: float, sr: int) -> np.ndarray:
    """``fg`` over ``bg`` (fitted to its length) at ``snr_db`` (RMS of fg's active part
    over the background's RMS)."""
    bg = fit(bg, len(fg))
    gain_db = rms_db(active(fg, sr)) - snr_db - rms_db(bg)
    return fg + bg * 10 ** (gain_db / 20)


def finish(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Level (active part at -23 dBFS +- 3 dB RMS), a faint noise floor, peak <= -1 dBFS."""
    level = LEVEL_DB + float(rng.uniform(-3.0, 3.0))
    x = x * 10 ** ((level - rms_db(active(x, sr))) / 20)
    x = x + rng.standard_normal(len(x)) * 10 ** (FLOOR_DB / 20)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return x * (PEAK / peak) if peak > PEAK else x
