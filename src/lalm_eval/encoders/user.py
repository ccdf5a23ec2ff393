"""User encoders: a class named by ``pkg.module:Class`` or found in a ``.py`` file.

A file is imported under a name made from its sha256 (two files never collide, a changed
file is a new module); its folder is on ``sys.path`` while it is imported, so it may import
modules beside it at import time. The class is instantiated with the spec's ``kwargs``,
checked (:func:`lalm_eval.encoders.check_encoder`), frozen (eval mode, ``requires_grad``
False) and wrapped in :class:`UserEncoder`, which runs it under ``torch.no_grad``, keeps it
in eval mode and applies ``options.pool_frames``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from lalm_eval.encoders import EncoderError, EncoderSpec, check_encoder
from lalm_eval.encoders.base import (
    AudioEncoder,
    check_pool_option,
    lengths_to_mask,
    pool_frames,
)
from lalm_eval.hashing import file_sha256

SUFFIX = "Encoder"


def _load_file_module(path: Path):
    if not path.is_file():
        raise EncoderError(f"encoder file {path} does not exist")
    if path.suffix != ".py":
        raise EncoderError(f"encoder file {path} must be a .py file")
    module_name = f"lalm_eval_user_encoder_{path.stem}_{file_sha256(path)[:12]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise EncoderError(f"cannot import encoder file {path}")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise EncoderError(f"importing encoder file {path} failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def encoder_classes_in(module) -> list[type]:
    """Classes defined in ``module`` (not imported into it) whose name ends in Encoder."""
    return sorted((obj for name, obj in vars(module).items()
                   if inspect.isclass(obj) and name.endswith(SUFFIX)
                   and obj.__module__ == module.__name__), key=lambda c: c.__name__)


def load_class(target: str) -> type:
    """``pkg.module:Class`` or a path to a ``.py`` file (exactly one ``*Encoder`` class)."""
    text = target.strip()
    looks_like_file = text.endswith(".py") or "/" in text or "\\" in text
    if ":" in text and not looks_like_file:
        module_name, _, class_name = text.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise EncoderError(f"cannot import encoder module {module_name!r} "
                               f"({type(exc).__name__}: {exc})") from exc
        cls = getattr(module, class_name, None)
        if not inspect.isclass(cls):
            raise EncoderError(f"encoder module {module_name!r} has no class {class_name!r}")
        return cls
    if not looks_like_file:
        raise EncoderError(f"encoder {target!r}: give 'pkg.module:Class' or a path to a .py "
                           "file")
    path = Path(text).expanduser().resolve()
    module = _load_file_module(path)
    found = encoder_classes_in(module)
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        others = sorted(name for name, obj in vars(module).items()
                        if inspect.isclass(obj) and obj.__module__ == module.__name__
                        and not name.endswith(SUFFIX))
        also = f"; other classes defined there: {', '.join(others)}" if others else ""
        raise EncoderError(f"encoder file {path} must define exactly one class whose name ends "
                           f"in '{SUFFIX}'; found {len(found)}: {names}{also}")
    return found[0]


class UserEncoder(AudioEncoder):
    """A checked user encoder, frozen and run under no_grad (see the module docstring)."""

    def __init__(self, inner: nn.Module, spec: EncoderSpec):
        super().__init__()
        self.inner = inner
        self.spec = spec
        self.name = spec.name
        self.label = spec.label
        self.pool = check_pool_option(spec)
        self.output_dim = int(inner.output_dim)
        self.n_layers = int(getattr(inner, "n_layers", 1))
        rate = getattr(inner, "frame_rate", None)
        self.frame_rate = (float(rate) / self.pool) if isinstance(rate, int | float) else None
        for param in self.parameters():
            param.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> UserEncoder:
        return super().train(False)

    def _pool(self, layers: list[Tensor], out_mask: Tensor | None) -> tuple[list[Tensor],
                                                                            Tensor | None]:
        if self.pool <= 1:
            return list(layers), out_mask
        batch, frames = layers[0].shape[:2]
        lengths = ((out_mask != 0).sum(-1).long().cpu() if out_mask is not None
                   else torch.full((batch,), frames, dtype=torch.long))
        pooled, new_lengths = pool_frames(list(layers), lengths, self.pool)
        return pooled, lengths_to_mask(new_lengths, pooled[0].shape[1]).to(layers[0].device)

    def forward_layers(self, audio: Tensor, mask: Tensor | None = None
                       ) -> tuple[list[Tensor], Tensor | None]:
        with torch.no_grad():
            if hasattr(self.inner, "forward_layers"):
                layers, out_mask = self.inner.forward_layers(audio, mask)
            else:
                feats, out_mask = self.inner(audio, mask)
                layers = [feats]
            return self._pool(list(layers), out_mask)

    def forward(self, audio: Tensor, mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor | None]:
        with torch.no_grad():
            if self.pool <= 1:
                return self.inner(audio, mask)
            feats, out_mask = self.inner(audio, mask)
            layers, out_mask = self._pool([feats], out_mask)
            return layers[0], out_mask


def build_user_encoder(spec: EncoderSpec, *, check: bool = True) -> UserEncoder:
    """Instantiate, check and wrap the encoder of a ``file`` or ``module`` spec."""
    target = spec.path if spec.kind == "file" else spec.target
    try:
        cls = load_class(str(target))
    except EncoderError as exc:
        raise EncoderError(f"{spec.label}: {exc}") from exc
    try:
        inner = cls(**spec.kwargs)
    except Exception as exc:
        raise EncoderError(f"{spec.label}: {cls.__name__}(**kwargs) raised "
                           f"{type(exc).__name__}: {exc}") from exc
    if check:
        check_encoder(inner, name=spec.name)
    inner.eval()
    for param in inner.parameters():
        param.requires_grad_(False)
    return UserEncoder(inner, spec)
