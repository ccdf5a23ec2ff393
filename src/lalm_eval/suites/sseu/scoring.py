"""SSEU-Bench scoring of one system (model, mode) over every split and run.

Predictions are parsed here (so a parser or scorer change reruns scoring only). Scoring
uses the leniently extracted fields; whether each answer had the expected shape is
reported separately as format compliance. Failed items (inference errors, answers with no
usable field) stay in the denominators: an unanswered ASR item counts as all deletions,
an unanswered scene or event item as failed with a uniform / zero score row.

Undefined cells are not emitted: WER at -inf (no speech), mACC and mAP at +inf (no
background).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lalm_eval.answers.fields import parse_answer
from lalm_eval.jsonl import read_jsonl
from lalm_eval.metrics import scores as m
from lalm_eval.metrics.embedding import (
    CachedEmbedder,
    HashingTextEmbedder,
    SentenceTransformerTextEmbedder,
    TextEmbedder,
)
from lalm_eval.metrics.wer import corpus_wer
from lalm_eval.mixing import split_snr

SCORE_COLUMNS = ["suite", "model", "mode", "split", "run", "task", "metric", "value",
                 "n_items", "n_failed", "ci_low", "ci_high"]


class GroundTruthCheckError(AssertionError):
    """Scoring the references as predictions did not give the perfect scores."""


def make_embedder(settings: Mapping[str, Any]) -> CachedEmbedder:
    """The configured text embedder behind a de-duplicating cache."""
    kind = settings.get("kind", "sentence_transformers")
    inner: TextEmbedder
    if kind == "sentence_transformers":
        inner = SentenceTransformerTextEmbedder(settings.get("source"),
                                                batch_size=settings.get("batch_size", 256))
    elif kind == "hashing":
        inner = HashingTextEmbedder(dim=settings.get("dim", 256))
    else:
        raise ValueError(f"scoring.embedder.kind {kind!r} is not known "
                         "(sentence_transformers, hashing)")
    return CachedEmbedder(inner)


#: the manifest columns scoring reads
MANIFEST_COLUMNS = ("clip_id", "transcript", "scene", "events")


class ManifestError(ValueError):
    """A manifest row scoring cannot read; ``str()`` names the file, the row and the column."""


def _read_manifest(path: str | Path) -> pd.DataFrame:
    """A split's manifest (text cells), with the columns scoring reads."""
    manifest = pd.read_csv(path, keep_default_na=False, dtype={"clip_id": str})
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}")
    return manifest


def _event_labels(cell: Any, path: str | Path, row: int, clip_id: Any) -> list[str]:
    """The sorted distinct labels of a manifest ``events`` cell (a JSON list of objects with
    a ``label``); ManifestError naming the file, the row (from 1, under the header), the
    clip and the column otherwise."""
    def fail(problem: str) -> ManifestError:
        return ManifestError(f"{path}: row {row + 1} (clip_id={clip_id!r}), column 'events': "
                             f"{problem}")

    text = str(cell).strip()
    try:
        events = json.loads(text) if text else []
    except json.JSONDecodeError as exc:
        raise fail(f"not valid JSON ({exc.msg}): {text[:40]!r}") from None
    if not isinstance(events, list):
        raise fail("must be a JSON list of events")
    labels = set()
    for k, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("label"), str):
            raise fail(f"event {k} is not an object with a string 'label'")
        labels.add(event["label"])
    return sorted(labels)


def _truth(manifest: pd.DataFrame, path: str | Path) -> dict[str, dict[str, Any]]:
    """clip_id -> reference fields; ``manifest`` keeps the file's row index (a clip subset
    too), so an error names the row of the file."""
    return {
        row.clip_id: {"transcript": row.transcript, "scene": row.scene,
                      "events": _event_labels(row.events, path, int(row.Index), row.clip_id)}
        for row in manifest.itertuples()
    }


def _read_records(path: str | Path) -> list[dict]:
    """A predictions file's records; a bad line raises ValueError naming file and line."""
    return read_jsonl(path)


def _field(record: dict, parsed: dict | None, name: str) -> Any:
    if record["error"]:
        return None
    if record["request"] == "transcribe" and name == "transcript":
        return record["output_text"]
    return (parsed or {}).get(name)


def parse_records(records: list[dict], mode: str, family: str, labels: Sequence[str]
                  ) -> list[dict]:
    """Attach ``parsed`` / ``well_formed`` / ``problem`` to generate-type records."""
    out = []
    for record in records:
        record = dict(record)
        if record["request"] == "generate" and not record["error"]:
            task = record["task"] if mode == "independent" else mode
            answer = parse_answer(record["output_text"], task, mode, family, labels=labels)
            record["parsed"] = answer.as_dict()
            record["well_formed"] = answer.well_formed
            record["problem"] = answer.problem
        elif record["request"] == "generate":
            record["well_formed"], record["problem"] = False, "inference error"
        out.append(record)
    return out


def _rows_for_task(task: str, mode: str, records: list[dict]) -> list[dict]:
    wanted = task if mode == "independent" else mode
    return [r for r in records if r["task"] == wanted]


def score_split_run(
    records: list[dict], truth: dict[str, dict], labels: dict[str, list[str]], split: str,
    mode: str, embedder: TextEmbedder, n_boot: int, seed: int,
) -> list[dict]:
    """Metric rows (without suite/model/mode/split/run) for one predictions file."""
    snr = split_snr(split)
    rows: list[dict] = []
    no_ci = (math.nan, math.nan)

    def ci_of(function, *args) -> tuple[float, float]:
        return function(*args, n_boot, seed) if n_boot > 0 else no_ci

    def add(task: str, metric: str, value: float, n_items: int, n_failed: int,
            ci: tuple[float, float] = (math.nan, math.nan)) -> None:
        rows.append({"task": task, "metric": metric, "value": value, "n_items": n_items,
                     "n_failed": n_failed, "ci_low": ci[0], "ci_high": ci[1]})

    asr = _rows_for_task("asr", mode, records)
    if asr and snr != -math.inf:
        refs = [truth[r["clip_id"]]["transcript"] for r in asr]
        hyps = [_field(r, r.get("parsed"), "transcript") for r in asr]
        norm, raw = corpus_wer(refs, hyps, normalise=True), corpus_wer(refs, hyps, False)
        add("asr", "wer", norm.wer, norm.n_items, norm.n_failed, ci_of(m.wer_ci, norm))
        add("asr", "wer_raw", raw.wer, raw.n_items, raw.n_failed)
    asc = _rows_for_task("asc", mode, records)
    if asc and snr != math.inf:
        true = [truth[r["clip_id"]]["scene"] for r in asc]
        true_idx = m.label_indices(true, labels["scenes"], "asc truth")
        if all(r["request"] == "classify" for r in asc):
            scores = m.from_label_scores([None if r["error"] else r["scores"] for r in asc],
                                         labels["scenes"])
            answered = np.isfinite(scores).all(axis=1)
            pred = np.where(answered, np.nan_to_num(scores, nan=0.0).argmax(axis=1), -1)
        else:
            scenes = [_field(r, r.get("parsed"), "scene") for r in asc]
            probs = m.scene_probabilities(scenes, labels["scenes"], embedder)
            answered = np.array([bool(s and str(s).strip()) for s in scenes])
            pred = np.where(answered, probs.argmax(axis=1), -1)
        value = m.macc(pred, true_idx, len(labels["scenes"]))
        ci = ci_of(m.macc_ci, pred, true_idx, len(labels["scenes"]))
        add("asc", "macc", value, len(asc), int((~answered).sum()), ci)
    at = _rows_for_task("at", mode, records)
    if at and snr != math.inf:
        truth_hot = m.multi_hot([truth[r["clip_id"]]["events"] for r in at], labels["events"])
        if all(r["request"] == "classify" for r in at):
            scores = m.from_label_scores([None if r["error"] else r["scores"] for r in at],
                                         labels["events"])
            answered = np.isfinite(scores).all(axis=1)
            floor = scores[answered].min() - 1.0 if answered.any() else 0.0
            scores = np.where(answered[:, None], scores, floor)
        else:
            events = [_field(r, r.get("parsed"), "events") for r in at]
            events = [list(e) if e is not None else None for e in events]
            scores = m.event_scores(events, labels["events"], embedder)
            answered = np.array([e is not None for e in events])
        value = m.mean_average_precision(scores, truth_hot)
        add("at", "map", value, len(at), int((~answered).sum()),
            ci_of(m.map_ci, scores, truth_hot))
    generated = [r for r in records if r["request"] == "generate"]
    for task in sorted({r["task"] for r in generated}):
        subset = [r for r in generated if r["task"] == task]
        ok = sum(1 for r in subset if r.get("well_formed"))
        add(task, "format_compliance", 100.0 * ok / len(subset), len(subset), len(subset) - ok)
    return rows


def score_system(
    *, suite: str, model: str, mode: str, family: str,
    predictions: Mapping[tuple[str, int], str | Path], manifests: Mapping[str, str | Path],
    labels: dict[str, list[str]], embedder: TextEmbedder, n_boot: int = 1000, seed: int = 0,
    n_clips: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score rows and per-item rows of one (model, mode) over its splits and runs
    (``n_clips``: the system ran on that clip subset, :func:`~.items.clip_subset`)."""
    from lalm_eval.suites.sseu.items import clip_subset

    all_labels = labels["scenes"] + labels["events"]
    score_rows, item_rows = [], []
    truths = {split: _truth(clip_subset(_read_manifest(path), n_clips), path)
              for split, path in manifests.items()}
    for (split, run), path in sorted(predictions.items()):
        records = parse_records(_read_records(path), mode, family, all_labels)
        _check_clips(records, truths[split], path, manifests[split])
        for row in score_split_run(records, truths[split], labels, split, mode, embedder,
                                   n_boot, seed):
            score_rows.append({"suite": suite, "model": model, "mode": mode, "split": split,
                               "run": run, **row})
        for r in records:
            item_rows.append({
                "split": split, "run": run, "clip_id": r["clip_id"], "task": r["task"],
                "request": r["request"], "error": r["error"],
                "well_formed": r.get("well_formed"), "problem": r.get("problem"),
                "parsed": json.dumps(r.get("parsed")) if r.get("parsed") else None,
            })
    return (pd.DataFrame(score_rows, columns=SCORE_COLUMNS), pd.DataFrame(item_rows))


def _check_clips(records: list[dict], truth: dict, predictions: str | Path,
                 manifest: str | Path) -> None:
    """Predictions must cover exactly the manifest's clips (else they are stale)."""
    predicted = {r["clip_id"] for r in records}
    unknown, missing = sorted(predicted - set(truth)), sorted(set(truth) - predicted)
    if unknown or missing:
        raise ValueError(
            f"{predictions} does not match {manifest}: {len(unknown)} clip(s) not in the "
            f"manifest (e.g. {unknown[:3]}), {len(missing)} manifest clip(s) without a "
            f"prediction (e.g. {missing[:3]}); the predictions are stale: rerun the model's "
            "infer_ rule for this split")


def score_ground_truth(
    *, suite: str, manifests: Mapping[str, str | Path], labels: dict[str, list[str]],
    embedder: TextEmbedder,
) -> pd.DataFrame:
    """Feed the references through the text-embedding scorers as if a model had said them;
    raise GroundTruthCheckError unless WER is 0 and mACC and mAP are 100 on every split."""
    rows = []
    for split, path in manifests.items():
        truth = _truth(_read_manifest(path), path)
        records = []
        for clip_id, clip in truth.items():
            parsed = dict(clip)
            records.append({"clip_id": clip_id, "task": "joint", "request": "generate",
                            "error": None, "output_text": json.dumps(parsed),
                            "parsed": parsed, "well_formed": True})
        for row in score_split_run(records, truth, labels, split, "joint",
                                   embedder, n_boot=0, seed=0):
            if row["metric"] == "format_compliance":
                continue
            rows.append({"suite": suite, "model": "ground_truth", "mode": "reference",
                         "split": split, "run": 0, **row})
    table = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    expected = {"wer": 0.0, "wer_raw": 0.0, "macc": 100.0, "map": 100.0}
    bad = [f"{r.split} {r.metric}={r.value:.4f}" for r in table.itertuples()
           if not math.isclose(r.value, expected[r.metric], abs_tol=1e-9)]
    if bad:
        raise GroundTruthCheckError(
            "scoring the ground truth as predictions must give WER 0, mACC 100, mAP 100; got "
            + ", ".join(bad[:8]) + " (check the label sets and the embedder)")
    return table
