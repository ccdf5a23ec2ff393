"""Stand-in for ``transformers.LlamaTokenizer`` of the LTU-AS fork: one id per character
(BOS 1, EOS 2), ``from_pretrained(folder)``, ``__call__(text, return_tensors="pt")`` and
``decode(ids)`` with the ``<s>`` / ``</s>`` markers LLaMA's decode keeps."""

import os

import torch

OFFSET = 3


class LlamaTokenizer:
    pad_token_id = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *inputs, **kwargs):
        if not os.path.isdir(pretrained_model_name_or_path):
            raise OSError(f"stand-in: {pretrained_model_name_or_path} is not a folder")
        return cls()

    def encode(self, text):
        return [1] + [min(ord(c), 250) + OFFSET for c in text]

    def __call__(self, text, return_tensors=None):
        ids = self.encode(text)
        return {"input_ids": torch.tensor([ids]) if return_tensors == "pt" else ids}

    def decode(self, ids):
        out = []
        for i in (int(x) for x in ids):
            out.append("<s>" if i == 1 else "</s>" if i == 2 else chr(i - OFFSET))
        return "".join(out)
