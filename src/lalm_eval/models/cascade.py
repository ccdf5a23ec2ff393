"""Cascade baselines: describe audio with ASR + a sound tagger, then ask a text LLM.

``DescriptionCaptioner`` (task ``caption``) options:

* ``asr``: name of a ``models`` entry with ``transcribe`` (optional);
* ``tagger``: name of a ``models`` entry whose label-free ``classify`` returns AudioSet class
  scores, e.g. YAMNet (optional; at least one of ``asr``/``tagger`` is required);
* ``threshold`` (0.2): lowest tag score mentioned; ``max_events`` (5);
  ``skip_events`` ([]): tag names never mentioned.

A description reads, for example::

    Speech: "Turn left at the next intersection." Sounds heard: speech (0.99); dog (0.62).

``CascadeModel`` (tasks ``generate`` and ``caption``) options: ``captioner`` and ``llm``
(model names). For a request with audio it captions the audio (cached by audio content within
the process), then asks the LLM the request's prompt with the description in a short context
block (``prompts.context`` with ``{description}`` and ``{question}``; the system message is the
request's ``system``, else ``prompts.system``, else the LLM's own default). The caption used
for each item is kept in ``last_captions[item_id]``.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

import numpy as np

from lalm_eval.audio import audio_problem
from lalm_eval.hashing import text_sha256
from lalm_eval.models.base import (
    AudioModel,
    ModelEntry,
    ModelError,
    Request,
    Response,
    check_batch,
)
from lalm_eval.models.registry import build_model
from lalm_eval.models.sources import audio_digest, check_options

log = logging.getLogger(__name__)

#: system message for the LLM (None: the LLM entry's own default); tuned on SmolLM2-135M,
#: which answers best with its built-in system message and a compact user turn
DEFAULT_SYSTEM: str | None = None
CAPTIONER_OPTIONS = frozenset({"asr", "tagger", "threshold", "max_events", "skip_events"})
CASCADE_OPTIONS = frozenset({"captioner", "llm"})
DEFAULT_CONTEXT = "Audio clip: {description}\nQuestion: {question}\nAnswer in a few words."


def _component(owner: AudioModel, option: str, task: str, required: bool) -> AudioModel | None:
    """Build (not load) the component named by ``owner.entry.options[option]``."""
    name = owner.entry.options.get(option)
    if not name:
        if required:
            raise ModelError(f"models.{owner.name}: options.{option} must name a model")
        return None
    model = build_model(str(name), owner.models_config)
    if not model.supports(task):
        raise ModelError(f"models.{owner.name}: {option} model {name!r} cannot {task} "
                         f"(supports {sorted(model.capabilities)})")
    return model


def combined_fingerprint(own: str, components: dict[str, AudioModel | None]) -> str:
    """Hash of a composite model's own fingerprint and its components' fingerprints, so a
    change to a component's entry (e.g. the LLM's decoding) changes the composite's."""
    payload = {"self": own, **{k: m.fingerprint() if m else None for k, m in components.items()}}
    return text_sha256(json.dumps(payload, sort_keys=True))


def _resample(audio: np.ndarray, rate_in: int | None, rate_out: int | None) -> np.ndarray:
    if rate_in is None or rate_out is None or rate_in == rate_out:
        return audio
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float32), rate_in, rate_out).astype(
        np.float32)


def _event_name(audioset_name: str) -> str:
    return audioset_name.strip().lower()


class DescriptionCaptioner(AudioModel):
    """A deterministic short English description from a transcript and sound tags."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"caption"})
    option_keys: ClassVar[frozenset[str] | None] = CAPTIONER_OPTIONS

    def __init__(self, entry: ModelEntry, models: Any = None):
        super().__init__(entry, models)
        check_options(entry, CAPTIONER_OPTIONS)
        self.asr = _component(self, "asr", "transcribe", required=False)
        self.tagger = _component(self, "tagger", "classify", required=False)
        if self.asr is None and self.tagger is None:
            raise ModelError(f"models.{self.name}: set options.asr and/or options.tagger")

    def _load(self) -> None:
        options = self.entry.options
        self.threshold = float(options.get("threshold", 0.2))
        self.max_events = int(options.get("max_events", 5))
        self.skip_events = {str(s).lower() for s in options.get("skip_events", [])}
        for component in (self.asr, self.tagger):
            if component is not None:
                component.load()

    def fingerprint(self) -> str:
        return combined_fingerprint(super().fingerprint(), {"asr": self.asr,
                                                            "tagger": self.tagger})

    def _run(self, component: AudioModel | None, task: str,
             requests: list[Request]) -> list[Response | None]:
        """Component answers for the valid requests (resampled to its rate)."""
        if component is None:
            return [None] * len(requests)
        converted = [Request(item_id=r.item_id, task=task,
                             audio=_resample(r.audio, self.sample_rate, component.sample_rate))
                     for r in requests]
        try:
            return component.predict(converted)
        except Exception as exc:  # noqa: BLE001 - a component failure fails its items
            log.warning("%s: %s failed on a batch: %s", self.name, component.name, exc)
            return [Response.failed(f"{component.name}: {exc}") for _ in requests]

    def describe(self, transcript: Response | None, tags: Response | None) -> str | None:
        """The description, or None when neither component produced anything usable."""
        parts: list[str] = []
        if transcript is not None and not transcript.error:
            text = " ".join((transcript.text or "").split())
            if not any(ch.isalnum() for ch in text):
                parts.append("No intelligible speech.")
            else:
                parts.append(f'Speech: "{text}"' + ("" if text[-1] in ".!?" else "."))
        if tags is not None and not tags.error:
            ranked = sorted((tags.scores or {}).items(), key=lambda kv: (-kv[1], kv[0]))
            events = [(_event_name(n), s) for n, s in ranked
                      if s >= self.threshold and _event_name(n) not in self.skip_events]
            events = events[: self.max_events]
            if events:
                listed = "; ".join(f"{name} ({score:.2f})" for name, score in events)
                parts.append(f"Sounds heard: {listed}.")
            else:
                parts.append("No clear sound events.")
        return " ".join(parts) if parts else None

    def predict(self, requests: list[Request]) -> list[Response]:
        """Caption each request's audio."""
        check_batch(requests, self.capabilities)
        self.load()
        responses: list[Response | None] = [None] * len(requests)
        valid: list[int] = []
        for index, request in enumerate(requests):
            problem = audio_problem(request.audio, self.sample_rate or 16000)
            if problem:
                responses[index] = Response.failed(problem)
            else:
                valid.append(index)
        batch = [requests[i] for i in valid]
        transcripts = self._run(self.asr, "transcribe", batch)
        tags = self._run(self.tagger, "classify", batch)
        for index, transcript, tag in zip(valid, transcripts, tags, strict=True):
            description = self.describe(transcript, tag)
            if description is None:
                errors = "; ".join(r.error for r in (transcript, tag) if r and r.error)
                responses[index] = Response.failed(f"no description: {errors}")
            else:
                responses[index] = Response(text=description)
        return [r if r is not None else Response.failed("not processed") for r in responses]

    def close(self) -> None:
        for component in (self.asr, self.tagger):
            if component is not None:
                component.close()


class CascadeModel(AudioModel):
    """Audio question answering as caption -> text LLM."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"generate", "caption"})
    option_keys: ClassVar[frozenset[str] | None] = CASCADE_OPTIONS

    def __init__(self, entry: ModelEntry, models: Any = None):
        super().__init__(entry, models)
        check_options(entry, CASCADE_OPTIONS)
        self.captioner = _component(self, "captioner", "caption", required=True)
        self.llm = _component(self, "llm", "generate", required=True)
        #: item_id -> the description given to the LLM for that item (most recent call)
        self.last_captions: dict[str, str] = {}
        self._caption_cache: dict[str, Response] = {}

    @property
    def sample_rate(self) -> int | None:
        return self.entry.sample_rate or self.captioner.sample_rate

    def _load(self) -> None:
        self.captioner.load()
        self.llm.load()
        self.system: str | None = self.entry.prompts.get("system", DEFAULT_SYSTEM)
        self.context = self.entry.prompts.get("context", DEFAULT_CONTEXT)

    def fingerprint(self) -> str:
        return combined_fingerprint(super().fingerprint(), {"captioner": self.captioner,
                                                            "llm": self.llm})

    def captions(self, requests: list[Request]) -> list[Response]:
        """Captions of the requests' audio, cached by audio content in this process."""
        keys = [audio_digest(r.audio, self.sample_rate) if r.audio is not None
                and np.asarray(r.audio).size else None for r in requests]
        todo: dict[str, Request] = {}
        for key, request in zip(keys, requests, strict=True):
            if key is not None and key not in self._caption_cache and key not in todo:
                todo[key] = Request(item_id=request.item_id, task="caption",
                                    audio=_resample(request.audio, self.sample_rate,
                                                    self.captioner.sample_rate))
        failed: dict[str, Response] = {}
        if todo:
            answers = self.captioner.predict(list(todo.values()))
            for key, answer in zip(todo, answers, strict=True):
                if answer.error:  # failures are not cached: a later retry may succeed
                    failed[key] = answer
                else:
                    self._caption_cache[key] = answer
        results = []
        for key, request in zip(keys, requests, strict=True):
            if key is None:
                results.append(Response.failed(audio_problem(request.audio) or "no audio"))
            else:
                results.append(self._caption_cache.get(key) or failed[key])
        return results

    def predict(self, requests: list[Request]) -> list[Response]:
        """``caption``: the description; ``generate``: the LLM's answer given it."""
        task = check_batch(requests, self.capabilities)
        self.load()
        with_audio = [i for i, r in enumerate(requests) if r.audio is not None]
        captions = dict(zip(with_audio, self.captions([requests[i] for i in with_audio]),
                            strict=True))
        for index, caption in captions.items():
            if not caption.error and caption.text is not None:
                self.last_captions[requests[index].item_id] = caption.text
        if task == "caption":
            return [captions.get(i) or Response.failed("caption request has no audio")
                    for i in range(len(requests))]

        responses: list[Response | None] = [None] * len(requests)
        llm_requests: list[tuple[int, Request]] = []
        for index, request in enumerate(requests):
            if not request.prompt:
                responses[index] = Response.failed("generate request has no prompt")
                continue
            caption = captions.get(index)
            if caption is not None and caption.error:
                responses[index] = Response.failed(f"captioning failed: {caption.error}")
                continue
            prompt = (self.context.format(description=caption.text, question=request.prompt)
                      if caption is not None else request.prompt)
            system = request.system if request.system is not None else self.system
            llm_requests.append((index, Request(item_id=request.item_id, task="generate",
                                                prompt=prompt, system=system)))
        if llm_requests:
            answers = self.llm.predict([r for _, r in llm_requests])
            for (index, _), answer in zip(llm_requests, answers, strict=True):
                responses[index] = answer
        return [r if r is not None else Response.failed("not processed") for r in responses]

    def close(self) -> None:
        self.captioner.close()
        self.llm.close()
