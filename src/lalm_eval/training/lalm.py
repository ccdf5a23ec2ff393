"""The LALM: a trained connector splicing audio embeddings into a text LLM's input.

One item's LLM input is built from the prompt template (:class:`PromptTemplate`):

```
[text before {audio}] [connector output: valid positions only] [text after {audio}] [target + EOS]
 '--------------------------- labels -100 (no loss) ---------------------------'  '-- loss --'
```

* The template is text with the markers ``{audio}`` (exactly once), ``{prompt}`` and,
  optionally, ``{transcript}``. The text pieces around the audio are tokenised separately
  (no special tokens added; a tokenizer that adds a BOS to plain text gets it in front of the
  whole sequence), so no placeholder token has to exist in the LLM's vocabulary. The
  transcript (DeSTA feeds it after the audio queries) is tokenised on its own and capped at
  ``max_transcript_tokens`` (DeSTA: 100); a missing transcript inserts nothing.
* ``chat=True`` renders the user turn (audio marker inside it), after an optional ``system``
  message, through the tokenizer's chat template with the generation prompt; the target then
  follows the assistant header. ``chat=False`` uses the text as it is (XARES-LLM:
  ``"{audio}{prompt}"``, raw text, no template; a ``system`` text, if given, goes in front
  followed by a blank line).
* The target is tokenised on its own and followed by the tokenizer's EOS when ``add_eos``;
  loss (summed token cross-entropy) covers exactly these tokens.
* Training batches are right-padded (attention mask 0 on padding); generation batches are
  left-padded. ``max_length`` bounds a training sequence by cutting the **tail of the target**
  (EOS first); the audio and the prompt are never cut, so an item whose prefix alone reaches
  ``max_length`` keeps its prefix and carries no loss tokens (``n_loss_tokens`` is then 0 and
  the engine can drop it).

``XARES_LLM_TEMPLATE`` and ``DESTA_TEMPLATE`` are the two studies' templates. DeSTA's
``<start_audio>``/``<end_audio>`` markers are plain text here (tokenised like any text), not
added special tokens.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lalm_eval.training.connectors import Connector

__all__ = ["DESTA_TEMPLATE", "LALM", "XARES_LLM_TEMPLATE", "Example", "PromptTemplate"]

AUDIO_MARKER, PROMPT_MARKER, TRANSCRIPT_MARKER = "{audio}", "{prompt}", "{transcript}"
# private-use characters: survive chat templates, never produced by a prompt in practice
_AUDIO_SENTINEL = "\ue000lalm-audio\ue000"
_TRANSCRIPT_SENTINEL = "\ue001lalm-transcript\ue001"
_SPLIT = re.compile(f"({re.escape(_AUDIO_SENTINEL)}|{re.escape(_TRANSCRIPT_SENTINEL)})")
IGNORE_INDEX = -100
_CACHE_SIZE = 8192  # tokenised prompts/targets kept per model


@dataclass
class Example:
    """One training or evaluation item."""

    item_id: str
    features: np.ndarray            # [L, T', D] valid frames only ([T', D] is taken as L = 1)
    prompt: str
    target: str | None = None       # None at inference
    transcript: str | None = None   # DeSTA: tokens placed after the audio embeddings
    system: str | None = None       # replaces the template's system text (chat templates)


@dataclass(frozen=True)
class PromptTemplate:
    """Where the audio, prompt and transcript go; see the module docstring."""

    text: str = "{audio}{prompt}"
    chat: bool = False
    system: str | None = None
    add_eos: bool = True
    #: extra arguments of the tokenizer's chat template, e.g. ``{enable_thinking: false}``
    #: (Qwen3 with thinking disabled, as the auditory-knowledge study runs it)
    chat_kwargs: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.text.count(AUDIO_MARKER) != 1:
            raise ValueError(f"prompt template {self.text!r} must contain {AUDIO_MARKER} once")
        if self.text.count(TRANSCRIPT_MARKER) > 1:
            raise ValueError(f"prompt template {self.text!r} has {TRANSCRIPT_MARKER} twice")
        if self.chat_kwargs is not None and not isinstance(self.chat_kwargs, Mapping):
            raise ValueError(f"prompt template: chat_kwargs must be a mapping of chat-template "
                             f"arguments, got {type(self.chat_kwargs).__name__} "
                             f"{self.chat_kwargs!r}")
        if self.chat_kwargs and not self.chat:
            raise ValueError("prompt template: chat_kwargs given but chat is false (they are "
                             "arguments of the tokenizer's chat template)")

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> PromptTemplate:
        """From recipe data ``{text, chat, system, add_eos, chat_kwargs}`` (unknown keys:
        ValueError)."""
        unknown = set(spec) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"prompt template: unknown key(s) {sorted(unknown)}")
        return cls(**dict(spec))

    @property
    def has_transcript(self) -> bool:
        return TRANSCRIPT_MARKER in self.text


XARES_LLM_TEMPLATE = PromptTemplate("{audio}{prompt}", chat=False)
DESTA_TEMPLATE = PromptTemplate("<start_audio>{audio}{transcript}<end_audio>\n{prompt}",
                                chat=True)


@dataclass
class _Plan:
    """Token ids of one item around its audio embeddings."""

    before: list[int]
    after: list[int]
    target: list[int]     # target + EOS, after truncation (the loss tokens)
    n_audio: int

    @property
    def prefix_length(self) -> int:
        return len(self.before) + self.n_audio + len(self.after)


class LALM(nn.Module):
    """Connector + causal LLM + prompt template."""

    def __init__(self, llm: nn.Module, tokenizer: Any, connector: Connector,
                 template: PromptTemplate, max_length: int | None = None,
                 max_transcript_tokens: int | None = None) -> None:
        super().__init__()
        self.llm = llm
        self.connector = connector
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = int(max_length) if max_length else None
        self.max_transcript_tokens = (None if max_transcript_tokens is None
                                      else int(max_transcript_tokens))
        if template.chat and not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt template has chat: true but the tokenizer has no chat "
                             "template")
        self.eos_id = tokenizer.eos_token_id
        if self.eos_id is None and template.add_eos:
            raise ValueError("the tokenizer has no EOS token; set add_eos: false")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        config_eos = getattr(getattr(llm, "generation_config", None), "eos_token_id", None)
        eos_ids = config_eos if isinstance(config_eos, list) else [config_eos]
        self.stop_ids = sorted({int(i) for i in [*eos_ids, self.eos_id] if i is not None})
        self._special_prefix = [] if template.chat else self._plain_text_prefix()
        embedding = llm.get_input_embeddings()
        if embedding.embedding_dim != connector.llm_dim:
            raise ValueError(f"connector output width {connector.llm_dim} != LLM hidden size "
                             f"{embedding.embedding_dim}")
        base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
        self._keeps_logits = "logits_to_keep" in inspect.signature(base.forward).parameters
        self._prefix_cache: dict[tuple[str, str | None, str | None],
                                 tuple[tuple[int, ...], ...]] = {}
        self._text_cache: dict[str, tuple[int, ...]] = {}

    # ------------------------------------------------------------------ tokens
    def _tokenise(self, text: str) -> tuple[int, ...]:
        if not text:
            return ()
        ids = self._text_cache.get(text)
        if ids is None:
            ids = tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if len(self._text_cache) >= _CACHE_SIZE:
                self._text_cache.clear()
            self._text_cache[text] = ids
        return ids

    def _prefix_ids(self, prompt: str, transcript: str | None, system: str | None = None
                    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        key = (prompt, transcript, system)
        ids = self._prefix_cache.get(key)
        if ids is None:
            ids = self._render_prefix(prompt, transcript, system)
            if len(self._prefix_cache) >= _CACHE_SIZE:
                self._prefix_cache.clear()
            self._prefix_cache[key] = ids
        return ids  # type: ignore[return-value]

    def _plain_text_prefix(self) -> list[int]:
        """Special tokens the tokenizer puts in front of plain text (e.g. a BOS)."""
        probe = "a"
        full = list(self.tokenizer(probe)["input_ids"])
        plain = list(self.tokenizer(probe, add_special_tokens=False)["input_ids"])
        for start in range(len(full) - len(plain) + 1):
            if full[start:start + len(plain)] == plain:
                return full[:start]
        return []

    def _render_prefix(self, prompt: str, transcript: str | None, system: str | None = None
                       ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(ids before the audio, ids after it) for one prompt and transcript; ``system``
        (when given) replaces the template's system text."""
        system = system if system is not None else self.template.system
        user = (self.template.text.replace(AUDIO_MARKER, _AUDIO_SENTINEL)
                .replace(TRANSCRIPT_MARKER, _TRANSCRIPT_SENTINEL)
                .replace(PROMPT_MARKER, prompt))
        if self.template.chat:
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": user})
            rendered = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True,
                **dict(self.template.chat_kwargs or {}))
        else:
            rendered = f"{system}\n\n{user}" if system else user
        if rendered.count(_AUDIO_SENTINEL) != 1 or (
                rendered.count(_TRANSCRIPT_SENTINEL) != int(self.template.has_transcript)):
            raise ValueError("the chat template dropped or repeated the audio/transcript "
                             "position of the user turn")
        before: list[int] = list(self._special_prefix)
        after: list[int] = []
        current = before
        for piece in _SPLIT.split(rendered):
            if piece == _AUDIO_SENTINEL:
                current = after
            elif piece == _TRANSCRIPT_SENTINEL:
                ids = list(self._tokenise(transcript or ""))
                if self.max_transcript_tokens is not None:
                    ids = ids[:self.max_transcript_tokens]
                current.extend(ids)
            else:
                current.extend(self._tokenise(piece))
        return tuple(before), tuple(after)

    def _plan(self, example: Example, with_target: bool) -> _Plan:
        before, after = self._prefix_ids(example.prompt, example.transcript, example.system)
        features = _features(example)
        plan = _Plan(list(before), list(after), [], self.connector.n_outputs(features.shape[1]))
        if with_target:
            if example.target is None:
                raise ValueError(f"item {example.item_id}: no target to compute a loss on")
            target = list(self._tokenise(example.target))
            if self.template.add_eos:
                target.append(int(self.eos_id))
            if self.max_length is not None:
                target = target[:max(self.max_length - plan.prefix_length, 0)]
            plan.target = target
        return plan

    def n_loss_tokens(self, example: Example) -> int:
        """How many tokens carry loss for ``example`` (target + EOS after truncation)."""
        return len(self._plan(example, with_target=True).target)

    # ------------------------------------------------------------------ embeddings
    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    def _audio_embeddings(self, examples: Sequence[Example], plans: Sequence[_Plan]
                          ) -> list[torch.Tensor]:
        """Connector output per item, valid positions only, in the LLM's dtype."""
        feats = [_features(e) for e in examples]
        taps, dim = feats[0].shape[0], feats[0].shape[2]
        for example, array in zip(examples, feats, strict=True):
            if array.shape[0] != taps or array.shape[2] != dim:
                raise ValueError(f"item {example.item_id}: features {array.shape} do not match "
                                 f"the batch's [{taps}, T, {dim}]")
            if array.shape[1] == 0:
                raise ValueError(f"item {example.item_id}: features have no frames")
        longest = max(a.shape[1] for a in feats)
        batch = np.zeros((len(feats), taps, longest, dim), dtype=np.float32)
        mask = np.zeros((len(feats), longest), dtype=bool)
        for i, array in enumerate(feats):
            batch[i, :, :array.shape[1]] = array
            mask[i, :array.shape[1]] = True
        connector_param = next(self.connector.parameters(), None)
        where = connector_param.device if connector_param is not None else self.device
        embeds, out_mask = self.connector(torch.from_numpy(batch).to(where),
                                          torch.from_numpy(mask).to(where))
        dtype = self.llm.get_input_embeddings().weight.dtype
        rows = []
        for i, plan in enumerate(plans):
            row = embeds[i][out_mask[i]].to(device=self.device, dtype=dtype)
            if row.shape[0] != plan.n_audio:
                raise RuntimeError(f"connector gave {row.shape[0]} valid embeddings for item "
                                   f"{examples[i].item_id}, its n_outputs says {plan.n_audio}")
            rows.append(row)
        return rows

    def _embed_ids(self, ids: Sequence[int]) -> torch.Tensor:
        tensor = torch.tensor(list(ids), dtype=torch.long, device=self.device)
        return self.llm.get_input_embeddings()(tensor)

    def _sequences(self, examples: Sequence[Example], with_target: bool
                   ) -> tuple[list[torch.Tensor], list[list[int]], list[_Plan]]:
        plans = [self._plan(e, with_target) for e in examples]
        audios = self._audio_embeddings(examples, plans)
        rows, labels = [], []
        for plan, audio in zip(plans, audios, strict=True):
            rows.append(torch.cat([self._embed_ids(plan.before), audio,
                                   self._embed_ids(plan.after + plan.target)]))
            labels.append([IGNORE_INDEX] * plan.prefix_length + plan.target)
        return rows, labels, plans

    # ------------------------------------------------------------------ training
    def batch_inputs(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        """Right-padded ``inputs_embeds`` [B, S, H], ``attention_mask`` [B, S], ``labels`` [B, S]
        (-100 except on target + EOS)."""
        rows, labels, _ = self._sequences(examples, with_target=True)
        length = max(r.shape[0] for r in rows)
        hidden = rows[0].shape[1]
        embeds = rows[0].new_zeros(len(rows), length, hidden)
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=self.device)
        label_tensor = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long,
                                  device=self.device)
        for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
            embeds[i, :row.shape[0]] = row
            mask[i, :row.shape[0]] = 1
            label_tensor[i, :len(label)] = torch.tensor(label, dtype=torch.long)
        return {"inputs_embeds": embeds, "attention_mask": mask, "labels": label_tensor}

    def forward(self, examples: Sequence[Example], weights: Sequence[float] | None = None
                ) -> tuple[torch.Tensor, int]:
        """:meth:`loss_terms` (so a DistributedDataParallel wrapper can call the model)."""
        return self.loss_terms(examples, weights)

    def loss_terms(self, examples: Sequence[Example], weights: Sequence[float] | None = None
                   ) -> tuple[torch.Tensor, int]:
        """(sum of token cross-entropies over target + EOS tokens, number of those tokens);
        with ``weights`` (one per example) each example's token losses count that much."""
        if weights is not None and len(weights) != len(examples):
            raise ValueError(f"loss_terms: {len(weights)} weights for {len(examples)} examples")
        batch = self.batch_inputs(examples)
        labels = batch.pop("labels")
        length = labels.shape[1]
        has_label = labels != IGNORE_INDEX
        has_label[:, 0] = False                     # position 0 has nothing before it
        count = int(has_label.sum())
        # logits are needed only from the position before the earliest target token on
        first = int(has_label.float().argmax(1)[has_label.any(1)].min()) if count else length
        keep = max(length - (first - 1), 1)
        kwargs: dict[str, Any] = {"use_cache": False}
        if self._keeps_logits:
            kwargs["logits_to_keep"] = keep
        logits = self.llm(**batch, **kwargs).logits
        logits = logits[:, -keep:]                  # positions length-keep .. length-1
        if count == 0:  # keep the graph connected so every rank can still backward
            return logits.sum() * 0.0, 0
        targets = labels[:, length - keep + 1:]      # the token each kept position predicts
        if weights is None:
            loss = nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                ignore_index=IGNORE_INDEX, reduction="sum")
            return loss, count
        per_token = nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX,
            reduction="none")                                       # [B, keep - 1]
        row_weights = torch.tensor(list(weights), dtype=per_token.dtype,
                                   device=per_token.device)
        return (per_token * row_weights[:, None]).sum(), count

    # ------------------------------------------------------------------ inference
    def generate(self, examples: Sequence[Example], max_new_tokens: int = 150,
                 repetition_penalty: float = 1.0, do_sample: bool = False,
                 **decoding: Any) -> list[tuple[str, int]]:
        """Continuations of each item's prefix: (text, number of new tokens before EOS).

        Left-padded batch, greedy by default, stops at EOS (the tokenizer's and the generation
        config's). The input is embeddings only, so a ``repetition_penalty`` acts on the
        generated tokens, not on the prompt's."""
        rows, _, _ = self._sequences(examples, with_target=False)
        length = max(r.shape[0] for r in rows)
        embeds = rows[0].new_zeros(len(rows), length, rows[0].shape[1])
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=self.device)
        for i, row in enumerate(rows):
            embeds[i, length - row.shape[0]:] = row
            mask[i, length - row.shape[0]:] = 1
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                output = self.llm.generate(
                    inputs_embeds=embeds, attention_mask=mask, max_new_tokens=int(max_new_tokens),
                    repetition_penalty=float(repetition_penalty), do_sample=bool(do_sample),
                    eos_token_id=self.stop_ids or None, pad_token_id=self.pad_id, **decoding)
        finally:
            self.train(was_training)
        sequences = output if isinstance(output, torch.Tensor) else output.sequences
        results = []
        stops = set(self.stop_ids)
        for row in sequences.tolist():
            n = next((i for i, token in enumerate(row) if token in stops), len(row))
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True).strip()
            results.append((text, n))
        return results

    # ------------------------------------------------------------------ trainable state
    def _statistics(self) -> dict[str, torch.Tensor]:
        """The connector's data statistics (fitted on the training set, not trained)."""
        buffers = dict(self.connector.named_buffers())
        return {f"connector.{name}": buffers[name] for name in self.connector.statistics}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """A copy of every parameter that requires grad (connector, LoRA adapters) and of
        the connector's data statistics."""
        state = {name: p.detach().clone() for name, p in self.named_parameters()
                 if p.requires_grad}
        state.update({name: b.detach().clone() for name, b in self._statistics().items()})
        return state

    def load_trainable_state_dict(self, state: Mapping[str, torch.Tensor],
                                  statistics_only: bool = False) -> None:
        """Load :meth:`trainable_state_dict` output; the names must match exactly.
        ``statistics_only``: only the connector's data statistics (an untrained connector
        that sees the features as the trained one did)."""
        params = {} if statistics_only else {
            name: p for name, p in self.named_parameters() if p.requires_grad}
        params.update(self._statistics())
        if statistics_only:
            state = {k: v for k, v in state.items() if k in params}
        missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(f"trainable state does not match the model: missing "
                             f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                             f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        with torch.no_grad():
            for name, param in params.items():
                value = state[name]
                if tuple(value.shape) != tuple(param.shape):
                    raise ValueError(f"trainable state {name}: shape {tuple(value.shape)} != "
                                     f"{tuple(param.shape)}")
                param.copy_(value.to(device=param.device, dtype=param.dtype))

    def count_parameters(self) -> dict[str, int]:
        """``{"total": ..., "trainable": ...}`` (shared parameters counted once)."""
        params = list(self.parameters())
        return {"total": sum(p.numel() for p in params),
                "trainable": sum(p.numel() for p in params if p.requires_grad)}


def _features(example: Example) -> np.ndarray:
    array = np.asarray(example.features, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"item {example.item_id}: features must be [L, T, D], got {array.shape}")
    return array
