"""End-to-end training through the job the workflow runs: a random-weight tiny LLaMA, a
log-mel encoder and the XARES-LLM recipe (linear projector + LoRA) on a toy pitch task.
The trained model beats the same model with an untrained connector on held-out items, and
two data-parallel processes (torchrun, gloo) train the same model as one process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from tiny_lalm import save_tiny_llm, write_tone_set


def _job(tmp_path: Path, name: str, *, processes: int = 1, steps: int = 40,
         lora_dropout: float = 0.1, llm: Path | None = None, data: Path | None = None):
    from lalm_eval.training.job import TrainingJob

    llm = llm or save_tiny_llm(tmp_path / "tiny_llm")
    data = data or write_tone_set(tmp_path / "tones", n_train=16, n_heldout=8)
    training = {"recipe": "xares_llm", "encoder": "logmel", "llm": "tiny_llm",
                "data": {"file": str(data)}, "connector": {"pool": "mean", "pool_frames": 4},
                "lora": {"dropout": lora_dropout},
                "settings": {"max_steps": steps, "warmup_steps": 2, "lr": 3.0e-3,
                             "global_batch": 4, "per_device_batch": 4 // processes,
                             "checkpoint_every": 10, "heldout_every": 10},
                "processes": processes, "nodes": 1}
    models = {name: {"adapter": "trained_lalm", "source": str(tmp_path / "out" / name),
                     "training": training, "decoding": {"max_new_tokens": 3}},
              "tiny_llm": {"adapter": "hf_causal_lm", "source": str(llm)}}
    return TrainingJob(model_name=name, models=models, encoder_name="logmel",
                       encoder_spec={"kind": "logmel", "options": {"n_mels": 32}},
                       data_file=str(data), out_dir=str(tmp_path / "out" / name),
                       feature_cache=str(tmp_path / "features"), processes=processes)


def _heldout(data: Path) -> list[dict]:
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    return [r for r in rows if r["split"] == "heldout"]


def _accuracy(model, rows: list[dict], folder: Path) -> float:
    from lalm_eval.audio import load_audio
    from lalm_eval.models.base import Request

    requests = [Request(item_id=r["item_id"], task="generate", prompt=r["prompt"],
                        audio=load_audio(folder / r["audio"], 16000).samples,
                        audio_path=str(folder / r["audio"])) for r in rows]
    answers = model.predict(requests)
    assert all(a.error is None for a in answers), [a.error for a in answers]
    return float(np.mean([a.text.strip() == r["target"]
                                for a, r in zip(answers, rows, strict=True)]))


@pytest.mark.slow
def test_the_trained_lalm_beats_its_untrained_connector_on_held_out_items(tmp_path,
                                                                          monkeypatch):
    from lalm_eval.models.registry import build_model
    from lalm_eval.training.job import build_lalm, run_training_job

    monkeypatch.setenv("LALM_EVAL_CACHE", str(tmp_path / "cache"))
    job = _job(tmp_path, "tone_lalm", steps=40)
    manifest = run_training_job(job)
    assert manifest["heldout_loss"] < 0.5 * manifest["heldout_loss_untrained"]
    losses = [float(r["loss"]) for r in csv.DictReader(open(Path(job.out_dir) / "loss.csv"))
              if r["loss"]]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])

    data = Path(job.data_file)
    trained = build_model("tone_lalm", job.models)
    trained_accuracy = _accuracy(trained, _heldout(data), data.parent)

    # the same model with its connector (and LoRA) as initialised by build_lalm
    spec = json.loads((Path(job.out_dir) / "build.json").read_text())
    trained.load()
    baseline = build_lalm(spec, 32, 1)
    baseline.eval()
    trained.model = baseline
    untrained_accuracy = _accuracy(trained, _heldout(data), data.parent)
    assert trained_accuracy == 1.0
    assert untrained_accuracy < trained_accuracy


@pytest.mark.slow
def test_two_data_parallel_processes_train_the_same_model_as_one(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from lalm_eval.training.job import run_training_job

    monkeypatch.setenv("LALM_EVAL_CACHE", str(tmp_path / "cache"))
    llm = save_tiny_llm(tmp_path / "tiny_llm")
    data = write_tone_set(tmp_path / "tones", n_train=16, n_heldout=4)
    # no dropout: with dropout, a batch split over 2 processes draws other masks
    one = _job(tmp_path, "one", processes=1, steps=12, lora_dropout=0.0, llm=llm, data=data)
    two = _job(tmp_path, "two", processes=2, steps=12, lora_dropout=0.0, llm=llm, data=data)
    manifests = [run_training_job(one), run_training_job(two)]
    assert [m["world_size"] for m in manifests] == [1, 2]
    curves = [[float(r["loss"]) for r in csv.DictReader(open(Path(j.out_dir) / "loss.csv"))
               if r["loss"]] for j in (one, two)]
    assert len(curves[0]) == len(curves[1]) == 12
    np.testing.assert_allclose(curves[1], curves[0], rtol=1e-5)
    weights = [load_file(Path(j.out_dir) / "model" / "trainable.safetensors") for j in (one, two)]
    assert weights[0].keys() == weights[1].keys()
    worst = max(float((weights[0][k] - weights[1][k]).abs().max()) for k in weights[0])
    assert worst < 1e-5, worst
