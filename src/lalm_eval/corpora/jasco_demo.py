"""Offline demo data for the JASCO / "What Are They Doing" suite.

``build_jasco_demo`` turns the items of ``jasco_demo.yaml`` (a sound-event class plus a
spoken line per clip, written for this project) into a tree laid out like the upstream
release, so that :mod:`lalm_eval.suites.jasco.data` reads it unchanged::

    out_dir/README.md             instructions + judge template in the upstream layout
    out_dir/SOURCES.md            origin and licence of every sound and of the speech
    out_dir/dataset/v0/v0.csv     one row per clip, upstream columns
    out_dir/dataset/v0/<n>.wav    16 kHz mono 16-bit mixtures of speech and sound

The speech comes from flite (the pinned Debian packages of the demo catalog, unpacked
with :mod:`lalm_eval.corpora.demo`'s helpers) unless a ``synthesise`` function is given.
The same inputs and seed give byte-identical outputs.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from lalm_eval.audio import fade_edges
from lalm_eval.hashing import file_sha256
from lalm_eval.loudness import normalise_loudness
from lalm_eval.suites.jasco.data import JUDGE_FIELDS, N_INSTRUCTIONS, V0_COLUMNS

from .debian import fetch_deb
from .demo import (
    _loop_to_length,
    _prepare_flite,
    _stable_int,
    _to_mono,
    active_span,
    decode_audio,
    load_catalog,
    read_packaged_yaml,
    wav_bytes,
)

__all__ = ["SAMPLE_RATE", "Synthesise", "build_jasco_demo", "load_jasco_spec", "validate_spec"]

#: output sample rate of the mixtures
SAMPLE_RATE = 16000
#: loudness targets (LUFS): speech sits ~6 dB above the sound scene
SPEECH_LUFS = -23.0
SOUND_LUFS = -29.0
#: clip length range (s) before it is stretched to fit a long utterance
CLIP_S = (5.0, 8.0)
#: silence kept before / after the speech (s)
LEAD_S = 0.3
TAIL_S = 0.3
#: flite voices the items may use
VOICES = ("slt", "rms", "awb", "kal16")
_ITEM_KEYS = ("label", "sound", "voice", "speech", "audio_only", "speech_only", "answer",
              "keywords")
_PEAK_LIMIT = 10 ** (-1.0 / 20)  # -1 dBFS
_FADE_S = 0.05
_SHORT_UNIT_S = 2.0  # shorter event recordings repeat with silent gaps
_GAP_S = (0.3, 1.2)

#: (voice, text) -> (mono samples, sample rate)
Synthesise = Callable[[str, str], tuple[np.ndarray, int]]


# --------------------------------------------------------------------------- spec


def load_jasco_spec(path: Path | None = None) -> dict[str, Any]:
    """Load and validate the item file (the packaged ``jasco_demo.yaml`` when None)."""
    spec = read_packaged_yaml("jasco_demo.yaml", path)
    validate_spec(spec)
    return spec


def validate_spec(spec: Mapping[str, Any]) -> None:
    """Check items, instructions and judge template; raise ValueError on problems."""
    if not isinstance(spec, Mapping):
        raise ValueError("jasco demo spec: top level must be a mapping")
    items = spec.get("items") or []
    if not items:
        raise ValueError("jasco demo spec: no items")
    for i, item in enumerate(items):
        missing = [k for k in _ITEM_KEYS if not item.get(k)]
        if missing:
            raise ValueError(f"jasco demo item {i}: missing {missing}")
        if item["voice"] not in VOICES:
            raise ValueError(f"jasco demo item {i}: unknown voice {item['voice']!r}")
        keywords = item["keywords"]
        if not isinstance(keywords, list) or not 1 <= len(keywords) <= 3:
            raise ValueError(f"jasco demo item {i}: keywords must be a list of 1-3 strings")
    instructions = spec.get("instructions") or []
    if len(instructions) != N_INSTRUCTIONS:
        raise ValueError(f"jasco demo spec: need {N_INSTRUCTIONS} instructions")
    if any("\n" in str(x) or not str(x).strip() for x in instructions):
        raise ValueError("jasco demo spec: each instruction must be one non-empty line")
    template = str(spec.get("judge_template") or "")
    missing = [f for f in JUDGE_FIELDS if "{" + f + "}" not in template]
    if missing:
        raise ValueError(f"jasco demo spec: judge template lacks {missing}")
    if "```" in template:
        raise ValueError("jasco demo spec: judge template must not contain code fences")


# --------------------------------------------------------------------------- audio


def _resample(x: np.ndarray, sr: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if sr != SAMPLE_RATE:
        x = soxr.resample(x, sr, SAMPLE_RATE)
    return np.asarray(x, dtype=np.float64)


def _sound_bed(unit: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Loop or trim the event recording ``unit`` to ``n`` samples.

    Short recordings (barks, coughs, tills) repeat with seeded silent gaps; longer ones are
    looped with cross-fades from a seeded starting point.
    """
    span = active_span(unit, SAMPLE_RATE)
    if span is not None:
        unit = unit[span[0] : span[1]]
    fade = int(_FADE_S * SAMPLE_RATE)
    if len(unit) < _SHORT_UNIT_S * SAMPLE_RATE:
        unit = fade_edges(unit, min(fade, len(unit) // 8))
        pieces: list[np.ndarray] = [np.zeros(int(rng.uniform(0.0, _GAP_S[0]) * SAMPLE_RATE))]
        total = len(pieces[0])
        while total < n:
            gap = np.zeros(int(rng.uniform(*_GAP_S) * SAMPLE_RATE))
            pieces += [unit, gap]
            total += len(unit) + len(gap)
        track = np.concatenate(pieces)[:n]
    else:
        unit = np.roll(unit, -int(rng.integers(len(unit))))
        track = _loop_to_length(unit, n, fade)
    return fade_edges(track, fade)


def _mix(
    speech: np.ndarray, sound: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Mix speech (at a seeded offset) over a loudness-matched sound bed; return (mix, onset s)."""
    speech_s = len(speech) / SAMPLE_RATE
    duration = float(rng.uniform(*CLIP_S))
    duration = max(duration, speech_s + LEAD_S + TAIL_S)
    n = int(round(duration * SAMPLE_RATE))
    slack = n - len(speech) - int((LEAD_S + TAIL_S) * SAMPLE_RATE)
    onset = int(LEAD_S * SAMPLE_RATE) + int(rng.integers(max(slack, 0) + 1))
    bed = _sound_bed(sound, n, rng)
    bed, _, _ = normalise_loudness(bed, SAMPLE_RATE, SOUND_LUFS)
    voice, _, _ = normalise_loudness(speech, SAMPLE_RATE, SPEECH_LUFS)
    mix = bed.astype(np.float64)
    mix[onset : onset + len(voice)] += voice.astype(np.float64)
    peak = float(np.max(np.abs(mix)))
    if peak > _PEAK_LIMIT:
        mix *= _PEAK_LIMIT / peak
    return mix, onset / SAMPLE_RATE


def _trim_speech(x: np.ndarray) -> np.ndarray:
    """Cut leading/trailing silence of a synthesised utterance."""
    span = active_span(x, SAMPLE_RATE)
    if span is None:
        raise ValueError("synthesised speech is silent")
    return x[span[0] : span[1]]


# --------------------------------------------------------------------------- flite


def _flite_synthesiser(catalog_path: Path | None, work_dir: Path) -> tuple[Synthesise, str]:
    """A synthesise function backed by the demo catalog's pinned flite, and its origin text."""
    catalog = load_catalog(catalog_path)
    versions = {p["name"]: p for p in catalog["packages"]}
    debs = {
        name: fetch_deb(name, versions[name]["version"], versions[name]["sha256"],
                        work_dir / "debs")
        for name in catalog["tts"]["packages"]
    }
    flite = _prepare_flite(catalog, debs, work_dir)
    tmp_dir = work_dir / "jasco-flite-tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)

    def synthesise(voice: str, text: str) -> tuple[np.ndarray, int]:
        return decode_audio(flite.synth(voice, text, tmp_dir), f"flite:{voice}")

    return synthesise, f"flite {flite.version}"


# --------------------------------------------------------------------------- writing


def _readme(spec: Mapping[str, Any], n_clips: int) -> str:
    """README in the upstream layout: instructions and judge template in fenced blocks."""
    lines = [
        "# What Are They Doing: offline demo set",
        "",
        f"{n_clips} clips made for the lalm-eval demo: each mixes a real sound-event recording",
        "with a synthesised spoken line, and the activity can only be inferred from both.",
        "Clips and their answers are in `dataset/v0/v0.csv`; sources are in `SOURCES.md`.",
        "",
        "## Inference with ALLMs",
        "",
        "Each clip is asked each of these instructions:",
        "",
        "```",
        *[" ".join(str(x).split()) for x in spec["instructions"]],
        "```",
        "",
        "## Evaluation",
        "",
        "An LLM judge rates every answer with this template:",
        "",
        "```",
        *str(spec["judge_template"]).rstrip("\n").splitlines(),
        "```",
        "",
    ]
    return "\n".join(lines)


def _sources(
    rows: Sequence[Mapping[str, Any]], speech_origin: str, speech_licence: str
) -> str:
    """Human-readable manifest of each clip's sound and speech."""
    lines = [
        "# Sources of the JASCO demo clips",
        "",
        "Items, instructions and the judge template were written for this project",
        "(`lalm_eval/corpora/jasco_demo.yaml`).",
        "",
        f"Speech: synthesised locally with {speech_origin}; licence {speech_licence}.",
        "",
        "Sounds: real recordings from the demo corpus (`events.csv`), looped or trimmed.",
        "",
        "| audio_id | event_id | label | origin | licence | voice | wav sha256 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['audio_id']} | {row['event_id']} | {row['label']} | {row['origin']} "
            f"| {row['licence']} | {row['voice']} | `{row['sha256'][:16]}` |"
        )
    lines += [
        "",
        "CC-BY / CC-BY-SA sounds require attribution; share-alike terms apply to mixtures",
        "made from CC-BY-SA material.",
        "",
    ]
    return "\n".join(lines)


def _read_events(events_csv: Path) -> dict[str, list[dict[str, str]]]:
    with open(events_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_label: dict[str, list[dict[str, str]]] = {}
    for row in sorted(rows, key=lambda r: r["event_id"]):
        by_label.setdefault(row["label"], []).append(row)
    return by_label


def _load_event(events_csv: Path, row: Mapping[str, str]) -> np.ndarray:
    path = Path(row["path"])
    if not path.is_absolute():
        path = events_csv.parent / path
    x, sr = sf.read(str(path), dtype="float64", always_2d=True)
    return _resample(_to_mono(x), int(sr))


def build_jasco_demo(
    events_csv: Path,
    catalog: Path | None,
    work_dir: Path,
    out_dir: Path,
    seed: int = 0,
    *,
    spec_path: Path | None = None,
    synthesise: Synthesise | None = None,
) -> Path:
    """Build the demo JASCO tree in ``out_dir``; return the path of ``dataset/v0/v0.csv``.

    ``events_csv`` is the demo corpus event table (paths relative to its folder);
    ``catalog`` the demo catalog naming the pinned flite packages (packaged one when None),
    used only when ``synthesise`` is None. Debs are cached in ``work_dir/debs``. Clip ``n``
    (1-based, item order) depends only on ``(seed, n, item)``: its recording (among those of
    the label), length (5-8 s, longer if the speech needs it), speech onset and loop start.
    """
    events_csv = Path(events_csv)
    work_dir = Path(work_dir)
    out_dir = Path(out_dir)
    spec = load_jasco_spec(spec_path)
    by_label = _read_events(events_csv)
    missing = sorted({it["label"] for it in spec["items"]} - set(by_label))
    if missing:
        raise ValueError(f"{events_csv}: no recordings for label(s) {missing}")

    work_dir.mkdir(parents=True, exist_ok=True)
    if synthesise is None:
        synthesise, speech_origin = _flite_synthesiser(catalog, work_dir)
        speech_licence = "LicenseRef-Flite (CMU/Edinburgh BSD-style)"
    else:
        speech_origin = f"an injected synthesiser ({getattr(synthesise, '__name__', 'custom')})"
        speech_licence = "as provided by the caller"

    v0_dir = out_dir / "dataset" / "v0"
    v0_dir.mkdir(parents=True, exist_ok=True)
    table: list[dict[str, str]] = []
    manifest: list[dict[str, Any]] = []
    for n, item in enumerate(spec["items"], start=1):
        rng = np.random.default_rng([seed, n, _stable_int(item["label"] + item["speech"])])
        candidates = by_label[item["label"]]
        event = candidates[int(rng.integers(len(candidates)))]
        sound = _load_event(events_csv, event)
        raw, sr = synthesise(item["voice"], " ".join(item["speech"].split()))
        speech = _trim_speech(_resample(_to_mono(np.asarray(raw)), int(sr)))
        mix, _ = _mix(speech, sound, rng)
        audio_id = str(n)
        (v0_dir / f"{audio_id}.wav").write_bytes(wav_bytes(mix, SAMPLE_RATE))
        values = (
            audio_id,
            item["sound"],
            item["speech"],
            item["audio_only"],
            item["speech_only"],
            item["answer"],
            ", ".join(item["keywords"]),
        )
        table.append(dict(zip(V0_COLUMNS, (" ".join(str(v).split()) for v in values),
                              strict=True)))
        manifest.append({"audio_id": audio_id, "event_id": event["event_id"],
                         "label": item["label"], "origin": event.get("origin", ""),
                         "licence": event.get("licence", ""), "voice": item["voice"],
                         "sha256": file_sha256(v0_dir / f"{audio_id}.wav")})

    csv_path = v0_dir / "v0.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(V0_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    (out_dir / "README.md").write_text(_readme(spec, len(table)), encoding="utf-8")
    (out_dir / "SOURCES.md").write_text(
        _sources(manifest, speech_origin, speech_licence), encoding="utf-8"
    )
    return csv_path

