"""Accuracy broken down as the official MMAU / MMAR scripts do (MMAU: task, difficulty,
sub-category; MMAR: modality, layer, sub-category), on hand-built items and predictions with
hand-computed values; the existing cascade / audio tables do not change."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lalm_eval.suites.knowledge import jobs as knowledge
from lalm_eval.suites.knowledge.akb import demo_mcq_path, position_balance, read_mcq
from lalm_eval.suites.knowledge.mmau import read_mmar, read_mmau
from lalm_eval.suites.knowledge.report import breakdown_table, build_knowledge_report


def _mmar(item_id: str, modality: str, layer: str, sub: str, **changes: object) -> dict:
    item = {"id": item_id, "audio_path": f"./audio/{item_id}.wav", "question": "Which one?",
            "choices": ["a bell", "a drum"], "answer": "a bell", "modality": modality,
            "category": layer, "sub-category": sub, "language": "en", "source": "toy",
            "url": "", "timestamp": ""}
    item.update(changes)
    return item


def _predictions(path: Path, answers: dict[str, str | None]) -> Path:
    path.write_text("".join(json.dumps({"item_id": k, "output_text": v, "error": None})
                            + "\n" for k, v in answers.items()), encoding="utf-8")
    return path


@pytest.fixture
def mmar_accuracy(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    items = [
        _mmar("m1", "sound", "Signal Layer", "Counting"),
        _mmar("m2", "sound", "Perception Layer", "Counting"),
        _mmar("m3", "music", "Perception Layer", "Timbre",
              choices=["a violin", "a flute", ""], answer="a flute"),  # an empty choice
        _mmar("m4", "music", "Perception Layer", ""),  # no sub-category
    ]
    path = tmp_path / "MMAR-meta.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    table = read_mmar(path, tmp_path)
    files = {
        # llm via cap, run 0: m1 right, m2 wrong, m3 right, m4 no prediction (skipped)
        ("mmar", "llm", "cascade-cap", 0): _predictions(
            tmp_path / "r0.jsonl", {"m1": "a bell", "m2": "a drum", "m3": "a flute"}),
        # run 1: all four right
        ("mmar", "llm", "cascade-cap", 1): _predictions(
            tmp_path / "r1.jsonl", {"m1": "A bell!", "m2": "a bell", "m3": "a flute",
                                    "m4": "A bell."}),
        # alm from the audio: m2 and m4 right
        ("mmar", "alm", "audio", 0): _predictions(
            tmp_path / "a0.jsonl", {"m1": "a drum", "m2": "a bell", "m3": "a violin",
                                    "m4": "a bell"}),
    }
    _, accuracy = knowledge.score_choice_runs({"mmar": table}, files)
    return table, accuracy


def test_mmar_accuracy_rows_per_modality_layer_and_sub_category(mmar_accuracy) -> None:
    _, accuracy = mmar_accuracy
    rows = accuracy[(accuracy["model"] == "llm") & (accuracy["run"] == 0)
                    & (accuracy["matcher"] == "faithful")].set_index(["breakdown", "value"])
    assert list(rows.index) == [
        ("overall", "all"), ("task", "music"), ("task", "sound"),
        ("category", "Perception Layer"), ("category", "Signal Layer"),
        ("sub_category", "Counting"), ("sub_category", "Timbre")]  # m4: no sub-category row
    assert rows.loc[("overall", "all"), "accuracy"] == pytest.approx(200 / 3)
    assert rows.loc[("category", "Perception Layer"), ["n", "n_skipped"]].tolist() == [2, 1]
    assert rows.loc[("category", "Perception Layer"), "accuracy"] == 50.0
    assert rows.loc[("sub_category", "Counting"), "accuracy"] == 50.0
    assert rows.loc[("sub_category", "Timbre"), "accuracy"] == 100.0


def test_mmar_breakdown_table(mmar_accuracy) -> None:
    table, accuracy = mmar_accuracy
    shown = breakdown_table(accuracy, "mmar", table)
    assert list(shown.columns) == ["items", "llm via cap", "alm audio"]
    assert list(shown.index) == [
        ("overall", "all"), ("modality", "sound"), ("modality", "music"),
        ("layer", "Signal Layer"), ("layer", "Perception Layer"),
        ("sub-category", "Counting"), ("sub-category", "Timbre")]
    # llm: two runs, mean ± sample std; alm: one run
    expected = {
        ("overall", "all"): (4, "83.3 ± 23.6", "50.0"),        # (66.7, 100); 2/4
        ("modality", "sound"): (2, "75.0 ± 35.4", "50.0"),     # (50, 100); 1/2
        ("modality", "music"): (2, "100.0 ± 0.0", "50.0"),     # (1/1, 2/2); 1/2
        ("layer", "Signal Layer"): (1, "100.0 ± 0.0", "0.0"),
        ("layer", "Perception Layer"): (3, "75.0 ± 35.4", "66.7"),  # (1/2, 3/3); 2/3
        ("sub-category", "Counting"): (2, "75.0 ± 35.4", "50.0"),
        ("sub-category", "Timbre"): (1, "100.0 ± 0.0", "0.0"),
    }
    for key, (items, llm, alm) in expected.items():
        assert tuple(shown.loc[key]) == (items, llm, alm), key
    assert "modality, layer, sub-category" in shown.attrs["notes"][0]
    assert shown.attrs["notes"][1].startswith("1 question(s) with a note")  # m3


def test_mmau_breakdown_table_task_difficulty_sub_category(tmp_path: Path) -> None:
    base = {"question": "Who?", "choices": ["Man", "Woman"], "answer": "Woman",
            "dataset": "toy", "split": "test-mini", "category": "c"}
    items = [
        {**base, "id": "u1", "audio_id": "u1.wav", "task": "speech", "difficulty": "hard",
         "sub-category": "Speaker"},
        {**base, "id": "u2", "audio_id": "u2.wav", "task": "sound", "difficulty": "easy",
         "sub-category": "Speaker"},
        {**base, "id": "u3", "audio_id": "u3.wav", "task": "speech", "difficulty": "medium",
         "sub-category": "Events"},
    ]
    path = tmp_path / "mmau.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    table = read_mmau(path, tmp_path)
    files = {("bench", "alm", "audio", 0): _predictions(
        tmp_path / "p.jsonl", {"u1": "woman", "u2": "man", "u3": "a woman"})}
    _, accuracy = knowledge.score_choice_runs({"bench": table}, files)
    shown = breakdown_table(accuracy, "bench")
    # the official script's difficulty order (easy, medium, hard), not alphabetical
    assert shown["alm audio"].to_dict() == {
        ("overall", "all"): "66.7",
        ("task", "sound"): "0.0", ("task", "speech"): "100.0",
        ("difficulty", "easy"): "0.0", ("difficulty", "medium"): "100.0",
        ("difficulty", "hard"): "100.0",
        ("sub-category", "Events"): "100.0", ("sub-category", "Speaker"): "50.0",
    }
    assert list(shown.index) == list(shown["alm audio"].to_dict())
    assert len(shown.attrs["notes"]) == 1  # no benchmark table given: no item-note count


def _choice_rows(extra: bool) -> pd.DataFrame:
    rows = [
        {"benchmark": "bench", "model": m, "mode": mode, "run": 0, "matcher": matcher,
         "breakdown": breakdown, "value": value, "accuracy": acc, "n": 4, "n_correct": 0,
         "n_skipped": 0, "n_missing": 0, "n_failed": 0}
        for m, mode, acc in (("a", "cascade-cap", 25.0), ("x", "audio", 75.0))
        for matcher in ("faithful", "strict")
        for breakdown, value in (("overall", "all"), ("task", "sound"))
    ]
    if extra:  # breakdown rows whose values collide with the task / overall ones
        rows += [{**row, "breakdown": breakdown, "value": value, "accuracy": 0.0}
                 for row in rows[:1] + rows[4:5]
                 for breakdown, value in (("sub_category", "all"), ("difficulty", "sound"))]
    return pd.DataFrame(rows)


def test_report_adds_breakdown_tables_and_keeps_the_others(tmp_path: Path) -> None:
    balance = position_balance(read_mcq(demo_mcq_path()))
    written = {}
    for extra in (False, True):
        out = tmp_path / str(extra)
        choice = _choice_rows(extra)
        metrics, blocks = knowledge.metric_table(pd.DataFrame(), choice)
        paths = build_knowledge_report(
            mcq_accuracy=pd.DataFrame(), choice_accuracy=choice, metrics=metrics,
            blocks=blocks, balance=balance, out_dir=out,
            correlation={"min_n": 3, "bootstrap": 10, "matcher": "faithful"},
            config_slice={}, seeds={"global": 1}, prompt_hashes={})
        written[extra] = {p.name: p.read_bytes() for p in (out / "tables").iterdir()
                          if not p.stem.startswith("breakdown_")}
        assert "breakdown_bench" in paths
    assert written[True] == written[False]  # cascade / audio tables byte-identical
    table = pd.read_csv(tmp_path / "True" / "tables" / "breakdown_bench.csv", dtype=str)
    assert list(table.columns) == ["breakdown", "group", "items", "a via cap", "x audio"]
    assert table.loc[table["breakdown"] == "difficulty", "a via cap"].tolist() == ["0.0"]
