"""An offline multiple-choice demo set in the MMAU test-mini format, made from the demo corpus.

``build_mmau_demo`` reads the demo corpus tables (``sources/events.csv``,
``sources/speech.csv``, ``backgrounds/background.csv``) and the question kinds of
``mmau_demo.yaml`` (our wording), and writes::

    out_dir/mmau-demo.json     MMAU test-mini fields: id, audio_id, question, choices, answer,
                               dataset, task, split, category, sub-category, difficulty
    out_dir/audio/<name>.wav   16 kHz mono 16-bit clips (``audio_id`` = ./audio/<name>.wav)
    out_dir/README.md          counts, kinds the corpus could not fill, and the origin and
                               licence of every clip
    out_dir/sources.json       audio_id -> the corpus recordings the clip is made of (so a
                               training set can leave them out)

Every question has four choices: the answer (from the corpus labels) and three distractors
drawn with a seeded generator from the other labels. Within each task the answer positions
are balanced (counts differ by at most one). The same corpus, spec and seed give
byte-identical outputs. :func:`lalm_eval.suites.knowledge.mmau.read_mmau` reads the result with
``audio_root = out_dir``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from lalm_eval.hashing import bytes_sha256, text_sha256
from lalm_eval.metrics.choice import answer_tokens
from lalm_eval.suites.knowledge.mmau import MMAU_DIFFICULTIES, MMAU_TASKS

from .demo import _stable_int, _to_mono, active_span, read_packaged_yaml, text_label, wav_bytes
from .demo_recordings import read_rows

__all__ = ["KINDS", "JSON_NAME", "SOURCES_NAME", "build_mmau_demo", "load_mmau_demo_spec",
           "read_sources", "validate_spec"]

JSON_NAME = "mmau-demo.json"
SOURCES_NAME = "sources.json"
N_CHOICES = 4
KINDS = ("event_identity", "scene", "scene_event", "spoken_word", "spoken_sentence",
         "speaker_gender", "speaker_count")
#: silence around single clips, gap between repeats of a short event / between utterances (s)
PAD_S = 0.25
EVENT_GAP_S = 0.5
TALK_GAP_S = 0.6
#: a short event recording is repeated until the clip lasts at least this long (s)
MIN_EVENT_S = 2.0
#: RMS level (dBFS over the active part) of each utterance in a speaker-count clip
TALK_RMS_DB = -23.0
_PEAK_LIMIT = 10 ** (-1.0 / 20)  # -1 dBFS
_WORD = re.compile(r"[a-z]+")
_ENTRY_KEYS = ("kind", "task", "count", "difficulty", "category", "sub_category", "wordings")


# --------------------------------------------------------------------------- spec


def load_mmau_demo_spec(path: Path | None = None) -> dict[str, Any]:
    """Load and validate the question spec (the packaged ``mmau_demo.yaml`` when None)."""
    spec = read_packaged_yaml("mmau_demo.yaml", path)
    validate_spec(spec)
    return spec


def validate_spec(spec: Mapping[str, Any]) -> None:
    """Check the spec's structure; raise ValueError naming the entry and field."""
    if not isinstance(spec, Mapping):
        raise ValueError("mmau demo spec: top level must be a mapping")
    for key in ("dataset", "split", "sample_rate", "questions"):
        if not spec.get(key):
            raise ValueError(f"mmau demo spec: missing {key!r}")
    if not isinstance(spec.get("music_labels", []), list):
        raise ValueError("mmau demo spec: music_labels must be a list")
    groups = spec.get("confusable") or []
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        raise ValueError("mmau demo spec: confusable must be a list of label lists")
    voices = spec.get("speaker_voice") or {}
    if not isinstance(voices, Mapping):
        raise ValueError("mmau demo spec: speaker_voice must be a mapping")
    for i, entry in enumerate(spec["questions"]):
        where = f"mmau demo spec: questions[{i}]"
        missing = [k for k in _ENTRY_KEYS if k not in entry]
        if missing:
            raise ValueError(f"{where}: missing {missing}")
        if entry["kind"] not in KINDS:
            raise ValueError(f"{where}: unknown kind {entry['kind']!r} (kinds: {KINDS})")
        if entry["task"] not in MMAU_TASKS:
            raise ValueError(f"{where}: task must be one of {MMAU_TASKS}")
        if entry["difficulty"] not in MMAU_DIFFICULTIES:
            raise ValueError(f"{where}: difficulty must be one of {MMAU_DIFFICULTIES}")
        if not isinstance(entry["count"], int) or entry["count"] < 0:
            raise ValueError(f"{where}: count must be a non-negative integer")
        wordings = entry["wordings"]
        if (not isinstance(wordings, list) or not wordings
                or not all(isinstance(w, str) and w.strip() for w in wordings)):
            raise ValueError(f"{where}: wordings must be a list of non-empty strings")
        if entry["kind"] in ("speaker_gender", "speaker_count"):
            options = entry.get("options")
            if not isinstance(options, list) or len(set(options)) < N_CHOICES:
                raise ValueError(f"{where}: needs at least {N_CHOICES} distinct options")
        if entry["kind"] == "speaker_gender":
            unknown = sorted(set(voices.values()) - set(entry["options"]))
            if unknown:
                raise ValueError(f"{where}: speaker_voice value(s) {unknown} not in options")
        if entry["kind"] == "speaker_count":
            n = entry.get("utterances")
            if not isinstance(n, int) or n < 2:
                raise ValueError(f"{where}: utterances must be an integer >= 2")


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class _Corpus:
    events: list[dict[str, str]]
    speech: list[dict[str, str]]
    backgrounds: list[dict[str, str]]


def _read_table(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a corpus CSV with ``path`` made absolute (relative to the table's folder)."""
    rows = read_rows(path, columns)
    for n, row in enumerate(rows, start=2):
        for column in columns:
            if column not in ("start_s", "end_s", "speaker") and not (row[column] or "").strip():
                raise ValueError(f"{path}: line {n}: empty {column!r}")
        audio = Path(row["path"])
        row["path"] = str(audio if audio.is_absolute() else path.parent / audio)
    return rows


def _read_corpus(corpus_dir: Path) -> _Corpus:
    events = _read_table(corpus_dir / "sources" / "events.csv",
                         ("event_id", "label", "path", "origin", "licence"))
    speech = _read_table(corpus_dir / "sources" / "speech.csv",
                         ("source_id", "path", "start_s", "end_s", "transcript", "speaker",
                          "origin", "licence"))
    backgrounds = _read_table(corpus_dir / "backgrounds" / "background.csv",
                              ("source_id", "path", "start_s", "end_s", "scene", "events",
                               "origin", "licence"))
    for row in backgrounds:
        try:
            events_json = json.loads(row["events"])
            row["_labels"] = sorted({str(ev["label"]) for ev in events_json})  # type: ignore
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise ValueError(f"background {row['source_id']}: bad events JSON ({exc})") from exc
    key = "event_id"
    return _Corpus(sorted(events, key=lambda r: r[key]),
                   sorted(speech, key=lambda r: r["source_id"]),
                   sorted(backgrounds, key=lambda r: r["source_id"]))


# --------------------------------------------------------------------------- audio


def _load(row: Mapping[str, str], sr: int) -> np.ndarray:
    """A source's audio (its start_s/end_s segment if given) as float64 mono at ``sr``."""
    x, rate = sf.read(row["path"], dtype="float64", always_2d=True)
    x = _to_mono(x)
    start = float(row["start_s"]) if (row.get("start_s") or "").strip() else 0.0
    end = float(row["end_s"]) if (row.get("end_s") or "").strip() else None
    x = x[int(round(start * rate)) : None if end is None else int(round(end * rate))]
    if rate != sr:
        x = soxr.resample(x, rate, sr)
    if not len(x):
        raise ValueError(f"{row['path']}: empty audio")
    return np.asarray(x, dtype=np.float64)


def _trim(x: np.ndarray, sr: int, what: str) -> np.ndarray:
    span = active_span(x, sr)
    if span is None:
        raise ValueError(f"{what}: audio is silent")
    return x[span[0] : span[1]]


def _pad(x: np.ndarray, sr: int) -> np.ndarray:
    pad = np.zeros(int(PAD_S * sr))
    return np.concatenate([pad, x, pad])


def _limit(x: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return x * (_PEAK_LIMIT / peak) if peak > _PEAK_LIMIT else x


def _event_clip(row: Mapping[str, str], sr: int) -> np.ndarray:
    """The active part of an event recording, repeated with gaps up to MIN_EVENT_S."""
    unit = _trim(_load(row, sr), sr, row["event_id"])
    gap = np.zeros(int(EVENT_GAP_S * sr))
    pieces = [unit]
    while sum(len(p) for p in pieces) < MIN_EVENT_S * sr:
        pieces += [gap, unit]
    return _limit(_pad(np.concatenate(pieces), sr))


def _speech_clip(row: Mapping[str, str], sr: int) -> np.ndarray:
    return _limit(_pad(_load(row, sr), sr))


def _background_clip(row: Mapping[str, str], sr: int) -> np.ndarray:
    return _limit(_load(row, sr))


def _talk_clip(rows: Sequence[Mapping[str, str]], sr: int) -> np.ndarray:
    """Utterances at one RMS level, one after another with gaps."""
    gap = np.zeros(int(TALK_GAP_S * sr))
    pieces: list[np.ndarray] = []
    for i, row in enumerate(rows):
        x = _trim(_load(row, sr), sr, row["source_id"])
        rms = float(np.sqrt(np.mean(np.square(x))))
        x = x * (10 ** (TALK_RMS_DB / 20) / max(rms, 1e-9))
        pieces += [gap, x] if i else [x]
    return _limit(_pad(np.concatenate(pieces), sr))


@dataclass
class _Clip:
    """One output audio file: how to render it and what it is made of."""

    name: str
    render: Callable[[int], np.ndarray]
    sources: list[Mapping[str, str]]


# --------------------------------------------------------------------------- questions


@dataclass
class _Question:
    entry: Mapping[str, Any]
    wording: str
    answer: str
    distractors: list[str]
    clip: _Clip


@dataclass
class _Outcome:
    questions: list[_Question] = field(default_factory=list)
    note: str | None = None


def _spread(rows: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, Any]], str],
            count: int, rng: np.random.Generator) -> list[Mapping[str, Any]]:
    """Up to ``count`` distinct rows, taking groups (by ``key``) in a seeded round robin."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    order = [sorted(groups)[i] for i in rng.permutation(len(groups))]
    picked: list[Mapping[str, Any]] = []
    while len(picked) < count and any(groups.values()):
        for name in order:
            if groups[name] and len(picked) < count:
                picked.append(groups[name].pop(int(rng.integers(len(groups[name])))))
    return picked


def _draw(pool: Sequence[str], k: int, rng: np.random.Generator) -> list[str]:
    """``k`` distinct values of ``pool`` (sorted first, so the draw depends only on the seed)."""
    values = sorted(set(pool))
    return [values[i] for i in rng.choice(len(values), size=k, replace=False)]


def _confusable(spec: Mapping[str, Any], label: str, present: Sequence[str]) -> bool:
    """True if ``label`` is one of ``present`` or shares a ``confusable`` group with one."""
    label = text_label(label)
    present_text = {text_label(p) for p in present}
    if label in present_text:
        return True
    for group in spec.get("confusable") or []:
        members = {text_label(str(m)) for m in group}
        if label in members and members & present_text:
            return True
    return False


def _similar(sentence: str, answer: str) -> bool:
    """True if most words of ``sentence`` also occur in ``answer`` (or they are equal)."""
    words = set(_words(sentence))
    return sentence == answer or len(words & set(_words(answer))) > len(words) / 2


def _wording(entry: Mapping[str, Any], i: int) -> str:
    return " ".join(str(entry["wordings"][i % len(entry["wordings"])]).split())


def _shortfall(entry: Mapping[str, Any], made: int, why: str) -> str | None:
    if made >= entry["count"]:
        return None
    return f"{entry['task']} / {entry['kind']}: {made} of {entry['count']} questions ({why})"


def _event_identity(entry: Mapping[str, Any], spec: Mapping[str, Any], corpus: _Corpus,
                    rng: np.random.Generator) -> _Outcome:
    music = set(spec.get("music_labels") or [])
    want_music = entry["task"] == "music"
    rows = [r for r in corpus.events if (r["label"] in music) == want_music]
    labels = sorted({r["label"] for r in rows})
    if len(labels) < N_CHOICES:
        what = "instrument" if want_music else "sound"
        return _Outcome(note=_shortfall(entry, 0, f"needs recordings of at least {N_CHOICES} "
                                                  f"{what} labels, the corpus has {len(labels)}"))
    out = _Outcome()
    for i, row in enumerate(_spread(rows, lambda r: r["label"], entry["count"], rng)):
        pool = [x for x in labels if not _confusable(spec, x, [row["label"]])]
        if len(pool) < N_CHOICES - 1:
            continue
        others = _draw(pool, N_CHOICES - 1, rng)
        clip = _Clip(f"event_{row['event_id']}", lambda sr, r=row: _event_clip(r, sr), [row])
        out.questions.append(_Question(entry, _wording(entry, i), text_label(row["label"]),
                                       [text_label(x) for x in others], clip))
    out.note = _shortfall(entry, len(out.questions), "not enough event recordings")
    return out


def _background(row: Mapping[str, str]) -> _Clip:
    return _Clip(f"scene_{row['source_id']}", lambda sr: _background_clip(row, sr), [row])


def _scene(entry: Mapping[str, Any], spec: Mapping[str, Any], corpus: _Corpus,
           rng: np.random.Generator) -> _Outcome:
    scenes = sorted({r["scene"] for r in corpus.backgrounds})
    if len(scenes) < N_CHOICES:
        return _Outcome(note=_shortfall(entry, 0, f"needs at least {N_CHOICES} scenes, the "
                                                  f"corpus has {len(scenes)}"))
    out = _Outcome()
    for i, row in enumerate(_spread(corpus.backgrounds, lambda r: r["scene"], entry["count"],
                                    rng)):
        pool = [s for s in scenes if not _confusable(spec, s, [row["scene"]])]
        if len(pool) < N_CHOICES - 1:
            continue
        others = _draw(pool, N_CHOICES - 1, rng)
        out.questions.append(_Question(entry, _wording(entry, i), row["scene"], others,
                                       _background(row)))
    out.note = _shortfall(entry, len(out.questions), "not enough background clips")
    return out


def _scene_event(entry: Mapping[str, Any], spec: Mapping[str, Any], corpus: _Corpus,
                 rng: np.random.Generator) -> _Outcome:
    labels = sorted({label for r in corpus.backgrounds for label in r["_labels"]})

    def absent(row: Mapping[str, Any]) -> list[str]:
        return [x for x in labels if not _confusable(spec, x, row["_labels"])]

    usable = [r for r in corpus.backgrounds if r["_labels"] and len(absent(r)) >= N_CHOICES - 1]
    out = _Outcome()
    for i, row in enumerate(_spread(usable, lambda r: r["scene"], entry["count"], rng)):
        answer = _draw(row["_labels"], 1, rng)[0]
        others = _draw(absent(row), N_CHOICES - 1, rng)
        out.questions.append(_Question(entry, _wording(entry, i), answer, others,
                                       _background(row)))
    out.note = _shortfall(entry, len(out.questions),
                          f"needs clips with events and {N_CHOICES - 1} labels absent")
    return out


def _utterance(row: Mapping[str, str]) -> _Clip:
    return _Clip(f"speech_{row['source_id']}", lambda sr: _speech_clip(row, sr), [row])


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _spoken_word(entry: Mapping[str, Any], spec: Mapping[str, Any], corpus: _Corpus,
                 rng: np.random.Generator) -> _Outcome:
    stop = {str(w).lower() for w in entry.get("stop_words") or []}
    min_len = int(entry.get("min_word_length", 5))

    def candidates(row: Mapping[str, str]) -> list[str]:
        return sorted({w for w in _words(row["transcript"]) if len(w) >= min_len
                       and w not in stop})

    pool = {w for r in corpus.speech for w in candidates(r)}
    usable = [r for r in corpus.speech if candidates(r)
              and len(pool - set(_words(r["transcript"]))) >= N_CHOICES - 1]
    out = _Outcome()
    for i, row in enumerate(_spread(usable, lambda r: r["speaker"], entry["count"], rng)):
        answer = _draw(candidates(row), 1, rng)[0]
        others = _draw(sorted(pool - set(_words(row["transcript"]))), N_CHOICES - 1, rng)
        out.questions.append(_Question(entry, _wording(entry, i), answer, others,
                                       _utterance(row)))
    out.note = _shortfall(entry, len(out.questions), "not enough utterances with words")
    return out


def _sentence(row: Mapping[str, str]) -> str:
    return " ".join(row["transcript"].split())


def _spoken_sentence(entry: Mapping[str, Any], spec: Mapping[str, Any], corpus: _Corpus,
                     rng: np.random.Generator) -> _Outcome:
    sentences = {_sentence(r) for r in corpus.speech}
    if len(sentences) < N_CHOICES:
        return _Outcome(note=_shortfall(entry, 0, f"needs {N_CHOICES} different transcripts"))
    out = _Outcome()
    for i, row in enumerate(_spread(corpus.speech, lambda r: r["speaker"], entry["count"],
                                    rng)):
        answer = _sentence(row)
        pool = [x for x in sentences if not _similar(x, answer)]
        if len(pool) < N_CHOICES - 1:
            continue
        others = _draw(pool, N_CHOICES - 1, rng)
        out.questions.append(_Question(entry, _wording(entry, i), answer, others,
                                       _utterance(row)))
    out.note = _shortfall(entry, len(out.questions), "not enough utterances")
    return out


def _speaker_gender(entry: Mapping[str, Any], spec: Mapping[str, Any], corpus: _Corpus,
                    rng: np.random.Generator) -> _Outcome:
    voices = spec.get("speaker_voice") or {}
    usable = [r for r in corpus.speech if r["speaker"] in voices]
    out = _Outcome()
    by_voice = _spread(usable, lambda r: str(voices[r["speaker"]]), entry["count"], rng)
    for i, row in enumerate(by_voice):
        answer = str(voices[row["speaker"]])
        others = _draw([o for o in entry["options"] if o != answer], N_CHOICES - 1, rng)
        out.questions.append(_Question(entry, _wording(entry, i), answer, others,
                                       _utterance(row)))
    out.note = _shortfall(entry, len(out.questions), "needs speakers listed in speaker_voice")
    return out


def _speaker_count(entry: Mapping[str, Any], spec: Mapping[str, Any], corpus: _Corpus,
                   rng: np.random.Generator) -> _Outcome:
    n_utt = int(entry["utterances"])
    options = [str(o) for o in entry["options"]]
    by_speaker: dict[str, list[Mapping[str, str]]] = {}
    for row in corpus.speech:
        if row["speaker"].strip():
            by_speaker.setdefault(row["speaker"], []).append(row)
    speakers = sorted(by_speaker)

    def shares(k: int) -> list[int]:
        return [n_utt // k + (1 if j < n_utt % k else 0) for j in range(k)]

    def feasible(k: int) -> bool:
        sizes = sorted((len(by_speaker[s]) for s in speakers), reverse=True)
        return k <= len(sizes) and all(
            have >= need for have, need in zip(sizes[:k], shares(k), strict=True))

    ks = [k for k in range(1, min(n_utt, len(options)) + 1) if feasible(k)]
    out = _Outcome()
    if ks:
        cycle = [ks[j] for j in rng.permutation(len(ks))]
        for i in range(entry["count"]):
            k = cycle[i % len(cycle)]
            chosen: list[Mapping[str, str]] = []
            free = list(speakers)
            for need in shares(k):
                able = [s for s in free if len(by_speaker[s]) >= need]
                speaker = able[int(rng.integers(len(able)))]
                free.remove(speaker)
                rows = by_speaker[speaker]
                chosen += [rows[j] for j in sorted(rng.choice(len(rows), need, replace=False))]
            chosen = [chosen[j] for j in rng.permutation(len(chosen))]
            digest = text_sha256("+".join(r["source_id"] for r in chosen))
            clip = _Clip(f"talk_{digest[:12]}",
                         lambda sr, rows=tuple(chosen): _talk_clip(rows, sr), list(chosen))
            answer = options[k - 1]
            others = _draw([o for o in options if o != answer], N_CHOICES - 1, rng)
            out.questions.append(_Question(entry, _wording(entry, i), answer, others, clip))
    out.note = _shortfall(entry, len(out.questions), "not enough speakers")
    return out


_BUILDERS: dict[str, Callable[..., _Outcome]] = {
    "event_identity": _event_identity,
    "scene": _scene,
    "scene_event": _scene_event,
    "spoken_word": _spoken_word,
    "spoken_sentence": _spoken_sentence,
    "speaker_gender": _speaker_gender,
    "speaker_count": _speaker_count,
}


# --------------------------------------------------------------------------- assembly


def _choices(question: _Question, position: int, rng: np.random.Generator) -> list[str]:
    """The distractors in seeded order with the answer at ``position``; checked distinct."""
    others = [question.distractors[j] for j in rng.permutation(len(question.distractors))]
    choices = others[:position] + [question.answer] + others[position:]
    token_sets = [frozenset(answer_tokens(c)) for c in choices]
    if len(set(token_sets)) != len(choices) or not all(token_sets):
        raise ValueError(f"{question.entry['kind']}: choices {choices} are not distinct by "
                         f"their words, so the official matcher could not tell them apart")
    return choices


def _source_id(source: Mapping[str, str]) -> str:
    return source.get("event_id") or source.get("source_id", "")


def read_sources(path: str | Path) -> list[str]:
    """Every recording id a built demo set's ``sources.json`` names, sorted."""
    mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    return sorted({i for ids in mapping.values() for i in ids})


def _readme(records: Sequence[Mapping[str, Any]], kinds: Mapping[str, str], notes: Sequence[str],
            clips: Mapping[str, tuple[_Clip, str]]) -> str:
    counts: dict[str, int] = {}
    for record in records:
        counts[record["task"]] = counts.get(record["task"], 0) + 1
    lines = [
        "# MMAU-shaped demo set",
        "",
        f"{len(records)} four-option questions in the MMAU test-mini format "
        f"(`{JSON_NAME}`), made by lalm-eval from the offline demo corpus. Questions and",
        "options were written for this project (`lalm_eval/corpora/mmau_demo.yaml`);",
        "answers come from the corpus labels and distractors from its other labels.",
        "",
        "| task | questions |",
        "|---|---|",
        *[f"| {task} | {counts.get(task, 0)} |" for task in MMAU_TASKS],
        "",
        "| id | kind |",
        "|---|---|",
        *[f"| {record['id']} | {kinds[record['id']]} |" for record in records],
        "",
        "## What the corpus could not fill",
        "",
        *([f"- {note}" for note in notes] or ["- nothing: every kind got its questions"]),
        "",
        "## Audio sources",
        "",
        "| file | sources | origin | licence | wav sha256 |",
        "|---|---|---|---|---|",
    ]
    for name, (clip, digest) in sorted(clips.items()):
        ids = " + ".join(_source_id(s) for s in clip.sources)
        origins = " + ".join(s["origin"] for s in clip.sources)
        licences = " AND ".join(sorted({s["licence"] for s in clip.sources}))
        lines.append(f"| audio/{name}.wav | {ids} | {origins} | {licences} | "
                     f"`{digest[:16]}` |")
    lines += ["", "Share-alike terms of the sources apply to the clips made from them.", ""]
    return "\n".join(lines)


def build_mmau_demo(corpus_dir: str | Path, out_dir: str | Path, seed: int = 0, *,
                    spec_path: Path | None = None) -> Path:
    """Build the demo set from the corpus in ``corpus_dir``; return the JSON path.

    Per entry of the spec, sources are taken round robin over their label / scene /
    speaker in a seeded order; distractors and answer positions are seeded too. Wav files
    of ``out_dir/audio`` that the build did not write are removed.
    """
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    spec = load_mmau_demo_spec(spec_path)
    sr = int(spec["sample_rate"])
    corpus = _read_corpus(corpus_dir)

    by_task: dict[str, list[_Question]] = {task: [] for task in MMAU_TASKS}
    notes: list[str] = []
    for index, entry in enumerate(spec["questions"]):
        rng = np.random.default_rng([seed, index, _stable_int(f"{entry['task']}:"
                                                              f"{entry['kind']}")])
        outcome = _BUILDERS[entry["kind"]](entry, spec, corpus, rng)
        by_task[entry["task"]].extend(outcome.questions)
        if outcome.note:
            notes.append(outcome.note)

    records: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    clips: dict[str, _Clip] = {}
    for task in MMAU_TASKS:
        questions = by_task[task]
        rng = np.random.default_rng([seed, _stable_int(f"positions:{task}")])
        positions = rng.permutation(np.resize(np.arange(N_CHOICES), len(questions)))
        for n, (question, position) in enumerate(zip(questions, positions, strict=True), 1):
            item_id = f"demo-{task}-{n:02d}"
            choices = _choices(question, int(position), rng)
            clips.setdefault(question.clip.name, question.clip)
            entry = question.entry
            records.append({
                "id": item_id,
                "audio_id": f"./audio/{question.clip.name}.wav",
                "question": question.wording,
                "choices": choices,
                "answer": question.answer,
                "dataset": str(spec["dataset"]),
                "task": task,
                "split": str(spec["split"]),
                "category": str(entry["category"]),
                "sub-category": str(entry["sub_category"]),
                "difficulty": str(entry["difficulty"]),
            })
            kinds[item_id] = str(entry["kind"])
    if not records:
        raise ValueError(f"{corpus_dir}: the corpus gives no questions ({'; '.join(notes)})")

    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, tuple[_Clip, str]] = {}
    for name, clip in sorted(clips.items()):
        data = wav_bytes(clip.render(sr), sr)
        (audio_dir / f"{name}.wav").write_bytes(data)
        written[name] = (clip, bytes_sha256(data))
    for stale in sorted(audio_dir.glob("*.wav")):
        if stale.stem not in written:
            stale.unlink()
    (out_dir / "README.md").write_text(_readme(records, kinds, notes, written),
                                       encoding="utf-8")
    sources = {f"./audio/{name}.wav": [_source_id(s) for s in clip.sources]
               for name, (clip, _) in sorted(written.items())}
    (out_dir / SOURCES_NAME).write_text(json.dumps(sources, indent=1) + "\n", encoding="utf-8")
    json_path = out_dir / JSON_NAME
    tmp = json_path.with_name(json_path.name + ".tmp")
    tmp.write_text(json.dumps(records, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, json_path)
    return json_path
