"""Entry point of one training: ``python -m lalm_eval.training.launch <job.json>``.

The same command runs in one process or under a data-parallel launcher, every process
running it with the same job file::

    python -m lalm_eval.training.launch job.json
    torchrun --standalone --nproc_per_node 2 -m lalm_eval.training.launch job.json
    accelerate launch --multi_gpu --num_processes 4 -m lalm_eval.training.launch job.json

(On CPU, ``accelerate launch`` starts several processes only through mpirun; use torchrun,
which the engine runs with gloo.)

The job file (JSON object)::

    {
      "builder": "package.module:function" | "/path/to/file.py:function",
      "builder_args": [...],        # optional positional arguments of the builder
      "builder_kwargs": {...},      # optional keyword arguments of the builder
      "out_dir": "path",            # the trained model's folder (relative: to the working dir)
      "settings": {...},            # optional overrides of the builder's TrainSettings keys
      "threads": 1,                 # optional torch/BLAS threads per process (default 1)
      "progress": true              # optional tqdm bar on rank 0
    }

The builder returns ``(build_model, train_set, heldout, settings, identity)`` (a tuple, or a
mapping with those keys); ``settings`` is a :class:`~lalm_eval.training.engine.TrainSettings`
or a mapping of its keys. Exit status 0 means the model in ``out_dir`` is finished.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lalm_eval.hashing import text_sha256

__all__ = ["JOB_KEYS", "JobError", "launch_command", "load_builder", "main", "run_job",
           "write_job"]

log = logging.getLogger(__name__)

JOB_KEYS = frozenset({"builder", "builder_args", "builder_kwargs", "out_dir", "settings",
                      "threads", "progress"})
PARTS = ("build_model", "train_set", "heldout", "settings", "identity")


class JobError(ValueError):
    """A job file that cannot be run; the message names the file and the key."""


def load_builder(spec: str) -> Callable[..., Any]:
    """The function named ``"package.module:function"`` or ``"/path/file.py:function"``."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise JobError(f"builder {spec!r} is not 'module:function' or 'file.py:function'")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise JobError(f"builder file {path} not found")
        module_name = f"_lalm_eval_builder_{text_sha256(str(path.resolve()))[:16]}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module  # dataclasses in the file look themselves up here
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    builder = getattr(module, name, None)
    if not callable(builder):
        raise JobError(f"builder {spec!r}: {name} is not a function of {target}")
    return builder


def _parts(result: Any, spec: str) -> tuple[Any, ...]:
    if isinstance(result, Mapping):
        missing = [key for key in PARTS if key not in result]
        if missing:
            raise JobError(f"builder {spec} returned a mapping without {', '.join(missing)}")
        return tuple(result[key] for key in PARTS)
    if isinstance(result, Sequence) and len(result) == len(PARTS):
        return tuple(result)
    raise JobError(f"builder {spec} must return ({', '.join(PARTS)}), got "
                   f"{type(result).__name__}")


def read_job(path: str | Path) -> dict[str, Any]:
    """A job file, checked (unknown keys, types)."""
    path = Path(path)
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise JobError(f"job file {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise JobError(f"job file {path} is not JSON: {error}") from None
    if not isinstance(job, dict):
        raise JobError(f"job file {path} must hold a JSON object")
    unknown = sorted(set(job) - JOB_KEYS)
    if unknown:
        raise JobError(f"job file {path}: unknown key(s) {', '.join(unknown)}; known: "
                       f"{', '.join(sorted(JOB_KEYS))}")
    for key, kind in (("builder", str), ("out_dir", str)):
        if not isinstance(job.get(key), kind) or not job[key]:
            raise JobError(f"job file {path}: {key!r} must be a non-empty string")
    for key, kind in (("builder_args", list), ("builder_kwargs", dict), ("settings", dict)):
        if not isinstance(job.setdefault(key, kind()), kind):
            raise JobError(f"job file {path}: {key!r} must be a JSON {kind.__name__}")
    threads = job.setdefault("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise JobError(f"job file {path}: 'threads' must be a whole number >= 1")
    job.setdefault("progress", True)
    return job


def run_job(path: str | Path) -> dict[str, Any]:
    """Build the job's parts and train (or find finished); the manifest."""
    job = read_job(path)
    from lalm_eval.parallel import limit_threads

    os.environ.setdefault("OMP_NUM_THREADS", str(job["threads"]))
    os.environ.setdefault("MKL_NUM_THREADS", str(job["threads"]))
    import torch

    limit_threads(job["threads"])
    torch.set_num_threads(job["threads"])
    from lalm_eval.training.engine import TrainSettings, train

    builder = load_builder(job["builder"])
    build_model, train_set, heldout, settings, identity = _parts(
        builder(*job["builder_args"], **job["builder_kwargs"]), job["builder"])
    if not isinstance(settings, TrainSettings):
        settings = TrainSettings.from_mapping(settings)
    if job["settings"]:
        settings = settings.replace(job["settings"])
    return train(build_model, list(train_set), list(heldout), settings, Path(job["out_dir"]),
                 identity, progress=bool(job["progress"]))


def write_job(path: str | Path, builder: str, out_dir: str | Path, *,
              builder_args: Sequence[Any] = (), builder_kwargs: Mapping[str, Any] | None = None,
              settings: Mapping[str, Any] | None = None, threads: int = 1,
              progress: bool = True) -> Path:
    """Write a job file (atomically) for :func:`main`; its path."""
    path = Path(path)
    payload = {"builder": builder, "builder_args": list(builder_args),
               "builder_kwargs": dict(builder_kwargs or {}), "out_dir": str(out_dir),
               "settings": dict(settings or {}), "threads": threads, "progress": progress}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def launch_command(job_path: str | Path, processes: int = 1, *, port: int | None = None,
                   python: str = sys.executable) -> list[str]:
    """The command training ``job_path`` in ``processes`` local processes (one: plain
    Python; more: ``torch.distributed.run``, on ``port`` or a free one)."""
    module = ["-m", "lalm_eval.training.launch", str(job_path)]
    if processes <= 1:
        return [python, *module]
    rendezvous = (["--standalone"] if port is None
                  else ["--master_addr", "127.0.0.1", "--master_port", str(port)])
    return [python, "-m", "torch.distributed.run", *rendezvous,
            "--nproc_per_node", str(processes), *module]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: python -m lalm_eval.training.launch <job.json>", file=sys.stderr)
        return 2
    rank = os.environ.get("RANK", "0")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s rank{rank} %(levelname)s %(name)s: %(message)s")
    try:
        manifest = run_job(args[0])
    except JobError as error:
        print(f"lalm-eval training: {error}", file=sys.stderr)
        return 2
    finally:
        _close_process_group()
    if rank == "0":
        print(f"trained: {manifest['steps_done']} steps, held-out loss "
              f"{manifest['heldout_loss']}", file=sys.stderr)
    return 0


def _close_process_group() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() \
            and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
