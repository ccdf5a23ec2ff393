"""Lazy adapter registry: names map to "module:Class" strings, imported only when used."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

from lalm_eval.models.base import AudioModel, ModelEntry, ModelError

#: adapter name -> "module:Class". Adding a model family is one line here plus its module.
ADAPTERS: dict[str, str] = {
    # offline-capable (weights inside packages for the demo; hub ids in full runs)
    "faster_whisper": "lalm_eval.models.whisper_ct2:FasterWhisperModel",
    "yamnet": "lalm_eval.models.yamnet:YamnetModel",
    "silero_vad": "lalm_eval.models.silero_vad:SileroVAD",
    "sentence_transformers": "lalm_eval.models.text_embedding:SentenceTransformerEmbedder",
    "hf_causal_lm": "lalm_eval.models.hf_text_llm:TransformersTextLLM",
    "llama_cpp": "lalm_eval.models.llama_cpp:LlamaCppTextLLM",
    "description_captioner": "lalm_eval.models.cascade:DescriptionCaptioner",
    "cascade": "lalm_eval.models.cascade:CascadeModel",
    # LALMs this workflow trains (rule train_<model>; lalm_eval.training)
    "trained_lalm": "lalm_eval.models.trained_lalm:TrainedLALM",
    # transformers LALMs and baselines (full runs)
    "qwen2_audio": "lalm_eval.models.qwen_audio:Qwen2AudioModel",
    "qwen2_5_omni": "lalm_eval.models.qwen_omni:Qwen25OmniModel",
    "audio_flamingo3": "lalm_eval.models.audio_flamingo:AudioFlamingo3Model",
    "hf_whisper": "lalm_eval.models.hf_whisper:HFWhisperModel",
    "hf_clap": "lalm_eval.models.clap:HFClapModel",
    # models that need their own repository code or package (full runs)
    "ms_clap": "lalm_eval.models.clap_external:MSClapModel",
    "mga_clap": "lalm_eval.models.clap_external:MGAClapModel",
    "kimi_audio": "lalm_eval.models.kimi_audio:KimiAudioModel",
    "step_audio2": "lalm_eval.models.step_audio:StepAudio2Model",
    "salmonn": "lalm_eval.models.salmonn:SalmonnModel",
    "ltu_as": "lalm_eval.models.ltu:LtuAsModel",
    "desta25": "lalm_eval.models.desta:Desta25Model",
    # serving backends for text LLMs and judges (and LALMs where the server supports audio)
    "vllm": "lalm_eval.models.vllm_backend:VLLMModel",
    "openai_http": "lalm_eval.models.openai_http:OpenAICompatibleModel",
}


def register(name: str, target: str) -> None:
    """Register an adapter under ``name`` (``target`` is "package.module:ClassName")."""
    if ":" not in target:
        raise ValueError(f"adapter target {target!r} must look like 'module:Class'")
    ADAPTERS[name] = target


def adapter_class(name: str) -> type[AudioModel]:
    """Import and return the adapter class registered as ``name``."""
    if name not in ADAPTERS:
        close = difflib.get_close_matches(name, list(ADAPTERS), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ModelError(
            f"unknown adapter {name!r} (known: {', '.join(sorted(ADAPTERS))}){hint}"
        )
    module_name, _, class_name = ADAPTERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"adapter {name!r} needs a package that is not installed ({exc}); "
            "install the project's model extras or the package named in the model entry"
        ) from exc
    try:
        cls = getattr(module, class_name)
    except AttributeError as exc:
        raise ModelError(f"adapter {name!r}: {module_name} has no class {class_name}") from exc
    return cls


def allowed_options(name: str) -> frozenset[str] | None:
    """The ``options`` keys adapter ``name`` accepts (None: free-form, not checked).

    Reads the class attribute ``option_keys`` (or ``allowed_options()``), so it imports the
    adapter's module; adapter modules import no heavy library (torch, transformers, ...)
    at import time, which keeps this cheap enough for config validation."""
    return adapter_class(name).allowed_options()


def build_model(name: str, models: Mapping[str, dict[str, Any]]) -> AudioModel:
    """Instantiate (not load) ``models[name]``; composite adapters (the cascade) build their
    components from the same ``models`` mapping."""
    if name not in models:
        close = difflib.get_close_matches(name, list(models), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ModelError(f"no model named {name!r} under models{hint}")
    entry = ModelEntry.from_config(name, models[name])
    return adapter_class(entry.adapter)(entry, models)
