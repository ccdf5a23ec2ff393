"""Step-Audio 2 through its own repository code (``stepaudio2`` of stepfun-ai/Step-Audio2).

Entry example::

    step_audio2_mini:
      adapter: step_audio2
      source: stepfun-ai/Step-Audio-2-mini          # or a local snapshot directory
      revision: <commit>
      sample_rate: 16000
      decoding: {max_new_tokens: 256}
      trust_remote_code: true                       # StepAudio2 loads the checkpoint's code
      requires: {repo: stepfun-ai/Step-Audio2, revision: <commit>, path: <checkout>}

Messages are Step's chat format (system, a human turn holding text and audio, an open
assistant turn); transcription uses Step's own ASR system prompt. Shared rules are those of
:mod:`lalm_eval.models.external_common`.

Checked against stepfun-ai/Step-Audio2@c22bfad ``stepaudio2.py``: the repository has no
package metadata and ``stepaudio2.py:4-5`` imports the top-level modules ``utils`` and
``device_utils``, so ``requires.path`` (a checkout at the pin) is required; without it the
error gives the ``git`` commands. ``StepAudio2(model_path)`` and ``__call__(messages,
**kwargs)`` (kwargs update a ``GenerationConfig`` whose default ``max_new_tokens`` is 2048)
return ``(token_ids, text, audio_tokens)``. Upstream's README installs transformers==4.49.0
(``envs/step_audio2.yaml``); its examples sample (temperature 0.7, top_p 0.9, repetition
penalty 1.05), we decode greedily unless the entry says otherwise.
"""

from __future__ import annotations

import sys
from typing import Any

from lalm_eval.models.base import Request
from lalm_eval.models.decoding import hf_generate_kwargs
from lalm_eval.models.external_common import (
    ExternalLALM,
    check_origin,
    import_upstream,
    require_checkout,
    resolve_model_path,
)

STEP_AUDIO2_ASR_SYSTEM = "请记录下你所听到的语音内容。"


def step_audio2_messages(prompt: str | None, system: str | None,
                         audio_path: str | None) -> list[dict[str, Any]]:
    """Step-Audio 2 chat: system, human [text, audio] and an open assistant turn."""
    content: list[dict[str, str]] = []
    if prompt:
        content.append({"type": "text", "text": prompt})
    if audio_path:
        content.append({"type": "audio", "audio": audio_path})
    if not content:
        raise ValueError("nothing to send: no prompt and no audio")
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "human", "content": content})
    messages.append({"role": "assistant", "content": None})
    return messages


class StepAudio2Model(ExternalLALM):
    """Step-Audio 2 mini via ``stepaudio2.StepAudio2`` from the stepfun-ai/Step-Audio2 checkout.

    ``StepAudio2(model_path)(messages, **generation) -> (token_ids, text, audio_tokens)``;
    transcription uses Step's own ASR system prompt unless the request gives a prompt.
    """

    upstream_repo = "stepfun-ai/Step-Audio2"
    remote_code_reason = "StepAudio2 loads the checkpoint's own modeling code (trust_remote_code)"
    default_prompts = {"caption": "Describe the audio in detail."}
    default_systems = {"transcribe": STEP_AUDIO2_ASR_SYSTEM,
                       "generate": "You are a helpful assistant.",
                       "caption": "You are a helpful assistant."}

    def _load(self) -> None:
        self._check_allowed()
        require_checkout(self.entry, self.upstream_repo,
                         "it has no package metadata and stepaudio2.py imports the top-level "
                         "modules utils and device_utils")
        module = import_upstream("stepaudio2", self.entry, self.upstream_repo)
        for companion in ("utils", "device_utils"):  # stepaudio2.py:4-5
            if companion in sys.modules:
                check_origin(sys.modules[companion], self.entry, self.upstream_repo)
        self._client = module.StepAudio2(resolve_model_path(self.entry))

    def _run(self, request: Request, audio_path: str | None) -> tuple[str, int | None]:
        messages = step_audio2_messages(self.prompt_for(request), self.system_for(request),
                                        audio_path)
        tokens, text, _ = self._client(messages, **hf_generate_kwargs(self.decoding))
        return str(text), len(tokens)
