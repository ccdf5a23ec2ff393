"""Stand-in for kehanlu/DeSTA2.5-Audio ``desta/models/modeling_desta25.py`` (not its code).

Mirrors ``DeSTA25AudioModel.from_pretrained(cls, pretrained_model_name_or_path, *args,
**kwargs)`` (``modeling_desta25.py:685-707``): only ``cache_dir`` is read from the kwargs (a
``revision`` is ignored); a local folder is loaded from its ``model.safetensors``, anything else
goes to ``huggingface_hub.hf_hub_download(repo_id=..., filename="model.safetensors",
cache_dir=...)``, without a revision. ``generate(messages, temperature=0.7, top_p=0.9,
do_sample=True, max_new_tokens=512)`` asserts per message that the ``audios`` count equals the
``<|AUDIO|>`` count and that each audio file exists, and returns ``GenerationOutput(audios,
generated_ids, text)``.
"""

import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class GenerationOutput:
    audios: list
    generated_ids: list
    text: list


class DeSTA25AudioModel(nn.Module):
    audio_locator = "<|AUDIO|>"

    def __init__(self, weights: str):
        super().__init__()
        self.weights = weights
        self.prompt = nn.Parameter(torch.zeros(1))
        self.calls = []

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        cache_dir = kwargs.get("cache_dir", os.getenv("HF_HOME"))
        if os.path.isdir(pretrained_model_name_or_path):
            path = os.path.join(pretrained_model_name_or_path, "model.safetensors")
        else:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(repo_id=pretrained_model_name_or_path,
                                   filename="model.safetensors", cache_dir=cache_dir)
        with open(path, encoding="utf-8") as f:
            return cls(f.read().strip())

    def generate(self, messages, temperature=0.7, top_p=0.9, do_sample=True,
                 max_new_tokens=512):
        if isinstance(messages, list) and isinstance(messages[0], dict):
            messages_list = [messages]
        elif isinstance(messages, list):
            messages_list = messages
        else:
            raise ValueError("messages should be a list of dictionaries or a list of lists.")
        all_audios = []
        for conversation in messages_list:
            for message in conversation:
                content = message["content"]
                audios = message.get("audios", [])
                assert len(audios) == content.count(self.audio_locator), \
                    "audio count does not match (<|AUDIO|>) count"
                for audio in audios:
                    if not os.path.exists(audio["audio"]):
                        raise ValueError(f"Audio file {audio['audio']} does not exist.")
                    all_audios.append(audio["audio"])
        self.calls.append({"messages": messages_list, "temperature": temperature,
                           "top_p": top_p, "do_sample": do_sample,
                           "max_new_tokens": max_new_tokens})
        return GenerationOutput(audios=all_audios, generated_ids=[[5, 6, 7]],
                                text=[f'The correct answer is: "dog" ({self.weights})'])
