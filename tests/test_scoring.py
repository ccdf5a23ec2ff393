"""SSEU scoring of a system from prediction files: hand-checked values, undefined cells,
failed items kept in the denominators, CLAP-style scores, and the ground-truth check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lalm_eval.metrics.embedding import CachedEmbedder, HashingTextEmbedder
from lalm_eval.suites.sseu.scoring import GroundTruthCheckError, score_ground_truth, score_system

LABELS = {"scenes": ["home", "park", "street"], "events": ["dog bark", "rain", "car horn"]}
CLIPS = [
    ("c0", "the cat sat on the mat", "home", ["dog bark"]),
    ("c1", "open the window please", "park", ["rain"]),
    ("c2", "turn left at the lights", "street", ["car horn", "rain"]),
]


def _manifest(tmp_path: Path, split: str) -> Path:
    rows = []
    for clip_id, text, scene, events in CLIPS:
        rows.append({
            "clip_id": clip_id, "split": split,
            "transcript": "" if split == "snr-inf" else text,
            "scene": scene,
            "events": "[]" if split == "snr+inf" else json.dumps(
                [{"label": e, "onset": 0.0, "offset": 1.0} for e in events]),
        })
    path = tmp_path / f"{split}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _record(clip_id, task, request, text=None, scores=None, error=None):
    return {"clip_id": clip_id, "task": task, "request": request, "output_text": text,
            "scores": scores, "error": error}


def _write(tmp_path: Path, name: str, records: list[dict]) -> Path:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _score(tmp_path, mode, records_by_split, family="generic"):
    predictions = {(split, 0): _write(tmp_path, f"{split}-{mode}", recs)
                   for split, recs in records_by_split.items()}
    manifests = {split: _manifest(tmp_path, split) for split in records_by_split}
    embedder = CachedEmbedder(HashingTextEmbedder())
    return score_system(suite="sseu", model="m", mode=mode, family=family,
                        predictions=predictions, manifests=manifests, labels=LABELS,
                        embedder=embedder, n_boot=50, seed=0)


def _value(scores: pd.DataFrame, split: str, task: str, metric: str) -> float:
    row = scores[(scores.split == split) & (scores.task == task) & (scores.metric == metric)]
    assert len(row) == 1, (split, task, metric, scores)
    return float(row.value.iloc[0])


def test_independent_generation_hand_checked(tmp_path):
    records = [
        _record("c0", "asr", "generate", '"The cat sat on the mat."'),  # 0 errors
        _record("c1", "asr", "generate", "open the door please"),  # 1 substitution
        _record("c2", "asr", "generate", error="RuntimeError: boom"),  # 5 deletions
        _record("c0", "asc", "generate", "home"),
        _record("c1", "asc", "generate", "street"),
        _record("c2", "asc", "generate", "street"),
        _record("c0", "at", "generate", "dog bark"),
        _record("c1", "at", "generate", "rain, car horn"),
        _record("c2", "at", "generate", ""),
    ]
    scores, items = _score(tmp_path, "independent", {"snr+5": records})
    assert _value(scores, "snr+5", "asr", "wer") == pytest.approx(100 * 6 / 15)
    # per-class recall: home 1, park 0, street 1 -> 66.7
    assert _value(scores, "snr+5", "asc", "macc") == pytest.approx(200 / 3)
    asr = scores[(scores.task == "asr") & (scores.metric == "wer")].iloc[0]
    assert asr.n_failed == 1 and asr.ci_low <= asr.value <= asr.ci_high
    compliance = _value(scores, "snr+5", "asr", "format_compliance")
    assert compliance == pytest.approx(200 / 3)  # the error counts as not well-formed
    assert len(items) == 9 and set(items.columns) >= {"well_formed", "problem", "parsed"}


def test_undefined_cells_are_not_emitted(tmp_path):
    asr_only = [_record(c, "asr", "transcribe", text) for c, text, _, _ in CLIPS]
    scores, _ = _score(tmp_path, "independent", {"snr+inf": asr_only, "snr-inf": asr_only})
    assert set(scores[scores.metric == "wer"].split) == {"snr+inf"}
    assert _value(scores, "snr+inf", "asr", "wer") == 0.0


def test_clap_style_scores_are_used_directly(tmp_path):
    scene = {"home": 0.7, "park": 0.2, "street": 0.1}
    events = {"dog bark": 0.9, "rain": 0.1, "car horn": 0.2}
    records = [_record("c0", "asc", "classify", "home", scores=scene),
               _record("c1", "asc", "classify", "home", scores=scene),
               _record("c2", "asc", "classify", error="AudioError: x"),
               _record("c0", "at", "classify", scores=events),
               _record("c1", "at", "classify", scores={**events, "dog bark": 0.1, "rain": 0.95}),
               _record("c2", "at", "classify",
                       scores={"dog bark": 0.1, "rain": 0.5, "car horn": 0.99})]
    scores, _ = _score(tmp_path, "independent", {"snr0": records})
    assert _value(scores, "snr0", "asc", "macc") == pytest.approx(100 / 3)
    assert _value(scores, "snr0", "at", "map") == pytest.approx(100.0)
    assert not (scores.metric == "format_compliance").any()


def test_joint_answers_are_parsed(tmp_path):
    answer = {"transcript": "turn left at the lights", "scene": "street",
              "events": ["car horn", "rain"]}
    records = [_record("c2", "joint", "generate", "```json\n" + json.dumps(answer) + "\n```"),
               _record("c0", "joint", "generate", "I am not sure."),
               _record("c1", "joint", "generate", json.dumps({**answer, "scene": "park"}))]
    scores, items = _score(tmp_path, "joint", {"snr+10": records})
    assert _value(scores, "snr+10", "joint", "format_compliance") == pytest.approx(200 / 3)
    assert set(scores.task) == {"asr", "asc", "at", "joint"}
    assert items.set_index("clip_id").loc["c0", "well_formed"] == False  # noqa: E712


def test_ground_truth_upper_bound_and_loud_failure(tmp_path):
    manifests = {s: _manifest(tmp_path, s) for s in ("snr+inf", "snr0", "snr-inf")}
    embedder = CachedEmbedder(HashingTextEmbedder())
    table = score_ground_truth(suite="sseu", manifests=manifests, labels=LABELS,
                               embedder=embedder)
    assert set(table.metric) == {"wer", "wer_raw", "macc", "map"}
    assert (table[table.metric.str.startswith("wer")].value == 0).all()
    assert (table[table.metric.isin(["macc", "map"])].value == 100).all()
    # an embedder that cannot tell labels apart (e.g. a wrong model path giving a degenerate
    # model) must make the check fail loudly
    class Degenerate:
        def embed(self, texts):
            return np.ones((len(texts), 8)) / np.sqrt(8)

    with pytest.raises(GroundTruthCheckError, match="macc"):
        score_ground_truth(suite="sseu", manifests=manifests, labels=LABELS,
                           embedder=Degenerate())
    with pytest.raises(ValueError, match="street"):
        score_ground_truth(suite="sseu", manifests=manifests,
                           labels={"scenes": ["home", "park"], "events": LABELS["events"]},
                           embedder=embedder)


def test_stale_predictions_are_named_not_a_key_error(tmp_path):
    records = [_record(c, "asr", "transcribe", text) for c, text, _, _ in CLIPS]
    records.append(_record("c9", "asr", "transcribe", "left over from an older corpus"))
    with pytest.raises(ValueError, match=r"c9.*stale.*infer_"):
        _score(tmp_path, "independent", {"snr0": records})
