"""Shared parts of the adapters for LALMs that need their own package or repository code.

Kimi-Audio (:mod:`~lalm_eval.models.kimi_audio`), Step-Audio 2
(:mod:`~lalm_eval.models.step_audio`), SALMONN (:mod:`~lalm_eval.models.salmonn`), LTU-AS
(:mod:`~lalm_eval.models.ltu`) and DeSTA2.5-Audio (:mod:`~lalm_eval.models.desta`) each ship an
inference API of their own instead of a transformers class. Each adapter subclasses
:class:`ExternalLALM`, which turns a :class:`Request` into that API's call: it writes the audio
to a temporary 16-bit WAV when the API takes file paths (removed afterwards), passes our
decoding settings (:class:`~lalm_eval.models.decoding.Decoding`; greedy unless the entry says
otherwise) and maps the answer back to a :class:`Response`.

Rules shared by every such adapter (helpers in this module, the audio and import helpers also
used by the CLAP and serving adapters):

* Heavy or optional packages are imported inside ``_load`` only. A missing one raises
  :class:`ModelError` naming the module, the entry's ``requires`` (repository and pinned
  revision) and how to install it.
* Repository code runs only when ``requires.repo`` names that repository (with a pinned
  ``requires.revision``) or ``trust_remote_code`` is true. Adapters whose upstream code also
  executes Hugging Face remote code or ``torch.hub`` code need ``trust_remote_code: true``.
* ``requires`` keys: ``repo`` (owner/name), ``revision`` (commit), optional ``path`` (a
  checkout; put on ``sys.path`` and, when it is a git checkout, checked against
  ``revision``), optional ``checkpoint`` (a weights file, where the adapter needs one).
  Adapters whose upstream code has no package metadata (Step-Audio 2, SALMONN, LTU-AS,
  MGA-CLAP) need ``path`` (:func:`require_checkout`; the error gives the exact ``git``
  commands). A module imported for a checkout must come from that checkout: one shadowed by
  another installed copy is refused (:func:`import_upstream`).
* Hub weights are fetched at the entry's ``revision`` by us (:func:`resolve_model_path`) and
  the upstream loader gets the local folder: several upstream loaders download without a
  revision (DeSTA2.5's ``from_pretrained``, Kimi-Audio's ``snapshot_download``).
* Each family runs in its own conda environment (:mod:`lalm_eval.models.environments`).
* One bad item gives ``Response.failed``; the batch goes on.

Test seam: ``_load`` sets ``self._client`` to the upstream object (or a small runner around
it). Tests set ``_client`` to a stand-in with the same call surface and mark the model loaded
(``_loaded = True``); everything else (messages, decoding, post-processing) is the real path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import soundfile as sf

from lalm_eval.answers.families import clean_answer
from lalm_eval.models.base import AudioModel, ModelEntry, ModelError, Request, Response, check_batch
from lalm_eval.models.decoding import decoding_from

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# audio
# --------------------------------------------------------------------------------------------


def _pcm_ready(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"audio must be non-empty mono samples, got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("audio contains NaN or infinite samples")
    return np.clip(samples, -1.0, 1.0)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float audio as a 16-bit PCM WAV file."""
    sf.write(str(path), _pcm_ready(audio), int(sample_rate), format="WAV", subtype="PCM_16")


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono float audio as the bytes of a 16-bit PCM WAV file."""
    buffer = io.BytesIO()
    sf.write(buffer, _pcm_ready(audio), int(sample_rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@contextlib.contextmanager
def audio_file(request: Request, sample_rate: int | None,
               tmp_dir: str | None = None) -> Iterator[str | None]:
    """Yield a WAV path for the request's audio (a temporary file, removed on exit).

    The samples the engine loaded (``request.audio``, already at the adapter's rate) are
    preferred over ``request.audio_path``; yields None when the request has no audio.
    """
    if request.audio is None:
        yield request.audio_path
        return
    fd, name = tempfile.mkstemp(prefix="lalm_eval_", suffix=".wav", dir=tmp_dir)
    os.close(fd)
    try:
        write_wav(name, request.audio, sample_rate or 16000)
        yield name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


# --------------------------------------------------------------------------------------------
# requirements and remote code
# --------------------------------------------------------------------------------------------


def requirement_label(entry: ModelEntry) -> str:
    """'owner/repo@revision' from ``entry.requires`` (or a note that there is none)."""
    req = entry.requires or {}
    if not req.get("repo"):
        return "no requires entry"
    return f"{req['repo']}@{req.get('revision') or 'UNPINNED'}"


def install_hint(entry: ModelEntry, repo: str, pip_name: str | None = None) -> str:
    """How to install an upstream repository at the pinned revision."""
    revision = (entry.requires or {}).get("revision") or "<commit>"
    hint = (f"clone https://github.com/{repo} and check out {revision}, then set "
            f"models.{entry.name}.requires.path to the checkout (or pip install -e it)")
    if pip_name:
        hint += f"; or: pip install {pip_name}"
    return hint


def checkout_commands(entry: ModelEntry, repo: str, dest: str | None = None) -> str:
    """The shell commands that make the pinned checkout ``requires.path`` should name.

    The commit is fetched by its id (``git fetch origin <commit>``), so a pin that is no
    longer on the default branch (Kimi-Audio's faedaac) or lives on another branch
    (SALMONN's ``salmonn`` branch) is found too; GitHub serves any commit of the repository
    by its full id.
    """
    req = entry.requires or {}
    revision = req.get("revision") or "<commit>"
    dest = dest or req.get("path") or f"resources/code/{repo.split('/')[-1]}"
    return (f"git clone https://github.com/{repo} {dest} && "
            f"git -C {dest} fetch origin {revision} && git -C {dest} checkout {revision}")


def require_checkout(entry: ModelEntry, repo: str, why: str) -> Path:
    """``requires.path`` as a directory, or ModelError saying exactly how to make it.

    ``why`` says why the adapter cannot do without a checkout (no package metadata, top-level
    imports, ...)."""
    path = (entry.requires or {}).get("path")
    if path and Path(path).is_dir():
        return Path(path)
    state = (f"requires.path {path!r} is not a directory" if path
             else "the entry has no requires.path")
    raise ModelError(
        f"models.{entry.name}: adapter {entry.adapter!r} imports {repo}'s code from a "
        f"checkout ({why}), but {state}. Make it with: {checkout_commands(entry, repo)} ; "
        f"then set models.{entry.name}.requires.path to that folder "
        f"(requires: {requirement_label(entry)})")


def add_checkout_paths(entry: ModelEntry, subdirs: tuple[str, ...] = ("",)) -> list[str]:
    """Put ``requires.path``/<subdir> folders first on ``sys.path`` (in the order given, the
    first ending up first); returns the folders added. Nothing without ``requires.path``."""
    path = (entry.requires or {}).get("path")
    if not path:
        return []
    folders = [str(Path(path) / sub) if sub else str(path) for sub in subdirs]
    for folder in reversed(folders):
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    return folders


def module_origin(module: ModuleType) -> Path | None:
    """The file (or, for a namespace package, first folder) a module was imported from."""
    file = getattr(module, "__file__", None)
    if file:
        return Path(file).resolve()
    locations = list(getattr(getattr(module, "__spec__", None), "submodule_search_locations",
                             None) or [])
    return Path(locations[0]).resolve() if locations else None


def check_origin(module: ModuleType, entry: ModelEntry, repo: str) -> None:
    """ModelError when ``module`` was not imported from the entry's ``requires.path``."""
    path = (entry.requires or {}).get("path")
    origin = module_origin(module)
    if not path or origin is None:
        return
    root = Path(path).resolve()
    if origin != root and root not in origin.parents:
        raise ModelError(
            f"models.{entry.name}: {module.__name__!r} was imported from {origin}, not from "
            f"the checkout {root} of {repo} (requires: {requirement_label(entry)}); another "
            "copy of that module shadows it: uninstall it from the model's environment")


@contextlib.contextmanager
def working_directory(path: str | Path) -> Iterator[Path]:
    """Run the block in ``path`` (created if needed), then go back."""
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    previous = os.getcwd()
    os.chdir(target)
    try:
        yield target
    finally:
        os.chdir(previous)


def scratch_dir(entry: ModelEntry) -> Path:
    """Where upstream code may write files of its own (logs): ``options.scratch_dir``, else
    ``$LALM_EVAL_CACHE/scratch/<model>``."""
    from lalm_eval.models.sources import cache_root

    given = entry.options.get("scratch_dir")
    return Path(given) if given else cache_root() / "scratch" / entry.name


_DTYPES = {"float16": "float16", "fp16": "float16", "half": "float16",
           "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float32": "float32", "fp32": "float32", "float": "float32"}


def torch_dtype(entry: ModelEntry, torch: Any, device: str, cuda_default: str = "float16"
                ) -> Any:
    """``options.dtype`` as a torch dtype; "auto" (default): ``cuda_default`` on CUDA,
    float32 elsewhere."""
    name = str(entry.options.get("dtype", "auto")).lower()
    if name == "auto":
        name = cuda_default if device.startswith("cuda") else "float32"
    if name not in _DTYPES:
        raise ModelError(f"models.{entry.name}: options.dtype must be auto or one of "
                         f"{sorted(set(_DTYPES.values()))}, got {name!r}")
    return getattr(torch, _DTYPES[name])


def git_head(path: str | Path) -> str | None:
    """Commit checked out in a git working tree, or None when it cannot be read."""
    git_dir = Path(path) / ".git"
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head.lower()
    ref = head.partition(":")[2].strip()
    with contextlib.suppress(OSError):
        return (git_dir / ref).read_text().strip().lower()
    with contextlib.suppress(OSError):
        for line in (git_dir / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref:
                return sha.lower()
    return None


def check_repository_code(entry: ModelEntry, repo: str) -> None:
    """Allow code from ``repo`` only when the entry names it (pinned) or trusts remote code."""
    req = entry.requires or {}
    named = str(req.get("repo", "")).casefold() == repo.casefold()
    if not (named or entry.trust_remote_code):
        raise ModelError(
            f"models.{entry.name}: adapter {entry.adapter!r} runs code from the {repo} "
            f"repository; allow it with requires: {{repo: {repo}, revision: <commit>}} "
            "(or trust_remote_code: true)")
    if named and not req.get("revision"):
        raise ModelError(f"models.{entry.name}: requires.revision must pin the commit of {repo}")
    path = req.get("path")
    if named and path:
        if not Path(path).is_dir():
            raise ModelError(f"models.{entry.name}: requires.path {path!r} is not a directory; "
                             f"make the checkout with: {checkout_commands(entry, repo)}")
        head = git_head(path)
        revision = str(req["revision"]).lower()
        if head is not None and not head.startswith(revision):
            raise ModelError(
                f"models.{entry.name}: checkout {path} is at {head[:12]}, but requires.revision "
                f"pins {revision}; check out the pinned commit")


def absolute_checkout(entry: ModelEntry) -> ModelEntry:
    """The entry with ``requires.path`` made absolute (against the working directory now), so
    that upstream imports done from another working directory still find the checkout."""
    req = entry.requires or {}
    if not req.get("path") or Path(req["path"]).is_absolute():
        return entry
    return dataclasses.replace(entry, requires={**req,
                                                "path": str(Path(req["path"]).absolute())})


def check_remote_code(entry: ModelEntry, reason: str) -> None:
    """Refuse unless ``trust_remote_code`` is true; ``reason`` says what code would run."""
    if not entry.trust_remote_code:
        raise ModelError(f"models.{entry.name}: {reason}; set trust_remote_code: true to allow it")


def import_upstream(module: str, entry: ModelEntry, repo: str, pip_name: str | None = None,
                    extra_paths: tuple[str, ...] = ()) -> ModuleType:
    """Import an upstream module, the checkout (``requires.path``, then its ``extra_paths``
    subfolders) first on ``sys.path``; with a checkout, the module must come from it."""
    add_checkout_paths(entry, ("", *extra_paths))
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(
            f"models.{entry.name}: cannot import {module!r} ({exc}); it comes from "
            f"{repo} (requires: {requirement_label(entry)}). Install it: "
            f"{install_hint(entry, repo, pip_name)}") from exc
    check_origin(imported, entry, repo)
    return imported


def import_package(module: str, entry: ModelEntry, install: str) -> ModuleType:
    """Import an optional package; ModelError names it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(f"models.{entry.name}: adapter {entry.adapter!r} needs the package "
                         f"{module!r} ({exc}); requires: {requirement_label(entry)}; "
                         f"install: {install}") from exc


def resolve_model_path(entry: ModelEntry) -> str:
    """A local directory for ``entry.source``: itself, or a snapshot at ``entry.revision``."""
    if Path(entry.source).is_dir():
        return entry.source
    hub = import_package("huggingface_hub", entry, "pip install huggingface_hub")
    if entry.revision is None:
        log.warning("models.%s: %s is not pinned to a revision", entry.name, entry.source)
    return str(hub.snapshot_download(entry.source, revision=entry.revision))


def default_device(entry: ModelEntry) -> str:
    """``options.device`` (unless "auto") or cuda when available, else cpu."""
    if entry.options.get("device") and entry.options["device"] != "auto":
        return str(entry.options["device"])
    torch = import_package("torch", entry, "pip install torch")
    return "cuda" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------------------------
# text post-processing
# --------------------------------------------------------------------------------------------


def strip_answer_prefix(text: str, prefixes: tuple[str, ...] | list[str]) -> str:
    """Remove the first matching answer prefix (case-insensitive, leading space ignored)."""
    stripped = text.strip()
    for prefix in prefixes:
        if prefix and stripped.casefold().startswith(prefix.casefold()):
            return stripped[len(prefix):].strip()
    return stripped


def join_nonempty(*parts: str | None, sep: str = "\n") -> str:
    """Join the non-empty parts."""
    return sep.join(p for p in parts if p)


# --------------------------------------------------------------------------------------------
# common adapter
# --------------------------------------------------------------------------------------------


class ExternalLALM(AudioModel):
    """Shared predict loop: per item prompt, temp WAV, upstream call, per-item errors."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"generate", "transcribe", "caption"})
    #: GitHub repository whose code the adapter runs
    upstream_repo: ClassVar[str] = ""
    #: prompt used when neither the request nor ``entry.prompts`` gives one
    default_prompts: ClassVar[dict[str, str]] = {}
    #: system text used when the request gives none
    default_systems: ClassVar[dict[str, str]] = {}
    #: what remote (Hub or torch.hub) code the upstream API executes, if any
    remote_code_reason: ClassVar[str | None] = None
    #: family (``answers/families.yaml``) whose answer clean-up :meth:`postprocess` applies
    answer_family: ClassVar[str | None] = None

    def __init__(self, entry: ModelEntry, models: Mapping[str, dict[str, Any]] | None = None):
        super().__init__(absolute_checkout(entry), models)
        self.decoding = decoding_from(entry.decoding)
        self._client: Any = None

    def _check_allowed(self) -> None:
        check_repository_code(self.entry, self.upstream_repo)
        if self.remote_code_reason:
            check_remote_code(self.entry, self.remote_code_reason)

    def prompt_for(self, request: Request) -> str | None:
        """Request prompt, else the entry's prompt for the task, else the adapter default."""
        return (request.prompt or self.entry.prompts.get(request.task)
                or self.default_prompts.get(request.task))

    def system_for(self, request: Request) -> str | None:
        """Request system text, else the adapter default for the task."""
        return request.system or self.default_systems.get(request.task)

    def postprocess(self, text: str) -> str:
        """The answer family's clean-up (:func:`~lalm_eval.answers.families.clean_answer`);
        an entry's ``options.answer_prefixes`` (literal strings) are cut instead when given."""
        prefixes = self.entry.options.get("answer_prefixes")
        if prefixes is None:
            return clean_answer(text, self.answer_family)
        if isinstance(prefixes, str):
            prefixes = (prefixes,)
        return strip_answer_prefix(text, tuple(prefixes))

    def predict(self, requests: list[Request]) -> list[Response]:
        check_batch(requests, self.capabilities)
        self.load()
        responses = []
        for request in requests:
            try:
                responses.append(self._predict_one(request))
            except Exception as exc:  # one bad item must not fail the batch
                responses.append(Response.failed(f"{type(exc).__name__}: {exc}"))
        return responses

    def _predict_one(self, request: Request) -> Response:
        if request.task in ("transcribe", "caption") and request.audio is None \
                and not request.audio_path:
            raise ValueError(f"a {request.task} request needs audio")
        with audio_file(request, self.sample_rate) as path:
            text, n_tokens = self._run(request, path)
        return Response(text=self.postprocess(text), n_output_tokens=n_tokens)

    def _run(self, request: Request, audio_path: str | None) -> tuple[str, int | None]:
        """Call the upstream API for one request; returns (text, n_output_tokens)."""
        raise NotImplementedError
