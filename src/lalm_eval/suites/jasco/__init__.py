"""JASCO / What Are They Doing as a suite kind: every system answers 8 instructions per clip
(split ``all``, mode ``open``); a panel of LLM judges rates every answer.

Own rules (``workflow/rules/jasco.smk``): the demo release, the items table and protocol,
one ``judge_<judge>`` job per (suite, judge, system, run), and the report (Table II
faithful and strict, modality dependence, agreement, judge health).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lalm_eval.inference import WorkItem
from lalm_eval.suites.base import InferenceJob, PredictionJob, Suite

#: corpus kinds that hold a release tree (README.md + dataset/v0/)
CORPUS_KINDS = ("jasco_demo", "what_are_they_doing")
#: the single split and mode of the answer jobs
SPLIT = "all"
MODE = "open"
#: the packaged prompt file of faithful mode's second (orientation) call
ORIENTATION_PROMPT_RESOURCE = "jasco_orientation"


class JascoSuite(Suite):
    """Joint audio-speech co-reasoning judged by an LLM panel."""

    kind = "jasco"
    schema_resource = ("lalm_eval.suites.jasco", "schema.yaml")
    modes = MODE
    rules = ("jasco.smk",)
    generic_report = False

    @classmethod
    def check(cls, name: str, settings: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        from lalm_eval.config import require_corpus, require_known

        super().check(name, settings, config)
        for judge in settings.get("judges", []):
            require_known(judge, config.get("models", {}), f"suites.{name}.judges names model",
                          "models")
        require_corpus(settings["corpus"], config.get("corpora", {}), CORPUS_KINDS,
                       f"suites.{name}.corpus")

    # ------------------------------------------------------------------ planning
    @property
    def judges(self) -> list[str]:
        return sorted(self.settings["judges"])

    @property
    def corpus(self) -> Mapping[str, Any]:
        assert self.plan is not None
        return self.plan.corpora[self.settings["corpus"]]

    def prediction_jobs(self) -> list[PredictionJob]:
        return [PredictionJob(model, MODE, SPLIT, run)
                for model in self.settings["systems"] for run in range(self.runs)]

    def inference_inputs(self, mode: str, split: str) -> dict[str, str]:
        return {"item_table": f"{self.out}/items.csv", "protocol": f"{self.out}/protocol.json"}

    def release_root(self) -> str:
        """Folder holding README.md and dataset/v0/ (demo build or registry download)."""
        name = self.settings["corpus"]
        if self.corpus["kind"] == "jasco_demo":
            return f"{self.res}/corpora/{name}"
        return f"{self.res}/downloads/{self.corpus['registry_name']}/downloads"

    def release_inputs(self) -> dict[str, str]:
        if self.corpus["kind"] == "jasco_demo":
            root = self.release_root()
            return {"v0": f"{root}/dataset/v0/v0.csv", "readme": f"{root}/README.md"}
        return {"stamp": f"{self.res}/downloads/{self.corpus['registry_name']}/.complete.json"}

    def judge_inputs(self, model: str, run: int | str) -> dict[str, str]:
        """Named inputs of one ``judge_<judge>`` job: the items, the protocol, the system's
        answers and, when ``orientation_call`` is on, the packaged orientation prompt the
        second call reads (so editing that file reruns the judges)."""
        inputs = {"item_table": f"{self.out}/items.csv",
                  "protocol": f"{self.out}/protocol.json",
                  "answers": f"{self.out}/predictions/{model}/{MODE}/{SPLIT}/run{run}.jsonl"}
        if self.settings["orientation_call"]:
            from lalm_eval.prompts import prompt_set_path

            inputs["orientation_prompt"] = str(prompt_set_path(ORIENTATION_PROMPT_RESOURCE))
        return inputs

    def judgement_path(self, judge: str, model: str, run: int) -> str:
        return f"{self.out}/judgements/{judge}/{model}/run{run}.jsonl"

    def judgement_files(self) -> list[str]:
        return [self.judgement_path(judge, model, run) for judge in self.judges
                for model in self.settings["systems"] for run in range(self.runs)]

    def intermediate_files(self) -> list[str]:
        return [*super().intermediate_files(), *self.judgement_files()]

    def targets(self) -> list[str]:
        if not self.settings["systems"]:
            return []
        return [f"{self.out}/report/results.json",
                f"{self.out}/report/tables/table2_faithful.html",
                f"{self.out}/inference_summary.md"]

    # ------------------------------------------------------------------ running
    def work_items(self, job: InferenceJob, model: Any) -> list[WorkItem]:
        from lalm_eval.suites.jasco.data import items_to_work, read_items

        return items_to_work(read_items(job.inputs["item_table"]))
