"""One trained model's job: resolve its recipe, cache its encoder's features, train, plot.

The workflow's ``train_<model>`` rule calls :func:`run_training_job`. It writes
``<out>/build.json`` (everything needed to rebuild the LALM: the resolved recipe, the encoder
spec and id, the LLM entry) before training, and the engine writes the rest
(docs/training.md). With ``processes > 1`` (or several nodes) the same training runs under
``torch.distributed.run`` through :mod:`lalm_eval.training.launch`, each process rebuilding
its data from the job file and reading the feature cache the parent filled.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lalm_eval.hashing import text_sha256

log = logging.getLogger(__name__)

BUILD_FILE = "build.json"
JOB_FILE = "job.json"


@dataclass
class TrainingJob:
    """What one ``train_<model>`` job needs, from the rule's params and inputs."""

    model_name: str
    models: dict[str, Any]          # the trained model's entry and its LLM's entry
    encoder_name: str
    encoder_spec: dict[str, Any]
    data_file: str
    out_dir: str
    feature_cache: str
    processes: int = 1
    nodes: int = 1
    threads: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def build_spec(job: TrainingJob) -> dict[str, Any]:
    """The resolved, self-contained description the LALM is rebuilt from (build.json)."""
    from lalm_eval.encoders import encoder_id
    from lalm_eval.training.recipes import resolve_recipe

    entry = job.models[job.model_name]
    training = entry["training"]
    llm_name = training["llm"]
    llm_entry = job.models[llm_name]
    return {
        "model": job.model_name,
        "recipe": resolve_recipe(training),
        "encoder": {"name": job.encoder_name, "spec": job.encoder_spec,
                    "id": encoder_id(job.encoder_spec)},
        "llm": {"name": llm_name, "adapter": llm_entry["adapter"],
                "source": llm_entry["source"], "revision": llm_entry.get("revision"),
                "options": llm_entry.get("options", {})},
    }


def spec_hash(spec: Mapping[str, Any]) -> str:
    return text_sha256(json.dumps(spec, sort_keys=True, default=str))


def load_llm(spec: Mapping[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """The LLM of a build spec (hub id, folder or GGUF; GGUF de-quantised once, cached)."""
    from lalm_eval.models.base import ModelEntry
    from lalm_eval.training.llm import load_entry_llm

    llm = spec["llm"]
    entry = ModelEntry(name=llm["name"], adapter=llm["adapter"], source=llm["source"],
                       revision=llm["revision"], options=dict(llm.get("options") or {}))
    return load_entry_llm(entry, dtype=spec["recipe"]["llm_dtype"])


def build_lalm(spec: Mapping[str, Any], input_dim: int, n_taps: int,
               llm_parts: tuple[Any, Any, dict[str, Any]] | None = None) -> Any:
    """The LALM of a build spec around a fresh (untrained) connector."""
    import torch

    from lalm_eval.training.connectors import build_connector
    from lalm_eval.training.lalm import LALM, PromptTemplate
    from lalm_eval.training.llm import apply_lora, freeze

    recipe = spec["recipe"]
    llm, tokenizer, info = llm_parts or load_llm(spec)
    freeze(llm)
    # the same initial LoRA and connector weights in every process and every rebuild
    torch.manual_seed(int(recipe["settings"].get("seed", 42)))
    if recipe["lora"]:
        llm = apply_lora(llm, **recipe["lora"])
    connector = build_connector(recipe["connector"], input_dim, n_taps, info["hidden_size"])
    template = PromptTemplate.from_mapping(recipe["template"])
    return LALM(llm, tokenizer, connector, template, max_length=recipe["max_length"],
                max_transcript_tokens=recipe["max_transcript_tokens"])


def identity_of(spec: Mapping[str, Any], data_hash: str, llm_info: Mapping[str, Any]
                ) -> dict[str, Any]:
    """What makes a trained model what it is (the manifest's identity)."""
    return {"model": spec["model"], "config_hash": spec_hash(spec), "data_hash": data_hash,
            "recipe": spec["recipe"]["recipe"], "encoder_id": spec["encoder"]["id"],
            "encoder": spec["encoder"]["name"], "llm_id": llm_info.get("llm_id"),
            "llm_revision": llm_info.get("revision"), "llm_sha256": llm_info.get("sha256")}


def prepare(job: TrainingJob) -> dict[str, Any]:
    """Features cached, build.json and the job file written; returns the build spec."""
    from lalm_eval.encoders import build_encoder
    from lalm_eval.features import cached_features
    from lalm_eval.training.data import read_training_set

    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = build_spec(job)
    rows = read_training_set(job.data_file)
    encoder = build_encoder(job.encoder_spec)
    log.info("%s: %d training rows; features of encoder %s (%s) into %s", job.model_name,
             len(rows), job.encoder_name, spec["encoder"]["id"][:12], job.feature_cache)
    cached_features(encoder, spec["encoder"]["id"], [r.audio for r in rows],
                    Path(job.feature_cache))
    _write_json(out / BUILD_FILE, spec)
    _write_json(out / JOB_FILE, asdict(job))
    return spec


def examples_and_identity(job: TrainingJob, spec: Mapping[str, Any], llm_info: Mapping[str, Any]
                          ) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """Train and held-out Examples (features from the cache) and the identity."""
    from lalm_eval.encoders import build_encoder
    from lalm_eval.features import cached_features
    from lalm_eval.training.data import read_training_set, training_set_hash
    from lalm_eval.training.lalm import Example

    rows = read_training_set(job.data_file)
    encoder = build_encoder(job.encoder_spec)
    features = cached_features(encoder, spec["encoder"]["id"], [r.audio for r in rows],
                               Path(job.feature_cache), progress=False)
    examples = {"train": [], "heldout": []}
    for row, feats in zip(rows, features, strict=True):
        examples[row.split].append(Example(row.item_id, feats, row.prompt, row.target,
                                           row.transcript))
    return examples["train"], examples["heldout"], identity_of(spec, training_set_hash(rows),
                                                                llm_info)


def training_parts(job: TrainingJob) -> tuple[Any, list[Any], list[Any], Any, dict[str, Any]]:
    """(build_model, train set, held-out set, settings, identity) of a prepared job; the
    builder :mod:`lalm_eval.training.launch` calls in every process."""
    from lalm_eval.training.engine import TrainSettings

    spec = json.loads((Path(job.out_dir) / BUILD_FILE).read_text())
    llm_parts = load_llm(spec)
    train_set, heldout, identity = examples_and_identity(job, spec, llm_parts[2])
    first = train_set[0].features
    n_taps, input_dim = int(first.shape[0]), int(first.shape[-1])
    identity["feature_shape"] = {"n_taps": n_taps, "dim": input_dim}
    used = {"parts": llm_parts}

    def build_model() -> Any:
        # the first build reuses the loaded LLM; a second (an untrained baseline) reloads
        parts = used.pop("parts", None)
        model = build_lalm(spec, input_dim, n_taps, parts)
        # data statistics of the connector (if any) from the training rows, in every build
        model.connector.fit_statistics([example.features for example in train_set])
        return model

    settings = TrainSettings.from_mapping(spec["recipe"]["settings"])
    return build_model, train_set, heldout, settings, identity


def launcher_parts(job_file: str) -> tuple[Any, list[Any], list[Any], Any, dict[str, Any]]:
    """Entry point named in the launch job file: rebuild the job, then its parts."""
    return training_parts(TrainingJob(**json.loads(Path(job_file).read_text())))


def run_training_job(job: TrainingJob) -> dict[str, Any]:
    """Train one model (or find it finished), then draw its loss curve; the manifest."""
    from lalm_eval.training.engine import train

    prepare(job)
    world = job.processes * job.nodes
    if world == 1:
        build_model, train_set, heldout, settings, identity = training_parts(job)
        manifest = train(build_model, train_set, heldout, settings, Path(job.out_dir), identity)
    else:
        manifest = _run_distributed(job)
    return manifest


def write_loss_curve(model_name: str, loss_csv: str | Path, png: str | Path) -> None:
    """The loss-curve figure of one trained model (train loss, held-out points)."""
    from lalm_eval.training.engine import plot_loss_curves

    plot_loss_curves({model_name: Path(loss_csv)}, Path(png))


def _run_distributed(job: TrainingJob) -> dict[str, Any]:
    """The same training in ``processes`` x ``nodes`` processes (torch.distributed.run)."""
    from lalm_eval.training.engine import finished_manifest

    out = Path(job.out_dir)
    launch_file = out / "launch.json"
    _write_json(launch_file, {"builder": "lalm_eval.training.job:launcher_parts",
                              "builder_args": [str(out / JOB_FILE)],
                              "out_dir": str(out)})
    command = [sys.executable, "-m", "torch.distributed.run",
               f"--nproc_per_node={job.processes}"]
    if job.nodes > 1:
        # one launcher per node (srun); rendezvous on the first node of the allocation
        host = os.environ.get("LALM_EVAL_RDZV_HOST") or _first_slurm_host()
        command = ["srun", f"--nodes={job.nodes}", "--ntasks-per-node=1", *command,
                   f"--nnodes={job.nodes}", "--rdzv_backend=c10d",
                   f"--rdzv_endpoint={host}:29411", "--rdzv_id=" + job.model_name]
    else:
        command.append("--standalone")
    command += ["-m", "lalm_eval.training.launch", str(launch_file)]
    env = {**os.environ, "OMP_NUM_THREADS": str(job.threads),
           "MKL_NUM_THREADS": str(job.threads)}
    log.info("launching: %s", " ".join(command))
    subprocess.run(command, check=True, env=env)
    manifest = finished_manifest(out)
    if manifest is None:
        raise RuntimeError(f"distributed training of {job.model_name} ended without a "
                           f"finished model in {out}")
    return manifest


def _first_slurm_host() -> str:
    nodelist = os.environ.get("SLURM_JOB_NODELIST")
    if not nodelist:
        raise RuntimeError("training on several nodes needs a SLURM allocation "
                           "(SLURM_JOB_NODELIST) or LALM_EVAL_RDZV_HOST")
    hosts = subprocess.run(["scontrol", "show", "hostnames", nodelist], check=True,
                           capture_output=True, text=True).stdout.split()
    return hosts[0]


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)
