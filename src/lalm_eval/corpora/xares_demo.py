"""XARES-style tasks of our own, built from the offline demo corpus (docs/xares.md).

``build_demo_items`` reads the demo corpus tables (``sources/speech.csv``,
``sources/events.csv``, ``backgrounds/background.csv``) and the task definitions of a task
set (``lalm_eval/suites/xares/tasks/demo.yaml`` by default) and writes one items table::

    out_dir/items.csv              task, item_id, audio, target, split, recording
    out_dir/audio/<task>/<id>.wav  16 kHz mono 16-bit clips (paths relative to out_dir)
    out_dir/provenance.csv         per item: every source used, the event recordings
                                   composed into its background, origins, licences, details
    out_dir/summary.json           settings, counts, chance and test majority rates, input
                                   hashes, the pools
    out_dir/README.md              the same for people

Tasks (one builder per task name; a task set may keep any subset of them): ``speaker``
(which voice), ``gender`` (female / male, from :data:`VOICE_GENDER`), ``scene``, ``event``
(single sound class), ``tagging`` (multi-label, ";"-joined), ``asr`` (whole utterances)
and ``caption`` (a sentence made from the clip's metadata).

Splits. Every source recording is put on the training side or the test side once, for all
tasks together: per voice and per scene a seeded ``test_fraction`` of the utterances and
background clips, and per event class with at least two recordings one test recording (the
one heard least often inside training-side backgrounds). Train and valid rows use
training-side recordings only, test rows test-side ones, so no recording is in both (the
``recording`` column is the ``+``-joined ids of the sources a clip is cut or mixed from).
Valid rows are other crops of training-side recordings. The composed background clips mix
event recordings, so a test event recording can sound inside a training background; the
README counts those. With ``asr_holdout: mixture`` the ASR task instead tests training-side
utterances over test-side backgrounds (closed-set ASR, ``recording`` = ``<utt>@<bg>``).

Deterministic: the same tables, task set, settings and seed give byte-identical outputs.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lalm_eval.corpora.tables import write_rows
from lalm_eval.hashing import file_sha256

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

__all__ = [
    "DEFAULT_COUNTS",
    "DEFAULT_SETTINGS",
    "EVENT_PHRASES",
    "ITEM_COLUMNS",
    "SCENE_PHRASES",
    "TASK_BUILDERS",
    "VOICE_GENDER",
    "build_demo_items",
    "resolve_settings",
]

ITEM_COLUMNS = ("task", "item_id", "audio", "target", "split", "recording")
PROVENANCE_COLUMNS = ("item_id", "task", "split", "sources", "composed_events", "origin",
                      "licence", "detail")
SPLITS = ("train", "valid", "test")

#: gender of each demo voice (speech.csv ``speaker``): the Asterisk prompts are Allison
#: Smith's recordings; cmu_us_slt is a female flite voice, awb, kal16 and rms male ones
VOICE_GENDER = {"asterisk": "female", "slt": "female", "awb": "male", "kal16": "male",
                "rms": "male"}

#: how a caption says that a sound is heard (text labels of the demo corpus)
EVENT_PHRASES = {
    "alarm clock": "an alarm clock rings", "applause": "people applaud",
    "baby cry": "a baby cries", "bird": "birds sing", "bus": "a bus pulls away",
    "car horn": "a car horn sounds", "cash register": "a cash register rings",
    "cat meow": "a cat meows", "church bell": "a church bell tolls",
    "cough": "someone coughs", "crickets": "crickets chirp", "crowd": "a crowd chatters",
    "dog bark": "a dog barks", "door": "a door closes", "footsteps": "footsteps pass by",
    "goose": "a goose honks", "helicopter": "a helicopter flies over",
    "jackhammer": "a jackhammer pounds", "laughter": "someone laughs",
    "level crossing": "a level crossing bell rings", "phone ringing": "a phone rings",
    "running water": "water runs", "train": "a train departs", "typing": "someone types",
    "vehicle passing": "a vehicle drives past", "wind": "the wind blows",
}
#: where a caption puts each scene
SCENE_PHRASES = {"cafe": "in a cafe", "home": "at home", "park": "in a park",
                 "street": "on a street", "transport station": "at a transport station"}

#: rows per task and split (train, valid, test): about 300 training rows in all
DEFAULT_COUNTS = {
    "speaker": {"train": 60, "valid": 5, "test": 15},
    "gender": {"train": 40, "valid": 4, "test": 12},
    "scene": {"train": 40, "valid": 5, "test": 15},
    "event": {"train": 45, "valid": 5, "test": 18},
    "tagging": {"train": 40, "valid": 5, "test": 15},
    "asr": {"train": 40, "valid": 4, "test": 14},
    "caption": {"train": 40, "valid": 4, "test": 15},
}

DEFAULT_SETTINGS: dict[str, Any] = {
    "tasks": "demo",                  # task set (name or path) giving labels per task
    "sample_rate": 16000,
    "clip_s": 4.0,                    # longest clip (every task but asr)
    "asr_max_s": 8.0,                 # longer utterances are not used by the asr task
    "test_fraction": 0.25,            # of each voice's utterances / each scene's clips
    "speech_mix_fraction": 0.5,       # speaker/gender/asr rows mixed over a background
    "speech_snr_db": [5.0, 15.0],     # speaker and gender mixtures
    "asr_snr_db": [10.0, 20.0],
    "caption_snr_db": [0.0, 10.0],
    "caption_no_speech_fraction": 0.25,
    "caption_max_events": 2,
    "min_overlap_s": 0.2,             # an annotated event counts in a crop from this overlap
    "asr_holdout": "recording",       # recording | mixture (see the module docstring)
    "voice_gender": VOICE_GENDER,
    "counts": DEFAULT_COUNTS,
}

_EVENT_MIN_S = 1.0         # short events are repeated (gap 0.25 s) up to this length
_EVENT_GAP_S = 0.25
_MAX_CROP_TRIES = 12


# --------------------------------------------------------------------------- settings


def resolve_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The defaults updated with ``settings`` (``counts`` merged per task and split);
    unknown keys and impossible values raise ValueError naming the key."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ValueError(f"xares demo settings: unknown key {unknown[0]!r} (known: "
                         f"{', '.join(sorted(DEFAULT_SETTINGS))})")
    out = {k: v for k, v in DEFAULT_SETTINGS.items() if k != "counts"}
    out.update({k: v for k, v in settings.items() if k != "counts"})
    counts = {t: dict(c) for t, c in DEFAULT_COUNTS.items()}
    for task, spec in (settings.get("counts") or {}).items():
        if not isinstance(spec, Mapping) or set(spec) - set(SPLITS):
            raise ValueError(f"xares demo settings: counts.{task} must map train/valid/test "
                             "to row counts")
        counts.setdefault(task, {s: 0 for s in SPLITS}).update(spec)
    for task, spec in counts.items():
        for split in SPLITS:
            n = spec.setdefault(split, 0)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"xares demo settings: counts.{task}.{split} must be an "
                                 f"integer >= 0, got {n!r}")
    out["counts"] = counts
    for key in ("clip_s", "asr_max_s"):
        if not float(out[key]) > 0.5:
            raise ValueError(f"xares demo settings: {key} must be > 0.5 s")
    for key in ("test_fraction", "speech_mix_fraction", "caption_no_speech_fraction"):
        if not 0.0 <= float(out[key]) <= 1.0:
            raise ValueError(f"xares demo settings: {key} must be within [0, 1]")
    if not 0.0 < float(out["test_fraction"]) < 1.0:
        raise ValueError("xares demo settings: test_fraction must be strictly between 0 and 1")
    for key in ("speech_snr_db", "asr_snr_db", "caption_snr_db"):
        low, high = (float(v) for v in out[key])
        if low > high:
            raise ValueError(f"xares demo settings: {key} must be [low, high]")
    if out["asr_holdout"] not in ("recording", "mixture"):
        raise ValueError("xares demo settings: asr_holdout must be 'recording' or 'mixture'")
    if int(out["sample_rate"]) < 8000:
        raise ValueError("xares demo settings: sample_rate must be >= 8000")
    return out


# --------------------------------------------------------------------------- corpus


# --------------------------------------------------------------------------- pools


def _assign_sides(corpus: Mapping[str, list[Recording]], seed: int,
                  test_fraction: float) -> dict[str, str]:
    """Source id -> ``train`` or ``test``, for every recording at once."""
    side: dict[str, str] = {}
    for kind in ("speech", "background"):
        for label, members in sorted(group_by_label(corpus[kind]).items()):
            rng = np.random.default_rng([seed, _stable_int(kind), _stable_int(label)])
            order = [members[i] for i in rng.permutation(len(members))]
            n_test = math.ceil(test_fraction * len(order)) if len(order) >= 2 else 0
            n_test = min(n_test, len(order) - 1)
            for i, source in enumerate(order):
                side[source.id] = "test" if i < n_test else "train"
    heard: dict[str, int] = {}
    for bg in corpus["background"]:
        if side[bg.id] == "train":
            for event_id in bg.composed:
                heard[event_id] = heard.get(event_id, 0) + 1
    for label, members in sorted(group_by_label(corpus["event"]).items()):
        rng = np.random.default_rng([seed, _stable_int("event"), _stable_int(label)])
        rank = {s.id: int(r) for s, r in zip(members, rng.permutation(len(members)),
                                              strict=True)}
        test = (min(members, key=lambda s: (heard.get(s.id, 0), rank[s.id]))
                if len(members) >= 2 else None)
        for source in members:
            side[source.id] = "test" if source is test else "train"
    return side


def _balanced(labels: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` labels, each cycle of them in a fresh seeded order (counts differ by <= 1)."""
    out: list[str] = []
    while len(out) < n:
        out += [labels[i] for i in rng.permutation(len(labels))]
    return out[:n]


# --------------------------------------------------------------------------- audio


# --------------------------------------------------------------------------- items


@dataclass
class _Item:
    samples: np.ndarray
    target: str
    sources: list[Recording]
    detail: str
    recording: str | None = None   # default: the sources' ids joined by "+"


@dataclass
class _Context:
    settings: Mapping[str, Any]
    audio: AudioCache
    pools: dict[str, dict[str, list[Recording]]]   # side -> kind -> sources
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def sr(self) -> int:
        return self.audio.sr

    @property
    def n_clip(self) -> int:
        return int(round(float(self.settings["clip_s"]) * self.sr))

    @property
    def n_inner(self) -> int:
        """Samples of a clip inside its silent padding."""
        return self.n_clip - 2 * int(clips.PAD_S * self.sr)

    def pool(self, split: str, kind: str) -> list[Recording]:
        return self.pools["test" if split == "test" else "train"][kind]


def _bg_crop(ctx: _Context, bg: Recording, n: int, rng: np.random.Generator,
             need_labels: bool = False) -> tuple[np.ndarray, list[str], float]:
    """A crop of ``n`` samples of a background clip (with labels when ``need_labels``
    and some offset gives any); (crop, labels, offset s)."""
    x = ctx.audio.get(bg)
    min_overlap = float(ctx.settings["min_overlap_s"])
    best: tuple[np.ndarray, list[str], float] | None = None
    for _ in range(_MAX_CROP_TRIES if need_labels else 1):
        crop, offset = clips.crop(x, n, rng)
        start = offset / ctx.sr
        labels = labels_in(bg, start, start + len(crop) / ctx.sr, min_overlap)
        best = (clips.fit(crop, n), labels, start)
        if labels:
            break
    assert best is not None
    return best


def _speech_clip(ctx: _Context, utt: Recording, split: str, rng: np.random.Generator,
                 snr_key: str, n_max: int) -> tuple[np.ndarray, list[Recording], str]:
    """An utterance's active part (cropped to ``n_max``), padded, maybe over a background."""
    x, offset = clips.crop(clips.active(ctx.audio.get(utt), ctx.sr), n_max, rng)
    x = clips.pad(x, ctx.sr)
    sources = [utt]
    detail = f"speech_offset_s={offset / ctx.sr:.2f}"
    if rng.random() < float(ctx.settings["speech_mix_fraction"]):
        backgrounds = ctx.pool(split, "background")
        if backgrounds:
            bg = backgrounds[int(rng.integers(len(backgrounds)))]
            crop, _, start = _bg_crop(ctx, bg, len(x), rng)
            snr = float(rng.uniform(*ctx.settings[snr_key]))
            x = clips.mix_at_snr(x, crop, snr, ctx.sr)
            sources.append(bg)
            detail += f";background_offset_s={start:.2f};snr_db={snr:.1f}"
    return x, sources, detail


def _check_labels(task: Any, have: Mapping[str, Mapping[str, list[Recording]]],
                  what: str) -> list[str]:
    """The task's labels; each must have a source on the training and the test side."""
    if not task.labels:
        raise ValueError(f"xares demo: task {task.name} needs a 'labels' list")
    labels = list(task.labels)
    for label in labels:
        for side in ("train", "test"):
            if not have[side].get(label):
                raise ValueError(f"xares demo: task {task.name}: no {what} {label!r} on the "
                                 f"{side} side of the demo corpus (every class needs one "
                                 "recording on each side)")
    return labels


def _sides(ctx: _Context, kind: str, key: Callable[[Recording], str]) -> dict[str, dict]:
    out: dict[str, dict[str, list[Recording]]] = {}
    for side in ("train", "test"):
        groups: dict[str, list[Recording]] = {}
        for source in ctx.pools[side][kind]:
            groups.setdefault(key(source), []).append(source)
        out[side] = groups
    return out


def _speaker(ctx: _Context, task: Any, split: str, n: int,
             rng: np.random.Generator) -> list[_Item]:
    have = _sides(ctx, "speech", lambda s: s.label)
    labels = _check_labels(task, have, "utterances of voice")
    turns = Turns(have["test" if split == "test" else "train"], rng)
    items = []
    for label in _balanced(labels, n, rng):
        x, sources, detail = _speech_clip(ctx, turns.take(label), split, rng,
                                          "speech_snr_db", ctx.n_inner)
        items.append(_Item(x, label, sources, detail))
    return items


def _gender(ctx: _Context, task: Any, split: str, n: int,
            rng: np.random.Generator) -> list[_Item]:
    voices = ctx.settings["voice_gender"]
    have = _sides(ctx, "speech", lambda s: str(voices.get(s.label, "")))
    labels = _check_labels(task, have, "utterances of gender")
    side = have["test" if split == "test" else "train"]
    turns = {g: Turns(group_by_label(side[g]), rng) for g in labels}
    items = []
    for label in _balanced(labels, n, rng):
        x, sources, detail = _speech_clip(ctx, turns[label].take(), split, rng,
                                          "speech_snr_db", ctx.n_inner)
        items.append(_Item(x, label, sources, detail))
    return items


def _scene(ctx: _Context, task: Any, split: str, n: int,
           rng: np.random.Generator) -> list[_Item]:
    have = _sides(ctx, "background", lambda s: s.label)
    labels = _check_labels(task, have, "background clips of scene")
    turns = Turns(have["test" if split == "test" else "train"], rng)
    items = []
    for label in _balanced(labels, n, rng):
        bg = turns.take(label)
        crop, _, start = _bg_crop(ctx, bg, ctx.n_clip, rng)
        items.append(_Item(crop, label, [bg], f"background_offset_s={start:.2f}"))
    return items


def _event_clip(ctx: _Context, event: Recording, rng: np.random.Generator) -> np.ndarray:
    sr = ctx.sr
    unit = clips.active(ctx.audio.get(event), sr)
    pieces = [unit]
    gap = np.zeros(int(_EVENT_GAP_S * sr))
    while sum(len(p) for p in pieces) < _EVENT_MIN_S * sr:
        pieces += [gap, unit]
    x, _ = clips.crop(np.concatenate(pieces), ctx.n_clip - int(0.2 * sr), rng)
    total = min(ctx.n_clip, len(x) + int(rng.integers(int(0.2 * sr), int(1.0 * sr) + 1)))
    out = np.zeros(total)
    offset = int(rng.integers(total - len(x) + 1))
    out[offset : offset + len(x)] = x
    return out


def _event(ctx: _Context, task: Any, split: str, n: int,
           rng: np.random.Generator) -> list[_Item]:
    have = _sides(ctx, "event", lambda s: s.label)
    labels = _check_labels(task, have, "event recordings of class")
    turns = Turns(have["test" if split == "test" else "train"], rng)
    items = []
    for label in _balanced(labels, n, rng):
        event = turns.take(label)
        items.append(_Item(_event_clip(ctx, event, rng), label, [event], ""))
    return items


def _tagging(ctx: _Context, task: Any, split: str, n: int,
             rng: np.random.Generator) -> list[_Item]:
    known = set(task.labels or ())
    every = {label for side in ctx.pools.values() for bg in side["background"]
             for label, _, _ in bg.events}
    unknown = sorted(every - known)
    if unknown or not known:
        raise ValueError(f"xares demo: task {task.name}: background label(s) {unknown} are not "
                         f"in the task's labels (num_classes {task.num_classes})")
    turns = Turns(group_by_label(ctx.pool(split, "background")), rng)
    items = []
    for _ in range(n):
        bg = turns.take()
        crop, labels, start = _bg_crop(ctx, bg, ctx.n_clip, rng, need_labels=True)
        if not labels:
            raise ValueError(f"xares demo: background {bg.id} has no annotated event")
        items.append(_Item(crop, ";".join(labels), [bg], f"background_offset_s={start:.2f}"))
    return items


def _asr(ctx: _Context, task: Any, split: str, n: int,
         rng: np.random.Generator) -> list[_Item]:
    sr = ctx.sr
    closed = ctx.settings["asr_holdout"] == "mixture"
    speech_side = "train" if closed else ("test" if split == "test" else "train")
    limit = float(ctx.settings["asr_max_s"]) * sr - 2 * int(clips.PAD_S * sr)
    texts = [u for u in ctx.pools[speech_side]["speech"] if u.text]
    usable = [u for u in texts if len(clips.active(ctx.audio.get(u), sr)) <= limit]
    if len(usable) < len(texts):
        note = (f"{task.name}: {len(texts) - len(usable)} {speech_side}-side utterance(s) "
                f"longer than asr_max_s={ctx.settings['asr_max_s']} s not used")
        if note not in ctx.notes:
            ctx.notes.append(note)
    if not usable:
        raise ValueError(f"xares demo: task {task.name}: no {speech_side}-side utterance of "
                         f"at most {ctx.settings['asr_max_s']} s")
    # closed set: every split takes the utterances in one order, so the test sentences are
    # the first ones the training rows take (all of them when train >= utterances)
    order = np.random.default_rng([ctx.seed, _stable_int("asr-closed")]) if closed else rng
    turns = Turns(group_by_label(usable), order)
    backgrounds = ctx.pool(split, "background")
    items = []
    for _ in range(n):
        utt = turns.take()
        x = clips.pad(clips.active(ctx.audio.get(utt), sr), sr)
        sources, detail, recording = [utt], "clean", None
        if closed and split == "test":
            mixed = True  # closed set: the test is the held-out background
        else:
            mixed = rng.random() < float(ctx.settings["speech_mix_fraction"])
        if mixed and backgrounds:
            bg = backgrounds[int(rng.integers(len(backgrounds)))]
            crop, _, start = _bg_crop(ctx, bg, len(x), rng)
            snr = float(rng.uniform(*ctx.settings["asr_snr_db"]))
            x = clips.mix_at_snr(x, crop, snr, sr)
            sources.append(bg)
            detail = f"background_offset_s={start:.2f};snr_db={snr:.1f}"
            if closed:
                recording = f"{utt.id}@{bg.id}"
        elif closed and split == "test":
            raise ValueError("xares demo: asr_holdout=mixture needs test-side backgrounds")
        items.append(_Item(x, utt.text, sources, detail, recording))
    return items


def _caption_text(gender: str | None, labels: Sequence[str], scene: str) -> str:
    phrases = [EVENT_PHRASES.get(label, f"{label} can be heard") for label in labels]
    where = SCENE_PHRASES.get(scene, f"in a {scene}")
    who = {"female": "a woman speaks", "male": "a man speaks"}.get(gender or "")
    if who and phrases:
        text = f"{who} while {' and '.join(phrases)} {where}"
    elif who:
        text = f"{who} {where}"
    elif phrases:
        text = f"{' and '.join(phrases)} {where}"
    else:
        text = f"a quiet moment {where}"
    return text[0].upper() + text[1:] + "."


def _salient(bg: Recording, labels: Sequence[str], start: float, end: float,
             k: int) -> list[str]:
    """Up to ``k`` of ``labels``: foreground sounds first (longest overlap first), then the
    continuous beds (annotations covering 90 % of the clip)."""
    length = max((off for _, _, off in bg.events), default=0.0)
    score: dict[str, tuple[int, float]] = {}
    for label, onset, offset in bg.events:
        if label in labels:
            bed = int(offset - onset >= 0.9 * length)
            overlap = min(offset, end) - max(onset, start)
            score[label] = min(score.get(label, (1, 0.0)), (bed, -overlap))
    return sorted(labels, key=lambda lab: (score.get(lab, (1, 0.0)), lab))[:k]


def _caption(ctx: _Context, task: Any, split: str, n: int,
             rng: np.random.Generator) -> list[_Item]:
    sr = ctx.sr
    voices = ctx.settings["voice_gender"]
    bg_turns = Turns(group_by_label(ctx.pool(split, "background")), rng)
    speakers = [u for u in ctx.pool(split, "speech") if u.label in voices]
    speech_turns = Turns(group_by_label(speakers), rng) if speakers else None
    items = []
    for _ in range(n):
        bg = bg_turns.take()
        speak = speech_turns is not None and rng.random() >= float(
            ctx.settings["caption_no_speech_fraction"])
        if speak:
            assert speech_turns is not None
            utt = speech_turns.take()
            x, _ = clips.crop(clips.active(ctx.audio.get(utt), sr), ctx.n_inner, rng)
            x = clips.pad(x, sr)
            crop, labels, start = _bg_crop(ctx, bg, len(x), rng, need_labels=True)
            snr = float(rng.uniform(*ctx.settings["caption_snr_db"]))
            clip = clips.mix_at_snr(x, crop, snr, sr)
            sources, gender = [utt, bg], str(voices[utt.label])
            detail = f"background_offset_s={start:.2f};snr_db={snr:.1f}"
        else:
            clip, labels, start = _bg_crop(ctx, bg, ctx.n_clip, rng, need_labels=True)
            sources, gender = [bg], None
            detail = f"background_offset_s={start:.2f}"
        end = start + len(clip) / sr
        chosen = _salient(bg, labels, start, end, int(ctx.settings["caption_max_events"]))
        items.append(_Item(clip, _caption_text(gender, chosen, bg.label), sources, detail))
    return items


#: task name -> builder(ctx, task, split, count, rng) -> items
TASK_BUILDERS: dict[str, Callable[..., list[_Item]]] = {
    "speaker": _speaker, "gender": _gender, "scene": _scene, "event": _event,
    "tagging": _tagging, "asr": _asr, "caption": _caption,
}


# --------------------------------------------------------------------------- build


def _readme(summary: Mapping[str, Any]) -> str:
    lines = [
        "# XARES demo task items",
        "",
        "Built by `lalm_eval.corpora.xares_demo.build_demo_items` from the offline demo corpus",
        f"(seed {summary['seed']}, task set `{summary['settings']['tasks']}`). `items.csv` has "
        "one row per item (docs/xares.md); `provenance.csv` names every source of each clip.",
        "",
        "| task | train | valid | test | chance | test majority rate |",
        "|---|---|---|---|---|---|",
    ]
    for task, counts in summary["counts"].items():
        chance = summary["chance"].get(task)
        major = summary["test_majority_rate"].get(task)
        lines.append(f"| {task} | {counts['train']} | {counts['valid']} | {counts['test']} | "
                     f"{'-' if chance is None else f'{chance:.3f}'} | "
                     f"{'-' if major is None else f'{major:.3f}'} |")
    total = {s: sum(c[s] for c in summary["counts"].values()) for s in SPLITS}
    lines += [f"| all | {total['train']} | {total['valid']} | {total['test']} | | |", ""]
    lines += ["Chance: 1 / num_classes of the task set; the last column is the share of the "
              "test split's most frequent class.", "", "## Splits", ""]
    for kind, sides in summary["pools"].items():
        lines.append(f"- {kind}: {sides['train']} recordings on the training side, "
                     f"{sides['test']} on the test side")
    heard = summary["test_events_in_training_backgrounds"]
    lines += [
        "",
        "No recording is on both sides (`recording` = the `+`-joined ids of a clip's sources). "
        "Valid rows are other crops of training-side recordings.",
        f"Test event recordings also mixed into training-side background clips: {len(heard)}"
        + (f" ({', '.join(heard)})." if heard else "."),
    ]
    if summary["settings"]["asr_holdout"] == "mixture":
        lines.append("ASR (asr_holdout=mixture): test rows are training-side utterances over "
                     "test-side backgrounds; their speech is heard in training.")
    lines += [""] + [f"- {note}" for note in summary["notes"]]
    lines += ["", "## Settings", "", "```json",
              json.dumps(summary["settings"], indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def build_demo_items(sources_dir: Path, backgrounds_csv: Path, out_dir: Path, seed: int,
                     settings: Mapping[str, Any] | None = None) -> Path:
    """Write the XARES demo items table (and its clips) to ``out_dir``; return its path.

    ``sources_dir`` holds the demo corpus's ``speech.csv`` and ``events.csv``,
    ``backgrounds_csv`` its ``background.csv``; ``settings`` override
    :data:`DEFAULT_SETTINGS` (``counts``: rows per task and split; ``clip_s``: longest
    clip; see the module docstring). Every task of the task set must be one of
    :data:`TASK_BUILDERS`; counts of tasks the set lacks are ignored.
    """
    from lalm_eval.suites.xares.tasks import load_task_set

    cfg = resolve_settings(settings)
    sources_dir, backgrounds_csv, out_dir = Path(sources_dir), Path(backgrounds_csv), Path(out_dir)
    task_set = load_task_set(str(cfg["tasks"]))
    unknown = sorted(set(task_set.tasks) - set(TASK_BUILDERS))
    if unknown:
        raise ValueError(f"xares demo: task set {task_set.name} has task(s) {unknown} the demo "
                         f"cannot build (known: {', '.join(TASK_BUILDERS)})")
    corpus = read_recordings(sources_dir, backgrounds_csv)
    side = _assign_sides(corpus, seed, float(cfg["test_fraction"]))
    pools = {s: {k: [src for src in corpus[k] if side[src.id] == s] for k in corpus}
             for s in ("train", "test")}
    ctx = _Context(cfg, AudioCache(int(cfg["sample_rate"])), pools, seed)

    audio_root = out_dir / "audio"
    if audio_root.exists():
        shutil.rmtree(audio_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    provenance: list[dict[str, Any]] = []
    counts: dict[str, dict[str, int]] = {}
    majority: dict[str, float | None] = {}
    for name, task in task_set.tasks.items():
        counts[name] = {}
        for index, split in enumerate(SPLITS):
            rng = np.random.default_rng([seed, _stable_int(name), index])
            n = int(cfg["counts"].get(name, {}).get(split, 0))
            items = TASK_BUILDERS[name](ctx, task, split, n, rng) if n else []
            counts[name][split] = len(items)
            (audio_root / name).mkdir(parents=True, exist_ok=True)
            for i, item in enumerate(items):
                item_id = f"{name}_{split}_{i:03d}"
                rel = f"audio/{name}/{item_id}.wav"
                (out_dir / rel).write_bytes(wav_bytes(clips.finish(item.samples, ctx.sr, rng),
                                                      ctx.sr))
                ids = sorted({s.id for s in item.sources})
                recording = item.recording or "+".join(ids)
                rows.append({"task": name, "item_id": item_id, "audio": rel,
                             "target": item.target, "split": split, "recording": recording})
                provenance.append({
                    "item_id": item_id, "task": name, "split": split, "sources": "+".join(ids),
                    "composed_events": "+".join(sorted({e for s in item.sources
                                                        for e in s.composed})),
                    "origin": " | ".join(s.origin for s in item.sources),
                    "licence": " AND ".join(sorted({s.licence for s in item.sources
                                                    if s.licence})),
                    "detail": item.detail})
            if split == "test" and task.metric == "accuracy":
                targets = [r["target"] for r in rows if r["task"] == name and r["split"] == "test"]
                majority[name] = (max(targets.count(t) for t in set(targets)) / len(targets)
                                  if targets else None)

    train_ids = {r["recording"] for r in rows if r["split"] != "test"}
    leaks = sorted(train_ids & {r["recording"] for r in rows if r["split"] == "test"})
    if leaks:  # cannot happen by construction; refuse rather than write a leaking table
        raise AssertionError(f"xares demo: recording(s) in training and test: {leaks[:5]}")
    test_events = {s.id for s in pools["test"]["event"]} if "event" in task_set.tasks else set()
    heard = sorted(test_events & {e for bg in pools["train"]["background"] for e in bg.composed})
    summary = {
        "seed": seed,
        "settings": cfg,
        "counts": counts,
        "chance": {n: t.chance for n, t in task_set.tasks.items()},
        "test_majority_rate": majority,
        "pools": {k: {s: len(pools[s][k]) for s in ("train", "test")} for k in corpus},
        "test_events_in_training_backgrounds": heard,
        "inputs": {p.name: file_sha256(p) for p in (sources_dir / "speech.csv",
                                                     sources_dir / "events.csv",
                                                     backgrounds_csv)},
        "notes": ctx.notes,
    }
    write_rows(out_dir / "provenance.csv", PROVENANCE_COLUMNS, provenance)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                                          encoding="utf-8")
    (out_dir / "README.md").write_text(_readme(summary), encoding="utf-8")
    items_csv = out_dir / "items.csv"
    write_rows(items_csv, ITEM_COLUMNS, rows)
    return items_csv
