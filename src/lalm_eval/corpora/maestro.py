"""MAESTRO-Real development set adapter (5 outdoor/indoor scenes): a background table.

Layout (Zenodo record 7244360)::

    development_audio/<scene>/<scene>_NN.wav
    development_annotation/soft_labels_<scene>/<scene>_NN.txt    onset offset label soft_value

Annotations are soft labels at 1 s resolution; labels may contain spaces
("people talking"), so a line is split on tabs when it has them, otherwise on whitespace
with the label being everything between the offset and the final value.

Each recording is cut into segments ``[k*hop_s, k*hop_s + segment_s]`` that fit inside the
recording (a shorter tail is not used). A frame is active when its value is
``>= threshold``; consecutive (touching or overlapping) active frames of one label become
one event, which is then clipped to each segment and made relative to the segment start.

Recordings without annotation, annotations without audio and wavs whose name matches no
scene are reported in ``df.attrs["skipped"]``.

Licence: the record's statements conflict (CC BY 4.0 vs a non-commercial academic
licence), hence ``see-MAESTRO-Real-licence``: read the record's LICENSE.txt.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import soundfile as sf

from lalm_eval.corpora.labels import merge_intervals
from lalm_eval.corpora.tables import (
    BACKGROUND_COLUMNS,
    Skip,
    attach_skips,
    events_to_json,
    new_table,
    round_time,
    safe_id,
    validate_background_table,
)
from lalm_eval.hashing import file_sha256

MAESTRO_VERSION = "zenodo7244360"
MAESTRO_LICENCE = "see-MAESTRO-Real-licence"
MAESTRO_SCENES: tuple[str, ...] = (
    "cafe_restaurant",
    "city_center",
    "grocery_store",
    "metro_station",
    "residential_area",
)
AUDIO_DIR = "development_audio"
ANNOTATION_DIR = "development_annotation"
_EPS = 1e-6


def scene_of(stem: str, scenes: tuple[str, ...] = MAESTRO_SCENES) -> str | None:
    """The scene whose name prefixes ``stem`` (longest match), or None."""
    matches = [s for s in scenes if stem == s or stem.startswith(s + "_")]
    return max(matches, key=len) if matches else None


def _is_number(text: str) -> bool:
    """Whether ``text`` parses as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_soft_labels(path: Path) -> list[tuple[float, float, str, float]]:
    """(onset, offset, label, value) rows of a soft-label file; a header line is allowed."""
    rows: list[tuple[float, float, str, float]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for line_no, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split("\t")] if "\t" in line else line.split()
        if len(cells) >= 4 and "\t" not in line:
            cells = [cells[0], cells[1], " ".join(cells[2:-1]), cells[-1]]
        if len(cells) != 4:
            raise ValueError(f"maestro: {path}:{line_no}: expected 'onset offset label value'")
        onset, offset, label, value = cells
        if not all(_is_number(x) for x in (onset, offset, value)):
            if not rows and not _is_number(onset):
                continue  # header line
            raise ValueError(f"maestro: {path}:{line_no}: non-numeric onset/offset/value")
        if not label:
            raise ValueError(f"maestro: {path}:{line_no}: empty label")
        on, off, val = float(onset), float(offset), float(value)
        if on < 0 or off < on:
            raise ValueError(f"maestro: {path}:{line_no}: bad interval {on}..{off}")
        rows.append((on, off, label, val))
    return rows


def hard_events(
    soft: list[tuple[float, float, str, float]], threshold: float
) -> list[dict[str, object]]:
    """Active frames (value >= threshold) merged per label into events (absolute times)."""
    active = [
        {"label": label, "onset": on, "offset": off}
        for on, off, label, val in soft
        if val >= threshold - 1e-12
    ]
    return merge_intervals(active)


def segment_starts(duration: float, segment_s: float, hop_s: float) -> list[float]:
    """Start times of the segments that fit in ``duration`` seconds."""
    if segment_s <= 0 or hop_s <= 0:
        raise ValueError("maestro: segment_s and hop_s must be > 0")
    if duration + _EPS < segment_s:
        return []
    count = int(math.floor((duration - segment_s + _EPS) / hop_s)) + 1
    return [round_time(k * hop_s) for k in range(count)]


def clip_events(
    events: list[dict[str, object]], start: float, end: float
) -> list[dict[str, object]]:
    """Events overlapping ``[start, end]`` clipped to it, relative to ``start``."""
    out = []
    for e in events:
        on, off = max(float(e["onset"]), start), min(float(e["offset"]), end)
        if off - on > _EPS:
            out.append({"label": e["label"], "onset": on - start, "offset": off - start})
    return out


def _annotation_index(root: Path) -> dict[str, list[Path]]:
    """Annotation stem -> candidate files under the annotation folder (or root)."""
    base = root / ANNOTATION_DIR if (root / ANNOTATION_DIR).is_dir() else root
    index: dict[str, list[Path]] = {}
    for path in sorted(base.rglob("*.txt")):
        if scene_of(path.stem) is not None:
            index.setdefault(path.stem, []).append(path)
    return index


def _pick_annotation(candidates: list[Path], scene: str) -> Path:
    """The one annotation for a recording; prefer a ``soft_labels_<scene>`` folder."""
    preferred = [p for p in candidates if p.parent.name == f"soft_labels_{scene}"]
    chosen = preferred or candidates
    if len(chosen) > 1:
        raise ValueError(f"maestro: several annotations for one recording: {chosen}")
    return chosen[0]


def maestro_background_table(
    root: Path,
    *,
    segment_s: float = 10.0,
    hop_s: float = 10.0,
    threshold: float = 0.5,
    hash_files: bool = True,
) -> pd.DataFrame:
    """Build the segmented background table for MAESTRO-Real development data under ``root``.

    One row per segment (``start_s``/``end_s`` set, ``sha256`` of the whole recording);
    ``scene`` is the raw scene name (e.g. ``cafe_restaurant``); events use raw labels.
    """
    root = Path(root).resolve()
    audio_base = root / AUDIO_DIR if (root / AUDIO_DIR).is_dir() else root
    wavs = sorted(p for p in audio_base.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    if not wavs:
        raise FileNotFoundError(f"maestro: no .wav files under {audio_base}")
    annotations = _annotation_index(root)
    rows: list[dict[str, object]] = []
    skips: list[Skip] = []
    used_stems: set[str] = set()
    for wav in wavs:
        rel = wav.relative_to(root).as_posix()
        scene = scene_of(wav.stem)
        if scene is None:
            skips.append(Skip(rel, "file name matches no MAESTRO-Real scene"))
            continue
        if wav.stem in used_stems:
            raise ValueError(f"maestro: two recordings named {wav.stem} under {audio_base}")
        used_stems.add(wav.stem)
        if wav.stem not in annotations:
            skips.append(Skip(rel, "no soft-label annotation"))
            continue
        events = hard_events(
            read_soft_labels(_pick_annotation(annotations[wav.stem], scene)), threshold
        )
        info = sf.info(str(wav))
        duration = info.frames / info.samplerate
        starts = segment_starts(duration, segment_s, hop_s)
        if not starts:
            skips.append(Skip(rel, f"shorter than one segment ({duration:.3f} s)"))
            continue
        digest = file_sha256(wav) if hash_files else ""
        for start in starts:
            end = round_time(start + segment_s)
            rows.append(
                {
                    "source_id": f"maestro_{safe_id(wav.stem)}_{int(round(start * 1000)):07d}ms",
                    "path": str(wav),
                    "start_s": start,
                    "end_s": end,
                    "scene": scene,
                    "events": events_to_json(clip_events(events, start, end)),
                    "origin": f"maestro-real={MAESTRO_VERSION}:{rel}",
                    "licence": MAESTRO_LICENCE,
                    "sha256": digest,
                }
            )
    for stem in sorted(set(annotations) - used_stems):
        for path in annotations[stem]:
            skips.append(Skip(path.relative_to(root).as_posix(), "annotation but no audio"))
    df = new_table(rows, BACKGROUND_COLUMNS)
    validate_background_table(df, "maestro background table")
    return attach_skips(df, skips, "maestro")
