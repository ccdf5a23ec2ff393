"""The adapter interface every model implements: audio and/or prompt in, text or scores out.

An adapter wraps one model family behind :class:`AudioModel`. The inference engine
(``lalm_eval.inference``) hands it batches of :class:`Request` objects that share one
``task`` and gets back one :class:`Response` per request, in order. Adapters never raise for
a single bad item: they return a Response with ``error`` set, so the job goes on.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from lalm_eval.hashing import text_sha256

#: What a request asks for. ``generate`` covers LALMs (audio + prompt), text LLMs (prompt
#: only) and judges; ``classify`` is zero-shot scoring of candidate label texts;
#: ``detect_speech`` is voice activity detection (``silero_vad``).
TASKS = ("transcribe", "generate", "classify", "caption", "embed_text", "embed_audio",
         "detect_speech")


class ModelError(RuntimeError):
    """A model cannot be loaded or used as configured; the message says what to change."""


@dataclass(frozen=True)
class ModelEntry:
    """One model as configured (``models.<name>`` in config), after schema defaults."""

    name: str
    adapter: str
    source: str
    revision: str | None = None
    sample_rate: int | None = None
    batch_size: int = 1
    decoding: dict[str, Any] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] | None = None
    trust_remote_code: bool = False
    requires: dict[str, Any] | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    #: how the workflow trains this model (adapter trained_lalm); None for every other
    training: dict[str, Any] | None = None
    #: conda environment file of the model's ``infer_<model>`` rule (repository-relative, e.g.
    #: ``envs/ltu_as.yaml``); None: the adapter family's default
    #: (:func:`lalm_eval.models.environments.conda_env`). Not part of the fingerprint: the
    #: environment is pinned by its file, the outputs by the entry
    conda: str | None = None

    @classmethod
    def from_config(cls, name: str, config: dict[str, Any]) -> ModelEntry:
        known = set(cls.__dataclass_fields__) - {"name"}
        unknown = set(config) - known
        if unknown:
            raise ModelError(f"models.{name}: unknown key(s) {sorted(unknown)}")
        values = dict(config)
        if values.get("tasks") is not None:
            values["tasks"] = tuple(values["tasks"])
        return cls(name=name, **values)

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this model's outputs (part of every cache key)."""
        return {
            "adapter": self.adapter,
            "source": self.source,
            "revision": self.revision,
            "sample_rate": self.sample_rate,
            "decoding": self.decoding,
            "options": self.options,
        }


@dataclass
class Request:
    """One unit of model work. ``audio`` is mono float32 at the adapter's sample rate."""

    item_id: str
    task: str
    audio: np.ndarray | None = None
    prompt: str | None = None
    system: str | None = None
    labels: tuple[str, ...] | None = None
    multi_label: bool = False
    audio_path: str | None = None


@dataclass
class Response:
    """A model's answer to one request; ``error`` set (and nothing else) when it failed."""

    text: str | None = None
    scores: dict[str, float] | None = None
    embedding: list[float] | None = None
    n_output_tokens: int | None = None
    error: str | None = None

    @classmethod
    def failed(cls, message: str) -> Response:
        return cls(error=message)


class AudioModel(ABC):
    """Base class of every adapter. Subclasses set ``capabilities`` and implement ``_load``
    and ``predict``; heavy libraries are imported inside them, never at module import."""

    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: sample rate the model expects when the entry does not say
    default_sample_rate: ClassVar[int | None] = 16000
    #: the keys ``models.<name>.options`` may have, checked at config time (adapter modules
    #: import no heavy library, so the registry can read this cheaply) and by most adapters
    #: on load too; None: free-form options (read by the model's own code), unchecked
    option_keys: ClassVar[frozenset[str] | None] = None

    def __init__(self, entry: ModelEntry, models: Mapping[str, dict[str, Any]] | None = None):
        self.entry = entry
        #: every configured model entry, for composite adapters that build components
        self.models_config = dict(models or {})
        self._loaded = False

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def sample_rate(self) -> int | None:
        return self.entry.sample_rate or self.default_sample_rate

    def load(self) -> None:
        """Load weights once (idempotent)."""
        if not self._loaded:
            self._load()
            self._loaded = True

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def predict(self, requests: list[Request]) -> list[Response]:
        """Answer a batch of requests sharing one task, in order."""

    def supports(self, task: str) -> bool:
        return task in self.capabilities

    @classmethod
    def allowed_options(cls) -> frozenset[str] | None:
        """The option keys this adapter accepts (``option_keys``; None: free-form)."""
        return cls.option_keys

    def fingerprint(self) -> str:
        """Stable hash of the entry's fingerprint plus the adapter class."""
        payload = {"class": f"{type(self).__module__}:{type(self).__qualname__}",
                   **self.entry.fingerprint()}
        return text_sha256(json.dumps(payload, sort_keys=True, default=str))

    def close(self) -> None:  # noqa: B027  (optional hook, nothing to release by default)
        """Release resources (optional)."""


def check_batch(requests: list[Request], capabilities: frozenset[str]) -> str:
    """The single task of a batch; raises ModelError for a mixed or unsupported batch."""
    tasks = {r.task for r in requests}
    if len(tasks) != 1:
        raise ModelError(f"a batch must share one task, got {sorted(tasks)}")
    task = tasks.pop()
    if task not in capabilities:
        raise ModelError(f"task {task!r} is not supported (supported: {sorted(capabilities)})")
    return task
