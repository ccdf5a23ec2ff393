"""Stand-in for bytedance/SALMONN (branch salmonn, a58bba7) ``models/salmonn.py`` (not its code).

Mirrors ``SALMONN.__init__``'s keyword parameters (no ``**kwargs``), its ``prompt_path`` handling
(``models/salmonn.py:208-213``: ``json.load(open(prompt_path, "r"))``, relative to the working
directory; prompts without ``<SpeechHere>`` dropped, the rest formatted into
``prompt_template``), ``SALMONN.from_config(config)`` (reads every key with ``config.get``,
loads ``ckpt``'s ``"model"`` with ``strict=False``) and ``SALMONN.generate(samples,
generate_cfg, prompts=None)`` (``prompt_wrap`` splits each prompt at ``<SpeechHere>``; the
``generate`` settings are read with ``generate_cfg.get`` and upstream defaults).
"""

import json

import torch
from torch import nn


class SALMONN(nn.Module):
    def __init__(
        self,
        llama_path="",
        whisper_path="",
        freeze_whisper=True,
        beats_path="",
        freeze_beats=True,
        use_speech_Qformer=True,
        num_speech_query_token=1,
        freeze_speech_QFormer=False,
        window_level_Qformer=True,
        second_per_window=0.333333,
        second_stride=0.333333,
        speech_llama_proj_model="",
        freeze_speech_llama_proj=False,
        lora=True,
        lora_rank=8,
        lora_alpha=32,
        lora_dropout=0.1,
        multi_prompt=False,
        prompt_path="",
        prompt_template="",
        max_txt_len=128,
        end_sym="</s>",
        low_resource=False,
        device_8bit=0,
    ):
        super().__init__()
        assert whisper_path
        self.speech_llama_proj = nn.Linear(2, 2)
        self.prompt_template = prompt_template
        self.prompt_dict = {}
        if prompt_path:
            with open(prompt_path) as f:  # models/salmonn.py:208-213
                raw_prompts = json.load(f)
            for task, prompts in raw_prompts.items():
                kept = [p for p in prompts if "<SpeechHere>" in p]
                self.prompt_dict[task] = [prompt_template.format(p) for p in kept]
        self.calls = []

    @classmethod
    def from_config(cls, config):
        keys = ["llama_path", "whisper_path", "freeze_whisper", "beats_path", "freeze_beats",
                "use_speech_Qformer", "num_speech_query_token", "freeze_speech_QFormer",
                "window_level_Qformer", "second_per_window", "second_stride",
                "speech_llama_proj_model", "freeze_speech_llama_proj", "lora", "lora_rank",
                "lora_alpha", "lora_dropout", "multi_prompt", "prompt_path", "prompt_template",
                "max_txt_len", "end_sym", "low_resource", "device_8bit"]
        model = cls(**{k: config.get(k) for k in keys if config.get(k) is not None})
        ckpt_path = config.get("ckpt", "")
        if ckpt_path:
            ckpt = torch.load(ckpt_path, map_location="cpu")
            model.load_state_dict(ckpt["model"], strict=False)
        return model

    def generate(self, samples, generate_cfg, prompts=None):
        assert set(samples) == {"spectrogram", "raw_wav", "padding_mask"}, set(samples)
        for prompt in prompts or []:
            before, after = prompt.split("<SpeechHere>")  # prompt_wrap
        self.calls.append({
            "prompts": prompts,
            "spectrogram": tuple(samples["spectrogram"].shape),
            "max_new_tokens": generate_cfg.get("max_new_tokens", 200),
            "num_beams": generate_cfg.get("num_beams", 4),
            "do_sample": generate_cfg.get("do_sample", False),
            "min_length": generate_cfg.get("min_length", 1),
            "temperature": generate_cfg.get("temperature", 1.0),
            "top_p": generate_cfg.get("top_p", 0.9),
            "repetition_penalty": generate_cfg.get("repetition_penalty", 1.0),
            "length_penalty": generate_cfg.get("length_penalty", 1.0),
        })
        return ["<s>a dog barks</s>"]
