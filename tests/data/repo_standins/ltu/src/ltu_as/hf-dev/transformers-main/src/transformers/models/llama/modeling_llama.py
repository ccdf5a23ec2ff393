"""Stand-in for the LTU-AS fork's ``models/llama/modeling_llama.py`` (YuanGongND/ltu@bd646a4),
not its code. Mirrors what broke LTU-AS runs:

* its own ``LayerNorm`` whose ``forward`` computes in fp32 (``super().forward(x.float())``) and
  ``Linear`` that casts its weight to the input's dtype, used by the audio encoder
  (``LlamaModel.audio_encoder``, parameter names ``model.audio_encoder.*_ln.*``): with fp16
  LayerNorm weights and fp32 compute, torch raises "mixed dtype (CPU): expect parameter to have
  scalar type of Float" (a dtype error on CUDA too) unless the weights are cast back to fp32;
* ``LlamaForCausalLM.forward(input_ids=None, audio_input=None, attention_mask=None, ...)`` (the
  fork's extra ``audio_input``) and ``LlamaModel.forward``'s ``assert audio_input.shape[1] ==
  25`` after the audio encoder, for input ``[B, 32, 25, rep_dim]``;
* ``from_pretrained(folder, torch_dtype=...)``, ``generate(input_ids=..., audio_input=...,
  generation_config=..., return_dict_in_generate=True)`` returning ``.sequences`` (prompt ids,
  then the answer, then EOS).
"""

import json
import os
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

ANSWER = " a dog barks"


class LayerNorm(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


class Linear(nn.Linear):
    def forward(self, x):
        return F.linear(x, self.weight.to(x.dtype),
                        None if self.bias is None else self.bias.to(x.dtype))


class ATModel(nn.Module):
    def __init__(self, rep_dim):
        super().__init__()
        self.attn_ln = LayerNorm(rep_dim)
        self.mlp = Linear(rep_dim, rep_dim)
        self.mlp_ln = LayerNorm(rep_dim)

    def forward(self, audio_rep):
        batch, num_layer, audio_len, rep_dim = audio_rep.shape
        x = self.mlp(self.attn_ln(audio_rep))
        return self.mlp_ln(x).mean(dim=1)  # [B, audio_len, rep_dim]


class LlamaModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.audio_encoder = ATModel(config.audio_rep_dim)
        self.audio_proj = nn.Sequential(nn.LayerNorm(config.audio_rep_dim,
                                                     elementwise_affine=False),
                                        nn.Linear(config.audio_rep_dim, config.hidden_size))

    def forward(self, input_ids=None, audio_input=None):
        embeds = self.embed_tokens(input_ids)
        if audio_input is not None:
            assert audio_input.shape[1:3] == (32, 25), tuple(audio_input.shape)
            audio = self.audio_encoder(audio_input)
            assert audio.shape[1] == 25
            audio = self.audio_proj(audio.to(embeds.dtype))
            embeds = torch.cat([audio, embeds], dim=1)
        return embeds


class LlamaForCausalLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        with open(os.path.join(pretrained_model_name_or_path, "config.json")) as f:
            config = SimpleNamespace(**json.load(f))
        torch.manual_seed(0)
        model = cls(config)
        dtype = kwargs.get("torch_dtype")
        return model.to(dtype) if dtype is not None else model

    def forward(self, input_ids=None, audio_input=None, attention_mask=None, position_ids=None,
                past_key_values=None, inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        hidden = self.model(input_ids=input_ids, audio_input=audio_input)
        return SimpleNamespace(logits=self.lm_head(hidden))

    def generate(self, input_ids=None, audio_input=None, generation_config=None,
                 return_dict_in_generate=False, **kwargs):
        self.forward(input_ids=input_ids, audio_input=audio_input)
        self.last_generation_config = generation_config
        answer = torch.tensor([[min(ord(c), 250) + 3 for c in ANSWER] + [2]])
        sequences = torch.cat([input_ids, answer.to(input_ids.device)], dim=1)
        return SimpleNamespace(sequences=sequences) if return_dict_in_generate else sequences
