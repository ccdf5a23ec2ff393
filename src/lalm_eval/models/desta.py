"""DeSTA2.5-Audio through its own package (``desta`` of kehanlu/DeSTA2.5-Audio).

Entry example::

    desta25:
      adapter: desta25
      source: <hub id of a DeSTA2.5-Audio checkpoint>
      revision: <commit>
      sample_rate: 16000
      decoding: {max_new_tokens: 512}
      trust_remote_code: true                       # generate loads silero-vad via torch.hub
      requires: {repo: kehanlu/DeSTA2.5-Audio, revision: <commit>, path: <checkout>}

The user turn holds ``<|AUDIO|>`` and the instruction plus an ``audios`` entry with the WAV
path; the answer prefix ``The correct answer is:`` is cut (the ``desta25`` answer family,
``answers/families.yaml``). Shared rules are those of :mod:`lalm_eval.models.external_common`.

Checked against kehanlu/DeSTA2.5-Audio ``desta/models/modeling_desta25.py``:
``DeSTA25AudioModel.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)`` (:685-707)
reads only ``cache_dir`` from its kwargs and calls the config's ``from_pretrained`` and
``hf_hub_download`` without a revision, so a ``revision=`` argument was silently ignored and
the latest weights loaded while the record carried the pin. The adapter downloads the pinned
snapshot itself (:func:`~lalm_eval.models.external_common.resolve_model_path`) and passes
the local folder. The config's ``llm_model_id`` and ``encoder_model_id`` (Llama-3.1-8B,
Whisper-large-v3) are still fetched by upstream at their latest revision (docs/models.md).
``generate(messages, temperature=0.7, top_p=0.9, do_sample=True, max_new_tokens=512)``
asserts that each message's ``audios`` count equals its ``<|AUDIO|>`` count; its MMAU script
decodes greedily with 512 new tokens, as we do.
"""

from __future__ import annotations

from typing import Any

from lalm_eval.models.base import Request
from lalm_eval.models.external_common import (
    ExternalLALM,
    default_device,
    import_upstream,
    resolve_model_path,
)

DESTA_AUDIO_LOCATOR = "<|AUDIO|>"


def desta_messages(prompt: str | None, system: str | None,
                   audio_path: str | None) -> list[dict[str, Any]]:
    """DeSTA2.5 chat: system, then a user turn with ``<|AUDIO|>`` and its ``audios`` entry."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    if audio_path:
        content = DESTA_AUDIO_LOCATOR + (f"\n\n{prompt}" if prompt else "")
        messages.append({"role": "user", "content": content,
                         "audios": [{"audio": audio_path, "text": None}]})
    elif prompt:
        messages.append({"role": "user", "content": prompt})
    else:
        raise ValueError("nothing to send: no prompt and no audio")
    return messages


class Desta25Model(ExternalLALM):
    """DeSTA2.5-Audio via ``desta.DeSTA25AudioModel.from_pretrained(...).generate(messages)``.

    Greedy with 512 new tokens by default (as in its MMAU evaluation); the answer prefix
    ``The correct answer is:`` is cut (``desta25`` answer family). Its ``generate`` loads
    silero-vad through ``torch.hub`` (GitHub code), hence ``trust_remote_code: true``.
    """

    upstream_repo = "kehanlu/DeSTA2.5-Audio"
    remote_code_reason = "DeSTA25AudioModel.generate loads silero-vad through torch.hub"
    default_prompts = {"transcribe": "Transcribe the speech in the audio.",
                       "caption": "Describe the audio in detail."}
    default_systems = {"generate": "Focus on the audio clips and instructions.",
                       "transcribe": "Focus on the audio clips and instructions.",
                       "caption": "Focus on the audio clips and instructions."}
    answer_family = "desta25"

    def _load(self) -> None:
        self._check_allowed()
        module = import_upstream("desta", self.entry, self.upstream_repo)
        # upstream's from_pretrained ignores a revision: load the pinned snapshot's folder
        model = module.DeSTA25AudioModel.from_pretrained(resolve_model_path(self.entry))
        self._client = model.to(default_device(self.entry)).eval()

    def _run(self, request: Request, audio_path: str | None) -> tuple[str, int | None]:
        messages = desta_messages(self.prompt_for(request), self.system_for(request),
                                  audio_path)
        d = self.decoding
        outputs = self._client.generate(
            messages=messages, max_new_tokens=d.max_new_tokens, do_sample=d.sampling,
            temperature=d.temperature if d.sampling else 1.0,
            top_p=d.top_p if d.top_p is not None else 1.0)
        ids = getattr(outputs, "generated_ids", None)
        return str(outputs.text[0]), (len(ids[0]) if ids else None)
