"""The demo corpus's recordings as one typed list per kind, and small helpers to draw from them.

:func:`read_recordings` reads ``sources/speech.csv``, ``sources/events.csv`` and a backgrounds
table (``backgrounds/background.csv``) into :class:`Recording` rows (paths made absolute,
background annotations parsed, composed event ids from the origin). The sets built from the
demo corpus (XARES demo tasks, the distillation clips) share them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lalm_eval.audio import load_audio

from .demo import text_label

__all__ = ["AudioCache", "Recording", "Turns", "group_by_label", "labels_in", "read_recordings",
           "read_rows"]


@dataclass(frozen=True)
class Recording:
    """One recording of the demo corpus."""

    id: str
    kind: str                      # speech | event | background
    path: Path
    start_s: float | None
    end_s: float | None
    label: str                     # speaker, event label (text form) or scene
    origin: str
    licence: str
    text: str = ""                 # transcript (speech)
    events: tuple[tuple[str, float, float], ...] = ()   # annotations (background)
    composed: tuple[str, ...] = ()  # event ids mixed into a background clip


def read_rows(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    """Rows of a demo corpus CSV; a missing file or column raises naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"demo corpus table not found: {path}")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}")
        return list(reader)


def _number(value: str | None) -> float | None:
    return float(value) if (value or "").strip() else None


def _resolve(table: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else table.parent / path


def _composed(origin: str) -> tuple[str, ...]:
    """Event ids of a composed background (origin ``demo-compose=seed<n>:<id>+<id>``)."""
    if not origin.startswith("demo-compose") or ":" not in origin:
        return ()
    return tuple(sorted({p for p in origin.split(":", 1)[1].split("+") if p}))


def read_recordings(sources_dir: Path, backgrounds_csv: Path) -> dict[str, list[Recording]]:
    speech_csv = sources_dir / "speech.csv"
    events_csv = sources_dir / "events.csv"
    speech = [
        Recording(r["source_id"], "speech", _resolve(speech_csv, r["path"]),
                _number(r.get("start_s")), _number(r.get("end_s")),
                (r.get("speaker") or "").strip(), r.get("origin", ""), r.get("licence", ""),
                text=" ".join((r.get("transcript") or "").split()))
        for r in read_rows(speech_csv, ("source_id", "path", "transcript", "speaker"))]
    events = [
        Recording(r["event_id"], "event", _resolve(events_csv, r["path"]), None, None,
                text_label(r["label"]), r.get("origin", ""), r.get("licence", ""))
        for r in read_rows(events_csv, ("event_id", "label", "path"))]
    backgrounds = []
    for r in read_rows(backgrounds_csv, ("source_id", "path", "scene", "events")):
        try:
            notes = tuple((str(e["label"]), float(e["onset"]), float(e["offset"]))
                          for e in json.loads(r["events"] or "[]"))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{backgrounds_csv}: background {r['source_id']}: bad events "
                             f"({exc})") from exc
        backgrounds.append(Recording(
            r["source_id"], "background", _resolve(backgrounds_csv, r["path"]),
            _number(r.get("start_s")), _number(r.get("end_s")), r["scene"].strip(),
            r.get("origin", ""), r.get("licence", ""), events=notes,
            composed=_composed(r.get("origin", ""))))
    corpus = {"speech": speech, "event": events, "background": backgrounds}
    for kind, rows in corpus.items():
        ids = [s.id for s in rows]
        if len(set(ids)) != len(ids):
            raise ValueError(f"demo corpus: duplicate {kind} ids")
        corpus[kind] = sorted(rows, key=lambda s: s.id)
    if set(s.id for s in speech) & set(s.id for s in backgrounds):
        raise ValueError("demo corpus: a speech and a background recording share an id")
    return corpus


def group_by_label(sources: Sequence[Recording]) -> dict[str, list[Recording]]:
    out: dict[str, list[Recording]] = {}
    for source in sources:
        out.setdefault(source.label, []).append(source)
    return out


class Turns:
    """Takes members group by group in a seeded order (or the group asked for), and each
    group's members in a seeded order, starting again when a group is used up."""

    def __init__(self, groups: Mapping[str, Sequence[Any]], rng: np.random.Generator) -> None:
        names = sorted(k for k, v in groups.items() if v)
        self.keys = [names[i] for i in rng.permutation(len(names))]
        self.members = {k: [groups[k][i] for i in rng.permutation(len(groups[k]))]
                        for k in self.keys}
        self.used = dict.fromkeys(self.keys, 0)
        self.turn = 0

    def take(self, key: str | None = None) -> Any:
        if not self.keys:
            raise ValueError("nothing to take")
        if key is None:
            key = self.keys[self.turn % len(self.keys)]
            self.turn += 1
        members = self.members[key]
        member = members[self.used[key] % len(members)]
        self.used[key] += 1
        return member


class AudioCache:
    """Each source's samples once, float64 mono at the build's rate."""

    def __init__(self, sample_rate: int) -> None:
        self.sr = sample_rate
        self._cache: dict[str, np.ndarray] = {}

    def get(self, source: Recording) -> np.ndarray:
        if source.id not in self._cache:
            loaded = load_audio(source.path, self.sr, source.start_s, source.end_s)
            self._cache[source.id] = loaded.samples.astype(np.float64)
        return self._cache[source.id]


def labels_in(bg: Recording, start_s: float, end_s: float, min_overlap: float) -> list[str]:
    """Annotated labels sounding for at least ``min_overlap`` s of [start_s, end_s) (or
    entirely inside it)."""
    out = set()
    for label, onset, offset in bg.events:
        overlap = min(offset, end_s) - max(onset, start_s)
        if overlap >= min(min_overlap, offset - onset) and overlap > 0:
            out.add(label)
    return sorted(out)
