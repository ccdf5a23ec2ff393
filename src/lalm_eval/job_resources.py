"""Memory and runtime per workflow rule, from one packaged table (``job_resources.yaml``)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def resource_table() -> dict[str, dict[str, int]]:
    """Every rule's resources, as written in ``job_resources.yaml``."""
    text = resources.files("lalm_eval").joinpath("job_resources.yaml").read_text()
    return yaml.safe_load(text)


def job_resources(rule: str) -> dict[str, Any]:
    """``mem_mb`` and ``runtime`` of ``rule``; a rule missing from the table is an error."""
    table = resource_table()
    if rule not in table:
        raise KeyError(f"rule {rule!r} has no entry in lalm_eval/job_resources.yaml")
    return dict(table[rule])


def model_resources(entry: dict[str, Any]) -> dict[str, Any]:
    """gpu, mem_mb and runtime of a model rule, from the model's config entry."""
    given = entry.get("resources", {})
    return {"gpu": given.get("gpu", 0), "mem_mb": given.get("mem_mb", 4000),
            "runtime": given.get("runtime", 120)}


def model_threads(entry: dict[str, Any]) -> int:
    """CPU threads of a model rule's jobs (``resources.threads``, default 2)."""
    return int(entry.get("resources", {}).get("threads", 2))


def training_resources(entry: dict[str, Any]) -> dict[str, Any]:
    """gpu, nodes, tasks, mem_mb and runtime of a train_<model> rule (``training.resources``).

    One task per node: on several nodes the job starts one ``torch.distributed.run`` per
    node through ``srun``, each with ``training.processes`` workers."""
    training = entry["training"]
    given = training.get("resources", {})
    nodes = int(training.get("nodes", 1))
    resources = {"gpu": given.get("gpu", 0), "mem_mb": given.get("mem_mb", 8000),
                 "runtime": given.get("runtime", 240)}
    if nodes > 1:
        resources.update({"nodes": nodes, "tasks": nodes})
    return resources


def training_threads(entry: dict[str, Any]) -> int:
    """CPU threads of a train_<model> job: one per data-parallel process on its node."""
    return int(entry["training"].get("processes", 1))
