"""The LALM training loop on Hugging Face accelerate (docs/training.md, "Engine").

One function, :func:`train`, runs the same code in one process or data parallel in many
(``torch.distributed.run`` / ``accelerate launch``: gloo on CPU, NCCL on GPUs, several nodes
on a cluster) and gives the same result whatever the number of processes:

* **Global batch independent of the world size.** Step ``s`` uses the global batch of
  positions ``s*G .. s*G+G-1`` of a stream made of one seeded permutation per epoch
  (``numpy.random.default_rng(seed + epoch)``); rank ``r`` takes the ``r``-th contiguous
  share and splits it into micro-batches of ``per_device_batch`` (gradient accumulation
  ``G / (per_device_batch * world_size)``, which must be whole).
* **Loss normalisation independent of the split.** A micro-batch's loss is its token
  cross-entropy sum divided by the loss tokens of the whole global batch (known on every rank
  from ``n_loss_tokens``), times the world size, because DDP averages gradients over ranks.
  The logged loss is the global batch's token mean (sums all-reduced).
* **Resumable after any kill.** Checkpoints are built in a temporary folder and renamed into
  place after a ``COMPLETE`` marker; a run resumes from the newest complete checkpoint of the
  same identity and settings and restores weights, optimizer, schedule, every rank's RNG
  streams (dropout, random crops) and the loss log, so an interrupted run ends with the same
  weights as an uninterrupted one.
* **Finished means finished.** ``manifest.json`` is written last, atomically, after the
  weights it names (with their sha256); :func:`finished_manifest` checks both. A checkpoint
  is never taken for a trained model (upstream XARES-LLM loads any ``checkpoint-*`` folder
  as trained).

Deliberate choices: weight decay is not applied to one-dimensional parameters (biases,
norms), as in the Hugging Face ``Trainer`` XARES-LLM trains with; the schedules are the
``transformers.get_scheduler`` shapes (``linear``, ``cosine``, ``constant`` with warm-up);
``mixed_precision: bf16`` is bf16 autocast on CUDA and on CPUs with bf16 instructions
(AVX512-BF16 or AMX; about 2x faster matrix products on these cores), fp32 elsewhere (logged;
the manifest records the precision used). Checkpoints are deleted once the
finished model and its manifest are written (they are only for resuming).

The model is anything with the LALM training protocol (:class:`TrainableModel`); torch and
accelerate are imported only when training, so :func:`finished_manifest` and
:class:`TrainSettings` are cheap to use from the workflow.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lalm_eval.hashing import file_sha256, text_sha256

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHECKPOINT_PAUSE_ENV",
    "LOSS_COLUMNS",
    "TrainSettings",
    "TrainableModel",
    "batch_indices",
    "finished_manifest",
    "identity_hash",
    "plot_loss_curves",
    "read_loss_csv",
    "settings_hash",
    "train",
]

log = logging.getLogger(__name__)

SCHEDULES = ("linear", "cosine", "constant")
LOSS_AVERAGES = ("token", "example")
PRECISIONS = ("no", "bf16")
LOSS_COLUMNS = ("step", "loss", "lr", "heldout_loss", "samples", "elapsed_s")
MANIFEST = "manifest.json"
MODEL_DIR = "model"
WEIGHTS = "trainable.safetensors"
CHECKPOINTS = "checkpoints"
COMPLETE = "COMPLETE"
#: test hook: seconds rank 0 sleeps inside a checkpoint write, after its files and before
#: the COMPLETE marker (lets the fault test kill a run in the middle of a checkpoint)
CHECKPOINT_PAUSE_ENV = "LALM_EVAL_TRAIN_CHECKPOINT_PAUSE_S"
_STEP_DIR = re.compile(r"step-(\d+)")
_TMP_DIR = re.compile(r"\.step-(\d+)\.tmp-\d+")
_STATE_FORMAT = 1


class TrainableModel(Protocol):
    """What the engine needs of a model (an ``torch.nn.Module``; the LALM of
    docs/training.md): a loss sum and its token count, the count without a forward pass,
    and the trainable part of its state."""

    def loss_terms(self, examples: list[Any], weights: Sequence[float] | None = None
                   ) -> tuple[torch.Tensor, int]: ...

    def n_loss_tokens(self, example: Any) -> int: ...

    def trainable_state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_trainable_state_dict(self, state: Mapping[str, torch.Tensor]) -> None: ...


# ----------------------------------------------------------------------------- settings

#: settings that change the trained weights (hashed); the others only change how the same
#: training is run or logged (per-device batch, checkpoint and log intervals)
_RESULT_FIELDS = ("max_steps", "max_epochs", "global_batch", "lr", "weight_decay", "betas",
                  "eps", "warmup_steps", "schedule", "grad_clip", "seed", "mixed_precision")
#: settings added later that change the weights: hashed only when not at their default, so
#: the hash (and every finished model) of a training that leaves them alone stays the same
_RESULT_FIELDS_IF_SET = ("connector_lr", "loss_average")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """One training's optimisation and bookkeeping settings (a recipe's ``settings``).

    Exactly one of ``max_steps`` and ``max_epochs`` is given; with ``max_epochs`` the step
    count is ``ceil(max_epochs * len(train_set) / global_batch)``. ``heldout_every``: None
    evaluates the held-out set at every checkpoint, 0 only before and after training.
    ``checkpoint_every`` 0 writes only the final checkpoint. ``log_every``: a ``loss.csv``
    row (the mean over those steps) every this many steps, and at held-out, checkpoint and
    final steps. ``per_device_batch`` is the micro-batch; the accumulation follows from it.
    ``loss_average``: ``token`` (the mean cross-entropy over every target token of the
    global batch, as Hugging Face's Trainer computes it) or ``example`` (each example's
    mean over its own tokens, then the mean over the batch's examples, so a 2-token label
    weighs as much as a 16-token caption); ``loss.csv`` logs the mean the step optimised.
    """

    max_steps: int | None = None
    max_epochs: float | None = None
    global_batch: int = 4
    per_device_batch: int = 4
    lr: float = 1e-4
    #: learning rate of the connector's parameters (None = ``lr``); LoRA adapters keep ``lr``
    connector_lr: float | None = None
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: str = "linear"
    grad_clip: float | None = 1.0
    seed: int = 42
    checkpoint_every: int = 200
    keep_checkpoints: int = 1
    heldout_every: int | None = None
    log_every: int = 1
    mixed_precision: str = "no"
    loss_average: str = "token"

    def __post_init__(self) -> None:
        def bad(name: str, want: str) -> ValueError:
            return ValueError(f"training setting {name}={getattr(self, name)!r}: {want}")

        def whole(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise bad(name, f"must be a whole number >= {minimum}")

        def number(name: str, minimum: float, strict: bool = False) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or (
                    value <= minimum if strict else value < minimum) or not math.isfinite(value):
                raise bad(name, f"must be a number {'>' if strict else '>='} {minimum}")
            object.__setattr__(self, name, float(value))

        if (self.max_steps is None) == (self.max_epochs is None):
            raise ValueError("training settings need exactly one of max_steps and max_epochs, "
                             f"got max_steps={self.max_steps!r}, max_epochs={self.max_epochs!r}")
        if self.max_steps is not None:
            whole("max_steps", 1)
        if self.max_epochs is not None:
            number("max_epochs", 0.0, strict=True)
        for name in ("global_batch", "per_device_batch", "keep_checkpoints", "log_every"):
            whole(name, 1)
        for name in ("warmup_steps", "seed", "checkpoint_every"):
            whole(name, 0)
        if self.heldout_every is not None:
            whole("heldout_every", 0)
        number("lr", 0.0, strict=True)
        if self.connector_lr is not None:
            number("connector_lr", 0.0, strict=True)
        number("weight_decay", 0.0)
        number("eps", 0.0, strict=True)
        if self.grad_clip is not None:
            number("grad_clip", 0.0, strict=True)
        betas = self.betas
        if (not isinstance(betas, Sequence) or isinstance(betas, str) or len(betas) != 2
                or not all(isinstance(b, int | float) and not isinstance(b, bool)
                           and 0 <= b < 1 for b in betas)):
            raise bad("betas", "must be two numbers in [0, 1)")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        if self.loss_average not in LOSS_AVERAGES:
            raise bad("loss_average", f"must be one of {', '.join(LOSS_AVERAGES)}")
        if self.schedule not in SCHEDULES:
            raise bad("schedule", f"must be one of {', '.join(SCHEDULES)}")
        if self.mixed_precision is False:      # YAML 1.1 reads a bare `no` as false
            object.__setattr__(self, "mixed_precision", "no")
        if self.mixed_precision not in PRECISIONS:
            raise bad("mixed_precision", f"must be one of {', '.join(PRECISIONS)}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TrainSettings:
        """Settings from a mapping (a recipe's ``settings``); unknown keys are an error."""
        if not isinstance(data, Mapping):
            raise ValueError(f"training settings must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {', '.join(map(str, unknown))}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**dict(data))

    def replace(self, overrides: Mapping[str, Any]) -> TrainSettings:
        """These settings with ``overrides`` (checked like :meth:`from_mapping`)."""
        return TrainSettings.from_mapping({**dataclasses.asdict(self), **dict(overrides)})

    def total_steps(self, n_train: int) -> int:
        """Optimizer steps of a training on ``n_train`` examples."""
        if self.max_steps is not None:
            return self.max_steps
        return max(1, math.ceil(self.max_epochs * n_train / self.global_batch))

    def result_fields(self) -> dict[str, Any]:
        """The settings that change the trained weights (what :func:`settings_hash` covers)."""
        values = dataclasses.asdict(self)
        fields = {name: values[name] for name in _RESULT_FIELDS}
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        fields.update({name: values[name] for name in _RESULT_FIELDS_IF_SET
                       if values[name] != defaults[name]})
        return fields


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def identity_hash(identity: Mapping[str, Any]) -> str:
    """sha256 of the caller's identity mapping (canonical JSON)."""
    return text_sha256(_canonical(dict(identity)))


def settings_hash(settings: TrainSettings) -> str:
    """sha256 of the settings that change the trained weights."""
    return text_sha256(_canonical(settings.result_fields()))


# ----------------------------------------------------------------------------- data order

class _Order:
    """Global-batch indices per step: one seeded permutation per epoch, concatenated."""

    def __init__(self, n: int, global_batch: int, seed: int):
        self.n, self.global_batch, self.seed = n, global_batch, seed
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng(self.seed + epoch).permutation(self.n)
        return self._perms[epoch]

    def indices(self, step: int) -> list[int]:
        start = step * self.global_batch
        return [int(self._perm(p // self.n)[p % self.n])
                for p in range(start, start + self.global_batch)]

    def epoch(self, samples: int) -> float:
        return samples / self.n


def batch_indices(n: int, global_batch: int, seed: int, step: int) -> list[int]:
    """The training-set indices of global step ``step`` (0-based), for any world size."""
    return _Order(n, global_batch, seed).indices(step)


class _LRShape:
    """LR multiplier per optimizer step, as ``transformers.get_scheduler`` shapes it (an
    object, so ``LambdaLR.state_dict`` can save it)."""

    def __init__(self, schedule: str, warmup: int, total: int):
        self.schedule, self.warmup, self.total = schedule, warmup, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / max(1, self.warmup)
        if self.schedule == "constant":
            return 1.0
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        if self.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


# ----------------------------------------------------------------------------- files

def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync(path.parent)


def _write_json(path: Path, payload: Any) -> None:
    _write_text(path, json.dumps(payload, indent=1, sort_keys=True, default=str) + "\n")


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _loss_csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LOSS_COLUMNS)
    for row in rows:
        writer.writerow([_format_cell(row.get(c)) for c in LOSS_COLUMNS])
    return buffer.getvalue()


def read_loss_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a loss log: ``step`` and ``samples`` as int, the rest float or None (empty);
    a torn last line (a killed writer) is skipped."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            try:
                row: dict[str, Any] = {"step": int(record["step"]),
                                       "samples": int(record["samples"])}
                for column in ("loss", "lr", "heldout_loss", "elapsed_s"):
                    cell = record.get(column)
                    row[column] = float(cell) if cell not in (None, "") else None
            except (TypeError, ValueError, KeyError):
                continue
            rows.append(row)
    return rows


class _LossLog:
    """``<out>/loss.csv``: rewritten whole on (re)start, appended one line per row."""

    def __init__(self, path: Path, rows: list[dict[str, Any]], enabled: bool):
        self.path, self.rows, self.enabled = path, rows, enabled
        if enabled:
            _write_text(path, _loss_csv_text(rows))

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(",".join(_format_cell(row.get(c)) for c in LOSS_COLUMNS) + "\n")


@contextlib.contextmanager
def _out_dir_lock(out_dir: Path, enabled: bool) -> Iterator[None]:
    """An exclusive lock on ``<out>/.train.lock`` for the run (released by the kernel when
    the process dies), so two trainings never write one folder."""
    if not enabled:
        yield
        return
    import fcntl

    handle = open(out_dir / ".train.lock", "a+")  # noqa: SIM115
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{out_dir} is being trained by another process "
                               f"(lock {out_dir / '.train.lock'})") from None
        except OSError as error:  # file systems without flock
            log.warning("could not lock %s (%s); continuing unlocked", out_dir, error)
        yield
    finally:
        handle.close()


# ----------------------------------------------------------------------------- finished

def finished_manifest(out_dir: str | Path, identity: Mapping[str, Any] | None = None, *,
                      settings: TrainSettings | None = None) -> dict[str, Any] | None:
    """The manifest of a finished training in ``out_dir``, or None.

    Finished means: ``manifest.json`` exists and parses, its identity hash equals
    ``identity``'s (when given) and its settings hash ``settings``' (when given), and the
    sha256 of ``model/trainable.safetensors`` equals the one it records. Checkpoints never
    count.
    """
    out_dir = Path(out_dir)
    manifest = _read_json(out_dir / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("status") != "finished":
        return None
    if identity is not None and manifest.get("identity_hash") != identity_hash(identity):
        return None
    if settings is not None and manifest.get("settings_hash") != settings_hash(settings):
        return None
    weights = out_dir / MODEL_DIR / WEIGHTS
    try:
        if file_sha256(weights) != manifest.get("weights_sha256"):
            return None
    except OSError:
        return None
    return manifest


# ----------------------------------------------------------------------------- RNG

def _rng_snapshot() -> dict[str, Any]:
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [list(s) if isinstance(s, tuple) else s for s in random.getstate()],
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _rng_restore(state: Mapping[str, Any]) -> None:
    import torch

    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@contextlib.contextmanager
def _rng_preserved() -> Iterator[None]:
    """Run a block without moving any RNG stream (held-out evaluation)."""
    state = _rng_snapshot()
    try:
        yield
    finally:
        _rng_restore(state)


# ----------------------------------------------------------------------------- checkpoints

def _checkpoint_ok(path: Path, id_hash: str, set_hash: str) -> tuple[bool, str]:
    if not (path / COMPLETE).is_file():
        return False, "incomplete (no COMPLETE marker)"
    state = _read_json(path / "state.json")
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
        return False, "unreadable state.json"
    if state.get("identity_hash") != id_hash:
        made = str(state.get("identity_hash"))[:12]
        return False, (f"made for another identity ({made}, now {id_hash[:12]}): "
                       "the configuration changed")
    if state.get("settings_hash") != set_hash:
        made = str(state.get("settings_hash"))[:12]
        return False, f"made with other training settings ({made}, now {set_hash[:12]})"
    missing = [name for name in (WEIGHTS, "optimizer.pt", "scheduler.pt", "loss.csv")
               if not (path / name).is_file()]
    if missing:
        return False, f"missing {', '.join(missing)}"
    return True, ""


def _select_checkpoint(root: Path, id_hash: str, set_hash: str) -> Path | None:
    """The newest usable checkpoint; unfinished, foreign and broken ones are removed."""
    if not root.is_dir():
        return None
    usable: list[tuple[int, Path]] = []
    for entry in sorted(root.iterdir()):
        if _TMP_DIR.fullmatch(entry.name):
            log.info("removing unfinished checkpoint %s (a run was stopped while writing it)",
                     entry)
            shutil.rmtree(entry, ignore_errors=True)
            continue
        match = _STEP_DIR.fullmatch(entry.name)
        if not match or not entry.is_dir():
            continue
        ok, why = _checkpoint_ok(entry, id_hash, set_hash)
        if ok:
            usable.append((int(match.group(1)), entry))
        else:
            log.warning("checkpoint %s not resumed (removed): %s", entry, why)
            shutil.rmtree(entry, ignore_errors=True)
    if not usable:
        return None
    usable.sort()
    return usable[-1][1]


def _prune_checkpoints(root: Path, keep: int) -> None:
    steps = sorted((int(m.group(1)), e) for e in root.iterdir()
                   if (m := _STEP_DIR.fullmatch(e.name)) and (e / COMPLETE).is_file())
    for _, entry in steps[:-keep]:
        shutil.rmtree(entry, ignore_errors=True)


def _cpu_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu").contiguous().clone()
            for name, tensor in state.items()}


def _save_weights(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Trainable weights as safetensors, readable by the group (safetensors writes 0600)."""
    from safetensors.torch import save_file

    save_file(_cpu_state(state), str(path))
    os.chmod(path, 0o644)
    _fsync(path)


def _checkpoint_pause() -> None:
    pause = os.environ.get(CHECKPOINT_PAUSE_ENV)
    if pause:
        time.sleep(float(pause))


# ----------------------------------------------------------------------------- training

def _loss_module(model: Any) -> Any:
    """``model`` behind a ``forward`` that returns its loss terms, so DDP's forward (which
    arms gradient all-reduce and honours ``no_sync``) wraps the loss computation."""
    import torch

    class LossTerms(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, examples: list[Any], weights: Sequence[float] | None = None
                    ) -> tuple[torch.Tensor, Any]:
            if weights is None:
                return self.inner.loss_terms(examples)
            return self.inner.loss_terms(examples, weights)

    return LossTerms(model)


def _optimizer(model: Any, settings: TrainSettings) -> torch.optim.Optimizer:
    import torch

    # (connector?, decays?) -> parameters; the connector is the module named "connector"
    split: dict[tuple[bool, bool], list[Any]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            connector = settings.connector_lr is not None and "connector" in name.split(".")
            split.setdefault((connector, parameter.ndim >= 2), []).append(parameter)
    if not split:
        raise ValueError("the model has no trainable parameters")
    groups = [{"params": split[key], "weight_decay": settings.weight_decay if key[1] else 0.0,
               "lr": settings.connector_lr if key[0] else settings.lr}
              for key in sorted(split, key=lambda k: (k[0], not k[1]))]
    return torch.optim.AdamW(groups, lr=settings.lr, betas=settings.betas, eps=settings.eps)


def _heldout_loss(model: Any, heldout: Sequence[Any], batch: int, accelerator: Any
                  ) -> float | None:
    """Token-weighted mean loss over the held-out set, in eval mode, sharded over ranks."""
    import torch

    if not heldout:
        return None
    rank, world = accelerator.process_index, accelerator.num_processes
    share = list(heldout[rank::world])
    totals = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    was_training = model.training
    model.eval()
    try:
        with _rng_preserved(), torch.no_grad(), accelerator.autocast():
            for start in range(0, len(share), batch):
                loss_sum, n_tokens = model.loss_terms(share[start:start + batch])
                totals[0] += loss_sum.detach().double()
                totals[1] += float(n_tokens)
    finally:
        model.train(was_training)
    if world > 1:
        totals = accelerator.reduce(totals, reduction="sum")
    if totals[1].item() <= 0:
        return None
    return float(totals[0].item() / totals[1].item())


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for package in ("torch", "transformers", "accelerate", "peft", "safetensors", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions



def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX512-BF16 or AMX)."""
    import torch

    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None),
              getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(bool(check()) for check in checks if check is not None)


def train(build_model: Callable[[], Any], train_set: Sequence[Any], heldout: Sequence[Any],
          settings: TrainSettings | Mapping[str, Any], out_dir: str | Path,
          identity: Mapping[str, Any], *, progress: bool = True) -> dict[str, Any]:
    """Train (or resume, or find finished) one model into ``out_dir``; its manifest.

    ``build_model()`` returns a fresh model (same weights on every call: seeded here) with
    the :class:`TrainableModel` protocol. Every process of a data-parallel launch calls this
    with the same arguments. A finished ``out_dir`` of the same identity and settings is
    returned as it is, without building the model.
    """
    if not isinstance(settings, TrainSettings):
        settings = TrainSettings.from_mapping(settings)
    out_dir = Path(out_dir)
    id_hash, set_hash = identity_hash(identity), settings_hash(settings)
    done = finished_manifest(out_dir, identity, settings=settings)
    if done is not None:
        log.info("%s is trained already (identity %s, %d steps): nothing to do", out_dir,
                 id_hash[:12], done["steps_done"])
        return done
    if not train_set:
        raise ValueError("the training set is empty")

    import torch
    from accelerate import Accelerator

    precision = settings.mixed_precision
    if precision == "bf16" and not torch.cuda.is_available() and not cpu_bf16_supported():
        precision = "no"
    # cpu=True without CUDA: accelerate only sets up gloo data parallelism when told so
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available())
    world = accelerator.num_processes
    main = accelerator.is_main_process
    per_rank = settings.global_batch // world
    if settings.global_batch % (settings.per_device_batch * world):
        raise ValueError(f"global_batch {settings.global_batch} is not a multiple of "
                         f"per_device_batch {settings.per_device_batch} x {world} process"
                         f"{'es' if world > 1 else ''}")
    accumulation = per_rank // settings.per_device_batch
    total_steps = settings.total_steps(len(train_set))
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    with _out_dir_lock(out_dir, main):
        return _train_locked(accelerator, build_model, train_set, heldout, settings, out_dir,
                             dict(identity), id_hash, set_hash, total_steps, accumulation,
                             precision, progress)


def _train_locked(accelerator: Any, build_model: Callable[[], Any], train_set: Sequence[Any],
                  heldout: Sequence[Any], settings: TrainSettings, out_dir: Path,
                  identity: dict[str, Any], id_hash: str, set_hash: str, total_steps: int,
                  accumulation: int, precision: str, progress: bool) -> dict[str, Any]:
    import torch
    from accelerate.utils import broadcast_object_list
    from safetensors.torch import load_file
    from tqdm.auto import tqdm

    rank, world = accelerator.process_index, accelerator.num_processes
    main = accelerator.is_main_process
    device = accelerator.device
    G, P = settings.global_batch, settings.per_device_batch
    root = out_dir / CHECKPOINTS
    say = log.info if main else log.debug

    if torch.cuda.is_available():   # deterministic cuBLAS (before its first handle)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    chosen: list[Any] = [None, os.getpid()]
    if main:
        # a run that trains is not finished: no manifest may stand while it runs
        (out_dir / MANIFEST).unlink(missing_ok=True)
        picked = _select_checkpoint(root, id_hash, set_hash)
        chosen[0] = str(picked) if picked else None
    if world > 1:
        chosen = broadcast_object_list(chosen, from_process=0)
    checkpoint = Path(chosen[0]) if chosen[0] else None
    writer_pid = int(chosen[1])

    if settings.mixed_precision == "bf16" and precision == "no":
        say("mixed_precision bf16 asked for, but there is no CUDA device and the CPU has no "
            "bf16 instructions: training in fp32")
    else:
        say("training in %s", f"bf16 autocast ({device.type})" if precision == "bf16"
            else "fp32")
    say("training %s: %d train / %d held-out examples, %d steps of global batch %d "
        "(%d process%s x %d per device x %d accumulation), identity %s", out_dir,
        len(train_set), len(heldout), total_steps, G, world, "es" if world > 1 else "", P,
        accumulation, id_hash[:12])

    _seed_everything(settings.seed)
    model = build_model()
    if checkpoint is not None:
        model.load_trainable_state_dict(load_file(str(checkpoint / WEIGHTS)))
    wrapped = accelerator.prepare_model(_loss_module(model))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(model, settings)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _LRShape(settings.schedule, settings.warmup_steps, total_steps))
    order = _Order(len(train_set), G, settings.seed)

    if checkpoint is not None:
        state = json.loads((checkpoint / "state.json").read_text())
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location=device,
                                             weights_only=True))
        scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
        rows = read_loss_csv(checkpoint / "loss.csv")
        step = int(state["step"])
        rng_file = checkpoint / f"rng-rank{rank}.pt"
        if state.get("world_size") == world and rng_file.is_file():
            _rng_restore(torch.load(rng_file, weights_only=True))
        else:
            why = (f"it was made with {state.get('world_size')} processes, now {world}"
                   if state.get("world_size") != world else f"{rng_file.name} is missing")
            log.warning("rank %d: RNG streams of checkpoint step %d not restored (%s): "
                        "reseeded, so dropout differs from an uninterrupted run", rank, step,
                        why)
            _seed_everything(settings.seed + rank + 1_000_003 * step)
        pending = list(state.get("pending_losses", []))
        untrained = state.get("heldout_loss_untrained")
        elapsed_before = float(state.get("elapsed_s", 0.0))
        resumes = [*state.get("resumed_from", []), step]
        say("resuming %s from checkpoint step %d of %d", out_dir, step, total_steps)
    else:
        rows, step, pending, elapsed_before, resumes = [], 0, [], 0.0, []
        if root.exists() and main:
            shutil.rmtree(root, ignore_errors=True)
        untrained = _heldout_loss(model, heldout, P, accelerator)
        rows.append({"step": 0, "loss": None, "lr": scheduler.get_last_lr()[0],
                     "heldout_loss": untrained, "samples": 0, "elapsed_s": 0.0})
        if untrained is not None:
            say("held-out loss before training: %.4f", untrained)
        # rank r's dropout/crop streams: one per rank, rank 0 = the seed itself
        _seed_everything(settings.seed + rank)
    loss_log = _LossLog(out_dir / "loss.csv", rows, main)
    heldout_every = (settings.checkpoint_every if settings.heldout_every is None
                     else settings.heldout_every)
    n_tokens_of: dict[int, int] = {}

    def n_tokens(index: int) -> int:
        if index not in n_tokens_of:
            n_tokens_of[index] = int(model.n_loss_tokens(train_set[index]))
        return n_tokens_of[index]

    def save_checkpoint(at: int, elapsed: float) -> None:
        final = root / f"step-{at}"
        tmp = root / f".step-{at}.tmp-{writer_pid}"
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        torch.save(_rng_snapshot(), tmp / f"rng-rank{rank}.pt")
        _fsync(tmp / f"rng-rank{rank}.pt")
        if main:
            _save_weights(model.trainable_state_dict(), tmp / WEIGHTS)
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
            (tmp / "loss.csv").write_text(_loss_csv_text(loss_log.rows))
            _write_json(tmp / "state.json", {
                "format": _STATE_FORMAT, "step": at, "epoch": order.epoch(at * G),
                "samples_seen": at * G, "identity_hash": id_hash, "settings_hash": set_hash,
                "identity": identity, "settings": dataclasses.asdict(settings),
                "world_size": world, "elapsed_s": elapsed, "loss_rows": len(loss_log.rows),
                "pending_losses": pending, "heldout_loss_untrained": untrained,
                "resumed_from": resumes})
            for name in ("optimizer.pt", "scheduler.pt", "loss.csv"):
                _fsync(tmp / name)
            _checkpoint_pause()
        accelerator.wait_for_everyone()
        if main:
            missing = [r for r in range(world) if not (tmp / f"rng-rank{r}.pt").is_file()]
            if missing:
                raise RuntimeError(f"checkpoint {tmp}: RNG files of ranks {missing} missing "
                                   "(is the output folder on a file system all nodes share?)")
            _write_text(tmp / COMPLETE, f"step {at}\n")
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync(root)
            _prune_checkpoints(root, settings.keep_checkpoints)
        accelerator.wait_for_everyone()

    by_example = settings.loss_average == "example"
    model.train()
    started = time.monotonic()
    bar = tqdm(total=total_steps, initial=step, unit="step", desc=f"train {out_dir.name}",
               disable=not (main and progress), file=sys.stderr, mininterval=1.0)
    try:
        while step < total_steps:
            indices = order.indices(step)
            batch_tokens = sum(n_tokens(i) for i in indices)
            if batch_tokens <= 0:
                raise ValueError(f"global batch of step {step + 1} has no loss tokens")
            # the step's loss is the weighted sum over the ranks divided by this
            divisor = (sum(1 for i in indices if n_tokens(i) > 0) if by_example
                       else batch_tokens)
            share = indices[rank * (G // world):(rank + 1) * (G // world)]
            local = torch.zeros(2, dtype=torch.float64, device=device)
            scale = world / divisor
            for micro in range(accumulation):
                chunk = share[micro * P:(micro + 1) * P]
                sync = micro == accumulation - 1
                examples = [train_set[i] for i in chunk]
                with contextlib.nullcontext() if sync else accelerator.no_sync(wrapped):
                    if by_example:
                        weights = [1.0 / n_tokens(i) if n_tokens(i) else 0.0 for i in chunk]
                        loss_sum, got = wrapped(examples, weights)
                    else:
                        loss_sum, got = wrapped(examples)
                    accelerator.backward(loss_sum * scale)
                expected = sum(n_tokens(i) for i in chunk)
                if int(got) != expected:
                    raise RuntimeError(f"loss_terms counted {int(got)} loss tokens where "
                                       f"n_loss_tokens says {expected} (step {step + 1}); the "
                                       "model breaks the training contract")
                local[0] += loss_sum.detach().double()
                local[1] += float(expected)
            if settings.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(trainable, settings.grad_clip)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            totals = accelerator.reduce(local, reduction="sum") if world > 1 else local
            if int(totals[1].item()) != batch_tokens:
                raise RuntimeError(f"step {step + 1}: the ranks trained on "
                                   f"{int(totals[1].item())} loss tokens, not {batch_tokens} "
                                   "(do all processes have the same training set?)")
            loss = float(totals[0].item() / divisor)
            if not math.isfinite(loss):
                raise FloatingPointError(f"training loss is {loss} at step {step + 1}")
            step += 1
            pending.append(loss)
            elapsed = elapsed_before + time.monotonic() - started
            checkpoint_due = step == total_steps or (
                settings.checkpoint_every and step % settings.checkpoint_every == 0)
            heldout_due = step == total_steps or (heldout_every and step % heldout_every == 0)
            if heldout_due or checkpoint_due or step % settings.log_every == 0:
                held = _heldout_loss(model, heldout, P, accelerator) if heldout_due else None
                loss_log.append({"step": step, "loss": sum(pending) / len(pending), "lr": lr,
                                 "heldout_loss": held, "samples": step * G,
                                 "elapsed_s": round(elapsed, 3)})
                pending = []
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if checkpoint_due:
                save_checkpoint(step, elapsed)
    finally:
        bar.close()

    manifest_path = out_dir / MANIFEST
    if main:
        elapsed = elapsed_before + time.monotonic() - started
        weights = _cpu_state(model.trainable_state_dict())
        tmp = out_dir / f".{MODEL_DIR}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _save_weights(weights, tmp / WEIGHTS)
        _write_json(tmp / "state.json", {
            "identity_hash": id_hash, "settings_hash": set_hash, "steps_done": step,
            "tensors": {name: list(t.shape) for name, t in sorted(weights.items())}})
        target = out_dir / MODEL_DIR
        if target.exists():
            old = out_dir / f".{MODEL_DIR}.old-{os.getpid()}"
            os.rename(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, target)
        _fsync(out_dir)
        trained_rows = [r for r in loss_log.rows if r["loss"] is not None]
        held_rows = [r for r in loss_log.rows if r["heldout_loss"] is not None and r["step"]]
        manifest = {
            "status": "finished",
            "identity": identity, "identity_hash": id_hash,
            "settings": dataclasses.asdict(settings), "settings_hash": set_hash,
            "steps_done": step, "samples_seen": step * G,
            "epochs_done": order.epoch(step * G),
            "final_train_loss": trained_rows[-1]["loss"] if trained_rows else None,
            "heldout_loss": held_rows[-1]["heldout_loss"] if held_rows else None,
            "heldout_loss_untrained": untrained,
            "n_train": len(train_set), "n_heldout": len(heldout),
            "n_trainable_parameters": int(sum(t.numel() for t in weights.values())),
            "world_size": world, "global_batch": G, "per_device_batch": P,
            "accumulation": accumulation, "precision": "bf16" if precision == "bf16" else "fp32",
            "device": str(device), "elapsed_s": round(elapsed, 3), "resumed_from": resumes,
            "versions": _versions(),
            "weights": f"{MODEL_DIR}/{WEIGHTS}", "weights_sha256": file_sha256(target / WEIGHTS),
            "loss_log": "loss.csv",
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write_json(manifest_path, manifest)
        shutil.rmtree(root, ignore_errors=True)
        say("trained %s: %d steps, train loss %s, held-out loss %s (untrained %s), %.1f s",
            out_dir, step, _short(manifest["final_train_loss"]),
            _short(manifest["heldout_loss"]), _short(untrained), elapsed)
    accelerator.wait_for_everyone()
    return json.loads(manifest_path.read_text())    # as finished_manifest gives it


def _short(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# ----------------------------------------------------------------------------- figure

def plot_loss_curves(loss_csvs: Mapping[str, str | Path], out_png: str | Path, *,
                     smooth: int = 1, title: str | None = None) -> Path:
    """One figure of training loss (trailing mean over ``smooth`` logged rows) and held-out
    points per model, from their ``loss.csv``; written atomically to ``out_png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}")
    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    colours = [f"C{i}" for i in range(10)]
    for number, (name, path) in enumerate(loss_csvs.items()):
        colour = colours[number % len(colours)]
        rows = read_loss_csv(path)
        trained = [(r["step"], r["loss"]) for r in rows if r["loss"] is not None]
        if trained:
            steps, losses = zip(*trained, strict=True)
            values = np.asarray(losses, dtype=float)
            if smooth > 1:
                cumulative = np.concatenate([[0.0], np.cumsum(values)])
                idx = np.arange(1, len(values) + 1)
                values = (cumulative[idx] - cumulative[np.maximum(0, idx - smooth)]) / \
                    np.minimum(idx, smooth)
            axes.plot(steps, values, color=colour, linewidth=1.3, label=f"{name} train")
        held = [(r["step"], r["heldout_loss"]) for r in rows if r["heldout_loss"] is not None]
        if held:
            steps, losses = zip(*held, strict=True)
            axes.plot(steps, losses, color=colour, linestyle="--", marker="o", markersize=4,
                      linewidth=0.9, label=f"{name} held-out")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss (mean token cross-entropy, nats)")
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title)
    if loss_csvs:
        axes.legend(fontsize=8)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.name}.tmp-{os.getpid()}")
    figure.savefig(tmp, format="png", dpi=120)
    os.replace(tmp, out_png)
    return out_png
