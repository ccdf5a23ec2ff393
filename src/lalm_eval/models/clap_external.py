"""CLAP baselines that need their own package or repository: MS-CLAP and MGA-CLAP.

Zero-shot classification scores each candidate label by the cosine similarity between the
audio embedding and the embedding of the label's prompt text: a single-label request gets a
softmax over the labels, a multi-label request a sigmoid per label
(:func:`label_scores`). Both adapters also return embeddings (``embed_audio``,
``embed_text``; for ``embed_text`` the request prompt is the text).

Test seam: ``_load`` sets ``self._client`` (the msclap wrapper, or MGA-CLAP's ``ASE``
model); tests set a stand-in with the same methods and mark the model loaded.

Environments: msclap 1.3.4 requires numpy<2 and transformers<5 (``envs/ms_clap.yaml``);
MGA-CLAP's code follows WavCaps' environment (``envs/mga_clap.yaml``).
"""

from __future__ import annotations

import importlib
import logging
import random
import sys
import types
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
    require_checkout,
    requirement_label,
)

log = logging.getLogger(__name__)


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
    ``entry.revision``), ``use_cuda`` (default: CUDA when ``options.device`` is "auto" or
    absent and a GPU is there, as for every other adapter; msclap's own default, False, ran
    the model on the CPU of a GPU node), ``device``, ``label_template`` (default msclap's
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
                                   use_cuda=self.use_cuda())

    def use_cuda(self) -> bool:
        """``options.use_cuda`` when given, else whether the entry's device is CUDA
        (``options.device``, "auto" = CUDA when available)."""
        if "use_cuda" in self.entry.options:
            return bool(self.entry.options["use_cuda"])
        return default_device(self.entry).startswith("cuda")

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


#: modules MGA-CLAP's ``tools/utils.py`` imports at module level for training and SED
#: evaluation only (``wandb.log``, ``sed_scores_eval`` PSDS): stood in for when missing
MGA_UNUSED_IMPORTS: dict[str, tuple[str, ...]] = {
    "wandb": (),
    "sed_scores_eval": ("utils", "utils.scores"),
}


class _Unused:
    """An attribute of an :class:`_UnusedModule`: fails when called."""

    def __init__(self, qualname: str) -> None:
        self._qualname = qualname

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unused(f"{self._qualname}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        top = self._qualname.split(".")[0]
        raise ModelError(f"{self._qualname} was called, but {top} is not installed (lalm-eval "
                         "stood in for it: MGA-CLAP imports it for training and SED "
                         "evaluation only); install it in the model's environment")


class _UnusedModule(types.ModuleType):
    """Stand-in for a module upstream imports but the embedding path never uses: imports
    and attribute look-ups work, calls fail."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unused(f"{self.__name__}.{name}")


def stand_in_unused_imports(modules: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Register :class:`_UnusedModule` for each module (and submodules) not installed;
    returns the names stood in for."""
    added = []
    for name, submodules in modules.items():
        try:
            importlib.import_module(name)
            continue
        except ImportError:
            pass
        parent = _UnusedModule(name)
        parent.__path__ = []  # a package, so that submodules import
        sys.modules[name] = parent
        added.append(name)
        for sub in submodules:
            full = f"{name}.{sub}"
            sys.modules[full] = _UnusedModule(full)
            added.append(full)
    return added


def compatible_state_dict(model: Any, state: Mapping[str, Any]) -> tuple[dict[str, Any],
                                                                          list[str]]:
    """``state`` without the BERT ``embeddings.position_ids`` keys ``model`` does not have.

    transformers >= 4.31 keeps BERT's ``position_ids`` as a non-persistent buffer; MGA-CLAP's
    checkpoint was saved with it, so a strict ``load_state_dict`` (``example.py``) rejects it
    as unexpected. Every other mismatch still fails the strict load."""
    own = set(model.state_dict())
    dropped = [k for k in state if k not in own and k.endswith("embeddings.position_ids")]
    return {k: v for k, v in state.items() if k not in dropped}, dropped


def sparsemax_on_input_device(model: Any) -> int:
    """Make MGA-CLAP's ``Sparsemax`` modules run on their input's device.

    ``Sparsemax.forward(self, input, device='cuda')`` (``models/ase_model.py``) builds its
    ``torch.arange`` on CUDA whatever the input's device: on a CPU run every item failed.
    Each instance's ``forward`` is bound to pass ``device=input.device``; returns how many."""
    patched = 0
    for module in model.modules():
        if type(module).__name__ != "Sparsemax":
            continue
        original = type(module).forward

        def forward(self: Any, input: Any, device: Any = None, _original: Any = original
                    ) -> Any:
            return _original(self, input, device=input.device if device is None else device)

        module.forward = types.MethodType(forward, module)
        patched += 1
    return patched


class MGAClapModel(_ClapBase):
    """MGA-CLAP from the Ming-er/MGA-CLAP repository (its ``models.ase_model.ASE``).

    Needs ``requires: {repo: Ming-er/MGA-CLAP, revision, path: <checkout>, checkpoint:
    <model.pt>}``. Audio is 32 kHz mono, zero-padded to ``options.min_seconds`` (10) and cut
    at ``options.max_seconds`` (10) as in its zero-shot scripts; embeddings are the codebook
    aggregates (``msc``). Scores use the plain cosine (scale 1), as upstream does.
    Options: ``config`` (settings YAML, default ``settings/inference_example.yaml`` in the
    checkout), ``device``, ``label_template`` (default ``"{label}"``).

    Checked against Ming-er/MGA-CLAP@887b624 (``example.py``, ``models/ase_model.py``,
    ``tools/utils.py``): the checkpoint's BERT ``embeddings.position_ids`` key is dropped
    before the strict load (:func:`compatible_state_dict`); ``Sparsemax`` runs on the input's
    device (:func:`sparsemax_on_input_device`); ``wandb`` and ``sed_scores_eval``, imported
    by ``tools/utils.py`` for training and SED scoring only, are stood in for when missing
    (:func:`stand_in_unused_imports`); ``sentence_transformers`` (``tools/losses.py``) and
    ``loguru`` are real dependencies (``envs/mga_clap.yaml``).
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

        root = require_checkout(entry, self.upstream_repo, "it has no package metadata; "
                                "models.ase_model and tools.utils are top-level modules")
        config_path = Path(entry.options.get("config")
                           or root / "settings" / "inference_example.yaml")
        config = yaml.safe_load(config_path.read_text())
        self._device = default_device(entry)
        config["device"] = self._device
        torch = import_package("torch", entry, "pip install torch")
        stood_in = stand_in_unused_imports(MGA_UNUSED_IMPORTS)
        if stood_in:
            log.warning("models.%s: stood in for %s (imported by MGA-CLAP's tools/utils.py, "
                        "unused for embeddings)", entry.name, ", ".join(stood_in))
        ase = import_upstream("models.ase_model", entry, self.upstream_repo)
        model = ase.ASE(config)
        state = torch.load(checkpoint, map_location="cpu")
        weights, dropped = compatible_state_dict(model, state["model"])
        if dropped:
            log.info("models.%s: dropped %s from the checkpoint (a non-persistent buffer in "
                     "this transformers)", entry.name, ", ".join(dropped))
        model.load_state_dict(weights, strict=True)
        sparsemax_on_input_device(model)
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
