"""A trained LALM inside the real workflow: train_<model> trains it (features cached by
content), infer_<model> runs it on a suite, a rerun trains nothing, and retraining or a
changed training setting replans exactly the model's own jobs and what depends on them."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import planned_rules, run_snakemake
from tiny_lalm import PROMPT, save_tiny_llm, write_tone_set

#: a suite kind asking each clip's pitch, scored by exact match
PLUGIN = textwrap.dedent('''
    import json

    import pandas as pd

    from lalm_eval.inference import WorkItem
    from lalm_eval.suites import register_kind
    from lalm_eval.suites.base import PredictionJob, ScoreJob, Suite


    @register_kind
    class ToneSuite(Suite):
        kind = "tone_qa"
        modes = "plain"

        @classmethod
        def schema(cls):
            return {"type": "object", "additionalProperties": False,
                    "required": ["kind", "clips", "systems", "prompt"],
                    "properties": {"kind": {"const": "tone_qa"}, "clips": {"type": "string"},
                                   "prompt": {"type": "string"},
                                   "systems": {"type": "array", "items": {"type": "string"}},
                                   "runs": {"type": "integer", "default": 1}}}

        def prediction_jobs(self):
            return [PredictionJob(m, "plain", "all", 0) for m in self.settings["systems"]]

        def inference_inputs(self, mode, split):
            return {"clips": self.settings["clips"]}

        def inference_params(self, model, mode, split):
            return {"prompt": self.settings["prompt"]}

        def required_capability(self, mode):
            return "generate"

        def work_items(self, job, model):
            return [WorkItem(item_id=c.clip_id, clip_id=c.clip_id, task="pitch",
                             request="generate", audio_path=c.path,
                             prompt=job.params["prompt"])
                    for c in pd.read_csv(job.inputs["clips"]).itertuples()]

        def score_jobs(self):
            return [ScoreJob(m, "plain") for m in self.settings["systems"]]

        def score_inputs(self, model, mode):
            return {**super().score_inputs(model, mode), "clips": self.settings["clips"]}

        def score(self, model, mode, inputs, params, seed):
            clips = pd.read_csv(inputs["clips"])
            truth = dict(zip(clips.clip_id, clips.label))
            rows, items = [], []
            for p in params["predictions"]:
                records = [json.loads(line) for line in open(p["path"])]
                hits = [(r["output_text"] or "").strip() == truth[r["clip_id"]]
                        for r in records]
                rows.append({"suite": self.name, "model": model, "mode": mode,
                             "split": p["split"], "run": p["run"], "task": "pitch",
                             "metric": "accuracy", "value": 100 * sum(hits) / len(hits),
                             "n_items": len(hits),
                             "n_failed": sum(r["error"] is not None for r in records)})
                items += [{"clip_id": r["clip_id"], "hit": h} for r, h in zip(records, hits)]
            return pd.DataFrame(rows), pd.DataFrame(items)
''')


def _config(tmp_path: Path, data: Path, llm: Path, clips: Path, max_steps: int) -> Path:
    config = {
        "run_name": "train", "paths": {"resources": "res", "results": "out"},
        "plugins": ["tone_suite"],
        "corpora": {"none": {"kind": "tables"}},
        "suites": {"tones": {"kind": "tone_qa", "clips": str(clips), "prompt": PROMPT,
                             "systems": ["tone_lalm"]}},
        "encoders": {"logmel": {"kind": "logmel", "options": {"n_mels": 32}}},
        "models": {
            "tiny_llm": {"adapter": "hf_causal_lm", "source": str(llm)},
            "tone_lalm": {
                "adapter": "trained_lalm", "batch_size": 4, "decoding": {"max_new_tokens": 3},
                "resources": {"threads": 1},
                "training": {
                    "recipe": "xares_llm", "encoder": "logmel", "llm": "tiny_llm",
                    "data": {"file": str(data)},
                    "connector": {"pool": "mean", "pool_frames": 4},
                    "settings": {"max_steps": max_steps, "warmup_steps": 2, "lr": 3.0e-3,
                                 "checkpoint_every": 10, "heldout_every": 10,
                                 "log_every": 1},
                }}},
    }
    path = tmp_path / f"train{max_steps}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_a_trained_lalm_is_built_by_its_rule_and_served_by_infer(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "tone_suite.py").write_text(PLUGIN)
    data = write_tone_set(tmp_path / "tones", n_train=16, n_heldout=4)
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    clips = tmp_path / "clips.csv"
    pd.DataFrame({"clip_id": [r["item_id"] for r in rows if r["split"] == "heldout"],
                  "path": [str(data.parent / r["audio"]) for r in rows
                           if r["split"] == "heldout"],
                  "label": [r["target"] for r in rows if r["split"] == "heldout"]}
                 ).to_csv(clips, index=False)
    llm = save_tiny_llm(tmp_path / "tiny_llm")
    config = _config(tmp_path, data, llm, clips, max_steps=30)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "plugins"), os.environ.get("PYTHONPATH", "")]),
        "LALM_EVAL_CACHE": str(tmp_path / "cache")}
    work = tmp_path / "work"

    assert planned_rules(work, "--configfile", str(config), env=env) == {
        "train_tone_lalm", "infer_tone_lalm", "inference_summary", "score", "suite_report",
        "run_info", "all"}
    run = run_snakemake(work, "--configfile", str(config), env=env)
    assert run.returncode == 0, run.stderr[-4000:]

    trained = work / "out" / "training" / "tone_lalm"
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["steps_done"] == 30
    assert manifest["heldout_loss"] < manifest["heldout_loss_untrained"]
    assert manifest["identity"]["encoder"] == "logmel"
    assert (trained / "loss_curve.png").stat().st_size > 1000
    features = list((work / "res" / "features" / "logmel").rglob("*.npy"))
    assert len(features) == 20  # one per clip, by content
    predictions = work / "out" / "tones" / "predictions" / "tone_lalm" / "plain" / "all"
    records = [json.loads(line) for line in (predictions / "run0.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["error"] is None for r in records)

    assert "Nothing to be done" in run_snakemake(work, "--configfile", str(config),
                                              "-n", env=env).stdout
    downstream = {"infer_tone_lalm", "inference_summary", "score", "suite_report", "all"}
    assert planned_rules(work, "--configfile", str(config), "-R", "train_tone_lalm", env=env) == \
        {"train_tone_lalm", *downstream}
    changed = _config(tmp_path, data, llm, clips, max_steps=31)
    assert planned_rules(work, "--configfile", str(changed), env=env) >= {"train_tone_lalm",
                                                                  "infer_tone_lalm"}


def test_a_trained_model_names_its_encoder_and_llm(tmp_path):
    from lalm_eval.config import ConfigError, validate_config

    config = {"run_name": "x", "corpora": {"none": {"kind": "tables"}}, "suites": {},
              "encoders": {"logmel": {"kind": "logmel"}},
              "models": {"llm": {"adapter": "hf_causal_lm", "source": "x"},
                         "lalm": {"adapter": "trained_lalm", "training": {
                             "recipe": "xares_llm", "encoder": "melspec", "llm": "llm",
                             "data": {"file": "t.jsonl"}}}}}
    with pytest.raises(ConfigError, match="models.lalm.training.encoder names.*melspec"):
        validate_config(config)
    config["models"]["lalm"]["training"]["encoder"] = "logmel"
    validated = validate_config(config)
    assert validated["models"]["lalm"]["source"] == "results/training/lalm"
    config["models"]["other"] = {"adapter": "trained_lalm", "source": "somewhere"}
    with pytest.raises(ConfigError, match="needs a 'training' block"):
        validate_config(config)


def test_an_unknown_encoder_kind_is_named_with_a_hint():
    from lalm_eval.config import ConfigError, validate_config

    config = {"run_name": "x", "corpora": {"none": {"kind": "tables"}}, "suites": {},
              "encoders": {"mel": {"kind": "logmell"}, "mine": {"kind": "file"}}}
    with pytest.raises(ConfigError, match="encoders.mel.kind 'logmell'.*did you mean 'logmel'"):
        validate_config(config)
    config["encoders"]["mel"]["kind"] = "logmel"
    with pytest.raises(ConfigError, match="encoders.mine: kind file needs 'path'"):
        validate_config(config)
