"""Stand-in for stepfun-ai/Step-Audio2@c22bfad ``stepaudio2.py`` (not its code).

Mirrors the top-level imports of ``stepaudio2.py:4-5`` (``from utils import ...``, ``from
device_utils import get_device``: the repository has no package metadata, so they resolve only
with the checkout on ``sys.path``), ``StepAudio2(model_path)`` (``AutoTokenizer`` /
``AutoModelForCausalLM.from_pretrained(model_path, trust_remote_code=True)``: a local folder
here), ``StepAudio2.apply_chat_template`` (roles, ``str`` / ``list`` / ``None`` contents, item
types ``text`` / ``audio`` / ``token``) and ``StepAudio2Base.__call__(messages, **kwargs)``:
``generation_config = dict(max_new_tokens=2048, ...)`` updated with the kwargs, returns
``(output_token_ids, output_text, output_audio_tokens)``.
"""

import os

from device_utils import get_device
from utils import load_audio


class StepAudio2:
    def __init__(self, model_path: str):
        if not os.path.isdir(model_path):
            raise OSError(f"stand-in: {model_path} is not a model folder")
        self.model_path = model_path
        self.device = get_device()
        self.calls: list = []

    def apply_chat_template(self, messages: list):
        results, audios = [], []
        for msg in messages:
            role, content = msg["role"], msg["content"]
            if role == "user":
                role = "human"
            assert role in ("system", "human", "assistant"), role
            if isinstance(content, str):
                results.append(f"<|BOT|>{role}\n{content}<|EOT|>")
            elif isinstance(content, list):
                results.append(f"<|BOT|>{role}\n")
                for item in content:
                    if item["type"] == "text":
                        results.append(item["text"])
                    elif item["type"] == "audio":
                        audios.append(load_audio(item["audio"]))
                        results.append("<audio_start><audio_patch><audio_end>")
                    elif item["type"] == "token":
                        results.append(item["token"])
                    else:
                        raise ValueError(f"Unsupported content type: {item['type']}")
                results.append("<|EOT|>")
            elif content is None:
                results.append(f"<|BOT|>{role}\n")
            else:
                raise ValueError(f"Unsupported content type: {type(content)}")
        return results, audios

    def __call__(self, messages: list, **kwargs):
        prompt, audios = self.apply_chat_template(messages)
        generation_config = dict(max_new_tokens=2048)
        generation_config.update(kwargs)
        self.calls.append({"prompt": prompt, "n_audio": len(audios),
                           "generation_config": generation_config})
        return [11, 12, 13], "a dog barks", []
