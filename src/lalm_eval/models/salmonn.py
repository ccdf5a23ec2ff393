"""SALMONN through its own repository code (bytedance/SALMONN, ``models.salmonn``).

Entry example::

    salmonn:
      adapter: salmonn
      source: bytedance/SALMONN                     # an id only (weights come from options)
      sample_rate: 16000
      decoding: {max_new_tokens: 256}
      requires: {repo: bytedance/SALMONN, revision: <commit>, path: <checkout>,
                 checkpoint: <salmonn .pth>}
      options: {config: <decode_config.yaml>, llama_path: ..., whisper_path: ...,
                beats_path: ..., device: auto}

The prompt is SALMONN's template around ``<Speech><SpeechHere></Speech>`` and the instruction;
decoding goes through the ``generate`` config mapping its ``generate`` reads. Shared rules are
those of :mod:`lalm_eval.models.external_common`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from lalm_eval.answers.families import clean_answer
from lalm_eval.models.base import ModelEntry, ModelError, Request
from lalm_eval.models.decoding import Decoding
from lalm_eval.models.external_common import (
    ExternalLALM,
    default_device,
    import_package,
    import_upstream,
    join_nonempty,
)

SALMONN_TEMPLATE = "USER: {}\nASSISTANT:"


def salmonn_prompt(prompt: str, system: str | None = None,
                   template: str = SALMONN_TEMPLATE) -> str:
    """SALMONN prompt: the speech placeholder, then the instruction, inside the template."""
    text = join_nonempty(system, prompt.strip() if prompt else None)
    if not text:
        raise ValueError("SALMONN needs an instruction")
    return template.format("<Speech><SpeechHere></Speech> " + text)


def salmonn_generate_cfg(decoding: Decoding) -> dict[str, Any]:
    """The ``generate`` config mapping SALMONN's ``generate(samples, cfg, prompts)`` reads."""
    return {
        "max_new_tokens": decoding.max_new_tokens,
        "num_beams": decoding.num_beams,
        "do_sample": decoding.sampling,
        "min_length": 1,
        "temperature": decoding.temperature if decoding.sampling else 1.0,
        "top_p": decoding.top_p if decoding.top_p is not None else (0.9 if decoding.sampling
                                                                   else 1.0),
        "repetition_penalty": decoding.repetition_penalty or 1.0,
        "length_penalty": 1.0,
    }


class _SalmonnRunner:
    """SALMONN (bytedance/SALMONN main): ``SALMONN.from_config`` + ``prepare_one_sample``."""

    def __init__(self, entry: ModelEntry, repo: str) -> None:
        import yaml

        root = Path(entry.requires["path"]) if (entry.requires or {}).get("path") else None
        config_path = entry.options.get("config") or (root / "configs" / "decode_config.yaml"
                                                       if root else None)
        if not config_path or not Path(config_path).is_file():
            raise ModelError(f"models.{entry.name}: options.config must name SALMONN's decode "
                             "config (or requires.path a checkout that has configs/)")
        config = yaml.safe_load(Path(config_path).read_text())
        model_cfg = dict(config["model"])
        for key in ("llama_path", "whisper_path", "beats_path", "ckpt"):
            if entry.options.get(key):
                model_cfg[key] = entry.options[key]
        if (entry.requires or {}).get("checkpoint"):
            model_cfg["ckpt"] = entry.requires["checkpoint"]
        self.template = model_cfg.get("prompt_template") or SALMONN_TEMPLATE
        salmonn = import_upstream("models.salmonn", entry, repo)
        utils = import_upstream("utils", entry, repo)
        transformers = import_package("transformers", entry, "pip install transformers")
        self.torch = import_package("torch", entry, "pip install torch")
        self.device = default_device(entry)
        self.model = salmonn.SALMONN.from_config(model_cfg).to(self.device).eval()
        self.processor = transformers.WhisperFeatureExtractor.from_pretrained(
            model_cfg["whisper_path"])
        self.prepare_one_sample = utils.prepare_one_sample

    def generate(self, wav_path: str, prompts: list[str], generate_cfg: dict[str, Any]
                 ) -> list[str]:
        cuda = self.device.startswith("cuda")
        samples = self.prepare_one_sample(wav_path, self.processor, cuda_enabled=cuda)
        context = (self.torch.autocast("cuda", dtype=self.torch.float16) if cuda
                   else contextlib.nullcontext())
        with context, self.torch.no_grad():
            return self.model.generate(samples, generate_cfg, prompts=prompts)


class SalmonnModel(ExternalLALM):
    """SALMONN-7B/13B from the bytedance/SALMONN repository (needs its checkout and weights).

    Prompts are ``prompt_template.format("<Speech><SpeechHere></Speech> " + instruction)``
    and decoding goes through the ``generate`` config mapping. Options: ``config`` (decode
    config YAML), ``llama_path``, ``whisper_path``, ``beats_path``, ``ckpt``, ``device``.
    Upstream ``generate`` builds its stopping criterion on CUDA.
    """

    upstream_repo = "bytedance/SALMONN"
    default_prompts = {"transcribe": "Recognize the speech and give me the transcription.",
                       "caption": "Please describe the audio in detail."}

    def _load(self) -> None:
        self._check_allowed()
        self._client = _SalmonnRunner(self.entry, self.upstream_repo)

    def _run(self, request: Request, audio_path: str | None) -> tuple[str, int | None]:
        if not audio_path:
            raise ValueError("SALMONN needs audio")
        template = getattr(self._client, "template", SALMONN_TEMPLATE)
        prompt = salmonn_prompt(self.prompt_for(request) or "", self.system_for(request),
                                template)
        outputs = self._client.generate(audio_path, [prompt],
                                        salmonn_generate_cfg(self.decoding))
        return clean_answer(outputs[0], "salmonn"), None  # LLaMA sentence markers removed
