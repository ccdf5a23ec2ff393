"""Offline vLLM backend: batched ``LLM.chat`` for text LLMs, judges and audio LLMs.

Each request becomes one OpenAI-style conversation (system turn, user turn); a batch is one
``LLM.chat(conversations, sampling_params=SamplingParams(...))`` call, whose outputs come
back in order. Decoding maps to ``SamplingParams(temperature, max_tokens, seed, top_p,
top_k, repetition_penalty)``; temperature 0 (greedy) is the default. With
``options.audio: true`` the audio goes in as a content part that vLLM's chat parser turns
into multi-modal data: ``audio_url`` with a ``data:audio/wav;base64`` URL (default) or
``input_audio`` (``options.audio_part``).

Options: ``audio``, ``audio_part``, ``engine`` (extra ``vllm.LLM`` keyword arguments such as
``max_model_len``, ``dtype``, ``tensor_parallel_size``, ``limit_mm_per_prompt``),
``chat_template_kwargs``. ``model``, ``revision`` and ``trust_remote_code`` come from the
entry itself, never from ``engine``.

Test seam: ``_load`` sets ``self._engine`` (the ``vllm.LLM``) and ``self._sampling_cls``
(``vllm.SamplingParams``); tests set stand-ins and mark the model loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from lalm_eval.models.base import AudioModel, ModelEntry, ModelError, Request, Response, check_batch
from lalm_eval.models.decoding import Decoding, decoding_from, given_fields
from lalm_eval.models.external_common import import_package
from lalm_eval.models.openai_http import chat_messages

_ENTRY_OWNED = {"model", "revision", "trust_remote_code", "tokenizer_revision"}


def sampling_kwargs(decoding: Decoding) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments for our decoding settings."""
    kwargs: dict[str, Any] = {"temperature": decoding.temperature,
                              "max_tokens": decoding.max_new_tokens,
                              "seed": decoding.seed if decoding.seed is not None else 0}
    kwargs.update(given_fields(decoding, "top_p", "top_k", "repetition_penalty"))
    if decoding.num_beams != 1:
        raise ModelError("vllm backend: beam search is not supported through LLM.chat; "
                         "use num_beams: 1")
    return kwargs


def output_response(output: Any) -> Response:
    """Response from one vLLM ``RequestOutput`` (first completion)."""
    completions = getattr(output, "outputs", None)
    if not completions:
        return Response.failed("vLLM returned no completion")
    first = completions[0]
    token_ids = getattr(first, "token_ids", None)
    return Response(text=str(first.text),
                    n_output_tokens=len(token_ids) if token_ids is not None else None)


class VLLMModel(AudioModel):
    """A model served in-process by vLLM (see the module docstring for options)."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"generate"})
    #: checked at config time; ``engine`` and ``chat_template_kwargs`` are free-form inside
    option_keys: ClassVar[frozenset[str] | None] = frozenset(
        {"audio", "audio_part", "engine", "chat_template_kwargs"})

    def __init__(self, entry: ModelEntry, models: Mapping[str, dict[str, Any]] | None = None):
        super().__init__(entry, models)
        opts = entry.options
        self.send_audio = bool(opts.get("audio", False))
        self.audio_part = str(opts.get("audio_part", "audio_url"))
        if self.audio_part not in ("audio_url", "input_audio"):
            raise ModelError(f"models.{entry.name}: options.audio_part must be audio_url or "
                             "input_audio")
        self.engine_kwargs = dict(opts.get("engine") or {})
        clash = _ENTRY_OWNED & set(self.engine_kwargs)
        if clash:
            raise ModelError(f"models.{entry.name}: options.engine may not set {sorted(clash)};"
                             " use the entry's source, revision and trust_remote_code")
        self.chat_template_kwargs = dict(opts.get("chat_template_kwargs") or {})
        self.decoding = decoding_from(entry.decoding)
        self.sampling = sampling_kwargs(self.decoding)
        self._engine: Any = None
        self._sampling_cls: Any = None

    def _load(self) -> None:
        vllm = import_package("vllm", self.entry, "pip install vllm (on a machine with a GPU)")
        kwargs = dict(self.engine_kwargs)
        if self.send_audio:
            kwargs.setdefault("limit_mm_per_prompt", {"audio": 1})
        self._engine = vllm.LLM(model=self.entry.source, revision=self.entry.revision,
                                trust_remote_code=self.entry.trust_remote_code,
                                seed=self.sampling["seed"], **kwargs)
        self._sampling_cls = vllm.SamplingParams

    def conversation(self, request: Request) -> list[dict[str, Any]]:
        """The chat messages for one request."""
        return chat_messages(request, self.sample_rate or 16000, self.send_audio,
                             self.audio_part)

    def _chat(self, conversations: list[list[dict[str, Any]]]) -> list[Any]:
        params = self._sampling_cls(**self.sampling)
        kwargs: dict[str, Any] = {"sampling_params": params, "use_tqdm": False}
        if self.chat_template_kwargs:
            kwargs["chat_template_kwargs"] = self.chat_template_kwargs
        outputs = list(self._engine.chat(conversations, **kwargs))
        if len(outputs) != len(conversations):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for "
                               f"{len(conversations)} conversations")
        return outputs

    def predict(self, requests: list[Request]) -> list[Response]:
        check_batch(requests, self.capabilities)
        self.load()
        responses: list[Response | None] = [None] * len(requests)
        conversations, slots = [], []
        for i, request in enumerate(requests):
            try:
                conversations.append(self.conversation(request))
                slots.append(i)
            except Exception as exc:  # one bad item must not fail the batch
                responses[i] = Response.failed(f"{type(exc).__name__}: {exc}")
        if conversations:
            try:
                results: list[Any] = self._chat(conversations)
            except Exception:  # find the item that breaks the batch: one call per item
                results = []
                for conv in conversations:
                    try:
                        results.append(self._chat([conv])[0])
                    except Exception as exc:
                        results.append(exc)
            for i, result in zip(slots, results, strict=True):
                if isinstance(result, Exception):
                    responses[i] = Response.failed(f"{type(result).__name__}: {result}")
                else:
                    responses[i] = output_response(result)
        return [r if r is not None else Response.failed("no output") for r in responses]
