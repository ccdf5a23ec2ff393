"""Per-system subsets of an SSEU suite (``systems.<model>.<mode>: {n_clips, snrs}``): the
jobs planned, the clips run and scored, the config check, and tables over unequal sets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lalm_eval.reports import tables
from lalm_eval.reports.tables import SPLITS

REPO = Path(__file__).resolve().parents[1]
SUBSETS = {"whisper": ["independent"],
           "cascade": {"independent": {"n_clips": 3},
                       "joint": {"n_clips": 2, "snrs": [10, "-inf"]},
                       "cot": None}}


def _suite(systems=SUBSETS, splits=("snr+inf", "snr+10", "snr0", "snr-inf")):
    from lalm_eval.config import load_config
    from lalm_eval.suites import Plan, build_suite

    config = load_config(REPO / "config" / "demo.yaml")
    config["models"]["whisper"] = config["models"]["whisper_tiny_en"]
    settings = {**config["suites"]["sseu"], "systems": systems}
    return build_suite("sseu", settings, Plan(config, "res", "out", splits))


def test_a_subset_limits_the_jobs_to_its_snrs_and_its_clips():
    suite = _suite()
    jobs = suite.prediction_jobs()
    by_mode: dict[tuple[str, str], list[str]] = {}
    for job in sorted(jobs):
        by_mode.setdefault((job.model, job.mode), []).append(job.split)
    assert sorted(by_mode[("whisper", "independent")]) == sorted(
        ["snr+inf", "snr+10", "snr0", "snr-inf"])
    assert sorted(by_mode[("cascade", "joint")]) == ["snr+10", "snr-inf"]
    assert len(by_mode[("cascade", "cot")]) == 4  # null subset: everything
    assert suite.inference_params("cascade", "joint", "snr+10")["n_clips"] == 2
    assert suite.inference_params("whisper", "independent", "snr0")["n_clips"] is None
    params = suite.score_params("cascade", "joint")
    assert sorted(params["manifests"]) == ["snr+10", "snr-inf"]
    assert sorted(p["split"] for p in params["predictions"]) == ["snr+10", "snr-inf"]
    assert sorted(suite.score_inputs("cascade", "joint")["manifests"]) == [
        "out/sseu/manifests/snr+10.csv", "out/sseu/manifests/snr-inf.csv"]


def test_a_subset_snr_outside_mixing_is_a_config_error():
    from lalm_eval.config import ConfigError, load_config

    systems = {"cascade": {"joint": {"snrs": [7]}}}
    with pytest.raises(ConfigError) as info:
        load_config(REPO / "config" / "demo.yaml", {"suites": {"sseu": {
            "kind": "sseu", "speech_corpus": "demo", "background_corpora": ["demo"],
            "systems": systems}}})
    assert "suites.sseu.systems.cascade.joint.snrs" in str(info.value)
    assert "snr+7" in str(info.value)


def test_a_misspelt_subset_key_is_refused():
    from lalm_eval.config import ConfigError, load_config

    with pytest.raises(ConfigError):
        load_config(REPO / "config" / "demo.yaml", {"suites": {"sseu": {
            "kind": "sseu", "speech_corpus": "demo", "background_corpora": ["demo"],
            "systems": {"cascade": {"joint": {"nclips": 2}}}}}})


def test_clip_subset_takes_one_clip_per_scene_first_in_manifest_order():
    from lalm_eval.suites.sseu.items import clip_subset

    manifest = pd.DataFrame({"clip_id": [f"c{i}" for i in range(8)],
                             "scene": ["home", "home", "park", "park", "cafe", "cafe",
                                       "home", "park"]})
    assert list(clip_subset(manifest, 3)["clip_id"]) == ["c0", "c2", "c4"]
    assert list(clip_subset(manifest, 4)["clip_id"]) == ["c0", "c1", "c2", "c4"]
    assert clip_subset(manifest, None) is manifest
    assert len(clip_subset(manifest, 50)) == 8


def test_scoring_a_subset_checks_predictions_against_the_same_clips(tmp_path: Path):
    import json

    from lalm_eval.metrics.embedding import CachedEmbedder, HashingTextEmbedder
    from lalm_eval.suites.sseu.scoring import score_system

    manifest = pd.DataFrame({
        "clip_id": ["a", "b", "c", "d"], "scene": ["home", "park", "home", "park"],
        "transcript": ["red green", "blue black", "pink grey", "gold white"],
        "events": ["[]"] * 4, "audio_path": ["x.wav"] * 4})
    path = tmp_path / "snr0.csv"
    manifest.to_csv(path, index=False)
    records = [{"clip_id": c, "task": "asr", "request": "transcribe", "error": None,
                "output_text": t} for c, t in (("a", "red green"), ("b", "blue"))]
    predictions = tmp_path / "run0.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records))
    scores, _ = score_system(
        suite="s", model="m", mode="independent", family="faster_whisper",
        predictions={("snr0", 0): predictions}, manifests={"snr0": path},
        labels={"scenes": ["home", "park"], "events": []},
        embedder=CachedEmbedder(HashingTextEmbedder(dim=16)), n_boot=0, n_clips=2)
    wer = scores[scores["metric"] == "wer"].iloc[0]
    assert wer["n_items"] == 2 and wer["value"] == pytest.approx(25.0)
    with pytest.raises(ValueError, match="stale"):
        score_system(
            suite="s", model="m", mode="independent", family="faster_whisper",
            predictions={("snr0", 0): predictions}, manifests={"snr0": path},
            labels={"scenes": ["home", "park"], "events": []},
            embedder=CachedEmbedder(HashingTextEmbedder(dim=16)), n_boot=0, n_clips=3)


def _rows(model, mode, splits, value, n_items):
    return [{"suite": "s", "model": model, "mode": mode, "split": split, "run": 0,
             "task": "asc", "metric": "macc", "value": value + i, "n_items": n_items,
             "n_failed": 0} for i, split in enumerate(splits)]


def test_mode_comparisons_average_over_the_snrs_both_modes_ran():
    full = [s for s in SPLITS if s != "snr+inf"]
    scores = pd.DataFrame(_rows("m", "independent", full, 10.0, 20)
                          + _rows("m", "joint", ["snr+10", "snr0"], 50.0, 5))
    table = tables.table2_independent_vs_joint(scores)
    # independent at snr+10 (index 0 -> 10) and snr0 (index 2 -> 12) only: mean 11
    row = table.loc[("m", "asc", "macc")]
    assert row["independent"] == "11.0" and row["joint"] == "50.5"
    assert row["joint - independent"] == "+39.5"
    notes = " ".join(tables.table1(scores).attrs["notes"])
    assert "Items per cell" in notes and "m/independent 20" in notes and "m/joint 5" in notes
