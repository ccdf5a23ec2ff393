"""A self-distillation set of our own from the demo corpus: clips with seed descriptions.

DeSTA2.5's stage 1 has a text LLM read a clip's *seed description* (its metadata written as
text: a timestamped transcript with speaker attributes, sound labels) and a sampled
instruction, and answer as if it heard the clip; stage 2 trains the connector on those
answers with the audio. ``build_distill_demo`` makes such clips from the demo corpus::

    out_dir/distill.jsonl      one clip per line: id, audio (relative path), dataset, kind,
                               seed_description, transcript, split (train / heldout),
                               duration_s, sources, origin, licence
    out_dir/audio/<id>.wav     16 kHz mono 16-bit clips
    out_dir/README.md          counts, settings, excluded recordings, licences

Kinds of clip (``counts``): ``speech_scene`` (an utterance over a crop of a background clip
at a seeded SNR), ``speech`` (an utterance alone), ``scene`` (a background crop) and
``event`` (one event recording, repeated up to a minimum length). The seed description is
one line per part, in DeSTA's style (``[mm:ss-mm:ss] text (Attribute: value, ...)``), lines
in order of onset; the wording of the attributes is ours.

Splits: every recording is put on the training or the held-out side once (a seeded
``heldout_fraction`` per voice / scene / event label, each group keeping one training
recording), so the held-out clips, which give the held-out stage-2 loss, share no recording
with the training clips. Recordings named in ``exclude`` (the sources of the evaluation
set, e.g. the MMAU-shaped demo set's ``sources.json``) are used on neither side.

Deterministic: the same tables, settings, exclusions and seed give byte-identical outputs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lalm_eval.hashing import bytes_sha256
from lalm_eval.jsonl import write_jsonl

from . import clips
from .demo import _stable_int, wav_bytes
from .demo_recordings import (
    AudioCache,
    Recording,
    Turns,
    group_by_label,
    labels_in,
    read_recordings,
)
from .xares_demo import VOICE_GENDER

__all__ = ["DEFAULT_SETTINGS", "DISTILL_NAME", "KINDS", "build_distill_demo",
           "read_distill_table", "resolve_settings", "seed_line"]

DISTILL_NAME = "distill.jsonl"
KINDS = ("speech_scene", "speech", "scene", "event")
DEFAULT_SETTINGS: dict[str, Any] = {
    "counts": {"speech_scene": 24, "speech": 8, "scene": 12, "event": 12},
    "heldout_fraction": 0.15,   # of each voice's / scene's / event label's recordings
    "heldout_share": 0.15,      # of each kind's clips drawn from the held-out side
    "clip_s": 6.0,              # longest clip (an utterance is never cut)
    "snr_db": [5.0, 15.0],      # speech over a scene
    "min_event_s": 1.5,         # a short event recording is repeated up to this length
    "min_overlap_s": 0.3,       # a background sound counts when heard this long in the crop
    "sample_rate": 16000,
    "dataset": "lalm-eval-demo",
}
_EVENT_GAP_S = 0.25


def resolve_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults with ``settings`` applied; ValueError naming a bad key or value."""
    out = {**DEFAULT_SETTINGS, "counts": dict(DEFAULT_SETTINGS["counts"])}
    for key, value in (settings or {}).items():
        if key not in DEFAULT_SETTINGS:
            raise ValueError(f"distillation set: unknown setting {key!r} "
                             f"(known: {sorted(DEFAULT_SETTINGS)})")
        if key == "counts":
            unknown = set(value) - set(KINDS)
            if unknown:
                raise ValueError(f"distillation set: counts: unknown kind(s) {sorted(unknown)} "
                                 f"(kinds: {list(KINDS)})")
            out["counts"].update({k: int(v) for k, v in value.items()})
        else:
            out[key] = value
    if any(n < 0 for n in out["counts"].values()) or not sum(out["counts"].values()):
        raise ValueError("distillation set: counts must be >= 0 and not all 0")
    for key in ("heldout_fraction", "heldout_share"):
        if not 0.0 <= float(out[key]) < 1.0:
            raise ValueError(f"distillation set: {key} must be in [0, 1)")
    low, high = (float(v) for v in out["snr_db"])
    if low > high:
        raise ValueError("distillation set: snr_db must be [low, high]")
    return out


# --------------------------------------------------------------------------- descriptions


def _clock(seconds: float) -> str:
    whole = max(0, int(round(seconds)))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def seed_line(onset_s: float, offset_s: float, text: str,
              attributes: Mapping[str, str] | None = None) -> str:
    """One line of a seed description: ``[mm:ss-mm:ss] text (Key: value, ...)``."""
    parts = [f"[{_clock(onset_s)}-{_clock(offset_s)}]"]
    if text:
        parts.append(text)
    if attributes:
        parts.append("(" + ", ".join(f"{k}: {v}" for k, v in attributes.items()) + ")")
    return " ".join(parts)


def _duration(seconds: float) -> str:
    return f"{max(1, int(round(seconds)))}s"


@dataclass
class _Part:
    onset_s: float
    line: str


# --------------------------------------------------------------------------- sides


def _sides(corpus: Mapping[str, list[Recording]], seed: int, fraction: float
           ) -> dict[str, str]:
    """Recording id -> ``train`` / ``heldout`` (per label group, one training member kept)."""
    side: dict[str, str] = {}
    for kind, rows in corpus.items():
        for label, members in sorted(group_by_label(rows).items()):
            rng = np.random.default_rng([seed, _stable_int(f"distill:{kind}"),
                                         _stable_int(label)])
            order = [members[i] for i in rng.permutation(len(members))]
            n_heldout = min(math.ceil(fraction * len(order)), len(order) - 1) if fraction else 0
            for i, rec in enumerate(order):
                side[rec.id] = "heldout" if i < n_heldout else "train"
    return side


# --------------------------------------------------------------------------- clips


@dataclass
class _Clip:
    kind: str
    samples: np.ndarray
    parts: list[_Part]
    transcript: str
    sources: list[Recording]


class _Builder:
    def __init__(self, settings: Mapping[str, Any], audio: AudioCache) -> None:
        self.settings = settings
        self.audio = audio
        self.sr = audio.sr

    def speech_parts(self, utt: Recording, start_s: float, length_s: float) -> _Part:
        attributes = {"Voice": utt.label}
        if utt.label in VOICE_GENDER:
            attributes["Gender"] = VOICE_GENDER[utt.label].capitalize()
        attributes["Duration"] = _duration(length_s)
        return _Part(start_s, seed_line(start_s, start_s + length_s, utt.text, attributes))

    def utterance(self, utt: Recording) -> tuple[np.ndarray, float]:
        """The utterance's active part with the clips' padding; (samples, speech onset s)."""
        x = clips.active(self.audio.get(utt), self.sr)
        return clips.pad(x, self.sr), clips.PAD_S

    def scene_parts(self, bg: Recording, start_s: float, length_s: float,
                    extra: Mapping[str, str] | None = None) -> list[_Part]:
        heard = labels_in(bg, start_s, start_s + length_s, float(self.settings["min_overlap_s"]))
        parts = [_Part(-1.0, seed_line(0.0, length_s, "", {
            "Scene": bg.label, "Background sounds": ", ".join(heard) if heard else "none",
            **(extra or {})}))]
        for label, onset, offset in sorted(bg.events, key=lambda e: (e[1], e[0])):
            if label not in heard:
                continue
            on, off = max(onset, start_s) - start_s, min(offset, start_s + length_s) - start_s
            if off - on >= min(float(self.settings["min_overlap_s"]), offset - onset) \
                    and off - on < 0.9 * length_s:
                parts.append(_Part(on, seed_line(on, off, "", {"Sound": label})))
        return parts

    def bg_crop(self, bg: Recording, n: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, float]:
        x, offset = clips.crop(self.audio.get(bg), n, rng)
        return clips.fit(x, n), offset / self.sr

    def speech_scene(self, utt: Recording, bg: Recording, rng: np.random.Generator) -> _Clip:
        x, onset = self.utterance(utt)
        crop, start = self.bg_crop(bg, len(x), rng)
        snr = float(rng.uniform(*(float(v) for v in self.settings["snr_db"])))
        length = len(x) / self.sr
        speech_s = length - 2 * clips.PAD_S
        parts = [*self.scene_parts(bg, start, length, {"SNR": f"{snr:.0f} dB"}),
                 self.speech_parts(utt, onset, speech_s)]
        return _Clip("speech_scene", clips.mix_at_snr(x, crop, snr, self.sr), parts, utt.text,
                     [utt, bg])

    def speech(self, utt: Recording, rng: np.random.Generator) -> _Clip:
        x, onset = self.utterance(utt)
        speech_s = len(x) / self.sr - 2 * clips.PAD_S
        return _Clip("speech", x, [self.speech_parts(utt, onset, speech_s)], utt.text, [utt])

    def scene(self, bg: Recording, rng: np.random.Generator) -> _Clip:
        n = int(round(float(self.settings["clip_s"]) * self.sr))
        crop, start = self.bg_crop(bg, n, rng)
        return _Clip("scene", crop, self.scene_parts(bg, start, n / self.sr), "", [bg])

    def event(self, event: Recording, rng: np.random.Generator) -> _Clip:
        unit = clips.active(self.audio.get(event), self.sr)
        gap = np.zeros(int(round(_EVENT_GAP_S * self.sr)))
        pieces = [unit]
        while sum(len(p) for p in pieces) < float(self.settings["min_event_s"]) * self.sr:
            pieces += [gap, unit]
        x = clips.pad(np.concatenate(pieces), self.sr)
        length = len(x) / self.sr
        repeats = (len(pieces) + 1) // 2
        attributes = {"Sound event": event.label, "Duration": _duration(length)}
        if repeats > 1:
            attributes["Repeats"] = str(repeats)
        line = seed_line(0.0, length, "", attributes)
        return _Clip("event", x, [_Part(0.0, line)], "", [event])


def _draw(builder: _Builder, kind: str, n: int, pools: Mapping[str, list[Recording]],
          rng: np.random.Generator) -> list[_Clip]:
    if n == 0:
        return []
    need = {"speech_scene": ("speech", "background"), "speech": ("speech",),
            "scene": ("background",), "event": ("event",)}[kind]
    if any(not pools[k] for k in need):
        return []
    turns = {k: Turns(group_by_label(pools[k]), rng) for k in need}
    out = []
    for _ in range(n):
        if kind == "speech_scene":
            out.append(builder.speech_scene(turns["speech"].take(), turns["background"].take(),
                                            rng))
        elif kind == "speech":
            out.append(builder.speech(turns["speech"].take(), rng))
        elif kind == "scene":
            out.append(builder.scene(turns["background"].take(), rng))
        else:
            out.append(builder.event(turns["event"].take(), rng))
    return out


# --------------------------------------------------------------------------- build


def _readme(records: Sequence[Mapping[str, Any]], settings: Mapping[str, Any],
            excluded: Sequence[str], notes: Sequence[str]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for r in records:
        counts[(r["kind"], r["split"])] = counts.get((r["kind"], r["split"]), 0) + 1
    lines = ["# Self-distillation clips (demo)", "",
             f"{len(records)} clips with seed descriptions, made by lalm-eval from the demo "
             "corpus (`lalm_eval/corpora/distill_demo.py`); the description wording is ours.",
             "", "| kind | train | heldout |", "|---|---|---|",
             *[f"| {k} | {counts.get((k, 'train'), 0)} | {counts.get((k, 'heldout'), 0)} |"
               for k in KINDS],
             "", f"Settings: `{json.dumps(settings, sort_keys=True)}`", "",
             f"Recordings left out (used by the evaluation set): {len(excluded)}"
             + (f": {', '.join(excluded)}" if excluded else ""), ""]
    lines += [f"- {n}" for n in notes]
    lines += ["", "## Clips", "", "| id | split | sources | licence |", "|---|---|---|---|"]
    lines += [f"| {r['id']} | {r['split']} | {' + '.join(r['sources'])} | {r['licence']} |"
              for r in records]
    lines += ["", "Share-alike terms of the sources apply to the clips made from them.", ""]
    return "\n".join(lines)


def build_distill_demo(sources_dir: str | Path, backgrounds_csv: str | Path,
                       out_dir: str | Path, seed: int, settings: Mapping[str, Any] | None = None,
                       exclude: Iterable[str] = ()) -> Path:
    """Build the clips and ``distill.jsonl`` in ``out_dir``; return the table's path."""
    settings = resolve_settings(settings)
    out_dir = Path(out_dir)
    corpus = read_recordings(Path(sources_dir), Path(backgrounds_csv))
    excluded = sorted(set(exclude))
    unknown = set(excluded) - {r.id for rows in corpus.values() for r in rows}
    notes = [f"{len(unknown)} excluded id(s) not in the corpus: {', '.join(sorted(unknown))}"
             ] if unknown else []
    corpus = {k: [r for r in rows if r.id not in set(excluded)] for k, rows in corpus.items()}
    side = _sides(corpus, seed, float(settings["heldout_fraction"]))
    builder = _Builder(settings, AudioCache(int(settings["sample_rate"])))
    sr = builder.sr

    records: list[dict[str, Any]] = []
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    written: set[str] = set()
    for kind in KINDS:
        total = int(settings["counts"][kind])
        n_heldout = int(round(total * float(settings["heldout_share"])))
        for split, n in (("train", total - n_heldout), ("heldout", n_heldout)):
            pools = {k: [r for r in rows if side[r.id] == split] for k, rows in corpus.items()}
            rng = np.random.default_rng([seed, _stable_int(f"distill:{kind}:{split}")])
            made = _draw(builder, kind, n, pools, rng)
            if len(made) < n:
                notes.append(f"{kind} / {split}: {len(made)} of {n} clips (no recordings left)")
            for i, clip in enumerate(made, 1):
                clip_id = f"distill-{kind.replace('_', '-')}-{split}-{i:03d}"
                samples = clips.finish(clip.samples, sr, rng)
                data = wav_bytes(samples, sr)
                (audio_dir / f"{clip_id}.wav").write_bytes(data)
                written.add(f"{clip_id}.wav")
                parts = sorted(clip.parts, key=lambda p: p.onset_s)
                records.append({
                    "id": clip_id, "audio": f"audio/{clip_id}.wav",
                    "dataset": str(settings["dataset"]), "kind": kind,
                    "seed_description": "\n".join(p.line for p in parts),
                    "transcript": clip.transcript, "split": split,
                    "duration_s": round(len(samples) / sr, 3),
                    "sources": [s.id for s in clip.sources],
                    "origin": " + ".join(s.origin for s in clip.sources),
                    "licence": " AND ".join(sorted({s.licence for s in clip.sources})),
                    "wav_sha256": bytes_sha256(data)})
    if not records:
        raise ValueError(f"{sources_dir}: the corpus gives no distillation clips "
                         f"({'; '.join(notes)})")
    for stale in sorted(audio_dir.glob("*.wav")):
        if stale.name not in written:
            stale.unlink()
    (out_dir / "README.md").write_text(_readme(records, settings, excluded, notes),
                                       encoding="utf-8")
    table = out_dir / DISTILL_NAME
    write_jsonl(table, records)
    return table


def read_distill_table(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``distill.jsonl``, audio paths made absolute; errors name the line."""
    path = Path(path)
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc})") from exc
        missing = [k for k in ("id", "audio", "seed_description", "split") if k not in record]
        if missing:
            raise ValueError(f"{path}:{n}: missing field(s) {missing}")
        if record["split"] not in ("train", "heldout"):
            raise ValueError(f"{path}:{n}: split must be train or heldout, "
                             f"not {record['split']!r}")
        audio = Path(record["audio"])
        record["audio"] = str((audio if audio.is_absolute() else path.parent / audio).resolve())
        records.append(record)
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate clip ids")
    return records
