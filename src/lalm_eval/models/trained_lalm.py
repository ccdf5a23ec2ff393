"""A LALM this workflow trained (rule ``train_<model>``), served as a registry model.

Entry keys used:

* ``source``: the training output folder (set by config validation to
  ``<results>/training/<name>``); it must hold a finished model: ``manifest.json`` whose
  identity and weights check out (a partial checkpoint never counts).
* ``training``: the block the model was trained from (recipe, encoder, llm, data, ...).
* ``decoding``: overrides of the recipe's decoding (``max_new_tokens``,
  ``repetition_penalty``, ``do_sample``, ``temperature``, ``top_p``).
* ``options``: ``device`` (``cpu``), ``num_threads`` (torch threads; default 1),
  ``feature_cache`` (folder of the encoder's feature cache; default: the training job's),
  ``untrained`` (false; true: the same LALM with its connector and LoRA as initialised from
  the recipe's seed, the baseline a trained model must beat; suites set it for their
  ``untrained`` mode), ``transcriber`` and ``vad`` (names of ``models`` entries): for
  recipes whose template feeds a transcript after the audio (DeSTA), the transcript of each
  clip at inference, as DeSTA2.5 makes it: the transcriber's text when the VAD finds speech,
  nothing otherwise (no VAD: always transcribed; no transcriber: no transcript).

A request's ``system`` text replaces the recipe template's (DeSTA2.5 evaluates MMAU with a
system prompt of its own).

The fingerprint is the manifest's sha256 plus decoding and prompts, so a retrained model
(new manifest) invalidates exactly its own cached answers and what depends on them.
Audio is encoded by the frozen encoder; a request that names its file reuses the content
cache the training filled.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

from lalm_eval.audio import audio_problem
from lalm_eval.hashing import file_sha256, text_sha256
from lalm_eval.models.base import AudioModel, ModelError, Request, Response, check_batch
from lalm_eval.models.sources import check_options

log = logging.getLogger(__name__)

OPTIONS = frozenset({"device", "num_threads", "feature_cache", "untrained", "transcriber",
                     "vad"})
_DECODING_KEYS = {"max_new_tokens", "repetition_penalty", "do_sample", "temperature", "top_p",
                  "top_k", "num_beams"}


class TrainedLALM(AudioModel):
    """Frozen encoder -> trained connector -> LLM, from a finished training folder."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"generate", "transcribe", "caption"})
    default_sample_rate: ClassVar[int | None] = 16000
    option_keys: ClassVar[frozenset[str] | None] = OPTIONS

    @property
    def folder(self) -> Path:
        return Path(self.entry.source)

    def _manifest(self) -> dict[str, Any]:
        from lalm_eval.training.engine import finished_manifest

        manifest = finished_manifest(self.folder)
        if manifest is None:
            raise ModelError(f"models.{self.name}: no finished model in {self.folder} (run "
                             f"the rule train_{self.name}; a partial checkpoint does not count)")
        return manifest

    def fingerprint(self) -> str:
        """Manifest hash + decoding + prompts (not the training block: the manifest says it)."""
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            self._manifest()  # raises with the message naming the rule
        payload = {"class": f"{type(self).__module__}:{type(self).__qualname__}",
                   "manifest": file_sha256(manifest_path), "decoding": self.entry.decoding,
                   "prompts": self.entry.prompts, "sample_rate": self.sample_rate,
                   "untrained": bool(self.entry.options.get("untrained", False))}
        for role in ("transcriber", "vad"):
            helper = self._helper(role)
            if helper is not None:
                payload[role] = helper.fingerprint()
        return text_sha256(json.dumps(payload, sort_keys=True, default=str))

    def _helper(self, role: str) -> AudioModel | None:
        """The transcriber / VAD model this LALM names (built once, loaded on first use)."""
        cache = self.__dict__.setdefault("_helpers", {})
        if role not in cache:
            name = self.entry.options.get(role)
            model = None
            if name:
                from lalm_eval.models.registry import build_model

                model = build_model(str(name), self.models_config)
                needed = "transcribe" if role == "transcriber" else "detect_speech"
                if not model.supports(needed):
                    raise ModelError(f"models.{self.name}.options.{role}: {name!r} cannot "
                                     f"{needed}")
            cache[role] = model
        return cache[role]

    def _transcripts(self, requests: list[Request]) -> list[str | None]:
        """Per request: the transcript DeSTA2.5 would feed (None when the recipe has none)."""
        if not self.model.template.has_transcript:
            return [None] * len(requests)
        transcriber, vad = self._helper("transcriber"), self._helper("vad")
        if transcriber is None:
            return [None] * len(requests)
        speech = [True] * len(requests)
        if vad is not None:
            from lalm_eval.models.silero_vad import has_speech

            vad.load()
            asked = [Request(item_id=r.item_id, task="detect_speech", audio=r.audio)
                     for r in requests]
            speech = [has_speech(v) for v in vad.predict(asked)]
        out: list[str | None] = [""] * len(requests)
        wanted = [i for i, s in enumerate(speech) if s]
        if wanted:
            transcriber.load()
            asked = [Request(item_id=requests[i].item_id, task="transcribe",
                             audio=requests[i].audio) for i in wanted]
            for i, response in zip(wanted, transcriber.predict(asked), strict=True):
                if response.error:
                    raise ModelError(f"transcriber failed on {requests[i].item_id}: "
                                     f"{response.error}")
                out[i] = (response.text or "").strip()
        return out

    def _load(self) -> None:
        check_options(self.entry, OPTIONS)
        import torch

        from lalm_eval.encoders import build_encoder
        from lalm_eval.training.job import BUILD_FILE, JOB_FILE, build_lalm

        torch.set_num_threads(int(self.entry.options.get("num_threads", 1)))
        self.manifest = self._manifest()
        spec = json.loads((self.folder / BUILD_FILE).read_text())
        self.spec = spec
        self.encoder = build_encoder(spec["encoder"]["spec"])
        self.encoder_id = spec["encoder"]["id"]
        job = json.loads((self.folder / JOB_FILE).read_text())
        self.feature_cache = Path(self.entry.options.get("feature_cache")
                                  or job["feature_cache"])
        shape = self.manifest.get("identity", {}).get("feature_shape") or {}
        n_taps = int(shape.get("n_taps") or getattr(self.encoder, "n_layers", 1))
        input_dim = int(shape.get("dim") or self.encoder.output_dim)
        self.model = build_lalm(spec, input_dim, n_taps)
        from safetensors.torch import load_file

        # untrained: the connector as initialised, with the data statistics it trained with
        self.model.load_trainable_state_dict(
            load_file(self.folder / "model" / "trainable.safetensors"),
            statistics_only=bool(self.entry.options.get("untrained", False)))
        self.model.to(str(self.entry.options.get("device", "cpu"))).eval()
        decoding = {**spec["recipe"]["decoding"], **self.entry.decoding}
        unknown = set(decoding) - _DECODING_KEYS
        if unknown:
            raise ModelError(f"models.{self.name}: unknown decoding key(s) {sorted(unknown)}")
        self.decoding = decoding
        log.info("%s: loaded %s (recipe %s, %s steps)", self.name, self.folder,
                 spec["recipe"]["recipe"], self.manifest.get("steps_done"))

    def _features(self, requests: list[Request]) -> list[Any]:
        from lalm_eval.features import cached_features, compute_features

        with_files = [r.audio_path for r in requests]
        if all(with_files) and all(Path(p).is_file() for p in with_files):
            return cached_features(self.encoder, self.encoder_id, with_files,
                                   self.feature_cache, progress=False)
        return compute_features(self.encoder, [r.audio for r in requests])

    def predict(self, requests: list[Request]) -> list[Response]:
        """Generate an answer to each request's prompt about its audio."""
        check_batch(requests, self.capabilities)
        self.load()
        from lalm_eval.training.lalm import Example

        responses: list[Response | None] = [None] * len(requests)
        usable: list[int] = []
        for index, request in enumerate(requests):
            problem = audio_problem(request.audio, self.sample_rate)
            if problem:
                responses[index] = Response.failed(problem)
            elif not (request.prompt or self.entry.prompts.get(request.task)):
                responses[index] = Response.failed("no prompt for this request")
            else:
                usable.append(index)
        if usable:
            try:
                feats = self._features([requests[i] for i in usable])
                transcripts = self._transcripts([requests[i] for i in usable])
                examples = [Example(requests[i].item_id, f,
                                    requests[i].prompt or self.entry.prompts[requests[i].task],
                                    transcript=t, system=requests[i].system)
                            for i, f, t in zip(usable, feats, transcripts, strict=True)]
                outputs = self.model.generate(examples, **self.decoding)
            except Exception as exc:  # noqa: BLE001 - fall back to one item at a time
                if len(usable) == 1:
                    responses[usable[0]] = Response.failed(f"{type(exc).__name__}: {exc}")
                    outputs = None
                else:
                    outputs = None
                    for i in usable:
                        responses[i] = self.predict([requests[i]])[0]
            if outputs is not None:
                for i, (text, n_tokens) in zip(usable, outputs, strict=True):
                    responses[i] = Response(text=text, n_output_tokens=n_tokens)
        return [r if r is not None else Response.failed("not processed") for r in responses]
