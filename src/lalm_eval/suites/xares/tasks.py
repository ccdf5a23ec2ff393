"""XARES task sets as data (``tasks/<name>.yaml``, docs/xares.md): loading, checking, and
comparing each task's definition with the upstream task files at the pinned commit."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lalm_eval.hashing import bytes_sha256

METRICS = ("accuracy", "map", "iwer", "icer", "fense", "date", "caption_similarity")
TRACKS = ("A", "B")
SET_KEYS = {"name", "source", "rules", "score", "tasks", "hidden", "baselines", "note"}
TASK_KEYS = {"track", "dataset", "instruction", "label_key", "label_key_verified", "metric",
             "num_classes", "weight", "public", "worst", "best", "chance", "description",
             "labels", "upstream_file", "note", "shards"}
REQUIRED = ("track", "instruction", "metric")


class TaskSetError(ValueError):
    """A task set that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class TaskDef:
    """One task: what it asks, how it is scored, how much of the mixture it is."""

    name: str
    track: str
    instruction: str
    metric: str
    dataset: str | None = None
    label_key: str | None = None
    label_key_verified: bool = True
    num_classes: int | None = None
    weight: float | None = None
    public: bool = True
    worst: float = 0.0
    best: float = 1.0
    chance: float | None = None
    description: str = ""
    labels: tuple[str, ...] | None = None
    upstream_file: str | None = None
    note: str = ""
    #: full runs: the upstream WebDataset shards (repo_id, train / test lists, train_key)
    shards: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TaskSet:
    name: str
    source: Mapping[str, Any]
    rules: Mapping[str, Any]
    score: Mapping[str, Any]
    tasks: dict[str, TaskDef]
    hidden: Mapping[str, Any] = field(default_factory=dict)
    baselines: Mapping[str, Any] = field(default_factory=dict)


def task_set_names() -> list[str]:
    folder = resources.files("lalm_eval.suites.xares").joinpath("tasks")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read(name_or_path: str) -> tuple[str, Any]:
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise TaskSetError(f"task set file {path} not found")
        return str(path), yaml.safe_load(path.read_text())
    if name_or_path not in task_set_names():
        raise TaskSetError(f"unknown task set {name_or_path!r} (known: "
                           f"{', '.join(task_set_names())}; or a path to a YAML file)")
    text = (resources.files("lalm_eval.suites.xares").joinpath("tasks")
            .joinpath(f"{name_or_path}.yaml").read_text())
    return f"task set {name_or_path}", yaml.safe_load(text)


def _task(where: str, name: str, spec: Any) -> TaskDef:
    at = f"{where}: tasks.{name}"
    if not isinstance(spec, Mapping):
        raise TaskSetError(f"{at}: not a mapping")
    unknown = sorted(set(spec) - TASK_KEYS)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], sorted(TASK_KEYS), n=1)
        maybe = f"; did you mean '{hint[0]}'?" if hint else ""
        raise TaskSetError(f"{at}: unknown key '{unknown[0]}'{maybe}")
    for key in REQUIRED:
        if spec.get(key) in (None, ""):
            raise TaskSetError(f"{at}: '{key}' is required")
    if spec["metric"] not in METRICS:
        raise TaskSetError(f"{at}.metric: {spec['metric']!r} is not one of {', '.join(METRICS)}")
    if spec["track"] not in TRACKS:
        raise TaskSetError(f"{at}.track: {spec['track']!r} is not A or B")
    if spec["metric"] in ("accuracy", "map") and not spec.get("num_classes"):
        raise TaskSetError(f"{at}: a {spec['metric']} task needs 'num_classes'")
    values = dict(spec)
    if values.get("labels") is not None:
        values["labels"] = tuple(str(v) for v in values["labels"])
    if float(values.get("best", 1.0)) == float(values.get("worst", 0.0)):
        raise TaskSetError(f"{at}: 'best' and 'worst' must differ")
    return TaskDef(name=name, **values)


@cache
def load_task_set(name_or_path: str) -> TaskSet:
    """A packaged task set by name (challenge, superseded, demo) or one by path."""
    where, data = _read(str(name_or_path))
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), Mapping):
        raise TaskSetError(f"{where}: needs a 'tasks' mapping")
    unknown = sorted(set(data) - SET_KEYS)
    if unknown:
        raise TaskSetError(f"{where}: unknown key '{unknown[0]}'")
    tasks = {str(n): _task(where, str(n), s) for n, s in data["tasks"].items()}
    return TaskSet(name=str(data.get("name", where)), source=data.get("source") or {},
                   rules=data.get("rules") or {}, score=data.get("score") or {}, tasks=tasks,
                   hidden=data.get("hidden") or {}, baselines=data.get("baselines") or {})


def check_against_upstream(task_set: TaskSet, fetch: Callable[[str], bytes]) -> list[str]:
    """Mismatches between the task set and the upstream task files at its pinned commit.

    ``source.files`` maps each upstream file to its sha256 at that commit; ``fetch(path)``
    returns a file's bytes (a full run reads them from the pinned snapshot). A changed
    hash is a mismatch, and so is an instruction that no longer appears in its task's file.
    """
    problems = []
    for path, expected in (task_set.source.get("files") or {}).items():
        data = fetch(path)
        if expected and bytes_sha256(data) != expected:
            problems.append(f"{path}: sha256 {bytes_sha256(data)[:12]} differs from the "
                            f"pinned {str(expected)[:12]}")
    for task in task_set.tasks.values():
        if task.upstream_file:
            text = fetch(task.upstream_file).decode("utf-8", "replace")
            if task.instruction not in text:
                problems.append(f"{task.upstream_file}: instruction of task {task.name} "
                                f"({task.instruction!r}) not found")
    return problems
