"""Stand-in for YuanGongND/ltu@bd646a4 ``src/ltu_as/whisper/whisper/model.py`` (not its code):
``ModelDimensions`` (its ten fields), ``Whisper(dims)`` and ``Whisper.transcribe_audio(audio)``
(``transcribe.py``: the mel padded or trimmed to 1000 frames, 10 s, then every encoder layer's
output: ``(mel, all_x)`` with ``all_x`` of shape ``[1, 500, n_audio_state, n_audio_layer + 1]``)."""

from dataclasses import dataclass

import soundfile as sf
import torch
from torch import nn


@dataclass
class ModelDimensions:
    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


class Whisper(nn.Module):
    def __init__(self, dims: ModelDimensions, label_dim=1):
        super().__init__()
        self.dims = dims
        self.scale = nn.Parameter(torch.ones(1))

    def transcribe_audio(self, audio, **decode_options):
        samples, rate = sf.read(audio, dtype="float32")
        assert rate == 16000, rate
        samples = torch.from_numpy(samples)[: 10 * rate]
        samples = torch.nn.functional.pad(samples, (0, 10 * rate - samples.shape[0]))
        frames = samples.reshape(500, -1).abs().mean(dim=1)  # 500 encoder frames for 10 s
        layers = self.dims.n_audio_layer + 1
        all_x = frames[:, None, None] * torch.ones(500, self.dims.n_audio_state, layers)
        return samples, (all_x * self.scale).unsqueeze(0)
