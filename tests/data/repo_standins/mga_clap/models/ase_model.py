"""Stand-in for Ming-er/MGA-CLAP@887b624 ``models/ase_model.py`` (not its code).

Mirrors: the module-level ``from tools.utils import *`` (``ase_model.py:14``, which pulls in
wandb, loguru, sentence_transformers and sed_scores_eval) and ``from tools.losses import ...``;
``Sparsemax.forward(self, input, device='cuda')`` building its ``torch.arange`` on that device
whatever the input's; ``Modality_Shared_Codebook.forward(feats, codebook, mask=None)``;
``ASE(config)`` with ``encode_audio(audio) -> (audio_feats, frame_embeds)``,
``encode_text(text) -> (text_feats, word_embeds, attn_mask)``, ``codebook`` and ``msc``; a BERT
text encoder whose ``embeddings.position_ids`` is a non-persistent buffer, as in transformers
>= 4.31 (MGA-CLAP's checkpoint was saved with it as a key).
"""

import torch
from tools.losses import AudioTextContrastiveLoss_HN
from tools.utils import *  # noqa: F403
from torch import nn


class Sparsemax(nn.Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, input, device='cuda'):
        ranks = torch.arange(1, input.size(self.dim) + 1, device=device, dtype=input.dtype)
        return torch.softmax(input + 0.0 * ranks, dim=self.dim)


class Modality_Shared_Codebook(nn.Module):
    def __init__(self, code_dim, T=1.0):
        super().__init__()
        self.attn_activation = Sparsemax(dim=-1)
        self.T = T

    def forward(self, feats, codebook, mask=None):
        attn = feats @ codebook.t()
        if mask is not None:
            attn = attn * mask.unsqueeze(-1)
        attn = attn.max(1)[0] / self.T
        return self.attn_activation(attn) @ codebook


class BertEmbeddings(nn.Module):
    def __init__(self, vocab, width):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, width)
        self.register_buffer("position_ids", torch.arange(32).expand((1, -1)), persistent=False)


class TextEncoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config["text_encoder_args"]["type"] == "bert-base-uncased"
        self.text_encoder = nn.Module()
        self.text_encoder.embeddings = BertEmbeddings(64, 4)
        self.text_width = 4

    def forward(self, text):
        ids = torch.tensor([[1 + (sum(map(ord, word)) % 60) for word in t.split()][:8]
                            + [0] * (8 - min(8, len(t.split()))) for t in text])
        ids = ids.to(self.text_encoder.embeddings.word_embeddings.weight.device)
        feats = self.text_encoder.embeddings.word_embeddings(ids)
        return feats, (ids[:, 1:] > 0).long()


class ASE(nn.Module):
    def __init__(self, config):
        super().__init__()
        torch.manual_seed(0)
        self.text_encoder = TextEncoder(config)
        self.frame_proj = nn.Linear(1, config["embed_size"])
        self.word_proj = nn.Linear(self.text_encoder.text_width, config["embed_size"])
        self.codebook = nn.Parameter(torch.randn(16, config["embed_size"]))
        self.msc = Modality_Shared_Codebook(code_dim=config["embed_size"])
        self.atc_loss = AudioTextContrastiveLoss_HN()
        self.device_setting = config["device"]

    def encode_audio(self, audio):
        assert audio.dim() == 2 and audio.shape[0] == 1, tuple(audio.shape)
        frames = audio.reshape(1, -1, 3200).abs().mean(dim=-1, keepdim=True)  # 100 frames/10 s
        frame_embeds = self.frame_proj(frames)
        return frame_embeds.mean(dim=1), frame_embeds

    def encode_text(self, text):
        text_feats, attn_mask = self.text_encoder(text)
        word_embeds = self.word_proj(text_feats[:, 1:, :])
        return text_feats, word_embeds, attn_mask
