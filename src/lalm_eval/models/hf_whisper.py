"""Whisper through transformers (``WhisperForConditionalGeneration`` + ``WhisperProcessor``).

Entry example::

    whisper_large_v3:
      adapter: hf_whisper
      source: openai/whisper-large-v3
      revision: <commit>
      sample_rate: 16000
      batch_size: 8
      decoding: {max_new_tokens: 440}     # greedy (num_beams 1) unless configured
      options: {language: en, task: transcribe, dtype: auto, device: auto}

Options: ``language`` (a code such as ``en`` or a Whisper language name; null = the model
detects it), ``task`` (``transcribe`` or ``translate``), ``long_form`` (default true: when a
batch holds audio longer than 30 s, features are not truncated and transformers' sequential
long-form decoding runs; false = truncate to the first 30 s), plus dtype/device/
attn_implementation. Request prompts are ignored. ``n_output_tokens`` counts the returned tokens
up to and including the first end-of-text token (transformers 5 returns the generated tokens
without the forced decoder prompt; in long-form decoding the count covers all segments, so it
can exceed ``max_new_tokens``, which applies per 30 s segment).
"""

from __future__ import annotations

from typing import Any, ClassVar

from lalm_eval.audio import audio_problem
from lalm_eval.models.base import AudioModel, ModelError, Request, Response, check_batch
from lalm_eval.models.hf_common import (
    COMMON_OPTIONS,
    as_float32,
    check_options,
    count_generated,
    generation_settings,
    load_processor_and_model,
    resolve_device,
    resolve_dtype,
    run_with_item_fallback,
    seed_torch,
    stop_token_ids,
    to_model_inputs,
)

_OPTIONS = COMMON_OPTIONS | {"language", "task", "long_form"}
#: Whisper's feature window
_WINDOW_S = 30.0


class HFWhisperModel(AudioModel):
    """Whisper ASR (transcribe), batched, greedy by default."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"transcribe"})
    default_sample_rate: ClassVar[int | None] = 16000
    option_keys: ClassVar[frozenset[str] | None] = _OPTIONS

    def _load(self) -> None:
        options = self.entry.options
        check_options(options, _OPTIONS, self.name)
        task = options.get("task", "transcribe")
        if task not in ("transcribe", "translate"):
            raise ModelError(f"models.{self.name}.options.task must be transcribe or translate")
        self.language: str | None = options.get("language") or None
        self.whisper_task: str | None = task if (task != "transcribe" or self.language) else None
        self.long_form = bool(options.get("long_form", True))
        self.device = resolve_device(options.get("device"))
        self.dtype = resolve_dtype(options.get("dtype"), self.device)
        self.processor, self.model = load_processor_and_model(
            self.entry, "WhisperProcessor", "WhisperForConditionalGeneration", ">= 4.23",
            self.device, self.dtype, self.sample_rate)
        max_target = int(getattr(self.model.config, "max_target_positions", 448))
        self.settings = generation_settings(self.entry.decoding,
                                            default_max_new_tokens=max(1, max_target - 8))
        generation_config = self.model.generation_config
        if getattr(generation_config, "is_multilingual", None) is False and (
                self.language or task == "translate"):
            raise ModelError(f"models.{self.name}: {self.entry.source} is an English-only "
                             "Whisper; drop options language/task")
        self.stop_ids = stop_token_ids(generation_config.eos_token_id,
                                       self.processor.tokenizer.eos_token_id)

    def _generate_kwargs(self) -> dict[str, Any]:
        kwargs = self.settings.generate_kwargs()
        if self.language:
            kwargs["language"] = self.language
        if self.whisper_task:
            kwargs["task"] = self.whisper_task
        return kwargs

    def _run_batch(self, requests: list[Request]) -> list[Response]:
        import torch

        audios = [as_float32(r.audio) for r in requests]
        longest = max(len(a) for a in audios) / float(self.sample_rate or 16000)
        features: dict[str, Any] = {"sampling_rate": self.sample_rate, "return_tensors": "pt",
                                    "return_attention_mask": True}
        kwargs = self._generate_kwargs()
        if self.long_form and longest > _WINDOW_S:
            features.update(truncation=False, padding="longest")
            kwargs.setdefault("return_timestamps", True)
        batch = self.processor.feature_extractor(audios, **features)
        inputs = to_model_inputs(batch, self.device, self.dtype)
        seed_torch(self.settings.seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        sequences = out["sequences"] if isinstance(out, dict) else out
        tokenizer = self.processor.tokenizer
        responses = []
        for row in sequences.tolist():
            n_tokens = count_generated(row, self.stop_ids)
            text = tokenizer.decode(row[:n_tokens], skip_special_tokens=True)
            responses.append(Response(text=text.strip(), n_output_tokens=n_tokens))
        return responses

    def predict(self, requests: list[Request]) -> list[Response]:
        check_batch(requests, self.capabilities)
        self.load()
        results: list[Response | None] = [None] * len(requests)
        valid: list[int] = []
        for index, request in enumerate(requests):
            problem = audio_problem(request.audio)
            if problem:
                results[index] = Response.failed(problem)
            else:
                valid.append(index)
        responses = run_with_item_fallback(self._run_batch, [requests[i] for i in valid])
        for index, response in zip(valid, responses, strict=True):
            results[index] = response
        return [r if r is not None else Response.failed("no response") for r in results]
