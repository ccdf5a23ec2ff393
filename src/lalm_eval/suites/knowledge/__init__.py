"""Auditory knowledge as a suite kind: text-only MCQ probing of text LLMs, captioner -> LLM
cascades and audio-grounded LALMs on MMAU-shaped benchmarks, and the correlation study.

Splits are corpus names (the MCQ set, each benchmark, the distillation clips). Modes:
``text`` (MCQ from text), ``caption`` (once per clip, run 0), ``cascade-<captioner>``,
``audio`` (off-the-shelf LALMs), and the audio-grounded arm (``grounded``): ``distill``
(a backbone writes stage-1 targets from seed descriptions, run 0), ``grounded`` (the
backbone's own trained LALM answers from the audio), ``grounded-untrained`` (the same LALM
with its connector as initialised) and ``question`` (the backbone answers from the question
alone); ``judge-<lalm>`` (a registry text LLM judges the grounded LALM's answers against
the reference, :mod:`.judge`). Own rules (``workflow/rules/knowledge.smk``): the MCQ
table, the demo benchmark, benchmark tables, the distillation clip table and training sets,
and the report (study tables, correlation heatmap, scatter plots).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from lalm_eval.suites.base import InferenceJob, PredictionJob, Suite, with_model_options

#: model lists of an instance, in the order their jobs are planned
MODEL_LISTS = ("text_llms", "captioners", "cascade_llms", "audio_llms")
BENCHMARK_KINDS = ("mmau_demo", "mmau", "mmar")
DISTILL_KINDS = ("distill_demo", "desta_aqa")
CASCADE_PREFIX = "cascade-"
#: mode prefix of a judge job: ``judge-<grounded LALM>`` (:mod:`.judge`)
JUDGE_PREFIX = "judge-"
DISTILL, GROUNDED, UNTRAINED, QUESTION = "distill", "grounded", "grounded-untrained", "question"
GROUNDED_DEFAULTS = {"models": {}, "corpus": None, "prompts": "distill_demo",
                     "choice_prompts": None, "untrained_baseline": True,
                     "question_baseline": True, "judges": [],
                     "judge_prompts": "choice_judge_demo"}


def grounded_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The instance's ``grounded`` block with its defaults."""
    return {**GROUNDED_DEFAULTS, **(settings.get("grounded") or {})}


def knowledge_models(settings: Mapping[str, Any]) -> list[str]:
    """Every model an instance runs (text LLMs, captioners, cascade LLMs, LALMs, judges)."""
    names: list[str] = []
    grounded = grounded_settings(settings)
    for name in [m for key in MODEL_LISTS for m in settings.get(key) or []] + [
            m for pair in grounded["models"].items() for m in pair] + (
            list(grounded["judges"]) if grounded["models"] else []):
        if name not in names:
            names.append(name)
    return names


class KnowledgeSuite(Suite):
    """MCQ probing, cascades and audio-grounded answers, scored with one matcher."""

    kind = "knowledge"
    schema_resource = ("lalm_eval.suites.knowledge", "schema.yaml")
    modes = ("text|caption|audio|distill|grounded|grounded-untrained|question"
             "|cascade-[a-z0-9_]+|judge-[a-z0-9_]+")
    rules = ("knowledge.smk",)
    generic_report = False
    writes_training_sets = True

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
        grounded = grounded_settings(settings)
        models = config.get("models", {})
        for backbone, lalm in grounded["models"].items():
            where = f"suites.{name}.grounded.models.{backbone}"
            require_known(backbone, models, f"{where}: backbone", "models")
            require_known(lalm, models, f"{where}: LALM", "models")
            data = (models[lalm].get("training") or {}).get("data") or {}
            if data.get("suite") != name:
                raise ValueError(f"{where}: models.{lalm} must be trained on this suite's "
                                 f"distillation set (training.data: {{suite: {name}}}), "
                                 f"found {data or 'no training block'}")
        for judge in grounded["judges"]:
            require_known(judge, models, f"suites.{name}.grounded.judges names model", "models")
        if grounded["models"]:
            if grounded["corpus"] is None:
                raise ValueError(f"suites.{name}.grounded.corpus: the distillation clips "
                                 f"are needed to train {sorted(grounded['models'].values())}")
            require_corpus(grounded["corpus"], corpora, DISTILL_KINDS,
                           f"suites.{name}.grounded.corpus")

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
        grounded = grounded_settings(out)
        if models is not None:
            grounded["models"] = {b: m for b, m in grounded["models"].items() if m in models}
        out["grounded"] = grounded
        out["systems"] = knowledge_models(out)
        return out

    @property
    def grounded(self) -> dict[str, Any]:
        """The ``grounded`` block with its defaults."""
        return grounded_settings(self.settings)

    def lalm_backbone(self, lalm: str) -> str:
        """The backbone text LLM whose grounded LALM ``lalm`` is."""
        for backbone, model in self.grounded["models"].items():
            if model == lalm:
                return backbone
        raise KeyError(f"suites.{self.name}: {lalm!r} is no grounded LALM")

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
        grounded = self.grounded
        for backbone, lalm in grounded["models"].items():
            jobs.append(PredictionJob(backbone, DISTILL, grounded["corpus"], 0, role=DISTILL))
            for bench in s["benchmarks"]:
                jobs += [PredictionJob(lalm, GROUNDED, bench, r, role=GROUNDED)
                         for r in runs]
                if grounded["untrained_baseline"]:
                    jobs += [PredictionJob(lalm, UNTRAINED, bench, r, role=UNTRAINED)
                             for r in runs]
                if grounded["question_baseline"]:
                    jobs += [PredictionJob(backbone, QUESTION, bench, r, role=QUESTION)
                             for r in runs]
                jobs += [PredictionJob(judge, f"{JUDGE_PREFIX}{lalm}", bench, r, role="judge")
                         for judge in grounded["judges"] for r in runs]
        return jobs

    def distill_source(self) -> dict[str, str]:
        """Inputs of the clip table: the demo set's ``distill.jsonl``, or the download's
        marker (DeSTA-AQA5M manifests)."""
        assert self.plan is not None
        corpus = self.grounded["corpus"]
        entry = self.plan.corpora[corpus]
        if entry["kind"] == "distill_demo":
            return {"table": f"{self.res}/corpora/{corpus}/distill.jsonl"}
        return {"stamp": self.plan.download_stamp(entry["registry_name"] or "desta_aqa5m")}

    def distill_source_params(self) -> dict[str, Any]:
        """How :func:`lalm_eval.suites.knowledge.distill.read_clip_source` reads the clips."""
        assert self.plan is not None
        corpus = self.grounded["corpus"]
        entry = dict(self.plan.corpora[corpus])
        if entry["kind"] == "distill_demo":
            return {"kind": "distill_demo"}
        name = entry["registry_name"] or "desta_aqa5m"
        return {"kind": "desta_aqa", "root": f"{self.res}/downloads/{name}/downloads",
                "audio_root": entry["audio_root"],
                "heldout_fraction": entry["heldout_fraction"], "max_items": entry["max_items"]}

    def distill_clips(self) -> str:
        """The common clip table of the distillation corpus (rule ``distill_clips``)."""
        return f"{self.out}/distill/clips.jsonl"

    def training_set_file(self, model: str) -> str:
        """Stage-2 training set of grounded LALM ``model`` (rule ``distill_training_set``);
        ``model=""`` is the file pattern's folder."""
        if not model:
            return f"{self.out}/distill"
        return f"{self.out}/distill/{self.lalm_backbone(model)}.jsonl"

    def distill_predictions(self, backbone: str) -> str:
        return self.prediction_path(PredictionJob(backbone, DISTILL,
                                                  self.grounded["corpus"], 0))

    def inference_inputs(self, mode: str, split: str) -> dict[str, str]:
        from lalm_eval.prompts import prompt_set_path

        if mode == "text":
            return {"mcq": f"{self.out}/mcq/{split}.csv",
                    "prompts": str(prompt_set_path(self.settings["mcq_prompts"]))}
        if mode == DISTILL:
            return {"clips": self.distill_clips(),
                    "prompts": str(prompt_set_path(self.grounded["prompts"]))}
        inputs = {"benchmark": f"{self.out}/benchmarks/{split}.csv",
                  "prompts": str(prompt_set_path(self.choice_prompts(mode)))}
        if mode.startswith(CASCADE_PREFIX):
            captioner = mode[len(CASCADE_PREFIX):]
            inputs["captions"] = self.prediction_path(
                PredictionJob(captioner, "caption", split, 0))
        if mode.startswith(JUDGE_PREFIX):
            # every run's answers (the job of run r judges answers_run<r>)
            lalm = mode[len(JUDGE_PREFIX):]
            inputs["judge_prompts"] = str(prompt_set_path(self.grounded["judge_prompts"]))
            inputs.update({f"answers_run{r}": self.prediction_path(
                PredictionJob(lalm, GROUNDED, split, r)) for r in range(self.runs)})
        return inputs

    def choice_prompts(self, mode: str) -> str:
        """The choice prompt file of ``mode`` (the grounded arm may have its own)."""
        own = self.grounded["choice_prompts"]
        if own and (mode in (GROUNDED, UNTRAINED, QUESTION) or mode.startswith(JUDGE_PREFIX)):
            return own
        return self.settings["choice_prompts"]

    def inference_params(self, model: str, mode: str, split: str) -> dict[str, Any]:
        params = {"mcq_prompts": self.settings["mcq_prompts"],
                  "choice_prompts": self.choice_prompts(mode),
                  "distill_prompts": self.grounded["prompts"]}
        if mode.startswith(JUDGE_PREFIX):
            params["judge_prompts"] = self.grounded["judge_prompts"]
        return params

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
        grounded = [self.training_set_file(m) for m in self.grounded["models"]
                    .values()]
        return [*super().intermediate_files(), *self.mcq_tables(), *self.benchmark_tables(),
                *grounded]

    def targets(self) -> list[str]:
        if not self.settings["systems"]:
            return []
        return [f"{self.out}/report/results.json",
                f"{self.out}/report/figures/correlation_heatmap.png",
                f"{self.out}/inference_summary.md"]

    # ------------------------------------------------------------------ running
    def run_inference(self, job: InferenceJob):
        from lalm_eval.suites.knowledge.jobs import run_knowledge_job

        if job.mode == UNTRAINED:
            job = with_model_options(job, untrained=True)
        return run_knowledge_job(
            mode=job.mode, inputs=job.inputs, model_name=job.model_name, models=job.models,
            run=job.run, seed=job.seed, cache_path=job.cache_path, out_path=job.out_path,
            mcq_prompts=job.params["mcq_prompts"],
            choice_prompts=job.params["choice_prompts"],
            distill_prompts=job.params.get("distill_prompts", "distill_demo"),
            judge_prompts=job.params.get("judge_prompts", "choice_judge_demo"),
            threads=job.threads, progress=job.progress)
