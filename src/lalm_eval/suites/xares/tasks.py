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
SET_KEYS = {"name", "source", "rules", "score", "tasks", "hidden", "baselines", "note",
            "unavailable"}
TASK_KEYS = {"track", "dataset", "instruction", "label_key", "label_key_verified", "metric",
             "num_classes", "num_classes_verified", "weight", "public", "worst", "best",
             "chance", "description", "labels", "upstream_file", "upstream_entry", "note",
             "shards"}
SCORE_KEYS = {"normalise", "track_weights", "combine", "overall"}
REQUIRED = ("track", "instruction", "metric")
#: upstream's metric names (the ``metric:`` of its eval configs) in ours
UPSTREAM_METRICS = {"Accuracy": "accuracy", "mAP": "map", "iWER": "iwer", "iCER": "icer",
                    "FENSE": "fense", "DATE": "date"}


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
    num_classes_verified: bool = True
    #: mixture sampling weight (upstream ``prob``); None: the dataset's share of shards
    weight: float | None = None
    public: bool = True
    worst: float = 0.0
    best: float = 1.0
    chance: float | None = None
    description: str = ""
    labels: tuple[str, ...] | None = None
    upstream_file: str | None = None
    #: the task's entry in the upstream eval file (default ``eval_<dataset lower-cased>``)
    upstream_entry: str | None = None
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
    #: tasks a rule set names that have no task files (not runnable)
    unavailable: Mapping[str, Any] = field(default_factory=dict)


def task_set_names() -> list[str]:
    folder = resources.files("lalm_eval.suites.xares").joinpath("tasks")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read(name_or_path: str) -> tuple[str, Any]:
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise TaskSetError(f"task set file {path} not found")
        text = path.read_text(encoding="utf-8")
        where = str(path)
    else:
        if name_or_path not in task_set_names():
            raise TaskSetError(f"unknown task set {name_or_path!r} (known: "
                               f"{', '.join(task_set_names())}; or a path to a YAML file)")
        text = (resources.files("lalm_eval.suites.xares").joinpath("tasks")
                .joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8"))
        where = f"task set {name_or_path}"
    try:
        return where, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TaskSetError(f"{where}: not valid YAML ({first})") from None


def _unknown(at: str, keys: Any, allowed: set[str]) -> None:
    unknown = sorted(set(map(str, keys)) - allowed)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], sorted(allowed), n=1)
        maybe = f"; did you mean '{hint[0]}'?" if hint else ""
        raise TaskSetError(f"{at}: unknown key '{unknown[0]}'{maybe}")


def _number(at: str, value: Any, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TaskSetError(f"{at}: {value!r} is not a number")
    if minimum is not None and value < minimum:
        raise TaskSetError(f"{at}: {value!r} is below {minimum}")
    return float(value)


def _task(where: str, name: str, spec: Any) -> TaskDef:
    at = f"{where}: tasks.{name}"
    if not isinstance(spec, Mapping):
        raise TaskSetError(f"{at}: not a mapping")
    _unknown(at, spec, TASK_KEYS)
    for key in REQUIRED:
        if spec.get(key) in (None, ""):
            raise TaskSetError(f"{at}: '{key}' is required")
    if not isinstance(spec["instruction"], str):
        raise TaskSetError(f"{at}.instruction: not a string")
    if spec["metric"] not in METRICS:
        raise TaskSetError(f"{at}.metric: {spec['metric']!r} is not one of {', '.join(METRICS)}")
    if spec["track"] not in TRACKS:
        raise TaskSetError(f"{at}.track: {spec['track']!r} is not A or B")
    values = dict(spec)
    if spec["metric"] in ("accuracy", "map") and spec.get("num_classes") is None:
        raise TaskSetError(f"{at}: a {spec['metric']} task needs 'num_classes'")
    if spec.get("num_classes") is not None and (
            isinstance(spec["num_classes"], bool) or not isinstance(spec["num_classes"], int)
            or spec["num_classes"] < 1):
        raise TaskSetError(f"{at}.num_classes: {spec['num_classes']!r} is not a positive "
                           "integer")
    if spec.get("weight") is not None:
        values["weight"] = _number(f"{at}.weight", spec["weight"], minimum=0)
    for key in ("worst", "best", "chance"):
        if spec.get(key) is not None:
            values[key] = _number(f"{at}.{key}", spec[key])
    for key in ("public", "label_key_verified", "num_classes_verified"):
        if key in spec and not isinstance(spec[key], bool):
            raise TaskSetError(f"{at}.{key}: {spec[key]!r} is not true or false")
    worst, best = values.get("worst", 0.0), values.get("best", 1.0)
    if best == worst:
        raise TaskSetError(f"{at}: 'best' and 'worst' must differ")
    chance = values.get("chance")
    if chance is not None and not min(worst, best) <= chance < max(worst, best):
        raise TaskSetError(f"{at}.chance: {chance} is not between worst and best")
    if values.get("labels") is not None:
        values["labels"] = tuple(str(v) for v in values["labels"])
    return TaskDef(name=name, **values)


def _check_score(where: str, score: Any, tasks: Mapping[str, TaskDef]) -> Mapping[str, Any]:
    at = f"{where}: score"
    if score is None:
        return {}
    if not isinstance(score, Mapping):
        raise TaskSetError(f"{at}: not a mapping")
    _unknown(at, score, SCORE_KEYS)
    if score.get("normalise", "identity") not in ("identity", "chance_floor"):
        raise TaskSetError(f"{at}.normalise: {score['normalise']!r} is not identity or "
                           "chance_floor")
    weights = score.get("track_weights", "equal")
    if isinstance(weights, Mapping):
        for task, weight in weights.items():
            if task not in tasks:
                raise TaskSetError(f"{at}.track_weights.{task}: not a task of this set")
            _number(f"{at}.track_weights.{task}", weight, minimum=0)
    elif weights != "equal":
        raise TaskSetError(f"{at}.track_weights: {weights!r} is not 'equal' or a weight per "
                           "task")
    combine = score.get("combine", {})
    if not isinstance(combine, Mapping):
        raise TaskSetError(f"{at}.combine: not a mapping")
    _unknown(f"{at}.combine", combine, {"public", "hidden"})
    for key, value in combine.items():
        _number(f"{at}.combine.{key}", value, minimum=0)
    return score


def load_task_set(name_or_path: str) -> TaskSet:
    """A packaged task set by name (challenge, superseded, demo) or one by path; a
    :class:`TaskSetError` (one line naming the file and the key) if it is not usable.
    Loaded once per process (a file by path again when it changes)."""
    name_or_path = str(name_or_path)
    path = Path(name_or_path)
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if (
        name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path) and path.is_file() \
        else None
    return _load(name_or_path, stamp)


@cache
def _load(name_or_path: str, stamp: tuple[int, int] | None) -> TaskSet:
    where, data = _read(name_or_path)
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), Mapping):
        raise TaskSetError(f"{where}: needs a 'tasks' mapping")
    _unknown(where, data, SET_KEYS)
    if not data["tasks"]:
        raise TaskSetError(f"{where}: 'tasks' is empty")
    tasks = {str(n): _task(where, str(n), s) for n, s in data["tasks"].items()}
    score = _check_score(where, data.get("score"), tasks)
    return TaskSet(name=str(data.get("name", where)), source=data.get("source") or {},
                   rules=data.get("rules") or {}, score=score, tasks=tasks,
                   hidden=data.get("hidden") or {}, baselines=data.get("baselines") or {},
                   unavailable=data.get("unavailable") or {})


def _upstream_entries(files: Mapping[str, Any]) -> tuple[dict[str, tuple[str, Any]],
                                                          dict[str, tuple[str, Any]]]:
    """(eval entries, train entries) of parsed upstream configs: name -> (file, entry)."""
    evals: dict[str, tuple[str, Any]] = {}
    trains: dict[str, tuple[str, Any]] = {}
    for path, data in files.items():
        if not isinstance(data, Mapping):
            continue
        for name, entry in (data.get("train_data") or {}).items():
            trains[str(name)] = (path, entry)
        for name, entry in data.items():
            if str(name).startswith("eval_") and isinstance(entry, Mapping):
                evals[str(name)] = (path, entry)
    return evals, trains


def _compare(problems: list[str], task: str, what: str, ours: Any, where: str,
             theirs: Any) -> None:
    if ours != theirs:
        problems.append(f"task {task}: {what} {ours!r} but upstream {where} has {theirs!r}")


def check_against_upstream(task_set: TaskSet, fetch: Callable[[str], bytes]) -> list[str]:
    """Mismatches between the task set and the upstream task files at its pinned commit.

    ``source.files`` maps each upstream config (a path in ``source.repo`` at
    ``source.commit``) to its sha256; ``fetch(path)`` returns that file's bytes (a full run
    reads them from the pinned snapshot, a test builds them). Reported: a file whose sha256
    differs from the pinned one, a file that is not YAML, and per task whose entry is found
    (``upstream_entry``, default ``eval_<dataset lower-cased>``; the train entry is
    ``train_data.<dataset>``): instruction, label key, metric and (where upstream states
    it, the mAP tasks' ``metric_args``) num_classes against the eval entry; instruction,
    test shards; instruction, mixture weight (``prob``), the training label key and shards
    against the train entry; and a
    task whose eval entry is missing. An empty list means everything matches.
    """
    problems: list[str] = []
    parsed: dict[str, Any] = {}
    for path, expected in (task_set.source.get("files") or {}).items():
        data = fetch(path)
        digest = bytes_sha256(data)
        if expected and digest != expected:
            problems.append(f"{path}: sha256 {digest[:12]} differs from the pinned "
                            f"{str(expected)[:12]}")
        try:
            parsed[path] = yaml.safe_load(data.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError):
            problems.append(f"{path}: not a YAML file")
    evals, trains = _upstream_entries(parsed)
    for task in task_set.tasks.values():
        if not task.upstream_file and not task.upstream_entry:
            continue  # ours (e.g. the demo's tasks): nothing upstream to compare with
        entry_name = task.upstream_entry or f"eval_{(task.dataset or task.name).lower()}"
        if entry_name not in evals:
            problems.append(f"task {task.name}: no entry {entry_name} in the upstream files")
            continue
        path, entry = evals[entry_name]
        where = f"{path}:{entry_name}"
        data = entry.get("data") or {}
        _compare(problems, task.name, "instruction", task.instruction, where,
                 data.get("prompt"))
        _compare(problems, task.name, "label_key", task.label_key, where, data.get("key"))
        if task.shards and "test" in task.shards:
            _compare(problems, task.name, "shards.test", list(task.shards["test"]), where,
                     data.get("data"))
        _compare(problems, task.name, "metric", task.metric, where,
                 UPSTREAM_METRICS.get(entry.get("metric"), entry.get("metric")))
        upstream_classes = (entry.get("metric_args") or {}).get("num_classes")
        if upstream_classes is not None:
            _compare(problems, task.name, "num_classes", task.num_classes, where,
                     upstream_classes)
        if task.dataset in trains:
            path, train = trains[task.dataset]
            where = f"{path}:train_data.{task.dataset}"
            _compare(problems, task.name, "instruction", task.instruction, where,
                     train.get("prompt"))
            if task.weight is not None or "prob" in train:
                _compare(problems, task.name, "weight", task.weight, where,
                         None if train.get("prob") is None else float(train["prob"]))
            if task.shards and "train" in task.shards:
                _compare(problems, task.name, "shards.train", list(task.shards["train"]),
                         where, train.get("data"))
            if task.shards and "train_key" in task.shards:
                _compare(problems, task.name, "shards.train_key", task.shards["train_key"],
                         where, train.get("key"))
    return problems
