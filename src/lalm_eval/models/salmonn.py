"""SALMONN through its own repository code (bytedance/SALMONN, ``models.salmonn``).

Entry example::

    salmonn:
      adapter: salmonn
      source: bytedance/SALMONN                     # an id only (weights come from options)
      sample_rate: 16000
      requires: {repo: bytedance/SALMONN, revision: a58bba7, path: <checkout>,
                 checkpoint: <salmonn .pth>, note: "branch salmonn"}
      options: {config: <decode_config.yaml>, llama_path: ..., whisper_path: ...,
                beats_path: ..., device: auto}

The prompt is SALMONN's template around ``<Speech><SpeechHere></Speech>`` and the instruction;
decoding goes through the ``generate`` config mapping its ``generate`` reads. Shared rules are
those of :mod:`lalm_eval.models.external_common`.

Checked against bytedance/SALMONN, branch ``salmonn`` (a58bba7):

* ``main`` was emptied by b50bcd1 ("clean main"); the code is on branch ``salmonn``. A
  checkout without ``models/salmonn.py`` is refused with the commands that fetch a58bba7.
* ``configs/decode_config.yaml:45`` gives ``prompt_path: "prompts/train_prompt.json"``,
  which ``SALMONN.__init__`` opens relative to the working directory
  (``models/salmonn.py:208-213``): relative ``prompt_path`` / ``test_prompt_path`` are
  resolved against the checkout before ``SALMONN.from_config`` sees them.
* Decoding: upstream decodes with the decode config's ``generate`` section (``num_beams: 4``
  at ``decode_config.yaml:52``, ``max_new_tokens: 200``). The adapter starts from that section
  and overrides only the keys the entry's ``decoding`` sets: beam search with 4 beams unless
  the entry says otherwise (docs/models.md).
* ``SALMONN.generate(samples, generate_cfg, prompts=None)`` builds its stop criterion with
  ``.cuda()``: it runs on a GPU only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from lalm_eval.answers.families import clean_answer
from lalm_eval.models.base import ModelEntry, ModelError, Request
from lalm_eval.models.decoding import Decoding
from lalm_eval.models.external_common import (
    ExternalLALM,
    checkout_commands,
    default_device,
    import_package,
    import_upstream,
    join_nonempty,
    require_checkout,
)

SALMONN_TEMPLATE = "USER: {}\nASSISTANT:"
#: the commit of branch ``salmonn`` the adapter was checked against
SALMONN_REVISION = "a58bba7"
#: decode-config keys that name files of the checkout (opened relative to the working dir)
CHECKOUT_RELATIVE_KEYS = ("prompt_path", "test_prompt_path")
#: entry ``decoding`` key -> the ``generate`` config keys it sets
_DECODING_TO_CFG = {"max_new_tokens": ("max_new_tokens",), "max_tokens": ("max_new_tokens",),
                    "num_beams": ("num_beams",), "do_sample": ("do_sample", "temperature"),
                    "temperature": ("do_sample", "temperature"), "top_p": ("top_p",),
                    "repetition_penalty": ("repetition_penalty",)}


def salmonn_prompt(prompt: str, system: str | None = None,
                   template: str = SALMONN_TEMPLATE) -> str:
    """SALMONN prompt: the speech placeholder, then the instruction, inside the template."""
    text = join_nonempty(system, prompt.strip() if prompt else None)
    if not text:
        raise ValueError("SALMONN needs an instruction")
    return template.format("<Speech><SpeechHere></Speech> " + text)


def salmonn_generate_cfg(decoding: Decoding, upstream: Mapping[str, Any] | None = None,
                         given: Collection[str] = ()) -> dict[str, Any]:
    """The ``generate`` config mapping SALMONN's ``generate(samples, cfg, prompts)`` reads.

    Without ``upstream``: every value from ``decoding``. With ``upstream`` (the decode
    config's ``generate`` section): its values, overridden by the ``decoding`` values of the
    keys the entry sets (``given``, the entry's ``decoding`` keys)."""
    ours = {
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
    if upstream is None:
        return ours
    cfg = {**ours, **dict(upstream)}
    for key in given:
        for cfg_key in _DECODING_TO_CFG.get(key, ()):
            cfg[cfg_key] = ours[cfg_key]
    return cfg


def resolve_checkout_paths(model_cfg: dict[str, Any], root: Path) -> dict[str, Any]:
    """``prompt_path``-like keys made absolute against the checkout (upstream opens them
    relative to the working directory, models/salmonn.py:208-213)."""
    out = dict(model_cfg)
    for key in CHECKOUT_RELATIVE_KEYS:
        value = out.get(key)
        if value and not Path(value).is_absolute():
            out[key] = str(root / value)
    return out


class _SalmonnRunner:
    """SALMONN (branch salmonn): ``SALMONN.from_config`` + ``utils.prepare_one_sample``, as
    its ``cli_inference.py`` does."""

    def __init__(self, entry: ModelEntry, repo: str) -> None:
        import yaml

        root = require_checkout(entry, repo, "it has no package metadata; models.salmonn and "
                                "utils are top-level modules of the repository")
        if not (root / "models" / "salmonn.py").is_file():
            raise ModelError(
                f"models.{entry.name}: {root} has no models/salmonn.py: bytedance/SALMONN's "
                "main branch was emptied by b50bcd1 ('clean main'); the code is on branch "
                f"salmonn ({SALMONN_REVISION}). Set requires.revision: {SALMONN_REVISION} and "
                f"run: {checkout_commands(entry, repo, str(root))}")
        config_path = Path(entry.options.get("config") or root / "configs" / "decode_config.yaml")
        if not config_path.is_file():
            raise ModelError(f"models.{entry.name}: options.config {str(config_path)!r} is not "
                             "SALMONN's decode config (configs/decode_config.yaml)")
        config = yaml.safe_load(config_path.read_text())
        model_cfg = dict(config["model"])
        for key in ("llama_path", "whisper_path", "beats_path", "ckpt"):
            if entry.options.get(key):
                model_cfg[key] = entry.options[key]
        if (entry.requires or {}).get("checkpoint"):
            model_cfg["ckpt"] = entry.requires["checkpoint"]
        model_cfg = resolve_checkout_paths(model_cfg, root)
        self.template = model_cfg.get("prompt_template") or SALMONN_TEMPLATE
        #: the decode config's ``generate`` section (upstream's decoding)
        self.generate_defaults = dict(config.get("generate") or {})
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
    and decoding goes through the ``generate`` config mapping: the decode config's
    ``generate`` section (4 beams, 200 new tokens) overridden by the keys the entry's
    ``decoding`` sets. Options: ``config`` (decode config YAML), ``llama_path``,
    ``whisper_path``, ``beats_path``, ``ckpt``, ``device``. Upstream ``generate`` builds its
    stopping criterion on CUDA.
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
        upstream = getattr(self._client, "generate_defaults", None)
        cfg = salmonn_generate_cfg(self.decoding, upstream, given=tuple(self.entry.decoding))
        outputs = self._client.generate(audio_path, [prompt], cfg)
        return clean_answer(outputs[0], "salmonn"), None  # LLaMA sentence markers removed
