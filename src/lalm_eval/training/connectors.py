"""Connectors: frozen-encoder features ``[B, L, T, D]`` -> LLM input embeddings ``[B, N, H]``.

Every connector takes the features of ``L`` tapped encoder layers and a frame mask
``[B, T]`` (bool, True = valid frame) and returns the audio embeddings plus their own mask
``[B, N]`` (True = a position the LALM inserts into the LLM input).

* :class:`LinearProjector` is XARES-LLM's projector: one ``Linear(D -> H)`` per frame, no
  downsampling (one audio embedding per encoder frame). Two optional deviations make long
  inputs affordable on a CPU: ``stack_frames=k`` concatenates ``k`` consecutive frames before
  the Linear (``Linear(k*D -> H)``), ``pool="mean"|"max"`` with ``pool_frames=k`` pools ``k``
  frames into one (over the valid frames of the group only). Either shortens the sequence
  ``k`` times; a stacked or pooled position is valid when any of its frames is valid (frames
  past the end are zero padding and masked). With several taps only the **last** tap is used
  (XARES-LLM encoders return one layer). ``standardize=True`` (a demo deviation) first
  standardises every feature dimension with the training set's mean and standard deviation
  (:meth:`Connector.fit_statistics`; fixed, not trained): an affine map the Linear could
  absorb, so the model class is upstream's, but every encoder enters the projector at the
  same scale and a few hundred steps suffice to use it (Resemblyzer's unit-norm embeddings,
  per-dimension std ~0.04, and YAMNet's class scores, ~0.01, were ignored by the LLM next to
  log-mel's ~0.4 and Whisper's ~1).
* :class:`QFormerConnector` is DeSTA2.5's connector: ``n_queries`` learnable queries per tap go
  through one shared transformers ``BertEncoder`` (self-attention among the queries,
  cross-attention to that tap's frames, invalid frames masked), then a per-query softmax over
  the taps (learned weights), a LayerNorm and ``Linear(hidden -> H)``. ``N = n_queries``,
  every position valid. The Bert stack uses eager attention and its self-attention is
  bidirectional: transformers 5.x's sdpa path treats a decoder-configured ``BertEncoder`` called
  without a mask as causal, which DeSTA's eager model is not (see the notes, trap 2).
  Deviations from DeSTA: the features are linearly projected to ``hidden_size`` when the
  encoder's width differs (DeSTA's Whisper width equals its Bert width); weights start from
  BERT's normal(0, ``initializer_range``) initialisation.

:func:`build_connector` builds one from a recipe's ``connector`` mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["Connector", "LinearProjector", "QFormerConnector", "build_connector"]


class Connector(nn.Module):
    """Base: ``forward(features[B, L, T, D], mask[B, T]) -> (embeds[B, N, H], mask[B, N])``."""

    input_dim: int
    llm_dim: int
    n_taps: int
    #: buffers fitted on the training data (:meth:`fit_statistics`), saved with the weights
    statistics: tuple[str, ...] = ()

    def fit_statistics(self, features: Sequence[np.ndarray]) -> None:
        """Fit the connector's data statistics on training features (``[L, T, D]`` arrays of
        valid frames); nothing for connectors without any."""

    def forward(self, features: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def n_outputs(self, n_frames: int) -> int:
        """How many valid embeddings ``n_frames`` valid frames give (no forward pass)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _check(self, features: torch.Tensor, mask: torch.Tensor) -> None:
        if features.dim() != 4:
            raise ValueError(f"connector features must be [B, L, T, D], "
                             f"got {tuple(features.shape)}")
        batch, taps, frames, dim = features.shape
        if taps != self.n_taps or dim != self.input_dim:
            raise ValueError(f"connector built for {self.n_taps} tap(s) of width {self.input_dim}, "
                             f"got features {tuple(features.shape)}")
        if tuple(mask.shape) != (batch, frames):
            raise ValueError(f"connector mask must be [B, T] = {(batch, frames)}, "
                             f"got {tuple(mask.shape)}")


class LinearProjector(Connector):
    """XARES-LLM's projector (one Linear, no downsampling), with optional stacking/pooling."""

    def __init__(self, input_dim: int, llm_dim: int, n_taps: int = 1, stack_frames: int = 1,
                 pool: str = "none", pool_frames: int = 1, standardize: bool = False) -> None:
        super().__init__()
        if pool not in ("none", "mean", "max"):
            raise ValueError(f"linear connector: pool must be 'none', 'mean' or 'max', "
                             f"not {pool!r}")
        if int(stack_frames) < 1 or int(pool_frames) < 1:
            raise ValueError("linear connector: stack_frames and pool_frames must be >= 1")
        if pool == "none" and int(pool_frames) != 1:
            raise ValueError("linear connector: pool_frames needs pool 'mean' or 'max'")
        if pool != "none" and int(stack_frames) != 1:
            raise ValueError("linear connector: use either stack_frames or pool, not both")
        self.input_dim, self.llm_dim, self.n_taps = int(input_dim), int(llm_dim), int(n_taps)
        self.stack_frames, self.pool, self.pool_frames = int(stack_frames), pool, int(pool_frames)
        self.proj = nn.Linear(self.input_dim * self.stack_frames, self.llm_dim)
        self.standardize = bool(standardize)
        if self.standardize:
            self.register_buffer("feature_mean", torch.zeros(self.input_dim))
            self.register_buffer("feature_scale", torch.ones(self.input_dim))
            self.statistics = ("feature_mean", "feature_scale")

    def fit_statistics(self, features: Sequence[np.ndarray]) -> None:
        """Per-dimension mean and 1/std of the last tap over every frame of ``features``
        (float64). A dimension whose std is below 1 % of the median std is scaled by
        1/(that floor), a constant one (median 0) by 1, so near-constant dimensions are not
        blown up on unseen audio."""
        if not self.standardize:
            return
        frames = [np.asarray(f, dtype=np.float64)[-1].reshape(-1, self.input_dim)
                  for f in features]
        frames = [f for f in frames if len(f)]
        if not frames:
            raise ValueError("linear connector: no feature frames to standardise with")
        stacked = np.concatenate(frames)
        mean, std = stacked.mean(0), stacked.std(0)
        median = float(np.median(std))
        floor = 0.01 * median if median > 0 else 1.0
        std = np.maximum(std, floor)
        with torch.no_grad():
            self.feature_mean.copy_(torch.from_numpy(mean))
            self.feature_scale.copy_(torch.from_numpy(1.0 / std))

    @property
    def group(self) -> int:
        """Frames merged into one output position."""
        return self.stack_frames if self.pool == "none" else self.pool_frames

    def n_outputs(self, n_frames: int) -> int:
        return math.ceil(int(n_frames) / self.group)

    def forward(self, features: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(features, mask)
        frames = features[:, -1]                                   # [B, T, D]: the last tap
        if self.standardize:
            frames = (frames - self.feature_mean.to(frames.dtype)) * \
                self.feature_scale.to(frames.dtype)
        mask = mask.bool()
        k = self.group
        if k > 1:
            batch, length, dim = frames.shape
            padded = math.ceil(length / k) * k
            if padded != length:
                frames = nn.functional.pad(frames, (0, 0, 0, padded - length))
                mask = nn.functional.pad(mask, (0, padded - length), value=False)
            frames = frames.reshape(batch, padded // k, k, dim)
            group_mask = mask.reshape(batch, padded // k, k)
            if self.pool == "none":
                frames = (frames * group_mask.unsqueeze(-1)).reshape(batch, padded // k, k * dim)
            elif self.pool == "mean":
                weights = group_mask.unsqueeze(-1).to(frames.dtype)
                frames = (frames * weights).sum(2) / weights.sum(2).clamp(min=1.0)
            else:
                fill = torch.finfo(frames.dtype).min
                frames = frames.masked_fill(~group_mask.unsqueeze(-1), fill).amax(2)
                frames = frames.masked_fill(~group_mask.any(2, keepdim=True), 0.0)
            mask = group_mask.any(2)
        return self.proj(frames), mask


class QFormerConnector(Connector):
    """DeSTA2.5-style Q-Former: per-tap queries, one shared Bert stack, softmax over taps."""

    def __init__(self, input_dim: int, llm_dim: int, n_taps: int = 1, *, n_queries: int = 64,
                 hidden_size: int = 1280, num_layers: int = 6, num_heads: int = 20,
                 intermediate_size: int | None = None, dropout: float = 0.1,
                 initializer_range: float = 0.02) -> None:
        super().__init__()
        from transformers import BertConfig
        from transformers.models.bert.modeling_bert import BertEncoder

        if int(hidden_size) % int(num_heads):
            raise ValueError(f"qformer connector: hidden_size {hidden_size} is not a multiple of "
                             f"num_heads {num_heads}")
        self.input_dim, self.llm_dim, self.n_taps = int(input_dim), int(llm_dim), int(n_taps)
        self.n_queries, self.hidden_size = int(n_queries), int(hidden_size)
        self.config = BertConfig(
            hidden_size=self.hidden_size, num_hidden_layers=int(num_layers),
            num_attention_heads=int(num_heads),
            intermediate_size=int(intermediate_size or 4 * self.hidden_size),
            hidden_dropout_prob=float(dropout), attention_probs_dropout_prob=float(dropout),
            initializer_range=float(initializer_range),
            is_decoder=True, add_cross_attention=True, attn_implementation="eager",
        )
        self.encoder = BertEncoder(self.config)
        # Belt and braces: the queries attend to each other both ways whatever attention
        # implementation is ever swapped in (sdpa would otherwise infer a causal mask).
        for layer in self.encoder.layer:
            layer.attention.self.is_causal = False
        self.queries = nn.Parameter(torch.zeros(self.n_taps, self.n_queries, self.hidden_size))
        self.tap_logits = nn.Parameter(torch.zeros(self.n_taps, self.n_queries))
        self.feature_proj = (nn.Identity() if self.input_dim == self.hidden_size
                             else nn.Linear(self.input_dim, self.hidden_size))
        self.norm = nn.LayerNorm(self.hidden_size)
        self.proj = nn.Linear(self.hidden_size, self.llm_dim)
        self._init_weights(float(initializer_range))

    def _init_weights(self, std: float) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.queries, std=std)

    def n_outputs(self, n_frames: int) -> int:
        return self.n_queries

    def forward(self, features: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(features, mask)
        batch, taps, frames, _ = features.shape
        # fold the taps into the batch: one pass of the shared stack over every (clip, tap)
        keys = self.feature_proj(features.reshape(batch * taps, frames, self.input_dim))
        valid = mask.bool().unsqueeze(1).expand(batch, taps, frames).reshape(batch * taps, frames)
        # eager attention adds the mask to the scores: 0 for valid frames, a huge negative
        # number for invalid ones, shaped [B*L, 1 head, 1 query, T]
        additive = torch.zeros(valid.shape, dtype=keys.dtype, device=keys.device)
        additive = additive.masked_fill(~valid, torch.finfo(keys.dtype).min)[:, None, None, :]
        queries = self.queries.unsqueeze(0).expand(batch, -1, -1, -1)
        queries = queries.reshape(batch * taps, self.n_queries, self.hidden_size)
        out = self.encoder(hidden_states=queries, attention_mask=None,
                           encoder_hidden_states=keys, encoder_attention_mask=additive,
                           use_cache=False).last_hidden_state
        out = out.reshape(batch, taps, self.n_queries, self.hidden_size)
        weights = torch.softmax(self.tap_logits, dim=0)            # [L, Q]: per query over taps
        out = (out * weights.unsqueeze(0).unsqueeze(-1)).sum(1)    # [B, Q, hidden]
        embeds = self.proj(self.norm(out))
        return embeds, torch.ones(batch, self.n_queries, dtype=torch.bool, device=embeds.device)


_LINEAR_KEYS = {"stack_frames", "pool", "pool_frames", "standardize"}
_QFORMER_KEYS = {"n_queries", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                 "dropout", "initializer_range"}


def build_connector(spec: Mapping[str, Any], input_dim: int, n_taps: int,
                    llm_dim: int) -> Connector:
    """A connector from ``{"kind": "linear"|"qformer", ...options}`` (unknown kind or option:
    ValueError naming it)."""
    options = dict(spec)
    kind = options.pop("kind", None)
    known = {"linear": (_LINEAR_KEYS, LinearProjector),
             "qformer": (_QFORMER_KEYS, QFormerConnector)}
    if kind not in known:
        raise ValueError(f"connector kind {kind!r} is unknown (known: {sorted(known)})")
    keys, cls = known[kind]
    unknown = set(options) - keys
    if unknown:
        raise ValueError(f"connector {kind!r}: unknown option(s) {sorted(unknown)} "
                         f"(known: {sorted(keys)})")
    return cls(int(input_dim), int(llm_dim), int(n_taps), **options)
