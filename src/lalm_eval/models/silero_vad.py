"""Silero VAD: voice activity detection (is there speech in this clip, and where).

Silero VAD is a small recurrent model that gives a speech probability for every 32 ms frame
(512 samples at 16 kHz, 256 at 8 kHz); the frame probabilities are turned into speech
segments by the package's own hysteresis rule (``get_speech_timestamps_from_probs``: a
segment opens at ``threshold``, closes below ``threshold - 0.15`` after ``min_silence_ms``,
is dropped when shorter than ``min_speech_ms`` and padded by 30 ms each side).

DeSTA2.5-Audio gates its Whisper transcript with it: ``DeSTA25AudioModel.generate`` runs
``get_speech_timestamps(audio, vad_model)`` with the package defaults on each 16 kHz clip
and, when no segment is found, gives the LLM a blank transcript (``" "``) instead of running
Whisper. Upstream loads the model through ``torch.hub`` (GitHub code and weights, so the
network); here the weights ship in the PyPI package ``silero-vad==6.2.3`` (MIT), installed
with ``--no-deps`` (``NO_DEPS_PACKAGES`` in the Makefile; it declares only torch and
packaging), and nothing is fetched.

Entry keys used:

* ``source``: a folder holding ``silero_vad.onnx`` / ``silero_vad.jit``, or one such file;
  normally the packaged model, ``pkg:silero_vad/data``, which ``source: "-"`` also means.
* ``sample_rate``: 16000 (default) or 8000, the two rates the model takes.
* ``options``:

  - ``threshold`` (0.5): frame speech probability at which a segment opens, in (0, 1);
  - ``min_speech_ms`` (250): shorter segments are dropped;
  - ``min_silence_ms`` (100): silence that must last this long to close a segment;
  - ``onnx`` (true): run ``silero_vad.onnx`` with onnxruntime; false: the TorchScript
    ``silero_vad.jit``, the kind of model DeSTA's ``torch.hub.load`` returns (there from
    the repository's unpinned default branch). The two agree on the test recordings.

Task ``detect_speech``: one :class:`~lalm_eval.models.base.Response` per clip with
``scores = {"speech": 1.0 or 0.0 (any segment found), "speech_s": total seconds inside
segments, "max_prob": highest frame probability}`` and ``text`` = the segments as a JSON
list of ``[start_s, end_s]`` pairs (``"[]"`` when there is none). :func:`has_speech` reads
the decision back. Bad audio (missing, empty, not 1-D float, NaN) fails that item only.

Runs on one thread: onnxruntime with one intra-op and one inter-op thread (the package's
``OnnxWrapper``), torch with one thread while predicting (the previous torch setting is
restored afterwards, also after importing ``silero_vad``, whose import sets it to 1).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lalm_eval.audio import audio_problem
from lalm_eval.hashing import memo_file_sha256, text_sha256
from lalm_eval.models.base import (
    AudioModel,
    ModelEntry,
    ModelError,
    Request,
    Response,
    check_batch,
)
from lalm_eval.models.sources import check_options, is_hub_id, resolve_source

DEFAULT_SOURCE = "pkg:silero_vad/data"
#: model file inside a source folder, by runtime
MODEL_FILES = {True: "silero_vad.onnx", False: "silero_vad.jit"}
SAMPLE_RATES = (16000, 8000)
#: samples per model frame, by sample rate
FRAME_SAMPLES = {16000: 512, 8000: 256}
#: padding added to each side of a segment (the package's default ``speech_pad_ms``)
SPEECH_PAD_MS = 30
DEFAULT_OPTIONS: dict[str, Any] = {"threshold": 0.5, "min_speech_ms": 250,
                                   "min_silence_ms": 100, "onnx": True}
OPTIONS = frozenset(DEFAULT_OPTIONS)


def has_speech(response: Response) -> bool:
    """Whether a ``detect_speech`` response found any speech segment.

    Raises ValueError for a failed response or one that is not from ``detect_speech`` (a
    gate must not read "no speech" into an error)."""
    if response.error is not None:
        raise ValueError(f"speech detection failed: {response.error}")
    if not response.scores or "speech" not in response.scores:
        raise ValueError("not a detect_speech response (no 'speech' score)")
    return response.scores["speech"] >= 0.5


def vad_options(entry: ModelEntry) -> dict[str, Any]:
    """The entry's options with defaults filled in, checked (ModelError naming the option)."""
    check_options(entry, OPTIONS)
    values = {**DEFAULT_OPTIONS, **entry.options}
    where = f"models.{entry.name}.options"

    threshold = values["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
            or not math.isfinite(threshold) or not 0.0 < threshold < 1.0:
        raise ModelError(f"{where}.threshold must be a number strictly between 0 and 1 "
                         f"(a speech probability), got {threshold!r}")
    for key in ("min_speech_ms", "min_silence_ms"):
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ModelError(f"{where}.{key} must be a whole number of milliseconds >= 0, "
                             f"got {value!r}")
    if not isinstance(values["onnx"], bool):
        raise ModelError(f"{where}.onnx must be true or false, got {values['onnx']!r}")
    values["threshold"] = float(threshold)
    return values


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """torch intra-op threads set to ``count`` inside the block, restored after it."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class SileroVAD(AudioModel):
    """Silero VAD from its PyPI package: speech segments and a speech/no-speech decision."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"detect_speech"})
    default_sample_rate: ClassVar[int | None] = 16000
    option_keys: ClassVar[frozenset[str] | None] = OPTIONS

    def __init__(self, entry: ModelEntry, models: Any = None):
        super().__init__(entry, models)
        self.options = vad_options(entry)
        self._model_path: Path | None = None
        self._model: Any = None
        self._segments_from_probs: Any = None

    # ---------------------------------------------------------------------------------
    # files
    @property
    def source(self) -> str:
        given = (self.entry.source or "").strip()
        return DEFAULT_SOURCE if given in ("", "-") else given

    def model_path(self) -> Path:
        """The model file the options select (resolved once; no weights loaded)."""
        if self._model_path is None:
            resolved = resolve_source(dataclasses.replace(self.entry, source=self.source))
            if is_hub_id(resolved):
                raise ModelError(f"models.{self.name}: silero_vad needs a local folder, file "
                                 f"or pkg: source, got hub id {resolved!r}")
            path = Path(resolved)
            wanted = MODEL_FILES[self.options["onnx"]]
            if path.is_dir():
                path = path / wanted
                if not path.is_file():
                    raise ModelError(f"models.{self.name}: {path.parent} has no {wanted} "
                                     f"(options.onnx is {str(self.options['onnx']).lower()})")
            elif path.suffix != Path(wanted).suffix:
                raise ModelError(f"models.{self.name}: source {path.name} is not a "
                                 f"{Path(wanted).suffix} model but options.onnx is "
                                 f"{str(self.options['onnx']).lower()}")
            self._model_path = path
        return self._model_path

    def fingerprint(self) -> str:
        """The entry's fingerprint with the effective source and options (defaults filled in,
        so ``source: "-"`` and spelt-out defaults give the same key), plus the model file's
        sha256 and the fixed segment padding."""
        effective = dataclasses.replace(self.entry, source=self.source,
                                        options=dict(self.options))
        payload = {"class": f"{type(self).__module__}:{type(self).__qualname__}",
                   **effective.fingerprint(),
                   "model_sha256": memo_file_sha256(self.model_path()),
                   "speech_pad_ms": SPEECH_PAD_MS}
        return text_sha256(json.dumps(payload, sort_keys=True, default=str))

    # ---------------------------------------------------------------------------------
    # loading
    def _load(self) -> None:
        if self.sample_rate not in SAMPLE_RATES:
            raise ModelError(f"models.{self.name}: Silero VAD needs sample_rate 16000 or 8000, "
                             f"got {self.sample_rate}")
        path = self.model_path()
        import torch

        previous = torch.get_num_threads()
        try:  # importing silero_vad sets torch to one thread for the whole process
            from silero_vad.utils_vad import (
                OnnxWrapper,
                get_speech_timestamps_from_probs,
                init_jit_model,
            )
        except ImportError as exc:
            raise ModelError(f"models.{self.name}: the silero-vad package is needed "
                             f"(pip install --no-deps silero-vad==6.2.3): {exc}") from exc
        finally:
            torch.set_num_threads(previous)
        with _torch_threads(1):
            if self.options["onnx"]:
                model = OnnxWrapper(str(path), force_onnx_cpu=True)
                if self.sample_rate not in model.sample_rates:
                    raise ModelError(f"models.{self.name}: {path.name} takes sample rates "
                                     f"{model.sample_rates}, not {self.sample_rate}")
            else:
                with warnings.catch_warnings():  # torch 2.13 deprecates torch.jit.load
                    warnings.simplefilter("ignore", DeprecationWarning)
                    model = init_jit_model(str(path))
        self._model = model
        self._segments_from_probs = get_speech_timestamps_from_probs

    # ---------------------------------------------------------------------------------
    # inference
    def frame_probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability of each frame (the last one zero-padded), state reset first."""
        import torch

        self.load()
        frame = FRAME_SAMPLES[int(self.sample_rate)]
        samples = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        probabilities = np.empty(math.ceil(len(samples) / frame), dtype=np.float64)
        with _torch_threads(1), torch.no_grad():
            self._model.reset_states()
            for index, start in enumerate(range(0, len(samples), frame)):
                chunk = samples[start:start + frame]
                if len(chunk) < frame:
                    chunk = torch.nn.functional.pad(chunk, (0, frame - len(chunk)))
                probabilities[index] = float(self._model(chunk, int(self.sample_rate)).item())
        return probabilities

    def segments(self, probabilities: np.ndarray, n_samples: int) -> list[tuple[int, int]]:
        """Speech segments as (start, end) sample indices, from the frame probabilities."""
        self.load()
        found = self._segments_from_probs(
            [float(p) for p in probabilities], sampling_rate=int(self.sample_rate),
            threshold=self.options["threshold"],
            min_speech_duration_ms=self.options["min_speech_ms"],
            min_silence_duration_ms=self.options["min_silence_ms"],
            speech_pad_ms=SPEECH_PAD_MS, return_seconds=False,
            audio_length_samples=int(n_samples))
        return [(int(s["start"]), int(s["end"])) for s in found]

    def predict(self, requests: list[Request]) -> list[Response]:
        """``detect_speech`` for each request (see the module docstring)."""
        check_batch(requests, self.capabilities)
        self.load()
        return [self._predict_one(request) for request in requests]

    def _predict_one(self, request: Request) -> Response:
        problem = audio_problem(request.audio, self.sample_rate)
        if problem:
            return Response.failed(problem)
        try:
            audio = np.asarray(request.audio)
            probabilities = self.frame_probabilities(audio)
            found = self.segments(probabilities, len(audio))
        except Exception as exc:  # noqa: BLE001 - one item's failure must not stop the batch
            return Response.failed(f"silero_vad failed: {type(exc).__name__}: {exc}")
        rate = float(self.sample_rate)
        spans = [[round(start / rate, 3), round(end / rate, 3)] for start, end in found]
        return Response(
            text=json.dumps(spans),
            scores={"speech": 1.0 if found else 0.0,
                    "speech_s": round(sum(end - start for start, end in found) / rate, 6),
                    "max_prob": float(probabilities.max())},
        )
