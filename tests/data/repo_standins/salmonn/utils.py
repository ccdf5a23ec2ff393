"""Stand-in for bytedance/SALMONN (branch salmonn, a58bba7) ``utils.py`` (not its code):
``prepare_one_sample(wav_path, wav_processor, cuda_enabled=True)``: the file read with
soundfile, padded to 1 s and cut at 30 s, the Whisper feature extractor's ``input_features``,
the keys ``spectrogram``, ``raw_wav`` and ``padding_mask``, moved to CUDA when enabled."""

import numpy as np
import soundfile as sf
import torch


def prepare_one_sample(wav_path, wav_processor, cuda_enabled=True):
    audio, sr = sf.read(wav_path)
    if len(audio.shape) == 2:
        audio = audio[:, 0]
    if len(audio) < sr:
        audio = np.concatenate((audio, np.zeros(sr - len(audio), dtype=float)), axis=0)
    audio = audio[: sr * 30]
    spectrogram = wav_processor(audio, sampling_rate=sr, return_tensors="pt")["input_features"]
    samples = {
        "spectrogram": spectrogram,
        "raw_wav": torch.from_numpy(audio).unsqueeze(0),
        "padding_mask": torch.zeros(len(audio), dtype=torch.bool).unsqueeze(0),
    }
    if cuda_enabled:
        samples = {k: v.cuda() for k, v in samples.items()}
    return samples
