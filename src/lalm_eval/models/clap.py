"""CLAP through transformers (``ClapModel`` + ``ClapProcessor``): zero-shot classification and
audio/text embeddings.

Entry example::

    clap_unfused:
      adapter: hf_clap
      source: laion/clap-htsat-unfused
      revision: 8fa0f1c6d0433df6e97c127f64b2a1d6c0dcda8a
      sample_rate: 48000
      batch_size: 16
      options:
        label_template: "This is a sound of {label}."
        logit_scale: null        # null = the checkpoint's learned audio logit scale
        sigmoid_scale: 1.0
        sigmoid_bias: 0.0
        threshold: 0.5

Scoring (``classify``): the audio embedding and the text embedding of every candidate label
(``label_template`` applied) are L2-normalised and compared by cosine similarity ``cos``.

* single-label requests (scene classification in SSEU-Bench's CLAP baseline): softmax over the
  labels of ``logit_scale * cos``; scores sum to 1; ``text`` is the top label;
* multi-label requests (tagging, SSEU-Bench uses a sigmoid): each label independently gets
  ``sigmoid(sigmoid_scale * cos + sigmoid_bias)`` in [0, 1]; ``text`` joins with ``;`` the
  labels whose score reaches ``threshold`` (highest first). With the defaults (scale 1, bias 0)
  this is the plain sigmoid of the cosine, so scores stay within about (0.27, 0.73) and the
  0.5 threshold means ``cos > 0``; raise ``sigmoid_scale`` (e.g. to the logit scale) for
  sharper scores.

Text embeddings are cached per label set (and template), so a corpus with one label list
encodes it once. ``embed_text`` embeds the request prompt as is; ``embed_audio`` the audio;
both return L2-normalised vectors.

Audio longer than the feature extractor's window (10 s for laion CLAP) is cropped as the
checkpoint's feature extractor says (``rand_trunc`` for the unfused model: a random crop).
For reproducibility the crop is drawn from a NumPy generator seeded with option ``crop_seed``
(default 0) for every item, so the result does not depend on batch composition; option
``truncation`` overrides the extractor's mode (``fusion`` for the fused checkpoint).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from lalm_eval.audio import audio_problem
from lalm_eval.models.base import AudioModel, ModelError, Request, Response, check_batch
from lalm_eval.models.hf_common import (
    COMMON_OPTIONS,
    as_float32,
    check_options,
    load_processor_and_model,
    resolve_device,
    resolve_dtype,
    run_with_item_fallback,
)

DEFAULT_LABEL_TEMPLATE = "This is a sound of {label}."
_OPTIONS = COMMON_OPTIONS | {"label_template", "logit_scale", "sigmoid_scale", "sigmoid_bias",
                             "threshold", "truncation", "crop_seed"}


def _pooled(output: Any) -> Any:
    """The embedding tensor from ``get_*_features`` (a tensor, or an output with a pooler)."""
    return output if hasattr(output, "dim") else output.pooler_output


class HFClapModel(AudioModel):
    """LAION CLAP: classify (softmax / sigmoid over label prompts), embed_audio, embed_text."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"classify", "embed_audio", "embed_text"})
    default_sample_rate: ClassVar[int | None] = 48000
    option_keys: ClassVar[frozenset[str] | None] = _OPTIONS

    def _load(self) -> None:
        options = self.entry.options
        check_options(options, _OPTIONS, self.name)
        self.label_template = str(options.get("label_template", DEFAULT_LABEL_TEMPLATE))
        if "{label}" not in self.label_template:
            raise ModelError(f"models.{self.name}.options.label_template needs a {{label}} field")
        try:
            self.sigmoid_scale = float(options.get("sigmoid_scale", 1.0))
            self.sigmoid_bias = float(options.get("sigmoid_bias", 0.0))
            self.threshold = float(options.get("threshold", 0.5))
            self.crop_seed = int(options.get("crop_seed", 0))
            fixed_scale = options.get("logit_scale")
            self.fixed_logit_scale = None if fixed_scale is None else float(fixed_scale)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"models.{self.name}.options: invalid number ({exc})") from exc
        self.truncation = options.get("truncation")
        self.device = resolve_device(options.get("device"))
        self.dtype = resolve_dtype(options.get("dtype"), self.device)
        self.processor, self.model = load_processor_and_model(
            self.entry, "ClapProcessor", "ClapModel", ">= 4.27", self.device, self.dtype,
            self.sample_rate)
        #: label-set cache: tuple of label prompts -> (n_labels, dim) normalised embeddings
        self.text_cache: dict[tuple[str, ...], Any] = {}

    # -- embeddings ---------------------------------------------------------------------------

    @property
    def logit_scale(self) -> float:
        """Softmax temperature: the option, else exp(learned audio logit scale)."""
        if self.fixed_logit_scale is not None:
            return self.fixed_logit_scale
        return float(self.model.logit_scale_a.exp().item())

    def embed_texts(self, texts: list[str]) -> Any:
        """(n, dim) L2-normalised text embeddings."""
        import torch

        tokens = self.processor.tokenizer(texts, padding=True, truncation=True,
                                          return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        with torch.inference_mode():
            out = _pooled(self.model.get_text_features(**tokens))
        return torch.nn.functional.normalize(out.float(), dim=-1)

    def label_embeddings(self, labels: tuple[str, ...]) -> Any:
        """Cached embeddings of the label prompts of one label set."""
        key = tuple(self.label_template.format(label=label) for label in labels)
        if key not in self.text_cache:
            self.text_cache[key] = self.embed_texts(list(key))
        return self.text_cache[key]

    def _features(self, audio: np.ndarray) -> dict[str, Any]:
        extractor = self.processor.feature_extractor
        kwargs: dict[str, Any] = {"sampling_rate": self.sample_rate, "return_tensors": "pt"}
        if self.truncation:
            kwargs["truncation"] = self.truncation
        state = np.random.get_state()  # the extractor crops with the global NumPy RNG
        try:
            np.random.seed(self.crop_seed)
            return dict(extractor(audio, **kwargs))
        finally:
            np.random.set_state(state)

    def embed_audios(self, audios: list[np.ndarray]) -> Any:
        """(n, dim) L2-normalised audio embeddings."""
        import torch

        per_item = [self._features(as_float32(a)) for a in audios]
        batch = {key: torch.cat([f[key] for f in per_item]) for key in per_item[0]}
        batch = {k: (v.to(self.device, self.dtype) if v.is_floating_point() else
                     v.to(self.device)) for k, v in batch.items()}
        with torch.inference_mode():
            out = _pooled(self.model.get_audio_features(**batch))
        return torch.nn.functional.normalize(out.float(), dim=-1)

    # -- tasks --------------------------------------------------------------------------------

    def score(self, cosine: Any, multi_label: bool) -> Any:
        """Scores from a (n_labels,) cosine vector (softmax or sigmoid, see module doc)."""
        import torch

        if multi_label:
            return torch.sigmoid(self.sigmoid_scale * cosine + self.sigmoid_bias)
        return torch.softmax(self.logit_scale * cosine, dim=-1)

    def _classify(self, requests: list[Request]) -> list[Response]:
        audio_embeddings = self.embed_audios([r.audio for r in requests])
        responses = []
        for request, audio_embedding in zip(requests, audio_embeddings, strict=True):
            labels = tuple(request.labels or ())
            cosine = self.label_embeddings(labels) @ audio_embedding
            values = [float(v) for v in self.score(cosine, request.multi_label).tolist()]
            scores = dict(zip(labels, values, strict=True))
            ranked = sorted(labels, key=lambda label: -scores[label])
            if request.multi_label:
                text = ";".join(label for label in ranked if scores[label] >= self.threshold)
            else:
                text = ranked[0]
            responses.append(Response(text=text, scores=scores))
        return responses

    def _embed_audio(self, requests: list[Request]) -> list[Response]:
        vectors = self.embed_audios([r.audio for r in requests])
        return [Response(embedding=[float(x) for x in v.tolist()]) for v in vectors]

    def _embed_text(self, requests: list[Request]) -> list[Response]:
        vectors = self.embed_texts([r.prompt or "" for r in requests])
        return [Response(embedding=[float(x) for x in v.tolist()]) for v in vectors]

    def _problem(self, request: Request, task: str) -> str | None:
        if task == "embed_text":
            return None if (request.prompt or "").strip() else "embed_text request has no text"
        problem = audio_problem(request.audio)
        if problem:
            return problem
        if task == "classify":
            labels = list(request.labels or ())
            if not labels:
                return "classify request has no candidate labels"
            if len(set(labels)) != len(labels):
                return "classify request has duplicate labels"
        return None

    def predict(self, requests: list[Request]) -> list[Response]:
        task = check_batch(requests, self.capabilities)
        self.load()
        run = {"classify": self._classify, "embed_audio": self._embed_audio,
               "embed_text": self._embed_text}[task]
        results: list[Response | None] = [None] * len(requests)
        valid: list[int] = []
        for index, request in enumerate(requests):
            problem = self._problem(request, task)
            if problem:
                results[index] = Response.failed(problem)
            else:
                valid.append(index)
        responses = run_with_item_fallback(run, [requests[i] for i in valid])
        for index, response in zip(valid, responses, strict=True):
            results[index] = response
        return [r if r is not None else Response.failed("no response") for r in results]

