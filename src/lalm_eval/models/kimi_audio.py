"""Kimi-Audio-7B-Instruct through its own package (``kimia_infer`` of MoonshotAI/Kimi-Audio).

Entry example::

    kimi_audio_7b_instruct:
      adapter: kimi_audio
      source: moonshotai/Kimi-Audio-7B-Instruct     # or a local snapshot directory
      revision: <commit>
      sample_rate: 16000
      decoding: {max_new_tokens: 256}               # greedy unless do_sample / temperature
      trust_remote_code: true                       # KimiAudio loads the checkpoint's code
      requires: {repo: MoonshotAI/Kimi-Audio, revision: <commit>, path: <checkout>}

Messages are Kimi-Audio's chat format (a user text message, then a user audio message with the
WAV path); output is text only. Shared rules (``requires``, remote code, per-item errors, the
``_client`` test seam) are those of :mod:`lalm_eval.models.external_common`.

Checked against MoonshotAI/Kimi-Audio@faedaac ``kimia_infer/api/kimia.py``:

* ``KimiAudio.generate(chats, output_type="text", audio_temperature, audio_top_k,
  text_temperature, text_top_k, audio_repetition_penalty, audio_repetition_window_size,
  text_repetition_penalty, text_repetition_window_size, max_new_tokens)`` has no ``top_p`` and
  no beam search: an entry whose ``decoding`` sets ``top_p`` or ``num_beams > 1`` is refused
  (they used to be dropped without a word, while the record's fingerprint carried them).
* importing ``kimia.py`` adds a loguru file sink ``kimia_audio.log`` in the working directory:
  the import runs inside :func:`~lalm_eval.models.external_common.scratch_dir`.
* ``KimiAudio(model_path)`` downloads a hub id without a revision: it gets the local snapshot
  at ``entry.revision`` instead.
* faedaac is no longer on the default branch: :func:`checkout_commands` fetches it by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lalm_eval.models.base import ModelEntry, ModelError, Request
from lalm_eval.models.decoding import Decoding
from lalm_eval.models.external_common import (
    ExternalLALM,
    import_upstream,
    join_nonempty,
    resolve_model_path,
    scratch_dir,
    working_directory,
)


def kimi_messages(prompt: str | None, system: str | None,
                  audio_path: str | None) -> list[dict[str, str]]:
    """Kimi-Audio chat: a user text message (instruction) then a user audio message (path).

    Kimi-Audio has no system role, so system text is prepended to the instruction.
    """
    messages = []
    text = join_nonempty(system, prompt)
    if text:
        messages.append({"role": "user", "message_type": "text", "content": text})
    if audio_path:
        messages.append({"role": "user", "message_type": "audio", "content": audio_path})
    if not messages:
        raise ValueError("nothing to send: no prompt and no audio")
    return messages


def kimi_unsupported(decoding: Decoding) -> list[str]:
    """Decoding settings KimiAudio.generate has no parameter for (``top_p``, ``num_beams``)."""
    unsupported = []
    if decoding.top_p is not None:
        unsupported.append("top_p")
    if decoding.num_beams != 1:
        unsupported.append("num_beams")
    return unsupported


def kimi_sampling(decoding: Decoding) -> dict[str, Any]:
    """Keyword arguments of ``KimiAudio.generate`` for text output."""
    return {
        "text_temperature": decoding.temperature if decoding.sampling else 0.0,
        "text_top_k": decoding.top_k or 5,
        "text_repetition_penalty": decoding.repetition_penalty or 1.0,
        "audio_temperature": 0.0,
        "audio_top_k": 5,
        "max_new_tokens": decoding.max_new_tokens,
    }


class KimiAudioModel(ExternalLALM):
    """Kimi-Audio-7B-Instruct via ``kimia_infer.api.kimia.KimiAudio`` (text output only).

    Calls ``KimiAudio(model_path, load_detokenizer=False).generate(messages, **sampling,
    output_type="text")`` and keeps the text. ``KimiAudio`` loads the checkpoint with
    ``trust_remote_code=True`` and needs CUDA.
    """

    upstream_repo = "MoonshotAI/Kimi-Audio"
    remote_code_reason = "KimiAudio loads the checkpoint's own modeling code (trust_remote_code)"
    default_prompts = {"transcribe": "Please transcribe the following audio:",
                       "caption": "Describe the audio in detail."}

    def __init__(self, entry: ModelEntry, models: Mapping[str, dict[str, Any]] | None = None):
        super().__init__(entry, models)
        unsupported = kimi_unsupported(self.decoding)
        if unsupported:
            raise ModelError(
                f"models.{entry.name}: Kimi-Audio's KimiAudio.generate (kimia_infer/api/"
                f"kimia.py) has no {' and no '.join(unsupported)}; remove "
                f"{', '.join('decoding.' + k for k in unsupported)} (it would be dropped "
                "while the record says it was used)")

    def _load(self) -> None:
        self._check_allowed()
        # kimia.py adds a loguru file sink "kimia_audio.log" in the working directory at import
        with working_directory(scratch_dir(self.entry)):
            module = import_upstream("kimia_infer.api.kimia", self.entry, self.upstream_repo)
        self._client = module.KimiAudio(model_path=resolve_model_path(self.entry),
                                        load_detokenizer=False)

    def _run(self, request: Request, audio_path: str | None) -> tuple[str, int | None]:
        messages = kimi_messages(self.prompt_for(request), self.system_for(request), audio_path)
        _, text = self._client.generate(messages, output_type="text",
                                        **kimi_sampling(self.decoding))
        return str(text), None
