"""CLAP baselines that need their own package or repository: MS-CLAP and MGA-CLAP.

Zero-shot classification scores each candidate label by the cosine similarity between the
audio embedding and the embedding of the label's prompt text: a single-label request gets a
softmax over the labels, a multi-label request a sigmoid per label
(:func:`label_scores`). Both adapters also return embeddings (``embed_audio``,
``embed_text``; for ``embed_text`` the request prompt is the text).

Test seam: ``_load`` sets ``self._client`` (the msclap wrapper, or MGA-CLAP's ``ASE``
model); tests set a stand-in with the same methods and mark the model loaded.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lalm_eval.audio import load_audio
from lalm_eval.models.base import AudioModel, ModelEntry, ModelError, Request, Response, check_batch
from lalm_eval.models.external_common import (
    audio_file,
    check_repository_code,
    default_device,
    import_package,
    import_upstream,
    requirement_label,
)


def label_scores(audio_emb: Sequence[float] | np.ndarray, text_embs: Sequence[Any] | np.ndarray,
                 multi_label: bool, scale: float = 1.0) -> np.ndarray:
    """Scores of each label from cosine similarities between one audio and N label texts.

    ``logits = scale * cos(audio, text_n)``; single-label: softmax over the N logits (sums to
    1); multi-label: sigmoid of each logit (independent, in (0, 1)).
    """
    audio = np.asarray(audio_emb, dtype=np.float64).reshape(-1)
    texts = np.asarray(text_embs, dtype=np.float64)
    if texts.ndim == 1:
        texts = texts.reshape(1, -1)
    if texts.ndim != 2 or texts.shape[0] == 0:
        raise ValueError(f"text embeddings must be a non-empty 2-D array, got {texts.shape}")
    if texts.shape[1] != audio.shape[0]:
        raise ValueError(f"embedding sizes differ: audio {audio.shape[0]}, "
                         f"text {texts.shape[1]}")
    audio_norm = np.linalg.norm(audio)
    text_norms = np.linalg.norm(texts, axis=1)
    if audio_norm == 0 or np.any(text_norms == 0):
        raise ValueError("zero-length embedding: cosine similarity undefined")
    logits = float(scale) * (texts @ audio) / (text_norms * audio_norm)
    if multi_label:
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


class _ClapBase(AudioModel):
    """Shared predict loop: classify / embed_audio / embed_text with per-item errors."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"classify", "embed_audio", "embed_text"})
    #: label prompt template (``options.label_template`` overrides; ``{label}`` is replaced)
    default_label_template: ClassVar[str] = "{label}"

    def __init__(self, entry: ModelEntry, models: Mapping[str, dict[str, Any]] | None = None):
        super().__init__(entry, models)
        self._client: Any = None
        self._text_cache: dict[str, np.ndarray] = {}
        template = str(entry.options.get("label_template", self.default_label_template))
        if "{label}" not in template:
            raise ModelError(f"models.{entry.name}: options.label_template must contain "
                             "'{label}'")
        self.label_template = template

    # --- what subclasses implement -----------------------------------------------------------
    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _embed_audio(self, request: Request) -> np.ndarray:
        raise NotImplementedError

    def score_scale(self, multi_label: bool) -> float:
        """Logit scale for softmax (single) or sigmoid (multi); options override."""
        key = "multi_label_scale" if multi_label else "single_label_scale"
        return float(self.entry.options.get(key, 1.0))

    # --- shared -----------------------------------------------------------------------------
    def text_embeddings(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts`` (cached per text)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if todo:
            embs = np.asarray(self._embed_texts(todo), dtype=np.float64)
            if embs.shape[0] != len(todo):
                raise ModelError(f"text encoder returned {embs.shape[0]} rows for {len(todo)}")
            self._text_cache.update(zip(todo, embs, strict=True))
        return np.stack([self._text_cache[t] for t in texts])

    def label_texts(self, labels: Sequence[str]) -> list[str]:
        """Label prompts from the template."""
        return [self.label_template.replace("{label}", label) for label in labels]

    def predict(self, requests: list[Request]) -> list[Response]:
        task = check_batch(requests, self.capabilities)
        self.load()
        responses = []
        for request in requests:
            try:
                responses.append(self._predict_one(task, request))
            except Exception as exc:  # one bad item must not fail the batch
                responses.append(Response.failed(f"{type(exc).__name__}: {exc}"))
        return responses

    def _predict_one(self, task: str, request: Request) -> Response:
        if task == "embed_text":
            if not request.prompt:
                raise ValueError("embed_text needs the text in request.prompt")
            return Response(embedding=self.text_embeddings([request.prompt])[0].tolist())
        if request.audio is None and not request.audio_path:
            raise ValueError(f"{task} needs audio")
        labels = list(request.labels or ())
        if task == "classify" and not labels:
            raise ValueError("classify needs candidate labels")
        if len(set(labels)) != len(labels):
            raise ValueError("candidate labels must be distinct")
        audio = np.asarray(self._embed_audio(request), dtype=np.float64).reshape(-1)
        if task == "embed_audio":
            return Response(embedding=audio.tolist())
        scores = label_scores(audio, self.text_embeddings(self.label_texts(labels)),
                              request.multi_label, self.score_scale(request.multi_label))
        return Response(scores={label: float(s) for label, s in zip(labels, scores, strict=True)})


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float64)


class MSClapModel(_ClapBase):
    """Microsoft CLAP through the ``msclap`` package: ``CLAP(model_fp, version, use_cuda)``.

    Options: ``version`` ("2022" or "2023", default "2023"), ``weights`` (a local
    ``CLAP_weights_<version>.pth``; otherwise it is fetched from ``entry.source`` at
    ``entry.revision``), ``use_cuda``, ``label_template`` (default msclap's
    ``"this is the sound of {label}"``), ``single_label_scale`` (default: the model's
    learned logit scale, as in msclap's zero-shot example), ``multi_label_scale`` (default 1:
    sigmoid of the plain cosine), ``crop_seed`` (msclap crops clips longer than its window at
    a random offset; the seed is reset per item so results do not depend on batching).
    """

    default_sample_rate: ClassVar[int | None] = 44100
    default_label_template = "this is the sound of {label}"
    versions: ClassVar[dict[str, str]] = {"2022": "CLAP_weights_2022.pth",
                                          "2023": "CLAP_weights_2023.pth"}

    def __init__(self, entry: ModelEntry, models: Mapping[str, dict[str, Any]] | None = None):
        super().__init__(entry, models)
        self.version = str(entry.options.get("version", "2023"))
        if self.version not in self.versions:
            raise ModelError(f"models.{entry.name}: options.version must be one of "
                             f"{sorted(self.versions)}, got {self.version!r}")

    def _load(self) -> None:
        msclap = import_package("msclap", self.entry, "pip install msclap")
        weights = self.entry.options.get("weights")
        if not weights:
            hub = import_package("huggingface_hub", self.entry, "pip install huggingface_hub")
            weights = hub.hf_hub_download(self.entry.source or "microsoft/msclap",
                                          self.versions[self.version],
                                          revision=self.entry.revision)
        self._client = msclap.CLAP(model_fp=weights, version=self.version,
                                   use_cuda=bool(self.entry.options.get("use_cuda", False)))

    def score_scale(self, multi_label: bool) -> float:
        key = "multi_label_scale" if multi_label else "single_label_scale"
        if key in self.entry.options:
            return float(self.entry.options[key])
        if multi_label:
            return 1.0
        # msclap's compute_similarity multiplies cosines by clap.logit_scale.exp()
        return float(np.exp(_as_numpy(self._client.clap.logit_scale).reshape(-1)[0]))

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        return _as_numpy(self._client.get_text_embeddings(texts))

    def _embed_audio(self, request: Request) -> np.ndarray:
        random.seed(int(self.entry.options.get("crop_seed", 0)))
        with audio_file(request, self.sample_rate) as path:
            return _as_numpy(self._client.get_audio_embeddings([path], resample=True))[0]


class MGAClapModel(_ClapBase):
    """MGA-CLAP from the Ming-er/MGA-CLAP repository (its ``models.ase_model.ASE``).

    Needs ``requires: {repo: Ming-er/MGA-CLAP, revision, path: <checkout>, checkpoint:
    <model.pt>}``. Audio is 32 kHz mono, zero-padded to ``options.min_seconds`` (10) and cut
    at ``options.max_seconds`` (10) as in its zero-shot scripts; embeddings are the codebook
    aggregates (``msc``). Scores use the plain cosine (scale 1), as upstream does.
    Options: ``config`` (settings YAML, default ``settings/inference_example.yaml`` in the
    checkout), ``device``, ``label_template`` (default ``"{label}"``).
    """

    default_sample_rate: ClassVar[int | None] = 32000
    upstream_repo: ClassVar[str] = "Ming-er/MGA-CLAP"

    def _load(self) -> None:
        entry = self.entry
        check_repository_code(entry, self.upstream_repo)
        req = entry.requires or {}
        checkpoint = req.get("checkpoint") or entry.options.get("checkpoint")
        if not req.get("path") or not checkpoint:
            raise ModelError(f"models.{entry.name}: MGA-CLAP needs requires.path (checkout of "
                             f"{self.upstream_repo}) and requires.checkpoint (model.pt); "
                             f"requires: {requirement_label(entry)}")
        if not Path(checkpoint).is_file():
            raise ModelError(f"models.{entry.name}: checkpoint {checkpoint} not found")
        import yaml

        config_path = Path(entry.options.get("config")
                           or Path(req["path"]) / "settings" / "inference_example.yaml")
        config = yaml.safe_load(config_path.read_text())
        self._device = default_device(entry)
        config["device"] = self._device
        torch = import_package("torch", entry, "pip install torch")
        ase = import_upstream("models.ase_model", entry, self.upstream_repo)
        model = ase.ASE(config)
        state = torch.load(checkpoint, map_location="cpu")
        model.load_state_dict(state["model"], strict=True)
        self._client = model.to(self._device).eval()

    def _clip(self, samples: np.ndarray) -> np.ndarray:
        rate = self.sample_rate or 32000
        min_len = int(float(self.entry.options.get("min_seconds", 10)) * rate)
        max_len = int(float(self.entry.options.get("max_seconds", 10)) * rate)
        samples = samples[:max_len] if max_len > 0 else samples
        if samples.shape[0] < min_len:
            samples = np.pad(samples, (0, min_len - samples.shape[0]))
        return samples.astype(np.float32)

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self._client
        with torch.no_grad():
            _, word_embeds, attn_mask = model.encode_text(texts)
            return _as_numpy(model.msc(word_embeds, model.codebook, attn_mask))

    def _embed_audio(self, request: Request) -> np.ndarray:
        import torch

        samples = request.audio
        if samples is None:
            samples = load_audio(str(request.audio_path), self.sample_rate or 32000).samples
        model = self._client
        wave = torch.from_numpy(self._clip(np.asarray(samples, dtype=np.float32)))
        wave = wave.reshape(1, -1).to(getattr(self, "_device", "cpu"))
        with torch.no_grad():
            _, frame_embeds = model.encode_audio(wave)
            return _as_numpy(model.msc(frame_embeds, model.codebook))[0]
