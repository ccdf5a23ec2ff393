"""SSEU-Bench as a suite kind: clean speech mixed with scene recordings at each SNR; ASR,
scene classification and audio tagging in independent, joint and chain-of-thought modes.

Own rules (``workflow/rules/sseu.smk``): loudness-normalised sources, the pairing plan, one
mixture job per SNR split, label sets, the fetched prompt set, the ground-truth check and
the report (Table 1, Table 2, CoT, format compliance, figures).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lalm_eval.inference import WorkItem
from lalm_eval.suites.base import InferenceJob, PredictionJob, ScoreJob, Suite


class SseuSuite(Suite):
    """SSEU-Bench: one inference job per (model, mode, SNR split, run)."""

    kind = "sseu"
    schema_resource = ("lalm_eval.suites.sseu", "schema.yaml")
    modes = "independent|joint|cot"
    rules = ("sseu.smk",)
    generic_report = False

    @classmethod
    def check(cls, name: str, settings: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        from lalm_eval.config import require_known

        super().check(name, settings, config)
        corpora = config.get("corpora", {})
        for corpus in [settings["speech_corpus"], *settings["background_corpora"]]:
            require_known(corpus, corpora, f"suites.{name} names corpus", "corpora")

    # ------------------------------------------------------------------ planning
    def prediction_jobs(self) -> list[PredictionJob]:
        assert self.plan is not None
        return [PredictionJob(model, mode, split, run)
                for model, modes in self.settings.get("systems", {}).items()
                for mode in modes
                for split in self.plan.snr_splits
                for run in range(self.runs)]

    def source_tables(self, role: str) -> list[str]:
        """The source tables a prepared store of ``role`` is built from."""
        assert self.plan is not None
        if role == "speech":
            return [self.plan.source_table(self.settings["speech_corpus"], "speech")]
        return [self.plan.source_table(c, "background")
                for c in self.settings["background_corpora"]]

    def manifests(self) -> list[str]:
        assert self.plan is not None
        return [f"{self.out}/manifests/{split}.csv" for split in self.plan.snr_splits]

    def prompt_file(self) -> str:
        """The prompt set's file (fetched, packaged name or path): an input of its jobs."""
        from lalm_eval.prompts import prompt_set_path

        if self.settings.get("prompts_source"):
            return f"{self.res}/prompts/{self.name}.yaml"
        return str(prompt_set_path(self.settings["prompts"]))

    def prompt_source(self) -> str:
        """What jobs load: the fetched file or the configured name / path."""
        if self.settings.get("prompts_source"):
            return f"{self.res}/prompts/{self.name}.yaml"
        return self.settings["prompts"]

    def inference_inputs(self, mode: str, split: str) -> dict[str, str]:
        return {"manifest": f"{self.out}/manifests/{split}.csv",
                "audio": f"{self.out}/audio/{split}",
                "labels": f"{self.out}/labels.json",
                "prompts": self.prompt_file()}

    def inference_params(self) -> dict[str, Any]:
        return {"prompts": self.prompt_source()}

    def score_jobs(self) -> list[ScoreJob]:
        return [ScoreJob(model, mode)
                for model, modes in self.settings.get("systems", {}).items() for mode in modes]

    def score_inputs(self, model: str, mode: str) -> dict[str, str | list[str]]:
        return {**super().score_inputs(model, mode), "manifests": self.manifests(),
                "labels": f"{self.out}/labels.json"}

    def score_params(self, model: str, mode: str) -> dict[str, Any]:
        assert self.plan is not None
        return {**super().score_params(model, mode), "scoring": self.plan.config["scoring"],
                "family": self.plan.models[model]["adapter"],
                "manifests": dict(zip(self.plan.snr_splits, self.manifests(), strict=True))}

    def score_files(self) -> list[str]:
        return [f"{self.out}/scores/ground_truth/reference.csv", *super().score_files()]

    def targets(self) -> list[str]:
        targets = [*self.manifests(), f"{self.out}/corpus_summary.md"]
        if self.settings.get("systems"):
            targets += [f"{self.out}/inference_summary.md", f"{self.out}/report/results.json",
                        f"{self.out}/report/tables/table1.html"]
        return targets

    # ------------------------------------------------------------------ running
    def required_capability(self, mode: str) -> str | None:
        return None  # each task picks its own request (transcribe / classify / generate)

    def work_items(self, job: InferenceJob, model: Any) -> list[WorkItem]:
        """Every clip x task of the mode that the model can serve (others are logged)."""
        import logging

        import pandas as pd

        from lalm_eval.prompts import load_prompt_set
        from lalm_eval.suites.sseu.items import build_items

        manifest = pd.read_csv(job.inputs["manifest"], keep_default_na=False,
                               dtype={"clip_id": str})
        labels = json.loads(Path(job.inputs["labels"]).read_text())
        items, skipped = build_items(manifest, load_prompt_set(job.params["prompts"]),
                                     job.mode, labels, sorted(model.capabilities),
                                     model.entry.tasks, model.entry.prompts)
        if skipped:
            logging.getLogger("lalm_eval.sseu").info(
                "%s cannot serve or is not configured for task(s) %s in mode %s",
                job.model_name, skipped, job.mode)
        return items

    def score(self, model: str, mode: str, inputs: Mapping[str, Any],
              params: Mapping[str, Any], seed: int):
        from lalm_eval.suites.sseu.scoring import make_embedder, score_system

        predictions = {(p["split"], p["run"]): p["path"] for p in params["predictions"]}
        embedder = make_embedder(params["scoring"]["embedder"])
        return score_system(
            suite=self.name, model=model, mode=mode, family=params["family"],
            predictions=predictions, manifests=params["manifests"],
            labels=json.loads(Path(inputs["labels"]).read_text()), embedder=embedder,
            n_boot=params["scoring"]["bootstrap"], seed=seed)
