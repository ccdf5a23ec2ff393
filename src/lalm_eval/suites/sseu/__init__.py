"""SSEU-Bench as a suite kind: clean speech mixed with scene recordings at each SNR; ASR,
scene classification and audio tagging in independent, joint and chain-of-thought modes.

Own rules (``workflow/rules/sseu.smk``): loudness-normalised sources, the pairing plan, one
mixture job per SNR split, label sets, the fetched prompt set, the ground-truth check and
the report (Table 1, Table 2, CoT, format compliance, figures).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lalm_eval.inference import WorkItem
from lalm_eval.suites.base import InferenceJob, PredictionJob, ScoreJob, Suite


@dataclass(frozen=True)
class ModeSubset:
    """How much of the suite one system runs in one mode: ``n_clips`` clips per split
    (None = all) at the SNR splits ``splits`` (None = all)."""

    n_clips: int | None = None
    splits: tuple[str, ...] | None = None


def mode_subsets(system: Any) -> dict[str, ModeSubset]:
    """``systems.<model>`` (a list of modes or a mapping mode -> subset) as mode -> subset."""
    from lalm_eval.mixing import parse_snr, snr_split_name

    if isinstance(system, Mapping):
        out = {}
        for mode, subset in system.items():
            subset = subset or {}
            snrs = subset.get("snrs")
            out[mode] = ModeSubset(
                subset.get("n_clips"),
                None if snrs is None else tuple(snr_split_name(parse_snr(v)) for v in snrs))
        return out
    return {mode: ModeSubset() for mode in system}


class SseuSuite(Suite):
    """SSEU-Bench: one inference job per (model, mode, SNR split, run)."""

    kind = "sseu"
    schema_resource = ("lalm_eval.suites.sseu", "schema.yaml")
    modes = "independent|joint|cot"
    rules = ("sseu.smk",)
    generic_report = False

    @classmethod
    def check(cls, name: str, settings: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        from lalm_eval.config import ConfigError, require_known
        from lalm_eval.mixing import parse_snr, snr_split_name

        super().check(name, settings, config)
        corpora = config.get("corpora", {})
        for corpus in [settings["speech_corpus"], *settings["background_corpora"]]:
            require_known(corpus, corpora, f"suites.{name} names corpus", "corpora")
        mixed = {snr_split_name(parse_snr(v)) for v in config.get("mixing", {}).get("snrs", [])}
        for model, system in (settings.get("systems") or {}).items():
            for mode, subset in mode_subsets(system).items():
                unknown = sorted(set(subset.splits or ()) - mixed)
                if unknown:
                    raise ConfigError(
                        f"config error: suites.{name}.systems.{model}.{mode}.snrs names "
                        f"{', '.join(unknown)}, not in mixing.snrs")

    def subsets(self) -> dict[str, dict[str, ModeSubset]]:
        """model -> mode -> what it runs (config order)."""
        return {model: mode_subsets(system)
                for model, system in (self.settings.get("systems") or {}).items()}

    def subset(self, model: str, mode: str) -> ModeSubset:
        return self.subsets().get(model, {}).get(mode, ModeSubset())

    # ------------------------------------------------------------------ planning
    def prediction_jobs(self) -> list[PredictionJob]:
        assert self.plan is not None
        return [PredictionJob(model, mode, split, run)
                for model, modes in self.subsets().items()
                for mode, subset in modes.items()
                for split in self.plan.snr_splits
                if subset.splits is None or split in subset.splits
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

    def inference_params(self, model: str, mode: str, split: str) -> dict[str, Any]:
        return {"prompts": self.prompt_source(), "n_clips": self.subset(model, mode).n_clips}

    def score_jobs(self) -> list[ScoreJob]:
        return [ScoreJob(model, mode)
                for model, modes in self.subsets().items() for mode in modes
                if any(j.model == model and j.mode == mode for j in self.prediction_jobs())]

    def _system_manifests(self, model: str, mode: str) -> dict[str, str]:
        """split -> manifest of the splits this system runs in this mode."""
        splits = {j.split for j in self.prediction_jobs() if j.model == model and j.mode == mode}
        return {split: path for split, path in zip(self.plan.snr_splits, self.manifests(),
                                                    strict=True) if split in splits}

    def score_inputs(self, model: str, mode: str) -> dict[str, str | list[str]]:
        return {**super().score_inputs(model, mode),
                "manifests": list(self._system_manifests(model, mode).values()),
                "labels": f"{self.out}/labels.json"}

    def score_params(self, model: str, mode: str) -> dict[str, Any]:
        assert self.plan is not None
        return {**super().score_params(model, mode), "scoring": self.plan.config["scoring"],
                "family": self.plan.models[model]["adapter"],
                "manifests": self._system_manifests(model, mode),
                "n_clips": self.subset(model, mode).n_clips}

    def score_files(self) -> list[str]:
        return [f"{self.out}/scores/ground_truth/reference.csv", *super().score_files()]

    def intermediate_files(self) -> list[str]:
        assert self.plan is not None
        if not self.settings.get("systems"):
            return []
        return [*super().intermediate_files(), f"{self.out}/labels.json",
                *(f"{self.out}/audio/{split}" for split in self.plan.snr_splits)]

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
        from lalm_eval.suites.sseu.items import build_items, clip_subset

        manifest = clip_subset(pd.read_csv(job.inputs["manifest"], keep_default_na=False,
                                           dtype={"clip_id": str}), job.params.get("n_clips"))
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
            n_boot=params["scoring"]["bootstrap"], seed=seed, n_clips=params.get("n_clips"))
