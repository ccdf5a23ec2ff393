"""XARES-LLM as a suite kind: every system is a trained LALM around one frozen encoder,
trained on this suite's task mixture and scored on every task (split ``test``; modes
``trained`` and, as the baseline each must beat, ``untrained``).

Own rules (``workflow/rules/xares.smk``): the demo items (``xares_items``), the training
mixture (``xares_training_set``, the input of every system's ``train_<model>``), one linear
probe job per encoder (``xares_probe``) and the report (``xares_report``: leaderboard, per-task
chart, loss curves, probe ranking agreement). Inference and scoring are the generic rules.
docs/xares.md has the task sets, metrics and score.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lalm_eval.inference import WorkItem
from lalm_eval.suites.base import (
    InferenceJob,
    PredictionJob,
    ScoreJob,
    Suite,
    with_model_options,
)

SPLIT = "test"
TRAINED, UNTRAINED = "trained", "untrained"


class XaresSuite(Suite):
    """Audio encoders ranked by the LALM trained around each."""

    kind = "xares"
    schema_resource = ("lalm_eval.suites.xares", "schema.yaml")
    modes = f"{TRAINED}|{UNTRAINED}"
    rules = ("xares.smk",)
    generic_report = False
    writes_training_sets = True

    @classmethod
    def check(cls, name: str, settings: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        from lalm_eval.config import ConfigError, require_corpus
        from lalm_eval.suites.xares.tasks import load_task_set

        super().check(name, settings, config)
        models = config.get("models", {})
        for system in settings["systems"]:
            training = models[system].get("training")
            if models[system]["adapter"] != "trained_lalm" or training is None:
                raise ConfigError(f"config error: suites.{name}.systems: {system} is not a "
                                  "trained LALM (adapter trained_lalm with a training block)")
            if training["data"].get("suite") != name:
                raise ConfigError(f"config error: models.{system}.training.data: a system of "
                                  f"suite {name} trains on its mixture (data: {{suite: {name}}})")
        if "corpus" in settings["data"]:
            require_corpus(settings["data"]["corpus"], config.get("corpora", {}), ("demo",),
                           f"suites.{name}.data.corpus")
        try:
            load_task_set(settings["tasks"])
        except (OSError, ValueError) as exc:
            raise ConfigError(f"config error: suites.{name}.tasks: {exc}") from None

    # ------------------------------------------------------------------ planning
    @property
    def systems_list(self) -> list[str]:
        return list(self.settings["systems"])

    def modes_run(self) -> list[str]:
        return [TRAINED, UNTRAINED] if self.settings.get("untrained_baseline", True) else [
            TRAINED]

    def prediction_jobs(self) -> list[PredictionJob]:
        return [PredictionJob(model, mode, SPLIT, 0) for model in self.systems_list
                for mode in self.modes_run()]

    def items_file(self) -> str:
        data = self.settings["data"]
        return data["items"] if "items" in data else f"{self.out}/data/items.csv"

    def items_inputs(self) -> dict[str, str]:
        """Inputs of the items rule: the demo corpus's tables (none for shards: a folder)."""
        if "shards" in self.settings["data"]:
            # the verified download of every task's shards (registry entries xares_<task>)
            from lalm_eval.corpora.xares_shards import registry_name
            from lalm_eval.suites.xares.tasks import load_task_set

            assert self.plan is not None
            return {f"shards_{name}": self.plan.download_stamp(registry_name(name))
                    for name, task in load_task_set(self.settings["tasks"]).tasks.items()
                    if task.shards}
        if "corpus" not in self.settings["data"]:
            return {}
        corpus = self.settings["data"]["corpus"]
        return {"speech": f"{self.res}/corpora/{corpus}/sources/speech.csv",
                "events": f"{self.res}/corpora/{corpus}/sources/events.csv",
                "background": f"{self.res}/corpora/{corpus}/backgrounds/background.csv"}

    def builds_items(self) -> bool:
        return "corpus" in self.settings["data"] or "shards" in self.settings["data"]

    def training_set_file(self, model: str) -> str:
        return f"{self.out}/training/mixture.jsonl"

    def inference_inputs(self, mode: str, split: str) -> dict[str, str]:
        return {"item_table": self.items_file()}

    def inference_params(self, model: str, mode: str, split: str) -> dict[str, Any]:
        return {"tasks": self.settings["tasks"]}

    def required_capability(self, mode: str) -> str:
        return "generate"

    def score_jobs(self) -> list[ScoreJob]:
        return [ScoreJob(model, mode) for model in self.systems_list for mode in self.modes_run()]

    def score_inputs(self, model: str, mode: str) -> dict[str, str | list[str]]:
        return {**super().score_inputs(model, mode), "item_table": self.items_file()}

    def score_params(self, model: str, mode: str) -> dict[str, Any]:
        return {**super().score_params(model, mode), "tasks": self.settings["tasks"],
                "bootstrap": self.settings.get("bootstrap", 1000)}

    def encoders(self) -> list[str]:
        """The encoders of the systems, in system order (each once)."""
        assert self.plan is not None
        names = [self.plan.models[m]["training"]["encoder"] for m in self.systems_list]
        return list(dict.fromkeys(names))

    def probe_files(self) -> list[str]:
        if not self.settings.get("probes", {}).get("enabled", True):
            return []
        return [f"{self.out}/probes/{encoder}.csv" for encoder in self.encoders()]

    def manifests(self) -> dict[str, str]:
        return {m: f"{self.plan.results_dir}/training/{m}/manifest.json"
                for m in self.systems_list}

    def report_inputs(self) -> dict[str, str | list[str]]:
        return {"scores": self.score_files(),
                "item_scores": [f"{self.out}/scores/{j.model}/{j.mode}.items.csv.gz"
                                for j in self.score_jobs()],
                "item_table": self.items_file(),
                "probes": self.probe_files(), "manifests": list(self.manifests().values()),
                "losses": [f"{self.plan.results_dir}/training/{m}/loss.csv"
                           for m in self.systems_list],
                "mixture": self.training_set_file("")}

    def report_params(self) -> dict[str, Any]:
        assert self.plan is not None
        return {"settings": self.settings, "systems": {
            m: {"encoder": self.plan.models[m]["training"]["encoder"],
                "manifest": f"{self.plan.results_dir}/training/{m}/manifest.json",
                "loss": f"{self.plan.results_dir}/training/{m}/loss.csv"}
            for m in self.systems_list},
            "probes": {e: f"{self.out}/probes/{e}.csv" for e in self.encoders()}
            if self.probe_files() else {}}

    def report_files(self) -> dict[str, str]:
        base = f"{self.out}/report"
        return {"leaderboard": f"{base}/tables/leaderboard.html",
                "results": f"{base}/results.json"}

    def intermediate_files(self) -> list[str]:
        return [*super().intermediate_files(), *self.probe_files(),
                self.training_set_file("")]

    def targets(self) -> list[str]:
        return [*self.report_files().values(), f"{self.out}/inference_summary.md"]

    # ------------------------------------------------------------------ running
    def run_inference(self, job: InferenceJob):
        """Mode ``untrained`` runs the system with its connector as initialised."""
        if job.mode == UNTRAINED:
            job = with_model_options(job, untrained=True)
        return super().run_inference(job)

    def work_items(self, job: InferenceJob, model: Any) -> list[WorkItem]:
        from lalm_eval.suites.xares.data import read_items
        from lalm_eval.suites.xares.tasks import load_task_set

        tasks = load_task_set(job.params["tasks"]).tasks
        return [WorkItem(item_id=row.item_id, clip_id=row.recording, task=row.task,
                         request="generate", audio_path=str(row.audio),
                         prompt=tasks[row.task].instruction)
                for row in read_items(job.inputs["item_table"]) if row.split == SPLIT]

    def score(self, model: str, mode: str, inputs: Mapping[str, Any],
              params: Mapping[str, Any], seed: int) -> tuple[Any, Any]:
        from lalm_eval.suites.xares.scoring import score_predictions

        return score_predictions(self.name, model, mode, inputs["item_table"],
                                 params["predictions"], params["tasks"],
                                 int(params.get("bootstrap", 1000)), seed)

    def report(self, inputs: Mapping[str, Any], params: Mapping[str, Any], out_dir: Path,
               seed: int) -> dict[str, Any]:
        from lalm_eval.suites.xares.report import write_report

        return write_report(self.name, inputs, params, out_dir, seed)
