"""Shared helpers of the transformers adapters (Qwen2-Audio, Qwen2.5-Omni, AF3, Whisper, CLAP).

What lives here:

* loading: :func:`load_processor_and_model` (processor + model of one entry, used by the
  Whisper and CLAP adapters), built from :func:`load_from_pretrained` and
  :func:`model_kwargs` (which :class:`HFChatAudioModel` uses too); ``source`` resolution
  (through :mod:`lalm_eval.models.sources`: hub id, local folder,
  ``pkg:<package>[/<subpath>]``),
  ``from_pretrained`` keyword arguments (``revision``, ``local_files_only`` when
  ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` is set, ``trust_remote_code`` only when the entry
  allows it), ``dtype``/``device``/``attn_implementation`` options, and the translation of
  loading failures into :class:`ModelError` naming source and revision;
* decoding: the entry's ``decoding`` mapping validated into :class:`GenerationSettings`
  (greedy unless sampling is asked for) and turned into ``generate`` keyword arguments;
* outputs: decoding only the new tokens and counting them;
* robustness: per-item fallback when a whole batch fails, audio sanity checks;
* :class:`HFChatAudioModel`, the common body of the chat-template LALM adapters.

torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lalm_eval.audio import audio_problem
from lalm_eval.models.base import (
    AudioModel,
    ModelEntry,
    ModelError,
    Request,
    Response,
    check_batch,
)
from lalm_eval.models.decoding import DECODING_KEYS as DECODING_KEYS  # re-exported
from lalm_eval.models.decoding import given_fields, parse_decoding

log = logging.getLogger(__name__)

#: options every transformers adapter understands
COMMON_OPTIONS = frozenset({"dtype", "device", "attn_implementation"})
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_MAX_NEW_TOKENS = 256

# --------------------------------------------------------------------------------------------
# options and loading
# --------------------------------------------------------------------------------------------


def check_options(entry_options: Mapping[str, Any], known: frozenset[str] | set[str],
                  name: str) -> None:
    """Raise ModelError for option keys the adapter does not know (typos fail early)."""
    unknown = set(entry_options) - set(known)
    if unknown:
        raise ModelError(f"models.{name}.options: unknown key(s) {sorted(unknown)} "
                         f"(known: {sorted(known)})")


def offline_mode() -> bool:
    """True when the environment forbids hub access (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    from lalm_eval.models.sources import hub_offline

    return hub_offline()


def resolve_model_source(entry: ModelEntry) -> str:
    """What to hand to ``from_pretrained``: a local folder (also for ``pkg:`` sources and, when
    offline, the cached hub snapshot of ``entry.revision``) or a hub id (online). Resolution is
    the project-wide one of :mod:`lalm_eval.models.sources`."""
    from lalm_eval.models.sources import resolve_source

    return str(resolve_source(entry))


def is_local(source: str) -> bool:
    """True when ``source`` (after resolution) is a local folder."""
    return Path(source).is_dir()


def hub_kwargs(entry_source: str, revision: str | None, trust_remote_code: bool) -> dict[str, Any]:
    """``from_pretrained`` keywords shared by models, processors and tokenizers."""
    kwargs: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code)}
    if not is_local(entry_source):
        if revision:
            kwargs["revision"] = revision
        if offline_mode():
            kwargs["local_files_only"] = True
    return kwargs


def resolve_device(value: str | None) -> str:
    """``auto`` → cuda when available, else cpu."""
    import torch

    value = (value or "auto").lower()
    if value not in DEVICES and not value.startswith("cuda:"):
        raise ModelError(f"option device must be one of {DEVICES} (or cuda:N), got {value!r}")
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("option device asks for cuda but torch sees no CUDA device")
    return value


def resolve_dtype(value: str | None, device: str) -> Any:
    """A torch dtype. ``auto`` → float32 on CPU (half precision is slow or unsupported there),
    bfloat16 on a GPU that supports it, else float16."""
    import torch

    value = (value or "auto").lower()
    if value not in DTYPES:
        raise ModelError(f"option dtype must be one of {DTYPES}, got {value!r}")
    if value == "auto":
        if not device.startswith("cuda"):
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, value)


def transformers_class(name: str, provided_by: str) -> Any:
    """``transformers.<name>`` or a ModelError saying which transformers version provides it."""
    import transformers

    cls = getattr(transformers, name, None)
    if cls is None:
        raise ModelError(f"transformers {transformers.__version__} has no {name}; "
                         f"it is provided by transformers {provided_by}")
    return cls


def load_pretrained(loader: Callable[..., Any], source: str, revision: str | None, what: str,
                    name: str, /, **kwargs: Any) -> Any:
    """Call ``loader(source, **kwargs)``; failures become a ModelError that names the source,
    the revision and (offline) how to make the files available."""
    try:
        return loader(source, **kwargs)
    except ModelError:
        raise
    except ImportError as exc:
        raise ModelError(f"models.{name}: loading the {what} of {source!r} needs a package that "
                         f"is not installed: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        where = f"{source!r} (revision {revision or 'default'})"
        hint = ""
        if offline_mode() and not is_local(source):
            hint = ("; HF_HUB_OFFLINE is set, so the files must already be in the local "
                    "Hugging Face cache (download them where the hub is reachable) or the "
                    "entry's source must be a local folder")
        raise ModelError(f"models.{name}: cannot load the {what} from {where}{hint}: "
                         f"{type(exc).__name__}: {exc}") from exc


def check_sample_rate(expected: int | None, model_rate: int | None, name: str) -> None:
    """The entry's sample rate must be the one the model's feature extractor works at."""
    if model_rate is not None and expected is not None and int(expected) != int(model_rate):
        raise ModelError(f"models.{name}: sample_rate {expected} disagrees with the model's "
                         f"feature extractor ({model_rate} Hz); set sample_rate: {model_rate}")


def load_from_pretrained(entry: ModelEntry, source: str, class_name: str, provided_by: str,
                         what: str, /, **kwargs: Any) -> Any:
    """``transformers.<class_name>.from_pretrained(source, **kwargs)`` with the errors of
    :func:`transformers_class` and :func:`load_pretrained` (naming the entry and its
    revision); ``what`` (processor, model, config) is the word the error messages use."""
    cls = transformers_class(class_name, provided_by)
    return load_pretrained(cls.from_pretrained, source, entry.revision, what, entry.name,
                           **kwargs)


def model_kwargs(entry: ModelEntry, hub: Mapping[str, Any], dtype: Any,
                 device_map: str | None = None) -> dict[str, Any]:
    """``from_pretrained`` keywords of a model: ``hub``, ``dtype``, ``device_map`` when given
    and the entry's ``attn_implementation`` option when set."""
    kwargs = dict(hub, dtype=dtype)
    if device_map:
        kwargs["device_map"] = device_map
    if entry.options.get("attn_implementation"):
        kwargs["attn_implementation"] = entry.options["attn_implementation"]
    return kwargs


def load_processor_and_model(entry: ModelEntry, processor_class: str, model_class: str,
                             provided_by: str, device: str, dtype: Any,
                             sample_rate: int | None) -> tuple[Any, Any]:
    """(processor, model) of an entry whose processor has a ``feature_extractor``.

    The source is resolved (:func:`resolve_model_source`), the processor loaded and its
    feature extractor's sampling rate checked against ``sample_rate``
    (:func:`check_sample_rate`), then the model loaded with :func:`model_kwargs`, moved to
    ``device`` and put in eval mode. ``provided_by`` names the transformers release providing
    both classes (for the error message when one is missing).
    """
    source = resolve_model_source(entry)
    hub = hub_kwargs(source, entry.revision, entry.trust_remote_code)
    processor = load_from_pretrained(entry, source, processor_class, provided_by, "processor",
                                     **hub)
    check_sample_rate(sample_rate, processor.feature_extractor.sampling_rate, entry.name)
    model = load_from_pretrained(entry, source, model_class, provided_by, "model",
                                 **model_kwargs(entry, hub, dtype)).to(device)
    model.eval()
    return processor, model


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSettings:
    """Validated decoding settings; greedy (``do_sample`` False) unless sampling is asked for."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    num_beams: int = 1
    repetition_penalty: float | None = None
    seed: int | None = None

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``model.generate``."""
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens,
                                  "do_sample": self.do_sample, "num_beams": self.num_beams}
        if self.do_sample:
            kwargs.update(given_fields(self, "temperature", "top_p", "top_k"))
        kwargs.update(given_fields(self, "repetition_penalty"))
        return kwargs


def _hf_sampling(do_sample: Any, temperature: Any) -> dict[str, Any]:
    temperature = None if temperature is None else float(temperature)
    do_sample = bool(do_sample) if do_sample is not None else bool(temperature)
    if do_sample and not temperature:
        temperature = None  # the model's generation config (or 1.0) decides
    return {"do_sample": do_sample, "temperature": temperature}


def generation_settings(decoding: Mapping[str, Any] | None,
                        default_max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> GenerationSettings:
    """Validate an entry's ``decoding`` mapping (keys, conversions and range checks are those
    of :func:`lalm_eval.models.decoding.parse_decoding`).

    ``do_sample`` decides; when it is absent, a ``temperature`` above 0 means sampling (the
    project-wide convention), anything else greedy. ``max_tokens`` is an alias of
    ``max_new_tokens``.
    """
    return parse_decoding(decoding, GenerationSettings, _hf_sampling,
                          default_max_new_tokens=default_max_new_tokens)


def seed_torch(seed: int | None) -> None:
    """Seed torch (CPU and CUDA) when a decoding seed is configured."""
    if seed is None:
        return
    import torch

    torch.manual_seed(int(seed))


# --------------------------------------------------------------------------------------------
# inputs and outputs
# --------------------------------------------------------------------------------------------


def as_float32(audio: Any) -> np.ndarray:
    """Contiguous float32 mono array."""
    return np.ascontiguousarray(np.asarray(audio, dtype=np.float32))


def to_model_inputs(batch: Mapping[str, Any], device: str, dtype: Any) -> dict[str, Any]:
    """Move tensors to ``device``; floating tensors (audio features) take the model dtype."""
    import torch

    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device)
            if value.is_floating_point():
                value = value.to(dtype)
        out[key] = value
    return out


def stop_token_ids(*candidates: Any) -> set[int]:
    """Flatten eos ids given as ints, lists or None."""
    ids: set[int] = set()
    for candidate in candidates:
        if candidate is None:
            continue
        if isinstance(candidate, int):
            ids.add(candidate)
        else:
            ids.update(int(c) for c in candidate if c is not None)
    return ids


def count_generated(tokens: Sequence[int], stop_ids: set[int]) -> int:
    """Generated tokens up to and including the first stop token (padding after it excluded)."""
    for index, token in enumerate(tokens):
        if int(token) in stop_ids:
            return index + 1
    return len(tokens)


def decode_new_tokens(tokenizer: Any, sequences: Any, prompt_length: int,
                      stop_ids: set[int]) -> list[tuple[str, int]]:
    """(text, number of generated tokens) per row, decoding only what follows the prompt."""
    out = []
    for row in sequences[:, prompt_length:].tolist():
        n = count_generated(row, stop_ids)
        text = tokenizer.decode(row[:n], skip_special_tokens=True)
        out.append((text.strip(), n))
    return out


def run_with_item_fallback(run: Callable[[list[Request]], list[Response]],
                           requests: list[Request]) -> list[Response]:
    """``run(requests)``; if the batch raises, run each request alone so that one bad item
    fails by itself. ModelError (a configuration problem) is not swallowed."""
    if not requests:
        return []
    try:
        responses = run(requests)
        if len(responses) != len(requests):
            raise RuntimeError(f"{len(responses)} responses for {len(requests)} requests")
        return responses
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any model/processor failure
        if len(requests) == 1:
            return [Response.failed(f"{type(exc).__name__}: {exc}")]
        log.warning("batch of %d failed (%s: %s); retrying item by item", len(requests),
                    type(exc).__name__, exc)
    out = []
    for request in requests:
        try:
            out.extend(run([request]))
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001
            out.append(Response.failed(f"{type(exc).__name__}: {exc}"))
    return out


# --------------------------------------------------------------------------------------------
# chat-template LALMs
# --------------------------------------------------------------------------------------------

#: our own wording; entries override with ``prompts: {transcribe: ..., caption: ...}``
DEFAULT_TASK_PROMPTS: dict[str, str] = {
    "transcribe": "Transcribe the speech in this audio exactly, word for word. "
                  "Reply with the transcript only.",
    "caption": "Describe the sounds in this audio in one sentence.",
}


class HFChatAudioModel(AudioModel):
    """Common body of the transformers LALMs driven by a processor chat template.

    Per request: one user turn holding the audio and the text prompt (plus an optional system
    turn), rendered with ``processor.apply_chat_template(..., add_generation_prompt=True,
    tokenize=False)``; the batch is tokenised with left padding together with the audio arrays,
    and only the new tokens are decoded.

    Prompt per task: the request's ``prompt``; else ``entry.prompts[task]``; else (transcribe,
    caption) a default. System text: the request's ``system``; else option ``system_prompt``.

    Subclasses set the class names and may override the hooks ``_load_processor``,
    ``_load_model``, ``_user_content``, ``_processor_kwargs`` and ``_generate``.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({"generate", "transcribe", "caption"})
    default_sample_rate: ClassVar[int | None] = 16000
    model_class_name: ClassVar[str] = ""
    processor_class_name: ClassVar[str] = "AutoProcessor"
    #: transformers release that provides ``model_class_name`` (for the error message)
    provided_by: ClassVar[str] = ""
    extra_options: ClassVar[frozenset[str]] = frozenset()
    default_system_prompt: ClassVar[str | None] = None
    #: put the audio before the text in the user turn (the model card's order)
    audio_first: ClassVar[bool] = True
    #: the processor keeps only the feature extractor's window (``n_samples``) of each audio
    truncates_audio: ClassVar[bool] = True

    @classmethod
    def allowed_options(cls) -> frozenset[str]:
        return COMMON_OPTIONS | {"system_prompt"} | cls.extra_options

    def _load(self) -> None:
        check_options(self.entry.options, self.allowed_options(), self.name)
        self.settings = generation_settings(self.entry.decoding)
        self.device = resolve_device(self.entry.options.get("device"))
        self.dtype = resolve_dtype(self.entry.options.get("dtype"), self.device)
        self.source = resolve_model_source(self.entry)
        self.hub = hub_kwargs(self.source, self.entry.revision, self.entry.trust_remote_code)
        self.processor = self._load_processor()
        extractor = getattr(self.processor, "feature_extractor", None)
        check_sample_rate(self.sample_rate, getattr(extractor, "sampling_rate", None), self.name)
        self.tokenizer = self.processor.tokenizer
        self.model = self._load_model()
        self.model.eval()
        generation_config = getattr(self.model, "generation_config", None)
        self.stop_ids = stop_token_ids(getattr(generation_config, "eos_token_id", None),
                                       self.tokenizer.eos_token_id)
        pad = getattr(generation_config, "pad_token_id", None)
        self.pad_token_id = pad if pad is not None else self.tokenizer.pad_token_id
        if self.pad_token_id is None and self.stop_ids:
            self.pad_token_id = min(self.stop_ids)

    # -- loading hooks ------------------------------------------------------------------------

    def _model_kwargs(self) -> dict[str, Any]:
        # on a GPU, load straight onto it (no CPU copy)
        device_map = self.device if self.device.startswith("cuda") else None
        return model_kwargs(self.entry, self.hub, self.dtype, device_map)

    def _load_processor(self) -> Any:
        return load_from_pretrained(self.entry, self.source, self.processor_class_name,
                                    self.provided_by, "processor", **self.hub)

    def _load_model(self) -> Any:
        model = load_from_pretrained(self.entry, self.source, self.model_class_name,
                                     self.provided_by, "model", **self._model_kwargs())
        return model.to(self.device)

    # -- request building ---------------------------------------------------------------------

    def task_prompt(self, request: Request, task: str) -> str | None:
        """The text prompt of ``request`` (see the class docstring for the order)."""
        if request.prompt:
            return request.prompt
        if self.entry.prompts.get(task):
            return self.entry.prompts[task]
        return DEFAULT_TASK_PROMPTS.get(task)

    def system_text(self, request: Request) -> str | None:
        """System turn text, or None for the chat template's default."""
        if request.system:
            return request.system
        return self.entry.options.get("system_prompt", self.default_system_prompt) or None

    def _user_content(self, request: Request, prompt: str | None) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if prompt:
            content.append({"type": "text", "text": prompt})
        if request.audio is not None:
            audio = {"type": "audio", "audio": request.audio_path or "<in-memory audio>"}
            content.insert(0 if self.audio_first else len(content), audio)
        return content

    def build_messages(self, request: Request, task: str) -> list[dict[str, Any]]:
        """Chat messages of one request."""
        messages: list[dict[str, Any]] = []
        system = self.system_text(request)
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
        messages.append({"role": "user",
                         "content": self._user_content(request, self.task_prompt(request, task))})
        return messages

    def render(self, request: Request, task: str) -> str:
        """The chat-template text of one request (audio placeholders not yet expanded)."""
        return self.processor.apply_chat_template(self.build_messages(request, task),
                                                  add_generation_prompt=True, tokenize=False)

    def _request_problem(self, request: Request, task: str) -> str | None:
        if task in ("transcribe", "caption") or request.audio is not None:
            problem = audio_problem(request.audio)
            if problem:
                return problem
        if task == "generate" and not self.task_prompt(request, task) and request.audio is None:
            return "generate request has neither a prompt nor audio"
        return None

    # -- inference ----------------------------------------------------------------------------

    def _processor_kwargs(self) -> dict[str, Any]:
        return {"padding": True, "padding_side": "left"}

    def _generate(self, inputs: dict[str, Any], kwargs: dict[str, Any]) -> Any:
        return self.model.generate(**inputs, **kwargs)

    def _run_batch(self, requests: list[Request]) -> list[Response]:
        task = requests[0].task
        texts = [self.render(r, task) for r in requests]
        audios = [as_float32(r.audio) for r in requests if r.audio is not None]
        window = getattr(getattr(self.processor, "feature_extractor", None), "n_samples", None)
        if self.truncates_audio and window and any(len(a) > window for a in audios):
            log.warning("%s: audio longer than %.0f s is truncated by the processor", self.name,
                        window / float(self.sample_rate or 16000))
        call: dict[str, Any] = {"text": texts, "return_tensors": "pt", **self._processor_kwargs()}
        if audios:
            call.update(audio=audios, sampling_rate=self.sample_rate)
        batch = self.processor(**call)
        inputs = to_model_inputs(batch, self.device, self.dtype)
        kwargs = self.settings.generate_kwargs()
        if self.pad_token_id is not None:
            kwargs["pad_token_id"] = self.pad_token_id
        seed_torch(self.settings.seed)
        import torch

        with torch.inference_mode():
            sequences = self._generate(inputs, kwargs)
        if not hasattr(sequences, "shape"):  # a ModelOutput from return_dict_in_generate
            sequences = sequences.sequences
        decoded = decode_new_tokens(self.tokenizer, sequences, inputs["input_ids"].shape[1],
                                    self.stop_ids)
        return [Response(text=text, n_output_tokens=n) for text, n in decoded]

    def predict(self, requests: list[Request]) -> list[Response]:
        task = check_batch(requests, self.capabilities)
        self.load()
        results: list[Response | None] = [None] * len(requests)
        # items with and without audio run as separate sub-batches (some processors need the
        # number of audio arrays to equal the number of texts)
        groups: dict[bool, list[int]] = {True: [], False: []}
        for index, request in enumerate(requests):
            problem = self._request_problem(request, task)
            if problem:
                results[index] = Response.failed(problem)
            else:
                groups[request.audio is not None].append(index)
        for indices in groups.values():
            responses = run_with_item_fallback(self._run_batch, [requests[i] for i in indices])
            for index, response in zip(indices, responses, strict=True):
                results[index] = response
        return [r if r is not None else Response.failed("no response") for r in results]
