"""Audio I/O: reading any source file into validated mono float32 at a target rate, plus
the small audio helpers shared across modules (edge fades, the adapters' input check)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioError(ValueError):
    """A source file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class LoadedAudio:
    """Mono float32 samples plus what was done to get them."""

    samples: np.ndarray
    sample_rate: int
    original_rate: int
    original_channels: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def conversions(self) -> str:
        """Short record of conversions applied, for manifests ('' when none)."""
        done = []
        if self.original_channels > 1:
            done.append(f"downmix:{self.original_channels}ch")
        if self.original_rate != self.sample_rate:
            done.append(f"resample:{self.original_rate}->{self.sample_rate}")
        return ";".join(done)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample mono float32 audio with soxr (VHQ); identity when the rates match."""
    if from_rate == to_rate:
        return samples
    return soxr.resample(samples, from_rate, to_rate, quality="VHQ").astype(np.float32, copy=False)


#: data-chunk sizes from this one up mean "length unknown": writers that cannot seek back
#: put a placeholder there (0xFFFFFFFF, sox's 0x7FFFF000; RF64 files are not RIFF anyway)
_UNKNOWN_DATA_SIZE = 0x7FFFF000


def wav_frames(path: str | Path) -> tuple[int, int] | None:
    """(frames the header of a RIFF/WAVE file declares, frames the file holds), from the
    ``fmt `` and ``data`` chunk headers; None for other files and for headers that give no
    length. libsndfile reports the frames present, so a truncated file is only seen here."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align, pos = 0, 12
        while pos + 8 <= size:
            handle.seek(pos)
            chunk = handle.read(8)
            chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if chunk_id == b"fmt ":
                fmt = handle.read(min(chunk_size, 16))
                block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
            elif chunk_id == b"data":
                if block_align <= 0 or chunk_size == 0 or chunk_size >= _UNKNOWN_DATA_SIZE:
                    return None
                held = min(chunk_size, size - pos - 8)
                return chunk_size // block_align, held // block_align
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def _check_complete(path: Path) -> None:
    """AudioError when ``path`` is a WAV file holding fewer frames than its header says."""
    try:
        frames = wav_frames(path)
    except OSError as exc:
        raise AudioError(f"{path}: unreadable audio file ({exc.strerror})") from exc
    if frames is not None and frames[1] < frames[0]:
        raise AudioError(
            f"{path}: truncated WAV: header says {frames[0]} frames, file holds {frames[1]}")


def load_audio(
    path: str | Path,
    target_rate: int,
    start_s: float | None = None,
    end_s: float | None = None,
) -> LoadedAudio:
    """Read ``path`` (optionally a [start_s, end_s) segment) as mono float32 at ``target_rate``.

    Stereo/multichannel input is averaged to mono and any sample rate is resampled with
    soxr. Missing, unreadable, truncated (a WAV holding fewer frames than its header says),
    empty, non-finite or out-of-range segments raise :class:`AudioError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types; all mean "unreadable"
        raise AudioError(f"{path}: unreadable audio file ({exc})") from exc
    _check_complete(path)
    rate = int(info.samplerate)
    if rate <= 0:
        raise AudioError(f"{path}: invalid sample rate {rate}")
    start = 0 if start_s is None else int(round(start_s * rate))
    stop = None if end_s is None else int(round(end_s * rate))
    if start < 0 or (stop is not None and stop <= start):
        raise AudioError(f"{path}: invalid segment [{start_s}, {end_s}) s")
    if info.frames and start >= info.frames:
        raise AudioError(f"{path}: segment starts at {start_s} s, after the end of the file")
    try:
        data, _ = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"{path}: unreadable audio data ({exc})") from exc
    if data.size == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    channels = data.shape[1]
    mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
    mono = np.ascontiguousarray(resample(mono, rate, target_rate), dtype=np.float32)
    return LoadedAudio(mono, target_rate, rate, channels)


def power(samples: np.ndarray) -> float:
    """Mean square with float64 accumulation, in blocks (no whole-signal float64 copy).

    Uses ufuncs rather than BLAS ``dot``: BLAS thread pools spin in forked workers.
    """
    x = np.asarray(samples)
    total = 0.0
    for start in range(0, len(x), 65536):
        block = x[start : start + 65536].astype(np.float64)
        np.multiply(block, block, out=block)
        total += float(block.sum())
    return total / len(x)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Quantise float audio in [-1, 1] to int16 exactly as it will be stored."""
    scaled = np.multiply(samples, np.float32(32767.0), dtype=np.float32)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int, subtype: str) -> None:
    """Write mono audio; int16 input is written verbatim, float input in ``subtype``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype=subtype, format="WAV")


def fade_edges(samples: np.ndarray, n: int) -> np.ndarray:
    """A copy of ``samples`` with a linear fade-in over its first ``n`` samples and a
    fade-out over its last ``n`` (``n`` is capped at half the length; ``n <= 0``: no fade).

    The ramp is ``linspace(0, 1, n, endpoint=False)``: the first sample becomes 0 and the
    last sample before the untouched middle keeps ``(n - 1) / n`` of its level. The dtype of
    ``samples`` is kept.
    """
    out = samples.copy()
    n = min(n, len(out) // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, endpoint=False)
        out[:n] *= ramp
        out[-n:] *= ramp[::-1]
    return out


def audio_problem(audio: np.ndarray | None, sample_rate: int | None = None,
                  min_seconds: float = 0.0) -> str | None:
    """Why ``audio`` cannot be fed to a model adapter (None when it is fine).

    Checked in this order: present, mono (1-D), not empty, floating-point samples (integer
    PCM would reach the model unscaled), at least ``min_seconds`` long at ``sample_rate``
    (only when ``min_seconds > 0``, which needs ``sample_rate``), all samples finite.
    """
    if audio is None:
        return "request has no audio"
    array = np.asarray(audio)
    if array.ndim != 1:
        return f"audio must be mono (1-D), got shape {array.shape}"
    if array.size == 0:
        return "audio is empty"
    if not np.issubdtype(array.dtype, np.floating):
        return f"audio must be float, got {array.dtype}"
    if min_seconds > 0:
        if not sample_rate or sample_rate <= 0:
            raise ValueError("audio_problem: min_seconds needs a positive sample_rate")
        if array.size < min_seconds * sample_rate:
            return f"audio is too short ({array.size / sample_rate:.3f} s < {min_seconds} s)"
    if not np.all(np.isfinite(array)):
        return "audio contains NaN or infinite samples"
    return None
