"""The xares suite kind through the real workflow: one LALM per encoder (two built-in
log-mel variants and a participant's encoder file in the template's shape) trained on the
suite's mixture, scored on every task in both modes, linear probes beside them, the
leaderboard with n and intervals, and the probe/LALM ranking agreement. A broken
participant encoder is refused with a message naming the problem."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
import yaml
from conftest import planned_rules, run_snakemake
from tiny_lalm import TONES, save_tiny_llm, tone

#: a participant's encoder in the XARES-LLM template's shape: band energies per 20 ms
PARTICIPANT = textwrap.dedent('''
    import torch
    from torch import nn


    class BandEnergyEncoder(nn.Module):
        """Log energies of 8 FFT bands per 20 ms frame."""

        def __init__(self):
            super().__init__()
            self.output_dim = 8
            self.hop = 320

        def forward(self, audio, mask=None):
            frames = audio.unfold(1, self.hop, self.hop)          # [B, T', hop]
            spectrum = torch.fft.rfft(frames, dim=-1).abs() ** 2  # [B, T', 161]
            bands = spectrum[..., :160].reshape(*spectrum.shape[:2], 8, 20).sum(-1)
            feats = torch.log(bands + 1e-6)
            if mask is None:
                return feats, None
            lengths = mask.sum(1) // self.hop
            keep = torch.arange(feats.shape[1])[None, :] < lengths[:, None]
            return feats, keep.long()
''')
#: broken variants: (replacement, what the message must name)
BROKEN = [
    ("return feats, keep.long()", "return feats, keep[:, :-1].long()", "mask"),
    ("feats = torch.log(bands + 1e-6)", "feats = torch.log(bands + 1e-6)[..., 0]", "3-D"),
    ("feats = torch.log(bands + 1e-6)", "feats = torch.log(bands + 1e-6) * float('nan')",
     "finite"),
]


def _task_set(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"name": "tones", "source": {"repo": "test"},
        "score": {"normalise": "identity", "track_weights": "equal"},
        "tasks": {
            "pitch": {"track": "A", "instruction": "is the tone low or high ?",
                      "metric": "accuracy", "num_classes": 2, "chance": 0.5,
                      "labels": ["low", "high"]},
            "tags": {"track": "A", "instruction": "what tones ?", "metric": "map",
                     "num_classes": 2},
            "say": {"track": "B", "instruction": "what sound ?", "metric": "iwer"}}}))
    return path


def _items(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(48):
        task = ("pitch", "tags", "say")[i % 3]
        label = "low" if (i // 3) % 2 == 0 else "high"
        split = "test" if i >= 36 else ("valid" if i >= 33 else "train")
        x = tone(TONES[label], 0.5, seed=i)
        target = {"pitch": label, "tags": label, "say": f"a {label} tone"}[task]
        sf.write(folder / f"c{i:02d}.wav", x, 16000, subtype="PCM_16")
        rows.append({"task": task, "item_id": f"c{i:02d}", "audio": f"c{i:02d}.wav",
                     "target": target, "split": split, "recording": f"rec{i:02d}"})
    pd.DataFrame(rows).to_csv(folder / "items.csv", index=False)
    return folder / "items.csv"


def _config(tmp_path: Path) -> Path:
    encoder_file = tmp_path / "band_energy_encoder.py"
    encoder_file.write_text(PARTICIPANT)
    training = {"recipe": "xares_llm", "llm": "tiny_llm", "data": {"suite": "xares"},
                "connector": {"pool": "mean", "pool_frames": 4},
                "settings": {"max_steps": 40, "warmup_steps": 2, "lr": 3.0e-3,
                             "checkpoint_every": 20}}
    system = {"adapter": "trained_lalm", "batch_size": 6, "decoding": {"max_new_tokens": 4},
              "resources": {"threads": 1}}
    config = {
        "run_name": "xares", "paths": {"resources": "res", "results": "out"},
        "corpora": {"none": {"kind": "tables"}},
        "encoders": {"mel32": {"kind": "logmel", "options": {"n_mels": 32}},
                     "mel8": {"kind": "logmel", "options": {"n_mels": 8}},
                     "bands": {"kind": "file", "path": str(encoder_file)}},
        "suites": {"xares": {"kind": "xares", "tasks": str(_task_set(tmp_path / "t.yaml")),
                             "data": {"items": str(_items(tmp_path / "items"))},
                             "systems": ["x_mel32", "x_mel8", "x_bands"], "bootstrap": 50}},
        "models": {"tiny_llm": {"adapter": "hf_causal_lm", "source": str(
            save_tiny_llm(tmp_path / "tiny_llm"))},
            **{f"x_{e}": {**system, "training": {**training, "encoder": e}}
               for e in ("mel32", "mel8", "bands")}},
    }
    path = tmp_path / "xares.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_encoders_are_ranked_by_the_lalms_trained_around_them(tmp_path):
    config = _config(tmp_path)
    env = {**os.environ, "LALM_EVAL_CACHE": str(tmp_path / "cache")}
    work = tmp_path / "work"
    planned = planned_rules(work, "--configfile", str(config), env=env)
    assert {"xares_training_set", "train_x_mel32", "train_x_bands", "infer_x_mel8",
            "xares_probe", "score", "xares_report"} <= planned
    run = run_snakemake(work, "--configfile", str(config), env=env)
    assert run.returncode == 0, run.stderr[-4000:]

    report = work / "out" / "xares" / "report"
    board = pd.read_csv(report / "tables" / "leaderboard.csv")
    assert set(board.system) == {"x_mel32", "x_mel8", "x_bands"}
    assert all("(n=4)" in cell for cell in board.pitch)  # n and an interval in every cell
    assert all("[" in cell for cell in board.pitch)
    results = json.loads((report / "results.json").read_text())["extra"]
    summary = results["summary"]
    for system in ("x_mel32", "x_mel8", "x_bands"):
        assert results["manifests"][system]["status"] == "finished"
        manifest = results["manifests"][system]
        assert manifest["heldout_loss"] < manifest["heldout_loss_untrained"]
        assert summary[system]["pitch"] >= summary[system]["pitch_untrained"]
    assert summary["x_mel32"]["pitch"] == 1.0
    # the toy task is easy: every encoder solves it, and equal scores share a rank
    assert set(board["rank"]) == {"=1"}
    assert results["probes"]["A"]["n"] == 3
    agreement = pd.read_csv(report / "tables" / "ranking_agreement.csv")
    assert agreement.n.tolist() == [3]
    assert (report / "figures" / "per_task.png").stat().st_size > 1000
    assert (report / "figures" / "loss_curves.png").stat().st_size > 1000
    assert "Nothing to be done" in run_snakemake(work, "--configfile", str(config), "-n",
                                                 env=env).stdout


@pytest.mark.parametrize(("old", "new", "named"), BROKEN)
def test_a_broken_participant_encoder_is_refused_naming_the_problem(tmp_path, old, new,
                                                                     named):
    from lalm_eval.encoders import EncoderError, build_encoder

    good = tmp_path / "good_encoder.py"
    good.write_text(PARTICIPANT)
    build_encoder({"kind": "file", "path": str(good)}, name="bands")
    bad = tmp_path / "bad_encoder.py"
    assert old in PARTICIPANT
    bad.write_text(PARTICIPANT.replace(old, new))
    with pytest.raises(EncoderError, match=named) as info:
        build_encoder({"kind": "file", "path": str(bad)}, name="bands")
    assert "bands" in str(info.value) and "\n" not in str(info.value)
