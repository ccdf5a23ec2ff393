"""Stand-in for msclap 1.3.4 ``msclap/CLAPWrapper.py`` (microsoft/CLAP), not its code:
``CLAPWrapper(model_fp=None, version='2023', use_cuda=False)`` (the version check, the hub
download when no ``model_fp``, refused here), ``get_text_embeddings(class_labels)``,
``get_audio_embeddings(audio_files, resample=True)`` and ``clap.logit_scale``. The real one
moves the model to CUDA only when ``use_cuda and torch.cuda.is_available()``."""

import math
from types import SimpleNamespace

import soundfile as sf
import torch


class CLAPWrapper:
    model_name = {"2022": "CLAP_weights_2022.pth", "2023": "CLAP_weights_2023.pth",
                  "clapcap": "clapcap_weights_2023.pth"}
    instances: list = []

    def __init__(self, model_fp=None, version='2023', use_cuda=False):
        if version not in self.model_name:
            raise ValueError(f"The version {version} is not supported.")
        if not model_fp:
            raise RuntimeError("stand-in: CLAPWrapper would hf_hub_download the weights")
        self.model_fp = model_fp
        self.use_cuda = use_cuda
        self.clap = SimpleNamespace(logit_scale=torch.tensor(math.log(10.0)))
        CLAPWrapper.instances.append(self)

    def get_text_embeddings(self, class_labels):
        return torch.tensor([[1.0, float("dog" in t), float("rain" in t)] for t in class_labels])

    def get_audio_embeddings(self, audio_files, resample=True):
        for path in audio_files:
            sf.info(path)
        return torch.tensor([[0.5, 1.0, 0.0] for _ in audio_files])
