"""Auditory knowledge as a suite kind: text-only MCQ probing of text LLMs, captioner -> LLM
cascades and audio-grounded LALMs on MMAU-shaped benchmarks, and the correlation study.

Splits are corpus names (the MCQ set, each benchmark). Modes: ``text`` (MCQ from text),
``caption`` (once per clip, run 0), ``cascade-<captioner>``, ``audio``. Own rules
(``workflow/rules/knowledge.smk``): the MCQ table, the demo benchmark, benchmark tables and
the report (study tables, correlation heatmap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from lalm_eval.suites.base import InferenceJob, PredictionJob, Suite

#: model lists of an instance, in the order their jobs are planned
MODEL_LISTS = ("text_llms", "captioners", "cascade_llms", "audio_llms")
BENCHMARK_KINDS = ("mmau_demo", "mmau", "mmar")
CASCADE_PREFIX = "cascade-"


def knowledge_models(settings: Mapping[str, Any]) -> list[str]:
    """Every model an instance runs (text LLMs, captioners, cascade LLMs, LALMs)."""
    names: list[str] = []
    for key in MODEL_LISTS:
        for name in settings.get(key) or []:
            if name not in names:
                names.append(name)
    return names


class KnowledgeSuite(Suite):
    """MCQ probing, cascades and audio-grounded answers, scored with one matcher."""

    kind = "knowledge"
    schema_resource = ("lalm_eval.suites.knowledge", "schema.yaml")
    modes = "text|caption|audio|cascade-[a-z0-9_]+"
    rules = ("knowledge.smk",)
    generic_report = False

    @classmethod
    def check(cls, name: str, settings: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        from lalm_eval.config import require_corpus, require_known

        for key in MODEL_LISTS:
            for model in settings.get(key) or []:
                require_known(model, config.get("models", {}),
                              f"suites.{name}.{key} names model", "models")
        corpora = config.get("corpora", {})
        if settings.get("mcq_corpus") is not None:
            require_corpus(settings["mcq_corpus"], corpora, ("mcq",),
                           f"suites.{name}.mcq_corpus")
        for benchmark in settings.get("benchmarks", []):
            require_corpus(benchmark, corpora, BENCHMARK_KINDS, f"suites.{name}.benchmarks")

    @classmethod
    def configured_systems(cls, settings: Mapping[str, Any]) -> list[str]:
        return knowledge_models(settings)

    @classmethod
    def select(cls, settings: Mapping[str, Any], models: Sequence[str] | None
               ) -> dict[str, Any]:
        out = dict(settings)
        for key in MODEL_LISTS:
            if key == "cascade_llms" and out.get(key) is None:
                out[key] = list(out.get("text_llms", []))
            if models is not None:
                out[key] = [m for m in out.get(key) or [] if m in models]
        out["systems"] = knowledge_models(out)
        return out

    # ------------------------------------------------------------------ planning
    def prediction_jobs(self) -> list[PredictionJob]:
        s, runs = self.settings, range(self.runs)
        jobs = []
        if s["mcq_corpus"]:
            jobs += [PredictionJob(m, "text", s["mcq_corpus"], r, role="text")
                     for m in s["text_llms"] for r in runs]
        for bench in s["benchmarks"]:
            for captioner in s["captioners"]:
                jobs.append(PredictionJob(captioner, "caption", bench, 0, role="caption"))
                jobs += [PredictionJob(m, f"{CASCADE_PREFIX}{captioner}", bench, r,
                                       role="cascade")
                         for m in s["cascade_llms"] for r in runs]
            jobs += [PredictionJob(m, "audio", bench, r, role="audio")
                     for m in s["audio_llms"] for r in runs]
        return jobs

    def inference_inputs(self, mode: str, split: str) -> dict[str, str]:
        from lalm_eval.prompts import prompt_set_path

        if mode == "text":
            return {"mcq": f"{self.out}/mcq/{split}.csv",
                    "prompts": str(prompt_set_path(self.settings["mcq_prompts"]))}
        inputs = {"benchmark": f"{self.out}/benchmarks/{split}.csv",
                  "prompts": str(prompt_set_path(self.settings["choice_prompts"]))}
        if mode.startswith(CASCADE_PREFIX):
            captioner = mode[len(CASCADE_PREFIX):]
            inputs["captions"] = self.prediction_path(
                PredictionJob(captioner, "caption", split, 0))
        return inputs

    def inference_params(self, model: str, mode: str, split: str) -> dict[str, Any]:
        return {"mcq_prompts": self.settings["mcq_prompts"],
                "choice_prompts": self.settings["choice_prompts"]}

    def _benchmark_download(self, corpus: str) -> str:
        entry = self.plan.corpora[corpus] if self.plan else {}
        return entry["registry_name"] or ("mmau_test_mini" if entry["kind"] == "mmau"
                                          else "mmar")

    def benchmark_source(self, corpus: str) -> dict[str, str]:
        """Inputs of a benchmark table: the demo set's JSON, or the download's marker."""
        assert self.plan is not None
        if self.plan.corpora[corpus]["kind"] == "mmau_demo":
            return {"json": f"{self.res}/corpora/{corpus}/mmau-demo.json"}
        return {"stamp": self.plan.download_stamp(self._benchmark_download(corpus))}

    def benchmark_paths(self, corpus: str) -> tuple[str, str]:
        """(question file, audio root) of a benchmark corpus."""
        assert self.plan is not None
        kind = self.plan.corpora[corpus]["kind"]
        if kind == "mmau_demo":
            root = f"{self.res}/corpora/{corpus}"
            return f"{root}/mmau-demo.json", root
        root = f"{self.res}/downloads/{self._benchmark_download(corpus)}"
        filename = "mmau-test-mini.json" if kind == "mmau" else "MMAR-meta.json"
        return f"{root}/downloads/{filename}", root

    def mcq_tables(self) -> list[str]:
        corpus = self.settings["mcq_corpus"]
        return [f"{self.out}/mcq/{corpus}.csv"] if corpus else []

    def benchmark_tables(self) -> list[str]:
        return [f"{self.out}/benchmarks/{b}.csv" for b in self.settings["benchmarks"]]

    def report_jobs(self) -> list[dict[str, Any]]:
        """Every prediction file the report scores, with what it holds (typed, per job)."""
        return [{**asdict(job), "path": self.prediction_path(job)}
                for job in self.prediction_jobs()]

    def intermediate_files(self) -> list[str]:
        if not self.settings["systems"]:
            return []
        return [*super().intermediate_files(), *self.mcq_tables(), *self.benchmark_tables()]

    def targets(self) -> list[str]:
        if not self.settings["systems"]:
            return []
        return [f"{self.out}/report/results.json",
                f"{self.out}/report/figures/correlation_heatmap.png",
                f"{self.out}/inference_summary.md"]

    # ------------------------------------------------------------------ running
    def run_inference(self, job: InferenceJob):
        from lalm_eval.suites.knowledge.jobs import run_knowledge_job

        return run_knowledge_job(
            mode=job.mode, inputs=job.inputs, model_name=job.model_name, models=job.models,
            run=job.run, seed=job.seed, cache_path=job.cache_path, out_path=job.out_path,
            mcq_prompts=job.params["mcq_prompts"],
            choice_prompts=job.params["choice_prompts"], threads=job.threads,
            progress=job.progress)
