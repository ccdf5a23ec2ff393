"""Frozen-encoder features, computed once per (encoder id, audio content) and cached on disk.

:func:`cached_features` returns one float32 ``[L, T', D]`` array per audio file (``L`` tapped
layers, valid frames only). The cache key of an item is
``sha256(encoder_id + ":" + sha256 of the audio file's bytes)``, so a renamed or copied file
hits the cache and a changed encoder spec (:func:`lalm_eval.encoders.encoder_id`) misses it.
Files live at ``<cache_dir>/<key[:2]>/<key>.npy``, written to a temporary file and renamed
into place (concurrent writers are safe: the last rename wins with identical content). A file
that cannot be read, or whose shape or dtype does not fit the encoder, is recomputed.

:func:`compute_features` is the same computation on in-memory waveforms, without the cache
(benchmarks that time "compute the features every step").

Audio is read with :func:`lalm_eval.audio.load_audio` as 16 kHz mono; a bad file raises
:class:`FeatureError` naming it. Items are batched (padded, with a mask) longest first.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lalm_eval.audio import AudioError, load_audio
from lalm_eval.hashing import memo_file_sha256, text_sha256

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000

__all__ = ["FeatureError", "cached_features", "compute_features", "feature_key",
           "feature_path"]


class FeatureError(RuntimeError):
    """Features could not be computed; the message names the file or batch."""


def feature_key(encoder_id: str, audio_sha256: str) -> str:
    """Cache key of one audio content under one encoder."""
    return text_sha256(f"{encoder_id}:{audio_sha256}")


def feature_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / key[:2] / f"{key}.npy"


def _expected_layers(encoder: Any) -> int:
    return int(getattr(encoder, "n_layers", 1) or 1)


def _read(path: Path, encoder: Any) -> np.ndarray | None:
    """The cached array, or None when missing or unusable (it is then recomputed)."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        log.warning("feature cache: %s is unreadable (%s); recomputing", path, exc)
        return None
    if (array.dtype != np.float32 or array.ndim != 3 or array.shape[0] != _expected_layers(encoder)
            or array.shape[2] != int(encoder.output_dim) or array.shape[1] < 1):
        log.warning("feature cache: %s has shape %s dtype %s, not [%d, T, %d] float32; "
                    "recomputing", path, array.shape, array.dtype, _expected_layers(encoder),
                    int(encoder.output_dim))
        return None
    return array


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(temporary, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _encode_batch(encoder: Any, waveforms: list[np.ndarray]) -> list[np.ndarray]:
    """One padded batch through ``encoder.forward_layers`` -> valid frames per item."""
    import torch

    longest = max(len(w) for w in waveforms)
    audio = torch.zeros(len(waveforms), longest, dtype=torch.float32)
    mask = torch.zeros(len(waveforms), longest, dtype=torch.long)
    for index, wave in enumerate(waveforms):
        audio[index, : len(wave)] = torch.from_numpy(np.ascontiguousarray(wave, np.float32))
        mask[index, : len(wave)] = 1
    with torch.no_grad():
        if hasattr(encoder, "forward_layers"):
            layers, out_mask = encoder.forward_layers(audio, mask)
        else:
            feats, out_mask = encoder(audio, mask)
            layers = [feats]
    stacked = torch.stack([layer.detach().float().cpu() for layer in layers], dim=1)  # [B,L,T,D]
    if out_mask is None:
        keep = torch.ones(stacked.shape[0], stacked.shape[2], dtype=torch.bool)
    else:
        keep = out_mask.detach().cpu() != 0
    results = []
    for index in range(stacked.shape[0]):
        results.append(stacked[index][:, keep[index]].numpy().astype(np.float32, copy=False))
    return results


def _batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def _checked(array: np.ndarray, what: str) -> np.ndarray:
    if array.ndim != 3 or array.shape[1] < 1:
        raise FeatureError(f"encoder returned no frames for {what} (shape {array.shape})")
    if not np.isfinite(array).all():
        raise FeatureError(f"encoder returned NaN or infinite features for {what}")
    return array


def compute_features(encoder: Any, waveforms: Sequence[np.ndarray], *, batch_size: int = 8,
                     progress: bool = False) -> list[np.ndarray]:
    """Features of in-memory 16 kHz mono float32 waveforms, ``[L, T', D]`` each, no cache."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waveforms]
    for index, wave in enumerate(waves):
        if wave.size == 0 or not np.isfinite(wave).all():
            raise FeatureError(f"waveform {index} is empty or has non-finite samples")
    results: list[np.ndarray | None] = [None] * len(waves)
    batches = _batches([len(w) for w in waves], batch_size)
    bar = _progress(len(waves), progress, "features")
    try:
        for batch in batches:
            outputs = _encode_batch(encoder, [waves[i] for i in batch])
            for index, array in zip(batch, outputs, strict=True):
                results[index] = _checked(array, f"waveform {index}")
            bar.update(len(batch))
    finally:
        bar.close()
    return [r for r in results if r is not None]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="clip", dynamic_ncols=True)


def _duration(path: Path) -> int:
    """Length in samples at 16 kHz from the header (0 when unreadable: load_audio reports
    the problem), to batch clips of similar length."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        return int(info.frames * SAMPLE_RATE / max(int(info.samplerate), 1))
    except Exception:  # noqa: BLE001 - reported when the file is loaded
        return 0


def _load(path: Path) -> np.ndarray:
    try:
        return load_audio(path, SAMPLE_RATE).samples
    except AudioError as exc:
        raise FeatureError(str(exc)) from exc


def cached_features(encoder: Any, encoder_id: str, audio_paths: Sequence[str | Path],
                    cache_dir: Path, *, batch_size: int = 8,
                    progress: bool = True) -> list[np.ndarray]:
    """Features of each audio file (``[L, T', D]`` float32, valid frames), from the cache
    where present, computed (and stored) otherwise; in the order of ``audio_paths``."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    cache_dir = Path(cache_dir)
    paths = [Path(p) for p in audio_paths]
    keys: list[str] = []
    for path in paths:
        try:
            digest = memo_file_sha256(path)
        except OSError as exc:
            reason = exc.strerror or exc
            raise FeatureError(f"audio file {path}: cannot read it ({reason})") from exc
        keys.append(feature_key(encoder_id, digest))

    results: dict[str, np.ndarray] = {}
    missing: dict[str, Path] = {}  # key -> first path with that content
    for key, path in zip(keys, paths, strict=True):
        if key in results or key in missing:
            continue
        cached = _read(feature_path(cache_dir, key), encoder)
        if cached is not None:
            results[key] = cached
        else:
            missing[key] = path

    if missing:
        log.info("features: %d of %d clips to compute (encoder %s)", len(missing),
                 len(set(keys)), encoder_id[:12])
        todo = list(missing)
        bar = _progress(len(todo), progress, "features")
        try:
            for batch in _batches([_duration(missing[k]) for k in todo], batch_size):
                batch_keys = [todo[i] for i in batch]
                waves = [_load(missing[k]) for k in batch_keys]
                try:
                    outputs = _encode_batch(encoder, waves)
                except Exception as exc:
                    names = ", ".join(str(missing[k]) for k in batch_keys)
                    raise FeatureError(f"encoder failed on a batch of {names}: "
                                       f"{type(exc).__name__}: {exc}") from exc
                for key, array in zip(batch_keys, outputs, strict=True):
                    _checked(array, f"audio file {missing[key]}")
                    _write(feature_path(cache_dir, key), array)
                    results[key] = array
                bar.update(len(batch))
        finally:
            bar.close()
    return [results[key] for key in keys]
