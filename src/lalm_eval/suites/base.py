"""The suite interface: what a benchmark kind declares so that the generic workflow can plan,
run, score and report it.

A *suite kind* (``sseu``, ``jasco``, ``knowledge``, or one a plug-in registers) is a subclass
of :class:`Suite`. A *suite* is a named instance of a kind in the config
(``suites: {sseu_street: {kind: sseu, ...}}``); the workflow builds one :class:`Suite` object
per instance and asks it, never the suite's name, what to do:

* config time: :meth:`Suite.schema` (the instance's JSON schema slice), :meth:`Suite.check`
  (references the schema cannot express), :meth:`Suite.select` (``select.models``);
* planning (in the Snakefile, cheap): :meth:`Suite.systems`, :meth:`Suite.prediction_jobs`,
  :meth:`Suite.inference_inputs`, :meth:`Suite.score_jobs`, :meth:`Suite.score_inputs`,
  :meth:`Suite.report_inputs`, :meth:`Suite.targets`; ``rules`` names the ``.smk`` files of
  the steps only this kind has (mixtures, judges, training, ...);
* running (in job scripts): :meth:`Suite.run_inference`, :meth:`Suite.score`,
  :meth:`Suite.report`.

Every path a suite hands the workflow lies under ``<results>/<suite name>/``, so two
instances of one kind never share a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import yaml

from lalm_eval.inference import JobSummary, WorkItem

#: the columns of a long-format score row (docs/architecture.md)
SCORE_COLUMNS = ("suite", "model", "mode", "split", "run", "task", "metric", "value",
                 "n_items", "n_failed")


@dataclass(frozen=True)
class Plan:
    """What a suite sees of the workflow at planning time."""

    config: Mapping[str, Any]
    resources_dir: str
    results_dir: str
    snr_splits: tuple[str, ...] = ()

    @property
    def corpora(self) -> Mapping[str, Any]:
        return self.config.get("corpora", {})

    @property
    def models(self) -> Mapping[str, Any]:
        return self.config.get("models", {})

    def source_table(self, corpus: str, role: str) -> str:
        """Path of a corpus's source table, ``role`` speech or background
        (docs/architecture.md)."""
        entry = self.corpora[corpus]
        if entry["kind"] == "tables":
            if entry[role] is None:
                raise ValueError(f"corpora.{corpus} has no '{role}' table but a suite uses it")
            return entry[role]
        if entry["kind"] == "demo":
            folder = "sources" if role == "speech" else "backgrounds"
            return f"{self.resources_dir}/corpora/{corpus}/{folder}/{role}.csv"
        return f"{self.resources_dir}/tables/{corpus}/{role}.csv"

    def download_stamp(self, registry_name: str) -> str:
        """The marker a finished, verified download of a registry entry leaves."""
        return f"{self.resources_dir}/downloads/{registry_name}/.complete.json"


@dataclass(frozen=True, order=True)
class PredictionJob:
    """One inference job: a model on one split in one mode, one run."""

    model: str
    mode: str
    split: str
    run: int
    #: what the job's predictions are for, for the suite's own scoring (e.g. ``caption``)
    role: str = ""


@dataclass(frozen=True, order=True)
class ScoreJob:
    """One scoring job of the generic ``score`` rule: a system in one mode, all splits/runs."""

    model: str
    mode: str


@dataclass
class InferenceJob:
    """Everything an inference job script hands its suite (typed, nothing glued)."""

    model_name: str
    models: Mapping[str, Any]
    mode: str
    split: str
    run: int
    seed: int
    cache_path: str
    out_path: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    threads: int = 1
    progress: bool = True


def with_model_options(job: InferenceJob, **options: Any) -> InferenceJob:
    """``job`` with ``options`` set on its model's entry (e.g. ``untrained=True``: a trained
    model's connector as initialised, the baseline it must beat)."""
    models = {name: dict(entry) for name, entry in job.models.items()}
    entry = models[job.model_name]
    entry["options"] = {**(entry.get("options") or {}), **options}
    return InferenceJob(**{**job.__dict__, "models": models})


class Suite:
    """Base class of every suite kind; subclasses set the class variables and override the
    planning and running methods they need."""

    #: the kind's name in config (``suites.<name>.kind``)
    kind: ClassVar[str] = ""
    #: package resource holding the instance schema, as (package, file name)
    schema_resource: ClassVar[tuple[str, str] | None] = None
    #: regular expression of the modes the kind's inference jobs use
    modes: ClassVar[str] = "default"
    #: ``.smk`` files (absolute paths) of rules only this kind has
    rules: ClassVar[tuple[str, ...]] = ()
    #: whether the generic ``suite_report`` rule makes this kind's report
    generic_report: ClassVar[bool] = True
    #: report category (HTML report sidebar) of the generic report pages
    title: ClassVar[str] = ""
    #: whether the kind writes training sets for trained models
    #: (``models.<name>.training.data.suite``; :meth:`training_set_file`)
    writes_training_sets: ClassVar[bool] = False

    def __init__(self, name: str, settings: Mapping[str, Any], plan: Plan | None = None):
        self.name = name
        self.settings = dict(settings)
        self.plan = plan

    # ------------------------------------------------------------------ config time
    @classmethod
    def schema(cls) -> dict[str, Any]:
        """The JSON schema of one instance's settings (``kind`` included)."""
        if cls.schema_resource is None:
            return {"type": "object", "properties": {"kind": {"const": cls.kind}}}
        package, filename = cls.schema_resource
        return yaml.safe_load(resources.files(package).joinpath(filename).read_text())

    @classmethod
    def check(cls, name: str, settings: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        """Raise ``ConfigError`` for references the schema cannot express (default: the
        systems must be configured models)."""
        from lalm_eval.config import require_known

        for model in cls.configured_systems(settings):
            require_known(model, config.get("models", {}), f"suites.{name} names model",
                          "models")

    @classmethod
    def configured_systems(cls, settings: Mapping[str, Any]) -> list[str]:
        """Models named as systems in an instance's settings (before ``select``)."""
        return list(settings.get("systems") or [])

    @classmethod
    def select(cls, settings: Mapping[str, Any], models: Sequence[str] | None
               ) -> dict[str, Any]:
        """The settings with systems limited to ``models`` (None = all)."""
        out = dict(settings)
        systems = settings.get("systems") or []
        if models is not None:
            if isinstance(systems, Mapping):
                systems = {m: v for m, v in systems.items() if m in models}
            else:
                systems = [m for m in systems if m in models]
        out["systems"] = systems
        return out

    # ------------------------------------------------------------------ planning
    @property
    def out(self) -> str:
        """The suite's results folder."""
        assert self.plan is not None, "planning needs a Plan"
        return f"{self.plan.results_dir}/{self.name}"

    @property
    def res(self) -> str:
        assert self.plan is not None, "planning needs a Plan"
        return self.plan.resources_dir

    @property
    def runs(self) -> int:
        return int(self.settings.get("runs", 1))

    def systems(self) -> list[str]:
        """Every model whose ``infer_<model>`` rule this suite uses."""
        return sorted({job.model for job in self.prediction_jobs()})

    def splits(self) -> list[str]:
        return sorted({job.split for job in self.prediction_jobs()})

    def prediction_jobs(self) -> list[PredictionJob]:
        """Every inference job of the suite."""
        return []

    def prediction_path(self, job: PredictionJob) -> str:
        return (f"{self.out}/predictions/{job.model}/{job.mode}/{job.split}/"
                f"run{job.run}.jsonl")

    def prediction_files(self) -> list[str]:
        return sorted({self.prediction_path(job) for job in self.prediction_jobs()})

    def cache_path(self, model: str, mode: str, split: str, run: int) -> str:
        return f"{self.out}/cache/{model}/{mode}/{split}/run{run}.jsonl"

    def inference_inputs(self, mode: str, split: str) -> dict[str, str]:
        """Named input files of one inference job (a change to any reruns it)."""
        return {}

    def inference_params(self, model: str, mode: str, split: str) -> dict[str, Any]:
        """Settings one inference job's script needs (JSON-able)."""
        return {}

    def score_jobs(self) -> list[ScoreJob]:
        """Jobs of the generic ``score`` rule (none: the kind scores in its own rules)."""
        return []

    def score_inputs(self, model: str, mode: str) -> dict[str, str | list[str]]:
        """Named inputs of one scoring job: by default its prediction files."""
        files = [self.prediction_path(j) for j in self.prediction_jobs()
                 if j.model == model and j.mode == mode]
        return {"predictions": sorted(files)}

    def score_params(self, model: str, mode: str) -> dict[str, Any]:
        """What a scoring job needs besides its files: by default which prediction file
        holds which (split, run), so nothing is read back out of a path."""
        return {"predictions": [
            {"split": j.split, "run": j.run, "path": self.prediction_path(j)}
            for j in sorted(self.prediction_jobs()) if j.model == model and j.mode == mode]}

    def score_files(self) -> list[str]:
        return [f"{self.out}/scores/{j.model}/{j.mode}.csv" for j in self.score_jobs()]

    def report_inputs(self) -> dict[str, str | list[str]]:
        """Named inputs of the generic report job: by default the score files."""
        return {"scores": self.score_files()}

    def report_params(self) -> dict[str, Any]:
        return {}

    def targets(self) -> list[str]:
        """What ``rule all`` asks for."""
        targets = []
        if self.prediction_jobs():
            targets.append(f"{self.out}/inference_summary.md")
        if self.generic_report and (self.score_jobs() or self.prediction_jobs()):
            targets.append(f"{self.out}/report/results.json")
        return targets

    def training_set_file(self, model: str) -> str:
        """The training set (docs/training.md) this suite writes for trained ``model``, for
        kinds with ``writes_training_sets``; a rule of the kind makes it."""
        raise NotImplementedError(f"suite kind {self.kind!r} writes no training sets")

    def intermediate_files(self) -> list[str]:
        """Every intermediate output the reports are built from. ``rule all`` asks for these
        too: Snakemake does not rebuild a missing intermediate file while the files built
        from it are present, so without them a predictions file deleted by a killed or
        failed job would leave reports that no longer match their inputs, unnoticed."""
        return [*self.prediction_files(), *self.score_files()]

    # ------------------------------------------------------------------ running
    def required_capability(self, mode: str) -> str | None:
        """The adapter capability an inference job of ``mode`` needs (None: the work items
        choose per item)."""
        return "generate"

    def work_items(self, job: InferenceJob, model: Any) -> list[WorkItem]:
        """The work items of one inference job (``model`` is the built adapter)."""
        raise NotImplementedError(f"suite kind {self.kind!r} defines no inference items")

    def run_inference(self, job: InferenceJob) -> JobSummary:
        """Run (or resume) one inference job through the engine."""
        from lalm_eval.inference import run_job
        from lalm_eval.models.registry import build_model
        from lalm_eval.parallel import limit_threads

        limit_threads(job.threads)
        model = build_model(job.model_name, job.models)  # weights load only if work is pending
        needed = self.required_capability(job.mode)
        if needed and not model.supports(needed):
            raise ValueError(f"model {job.model_name!r} cannot {needed} (supports "
                             f"{sorted(model.capabilities)}); check suites.{self.name}")
        items = self.work_items(job, model)
        return run_job(lambda: model, model.fingerprint(), items, job.cache_path, job.out_path,
                       model_name=job.model_name, model_revision=model.entry.revision,
                       mode=job.mode, run=job.run, seed=job.seed,
                       sample_rate=model.sample_rate, batch_size=model.entry.batch_size,
                       progress=job.progress)

    def score(self, model: str, mode: str, inputs: Mapping[str, Any],
              params: Mapping[str, Any], seed: int) -> tuple[Any, Any]:
        """Long-format score rows (:data:`SCORE_COLUMNS`, more columns allowed) and per-item
        rows of one scoring job, as two DataFrames."""
        raise NotImplementedError(f"suite kind {self.kind!r} defines no scoring")

    def report(self, inputs: Mapping[str, Any], params: Mapping[str, Any], out_dir: Path,
               seed: int) -> dict[str, Any]:
        """The generic report: mean and std over runs of every score row, as a page of the
        HTML report (``out_dir/pages/scores.html``), plus CSV and Markdown; returns the
        results JSON written to ``out_dir/results.json``."""
        from lalm_eval.reports.generic import write_generic_report

        return write_generic_report(self.name, self.kind, inputs.get("scores", []), out_dir,
                                    params=params, seed=seed)


def split_pattern(names: Sequence[str]) -> str:
    """Regex alternation of ``names`` (matches nothing when empty)."""
    return "|".join(map(re.escape, names)) if names else "(?!x)x"
