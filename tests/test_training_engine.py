"""The training engine (lalm_eval.training.engine and .launch) on a tiny real torch model.

The model is a small token predictor over Example-like items (a frozen embedding as the
"LLM", a trained linear "connector" and head, dropout), so gradients, AdamW state and RNG
state all matter. This file is also the builder the launched subprocesses import
(``<this file>:tiny_parts``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from safetensors.torch import load_file  # noqa: E402

from lalm_eval.training.engine import (  # noqa: E402
    CHECKPOINT_PAUSE_ENV,
    TrainSettings,
    batch_indices,
    finished_manifest,
    plot_loss_curves,
    read_loss_csv,
    train,
)
from lalm_eval.training.launch import launch_command, write_job  # noqa: E402

THIS = Path(__file__).resolve()
REPO = THIS.parents[1]
torch.set_num_threads(1)

VOCAB = 24
EOS = 1
LABELS = ("dog bark", "cat", "rain", "bird song")
BASE_SETTINGS = {"max_steps": 16, "global_batch": 4, "per_device_batch": 4, "lr": 3e-2,
                 "warmup_steps": 2, "schedule": "linear", "checkpoint_every": 4,
                 "heldout_every": 4, "keep_checkpoints": 2, "seed": 42}


def tokens(text: str) -> list[int]:
    return [2 + ord(c) % (VOCAB - 2) for c in text] + [EOS]


@dataclass
class TinyExample:
    item_id: str
    features: np.ndarray
    prompt: str
    target: str | None = None
    transcript: str | None = None


class TinyLALM(torch.nn.Module):
    """Predicts each target token from the previous one (frozen embedding) plus the pooled
    features (trained connector); loss on target tokens + EOS."""

    def __init__(self, input_dim: int = 6, hidden: int = 16, dropout: float = 0.1,
                 pause_s: float = 0.0, crash_after: int | None = None):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, hidden)
        self.embed.requires_grad_(False)
        self.connector = torch.nn.Linear(input_dim, hidden)
        self.head = torch.nn.Linear(hidden, VOCAB)
        self.drop = torch.nn.Dropout(dropout)
        self.pause_s, self.crash_after, self.calls = pause_s, crash_after, 0

    def n_loss_tokens(self, example: TinyExample) -> int:
        return len(tokens(example.target))

    def loss_terms(self, examples: list[TinyExample], weights=None) -> tuple[torch.Tensor, int]:
        if self.training:
            self.calls += 1
            if self.crash_after is not None and self.calls > self.crash_after:
                raise RuntimeError("simulated crash")
            if self.pause_s:
                time.sleep(self.pause_s)
        pooled = torch.stack([torch.as_tensor(e.features).mean(dim=(0, 1)) for e in examples])
        audio = self.drop(torch.tanh(self.connector(pooled)))
        targets = [tokens(e.target) for e in examples]
        previous = torch.tensor([t for seq in targets for t in [EOS, *seq[:-1]]])
        owner = torch.tensor([b for b, seq in enumerate(targets) for _ in seq])
        gold = torch.tensor([t for seq in targets for t in seq])
        logits = self.head(self.drop(self.embed(previous) + audio[owner]))
        per_token = torch.nn.functional.cross_entropy(logits, gold, reduction="none")
        if self.training:   # what each example's tokens cost, for the averaging test
            self.example_sums = torch.zeros(len(examples)).index_add(
                0, owner, per_token.detach())
            self.example_counts = [len(seq) for seq in targets]
        if weights is not None:
            per_token = per_token * torch.tensor(weights, dtype=per_token.dtype)[owner]
        return per_token.sum(), len(gold)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items()
                if k.startswith(("connector.", "head."))}

    def load_trainable_state_dict(self, state) -> None:
        result = self.load_state_dict(dict(state), strict=False)
        assert not result.unexpected_keys


def tiny_parts(n_train: int = 32, n_heldout: int = 8, dropout: float = 0.1,
               pause_s: float = 0.0, tag: str = "a", **overrides):
    """The builder: (build_model, train_set, heldout, settings, identity)."""
    rng = np.random.default_rng(0)
    centroids = 2.0 * rng.normal(size=(len(LABELS), 6))

    def example(i: int, split: str) -> TinyExample:
        k = i % len(LABELS)
        frames = int(rng.integers(3, 8))
        features = centroids[k] + 0.5 * rng.normal(size=(1, frames, 6))
        return TinyExample(f"{split}{i}", features.astype(np.float32), "Classify.", LABELS[k])

    train_set = [example(i, "train") for i in range(n_train)]
    heldout = [example(i, "heldout") for i in range(n_heldout)]
    settings = TrainSettings.from_mapping({**BASE_SETTINGS, **overrides})
    identity = {"model": "tiny", "tag": tag, "n_train": n_train, "data": "rng0"}
    return (lambda: TinyLALM(dropout=dropout, pause_s=pause_s), train_set, heldout, settings,
            identity)


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model" / "trainable.safetensors"))


def max_weight_diff(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def step_losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_loss_csv(out / "loss.csv") if r["loss"] is not None}


def max_rel_loss_diff(a: Path, b: Path) -> float:
    la, lb = step_losses(a), step_losses(b)
    assert la.keys() == lb.keys()
    return max(abs(la[s] - lb[s]) / abs(lb[s]) for s in la)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_parts(parts, out: Path, settings: TrainSettings | None = None, **kwargs) -> dict:
    build, train_set, heldout, default, identity = parts
    return train(build, train_set, heldout, settings or default, out, identity, progress=False,
                 **kwargs)


# ----------------------------------------------------------------------------- tests

def test_settings_are_checked_with_one_line_errors():
    with pytest.raises(ValueError, match="unknown training setting.*max_step\\b"):
        TrainSettings.from_mapping({"max_step": 3})
    with pytest.raises(ValueError, match="exactly one of max_steps and max_epochs"):
        TrainSettings.from_mapping({"max_steps": 3, "max_epochs": 1})
    with pytest.raises(ValueError, match="schedule"):
        TrainSettings(max_steps=3, schedule="step")
    assert TrainSettings(max_epochs=2, global_batch=8).total_steps(20) == 5
    assert TrainSettings(max_steps=3, mixed_precision=False).mixed_precision == "no"
    assert TrainSettings(max_steps=3, betas=[0.9, 0.98]).betas == (0.9, 0.98)
    # the data order depends on the seed and step only, never on the world size
    first = batch_indices(32, 4, 42, 0)
    assert first == batch_indices(32, 4, 42, 0) and len(set(first)) == 4
    epoch = [i for s in range(8) for i in batch_indices(32, 4, 42, s)]
    assert sorted(epoch) == list(range(32))


def test_tiny_training_loss_falls_and_a_rerun_trains_nothing(tmp_path):
    build, train_set, heldout, settings, identity = tiny_parts()
    calls = []

    def counted():
        calls.append(1)
        return build()

    out = tmp_path / "tiny"
    parts = (counted, train_set, heldout, settings, identity)
    manifest = run_parts(parts, out)
    assert len(calls) == 1
    rows = read_loss_csv(out / "loss.csv")
    assert [r["step"] for r in rows] == list(range(17))
    assert [r["step"] for r in rows if r["heldout_loss"] is not None] == [0, 4, 8, 12, 16]
    losses = [r["loss"] for r in rows[1:]]
    assert np.mean(losses[-4:]) < 0.6 * losses[0]
    assert manifest["heldout_loss"] < 0.8 * manifest["heldout_loss_untrained"]
    assert manifest["heldout_loss_untrained"] == rows[0]["heldout_loss"]
    for key in ("identity", "identity_hash", "steps_done", "final_train_loss", "heldout_loss",
                "heldout_loss_untrained", "world_size", "global_batch", "elapsed_s",
                "versions", "weights_sha256"):
        assert key in manifest, key
    assert manifest["steps_done"] == 16 and manifest["world_size"] == 1
    assert manifest["identity"] == identity and manifest["precision"] == "fp32"
    assert {"torch", "transformers", "accelerate"} <= set(manifest["versions"])
    assert set(weights(out)) == {"connector.weight", "connector.bias", "head.weight",
                                 "head.bias"}
    assert not (out / "checkpoints").exists()
    assert json.loads((out / "manifest.json").read_text()) == manifest

    assert finished_manifest(out) == manifest
    assert finished_manifest(out, identity, settings=settings) == manifest
    assert finished_manifest(out, {**identity, "tag": "b"}) is None
    assert finished_manifest(out, identity, settings=settings.replace({"lr": 0.01})) is None

    # a rerun with nothing changed builds nothing and touches nothing
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    again = run_parts(parts, out)
    assert again == manifest and len(calls) == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps

    png = plot_loss_curves({"tiny": out / "loss.csv"}, tmp_path / "fig" / "loss.png", smooth=3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # weights that are not the recorded ones: not finished
    blob = bytearray((out / "model" / "trainable.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (out / "model" / "trainable.safetensors").write_bytes(bytes(blob))
    assert finished_manifest(out) is None


def test_data_parallel_and_accumulation_give_the_single_process_result(tmp_path):
    # no dropout here: with dropout, a different split of the batch draws different masks
    job = write_job(tmp_path / "ddp.json", f"{THIS}:tiny_parts", tmp_path / "ddp",
                    builder_kwargs={"dropout": 0.0}, settings={"per_device_batch": 2},
                    progress=False)
    command = launch_command(job, processes=2, port=free_port())
    ddp = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        parts = tiny_parts(dropout=0.0)
        single = run_parts(parts, tmp_path / "p4")                       # 1 x 4, accumulation 1
        accumulated = run_parts(parts, tmp_path / "p2x2",
                                parts[3].replace({"per_device_batch": 2}))  # 1 x 2, accum. 2
        output, _ = ddp.communicate(timeout=240)
    finally:
        if ddp.poll() is None:
            ddp.kill()
    assert ddp.returncode == 0, output[-4000:]
    distributed = finished_manifest(tmp_path / "ddp", parts[4])
    assert distributed is not None
    assert (distributed["world_size"], distributed["accumulation"]) == (2, 1)
    assert (accumulated["world_size"], accumulated["accumulation"]) == (1, 2)
    assert single["accumulation"] == 1
    for other in ("ddp", "p2x2"):
        rel = max_rel_loss_diff(tmp_path / other, tmp_path / "p4")
        atol = max_weight_diff(tmp_path / other, tmp_path / "p4")
        print(f"{other} vs 1x4: max relative step-loss difference {rel:.2e}, "
              f"max weight difference {atol:.2e}")
        assert rel < 1e-5 and atol < 1e-5
    held = abs(distributed["heldout_loss"] - single["heldout_loss"])
    assert held < 1e-5 * single["heldout_loss"]


@pytest.mark.parametrize("average", ["token", "example"])
def test_loss_average_sets_what_each_step_optimises(tmp_path, average):
    """token: the mean over the batch's tokens; example: the mean of each example's own
    token mean (the labels here are 4-10 tokens long, so the two differ); the logged loss
    is the one optimised, and accumulation gives the one-pass result either way."""
    seen: list[TinyLALM] = []

    def build() -> TinyLALM:
        seen.append(TinyLALM(dropout=0.0))
        return seen[-1]

    # seed 1: the first batch holds all four labels (seed 42's holds one label four times)
    _, train_set, heldout, settings, identity = tiny_parts(dropout=0.0, loss_average=average,
                                                          max_steps=1, seed=1)
    run_parts((build, train_set, heldout, settings, identity), tmp_path / "one")
    sums, counts = seen[0].example_sums, torch.tensor(seen[0].example_counts)
    assert len(set(counts.tolist())) > 1
    expected = (float((sums / counts).mean()) if average == "example"
                else float(sums.sum() / counts.sum()))
    assert step_losses(tmp_path / "one")[1] == pytest.approx(expected, rel=1e-6)

    parts = tiny_parts(dropout=0.0, loss_average=average)
    run_parts(parts, tmp_path / "p4")
    run_parts(parts, tmp_path / "p2x2", parts[3].replace({"per_device_batch": 2}))
    assert max_rel_loss_diff(tmp_path / "p2x2", tmp_path / "p4") < 1e-5
    assert max_weight_diff(tmp_path / "p2x2", tmp_path / "p4") < 1e-5


def test_later_settings_leave_the_hash_of_trainings_that_do_not_use_them():
    """connector_lr and loss_average change the weights, so they change the settings hash
    when set, and leave every earlier training's hash (and finished model) alone at their
    defaults."""
    from lalm_eval.training.engine import settings_hash

    base = TrainSettings(max_steps=3)
    assert "loss_average" not in base.result_fields()
    assert "connector_lr" not in base.result_fields()
    assert settings_hash(base) == settings_hash(TrainSettings(max_steps=3,
                                                              loss_average="token"))
    assert settings_hash(base) != settings_hash(base.replace({"loss_average": "example"}))
    assert settings_hash(base) != settings_hash(base.replace({"connector_lr": 1e-3}))
    with pytest.raises(ValueError, match="loss_average.*token, example"):
        TrainSettings(max_steps=3, loss_average="sequence")


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"training ended (rc {proc.returncode}) before the kill: "
                                 f"{proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the training to get there")
        time.sleep(0.02)


def _max_logged_step(out: Path) -> int:
    try:
        return max((r["step"] for r in read_loss_csv(out / "loss.csv")), default=-1)
    except OSError:
        return -1


def _tmp_checkpoints(out: Path) -> list[Path]:
    root = out / "checkpoints"
    return [p for p in root.iterdir() if ".tmp-" in p.name] if root.is_dir() else []


def test_killed_runs_resume_to_the_uninterrupted_weights(tmp_path):
    parts = tiny_parts(dropout=0.1)
    identity = parts[4]
    reference = run_parts(parts, tmp_path / "ref")
    out = tmp_path / "killed"
    job = write_job(tmp_path / "job.json", f"{THIS}:tiny_parts", out,
                    builder_kwargs={"dropout": 0.1, "pause_s": 0.08}, progress=False)
    command = launch_command(job)
    delays = random.Random(20240607)

    def start(**env: str) -> subprocess.Popen:
        return subprocess.Popen(command, env=subprocess_env(**env), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    killed_at = []

    def kill(proc: subprocess.Popen) -> str:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert finished_manifest(out) is None
        assert finished_manifest(out, identity) is None
        killed_at.append(_max_logged_step(out))
        return output

    # 1: killed at a random point of training
    proc = start()
    _wait_for(lambda: _max_logged_step(out) >= 2, proc)
    time.sleep(delays.uniform(0.05, 0.4))
    kill(proc)
    # 2: killed in the middle of writing a checkpoint
    proc = start(**{CHECKPOINT_PAUSE_ENV: "60"})
    _wait_for(lambda: bool(_tmp_checkpoints(out)), proc)
    time.sleep(0.3)
    kill(proc)
    assert _tmp_checkpoints(out), "the half-written checkpoint should be left behind"
    # stale leftovers a later run must ignore: a foreign temp folder, an incomplete step
    (out / "checkpoints" / ".step-15.tmp-99999").mkdir()
    (out / "checkpoints" / ".step-15.tmp-99999" / "state.json").write_text("{}")
    (out / "checkpoints" / "step-15").mkdir()
    (out / "checkpoints" / "step-15" / "state.json").write_text('{"step": 15}')
    # 3: killed again at a random point, after it has trained a little
    proc = start()
    _wait_for(lambda: _max_logged_step(out) >= 9, proc)
    time.sleep(delays.uniform(0.05, 0.3))
    output = kill(proc)
    assert "removing unfinished checkpoint" in output and ".step-15.tmp-99999" in output
    assert "step-15 not resumed (removed): incomplete" in output
    # 4: runs to the end
    proc = start()
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-3000:]

    manifest = finished_manifest(out, identity)
    # the resumes whose work survived (run 2's never completed a checkpoint)
    assert manifest is not None and len(manifest["resumed_from"]) >= 2, manifest
    steps = [r["step"] for r in read_loss_csv(out / "loss.csv")]
    assert steps == list(range(17))
    rel = max_rel_loss_diff(out, tmp_path / "ref")
    diff = max_weight_diff(out, tmp_path / "ref")
    print(f"killed after logged steps {killed_at} (surviving resumes "
          f"{manifest['resumed_from']}) vs uninterrupted: max relative step-loss difference "
          f"{rel:.2e}, max weight difference {diff:.2e}")
    assert rel < 1e-6 and diff < 1e-6
    assert abs(manifest["heldout_loss"] - reference["heldout_loss"]) < 1e-6
    assert not (out / "checkpoints").exists()


def test_a_checkpoint_of_another_identity_or_settings_is_not_resumed(tmp_path, caplog):
    build, train_set, heldout, settings, identity = tiny_parts(dropout=0.1)

    def crashing():
        return TinyLALM(dropout=0.1, crash_after=10)    # dies in step 11, after step-8

    out_a = tmp_path / "a"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashing, train_set, heldout, settings, out_a, identity, progress=False)
    assert (out_a / "checkpoints" / "step-8" / "COMPLETE").is_file()
    assert (out_a / "checkpoints" / "step-4" / "COMPLETE").is_file()   # keep_checkpoints 2
    assert finished_manifest(out_a) is None
    out_b, out_c = tmp_path / "b", tmp_path / "c"
    shutil.copytree(out_a, out_b)
    shutil.copytree(out_a, out_c)

    resumed = train(build, train_set, heldout, settings, out_a, identity, progress=False)
    assert resumed["resumed_from"] == [8]
    other = {**identity, "tag": "b"}
    with caplog.at_level(logging.WARNING, logger="lalm_eval.training.engine"):
        fresh = train(build, train_set, heldout, settings, out_b, other, progress=False)
    assert fresh["resumed_from"] == [] and fresh["identity"] == other
    assert "another identity" in caplog.text
    assert [r["step"] for r in read_loss_csv(out_b / "loss.csv")] == list(range(17))
    # the identity does not change the model here, so a fresh run of it is the same training
    # as the resumed one: equal weights show the resume restored everything (incl. dropout RNG)
    assert max_weight_diff(out_a, out_b) < 1e-6
    changed = train(build, train_set, heldout, settings.replace({"lr": 0.02}), out_c, identity,
                    progress=False)
    assert changed["resumed_from"] == []


def test_bad_batch_geometry_is_one_line(tmp_path):
    build, train_set, heldout, settings, identity = tiny_parts()
    with pytest.raises(ValueError, match="global_batch 4 is not a multiple of "
                                         "per_device_batch 3 x 1 process$"):
        train(build, train_set, heldout, settings.replace({"per_device_batch": 3}),
              tmp_path / "x", identity, progress=False)
