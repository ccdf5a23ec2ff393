"""Auditory-knowledge study: text-only MCQ probing, captioner -> LLM cascades and
audio-grounded answers on MMAU-shaped benchmarks, scored with one matcher.

Jobs (one per (model, mode, split, run), through the inference engine):

* ``text``: a text LLM answers the MCQ set (split = the MCQ corpus);
* ``caption``: a captioner describes each distinct clip of a benchmark once (split = the
  benchmark corpus); every cascade LLM reuses these captions;
* ``cascade-<captioner>``: a text LLM answers the benchmark from that captioner's captions;
  items whose caption failed are recorded as failed, never dropped;
* ``audio``: an audio LLM answers the benchmark from the audio;
* ``distill``: a backbone text LLM writes stage-1 targets from the distillation clips' seed
  descriptions (split = the distillation corpus; :mod:`.distill`);
* ``grounded`` / ``grounded-untrained``: a backbone's own trained LALM (or the same LALM
  with its connector as initialised) answers the benchmark from the audio;
* ``question``: a backbone answers the benchmark from the question and options alone;
* ``judge-<lalm>``: a text LLM judges the grounded LALM's answers against the reference
  (:mod:`.judge`); items the LALM did not answer are recorded as failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lalm_eval.inference import JobSummary, WorkItem, run_job
from lalm_eval.jsonl import read_jsonl, write_jsonl
from lalm_eval.suites.knowledge import (
    CASCADE_PREFIX,
    DISTILL,
    GROUNDED,
    JUDGE_PREFIX,
    QUESTION,
    UNTRAINED,
    akb,
    distill,
    judge,
    mmau,
)

#: modes whose requests carry the audio of a benchmark item
AUDIO_MODES = ("audio", GROUNDED, UNTRAINED)

#: columns of a benchmark table holding lists / objects (JSON in the CSV)
_JSON_COLUMNS = ("choices", "raw")
#: accuracy breakdowns per benchmark (common-table columns), as its official script prints
#: them: MMAU task / difficulty / sub-category, MMAR modality / layer / sub-category
BREAKDOWNS = {"mmau": ("task", "difficulty", "sub_category"),
              "mmar": ("task", "category", "sub_category")}


def write_benchmark_table(table: pd.DataFrame, path: str | Path) -> None:
    """Save a common benchmark table (list columns as JSON)."""
    out = table.copy()
    for column in _JSON_COLUMNS:
        if column in out.columns:
            out[column] = [json.dumps(v, ensure_ascii=False) for v in out[column]]
    out.to_csv(path, index=False, lineterminator="\n")


def read_benchmark_table(path: str | Path) -> pd.DataFrame:
    """A table written by :func:`write_benchmark_table`."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in _JSON_COLUMNS:
        if column in table.columns:
            table[column] = [json.loads(v) if v else None for v in table[column]]
    return table


def read_mcq_table(path: str | Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table["answer_index"] = table["answer_index"].astype(int)
    return table


def prepare_benchmark(kind: str, json_path: str | Path, audio_root: str | Path
                      ) -> pd.DataFrame:
    """Read a benchmark file (MMAU format for ``mmau`` and ``mmau_demo``, MMAR for
    ``mmar``) into the common table; missing audio files are item problems."""
    reader = mmau.read_mmar if kind == "mmar" else mmau.read_mmau
    return reader(json_path, audio_root)


def _records(path: str | Path) -> list[dict[str, Any]]:
    return read_jsonl(path)


def _failure_record(item: mmau.UnaskedItem, model: str, revision: str | None,
                    mode: str, run: int, task: str) -> dict[str, Any]:
    return {"item_id": item.item_id, "clip_id": item.clip_id, "model": model,
            "model_revision": revision, "mode": mode, "task": task, "request": "generate",
            "prompt_id": None, "prompt_sha256": None, "run": run, "seed": None,
            "output_text": None, "scores": None, "parsed": None, "well_formed": None,
            "error": f"{item.kind}: {item.reason}", "latency_s": 0.0, "n_output_tokens": None,
            "audio_sha256": None, "cache_key": None}


KNOWN_MODES = ("text", "caption", *AUDIO_MODES, DISTILL, QUESTION)


def build_work(mode: str, inputs: Mapping[str, str], *, mcq_prompts: str,
               choice_prompts: str, distill_prompts: str = "distill_demo",
               judge_prompts: str = "choice_judge_demo", seed: int = 0
               ) -> tuple[list[WorkItem], list[mmau.UnaskedItem], str]:
    """Work items of a job, the cascade (or judge) items that cannot be asked, and the task
    name. A judge job reads the judged answers from ``inputs["answers"]``."""
    if mode not in KNOWN_MODES and not mode.startswith((CASCADE_PREFIX, JUDGE_PREFIX)):
        raise ValueError(f"unknown knowledge mode {mode!r} ({', '.join(KNOWN_MODES)}, "
                         f"{CASCADE_PREFIX}<captioner>, {JUDGE_PREFIX}<lalm>)")
    if mode == "text":
        prompt = akb.load_mcq_prompt(mcq_prompts)
        return akb.mcq_work_items(read_mcq_table(inputs["mcq"]), prompt), [], "mcq"
    if mode == DISTILL:
        prompts = distill.load_distill_prompts(distill_prompts)
        clips = distill.read_clip_table(inputs["clips"])
        return distill.distill_work_items(clips, prompts, seed), [], distill.TASK
    table = read_benchmark_table(inputs["benchmark"])
    task = str(table["benchmark"].iloc[0]) if len(table) else "mmau"
    prompts = mmau.load_choice_prompts(choice_prompts)
    if mode == "caption":
        return mmau.caption_work_items(table), [], task
    if mode in AUDIO_MODES:
        return (mmau.audio_work_items(table, prompts.audio_template, prompts.system,
                                      prompt_id=f"{prompts.name}:audio"), [], task)
    if mode == QUESTION:
        if prompts.question_template is None:
            raise ValueError(f"choice prompts {prompts.name!r} have no question_template "
                             f"(needed by the question-only baseline)")
        return (mmau.question_work_items(table, prompts.question_template, prompts.system,
                                         prompt_id=f"{prompts.name}:question"), [], task)
    if mode.startswith(JUDGE_PREFIX):
        from lalm_eval.metrics.choice import predictions_from_records

        answers = predictions_from_records(_records(inputs["answers"]))
        items, failures = judge.judge_work_items(
            table, answers, judge.load_judge_prompts(judge_prompts), prompts.answer_prefix)
        return items, failures, task
    if mode.startswith(CASCADE_PREFIX):
        captions = {r["item_id"]: (None if r.get("error") else r.get("output_text"))
                    for r in _records(inputs["captions"])}
        items, failures = mmau.cascade_work_items(
            table, captions, prompts.cascade_template, prompts.system,
            prompt_id=f"{prompts.name}:cascade")
        return items, failures, task
    raise AssertionError(mode)  # unreachable: checked above


def run_knowledge_job(*, mode: str, inputs: Mapping[str, str], model_name: str, models: dict,
                      run: int, seed: int, cache_path: str | Path, out_path: str | Path,
                      mcq_prompts: str, choice_prompts: str,
                      distill_prompts: str = "distill_demo",
                      judge_prompts: str = "choice_judge_demo", threads: int = 1,
                      progress: bool = True) -> JobSummary:
    """One job of the knowledge suite; the predictions file holds every item of the split
    (cascade items without a caption, judge items without an answer as failed records)."""
    from lalm_eval.models.registry import build_model
    from lalm_eval.parallel import limit_threads

    limit_threads(threads)
    model = build_model(model_name, models)
    needed = "caption" if mode == "caption" else "generate"
    if not model.supports(needed):
        raise ValueError(f"model {model_name!r} cannot {needed} "
                         f"(supports {sorted(model.capabilities)}); check suites.knowledge")
    if mode.startswith(JUDGE_PREFIX):
        inputs = {**inputs, "answers": inputs[f"answers_run{run}"]}
    items, failures, task = build_work(mode, inputs, mcq_prompts=mcq_prompts,
                                       choice_prompts=choice_prompts,
                                       distill_prompts=distill_prompts,
                                       judge_prompts=judge_prompts, seed=seed)
    summary = run_job(lambda: model, model.fingerprint(), items, cache_path, out_path,
                      model_name=model_name, model_revision=model.entry.revision, mode=mode,
                      run=run, seed=seed, sample_rate=model.sample_rate,
                      batch_size=model.entry.batch_size, progress=progress)
    if failures:
        records = _records(out_path) + [
            _failure_record(f, model_name, model.entry.revision, mode, run, task)
            for f in failures]
        order = {str(i): n for n, i in
                 enumerate(read_benchmark_table(inputs["benchmark"])["item_id"])}
        records.sort(key=lambda r: order.get(str(r["item_id"]), len(order)))
        write_jsonl(out_path, records)
        summary.n_items += len(failures)
        summary.n_errors += len(failures)
        for failure in failures:
            summary.errors[failure.kind] = summary.errors.get(failure.kind, 0) + 1
    return summary


# --------------------------------------------------------------------------- scoring


def score_mcq_runs(mcq: pd.DataFrame, files: Mapping[tuple[str, int], str | Path]
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-item and accuracy rows (overall / category / answer letter) per (model, run)."""
    items, accuracy = [], []
    for (model, run), path in sorted(files.items()):
        per_item = akb.score_mcq(mcq, _records(path)).assign(model=model, run=run)
        items.append(per_item)
        accuracy.append(akb.mcq_accuracy(per_item).assign(model=model, run=run))
    return pd.concat(items, ignore_index=True), pd.concat(accuracy, ignore_index=True)


def _breakdowns(table: pd.DataFrame) -> list[str]:
    """The official breakdown columns of a benchmark's common table (:data:`BREAKDOWNS`)."""
    return list(BREAKDOWNS[str(table["benchmark"].iloc[0]) if len(table) else "mmau"])


def score_choice_runs(tables: Mapping[str, pd.DataFrame],
                      files: Mapping[tuple[str, str, str, int], str | Path],
                      answer_prefixes: Mapping[str, str | None] | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-item and accuracy rows per (benchmark, system, mode, run) in both matcher modes.

    ``files`` maps (benchmark, model, mode, run) to a predictions file; the accuracy table
    breaks down as the official scripts do (:data:`BREAKDOWNS`): MMAU by task (sound /
    music / speech), difficulty and sub-category; MMAR by modality (column ``task``), layer
    (``category``) and sub-category. Items without a sub-category are in none of its groups.
    ``answer_prefixes`` (mode -> prefix) removes a prompt format's answer prefix before
    matching (:func:`lalm_eval.suites.knowledge.mmau.strip_answer_prefix`, as DeSTA2.5 does).
    """
    from lalm_eval.metrics.choice import (
        MODES,
        choice_accuracy,
        predictions_from_records,
        score_choice,
    )

    items, accuracy = [], []
    for (benchmark, model, mode, run), path in sorted(files.items()):
        table = tables[benchmark]
        predictions = predictions_from_records(_records(path))
        prefix = (answer_prefixes or {}).get(mode)
        if prefix:
            predictions = {k: (None if v is None else mmau.strip_answer_prefix(v, prefix))
                           for k, v in predictions.items()}
        by = _breakdowns(table)
        for matcher in MODES:
            per_item = score_choice(table, predictions, matcher).assign(
                benchmark=benchmark, model=model, mode=mode, run=run, matcher=matcher)
            items.append(per_item)
            accuracy.append(choice_accuracy(per_item, by=by).assign(
                benchmark=benchmark, model=model, mode=mode, run=run, matcher=matcher))
    if not items:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(items, ignore_index=True), pd.concat(accuracy, ignore_index=True)


def score_judge_runs(tables: Mapping[str, pd.DataFrame],
                     files: Mapping[tuple[str, str, str, int], str | Path]
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-item and accuracy rows of judge jobs, in the shape of :func:`score_choice_runs`:
    ``files`` maps (benchmark, judged LALM, judge, run) to the judge's predictions file; the
    rows are the LALM's (mode ``grounded``) with ``matcher = judge:<judge>``."""
    from lalm_eval.metrics.choice import choice_accuracy

    items, accuracy = [], []
    for (benchmark, lalm, judge_name, run), path in sorted(files.items()):
        table = tables[benchmark]
        by = _breakdowns(table)
        keys = dict(benchmark=benchmark, model=lalm, mode=GROUNDED, run=run,
                    matcher=judge.judge_matcher(judge_name))
        per_item = judge.score_judgements(table, _records(path), by).assign(**keys)
        items.append(per_item)
        accuracy.append(choice_accuracy(per_item, by=by).assign(**keys))
    if not items:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(items, ignore_index=True), pd.concat(accuracy, ignore_index=True)


def metric_table(mcq_accuracy: pd.DataFrame, choice_accuracy: pd.DataFrame,
                 matcher: str = "faithful", backbone_of: Mapping[str, str] | None = None
                 ) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Models x metrics (mean over runs) for the correlation study, and its two blocks.

    Text-only block: MCQ accuracy overall and per category, and cascade accuracy per
    (benchmark, captioner), overall and per domain (MMAU task / MMAR modality); audio-grounded
    block: accuracy from the audio per benchmark, overall and per domain. A grounded LALM's
    accuracy (mode ``grounded``) is its backbone's row (``backbone_of``: LALM -> backbone),
    so a backbone's text-only and audio-grounded metrics meet in one row; an off-the-shelf
    LALM (mode ``audio``) has a row of its own. Baselines (``grounded-untrained``,
    ``question``) are not study metrics. A model lacking a metric has NaN there.
    """
    backbone_of = dict(backbone_of or {})
    values: dict[tuple[str, str], float] = {}
    text_metrics: list[str] = []
    audio_metrics: list[str] = []
    if len(mcq_accuracy):
        wanted = mcq_accuracy[mcq_accuracy["level"].isin(["overall", "category"])]
        for (model, level, group), frame in wanted.groupby(["model", "level", "group"]):
            name = "MCQ overall" if level == "overall" else f"MCQ {group}"
            values[(model, name)] = float(frame["accuracy"].mean())
            if name not in text_metrics:
                text_metrics.append(name)
    if len(choice_accuracy):
        wanted = choice_accuracy[choice_accuracy["breakdown"].isin(["overall", "task"])
                                 & (choice_accuracy["matcher"] == matcher)
                                 & (choice_accuracy["n"] > 0)]
        for (benchmark, model, mode, breakdown, value), frame in wanted.groupby(
                ["benchmark", "model", "mode", "breakdown", "value"]):
            where = benchmark if breakdown == "overall" else f"{benchmark} {value}"
            if mode.startswith(CASCADE_PREFIX):
                name, bucket, row = (f"{where} via {mode[len(CASCADE_PREFIX):]}",
                                     text_metrics, model)
            elif mode == GROUNDED:
                name, bucket, row = (f"{where} audio-grounded", audio_metrics,
                                     backbone_of.get(model, model))
            elif mode == "audio":
                name, bucket, row = f"{where} from audio", audio_metrics, model
            else:   # caption jobs, baselines
                continue
            values[(row, name)] = float(frame["accuracy"].mean())
            if name not in bucket:
                bucket.append(name)
    order = [m for m in text_metrics if m.startswith("MCQ overall")] + sorted(
        m for m in text_metrics if not m.startswith("MCQ overall")) + sorted(audio_metrics)
    models = sorted({m for m, _ in values})
    table = pd.DataFrame(index=models, columns=order, dtype=float)
    for (model, name), value in values.items():
        table.loc[model, name] = value
    blocks = {"text-only": [m for m in order if m not in audio_metrics],
              "audio-grounded": [m for m in order if m in audio_metrics]}
    return table, {k: v for k, v in blocks.items() if v}
