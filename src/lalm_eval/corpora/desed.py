"""DESED public evaluation set adapter (scene ``home``): a background table.

Layout of ``DESED_public_eval.tar.gz`` (Zenodo record 4560759)::

    dataset/audio/eval/public/*.wav
    dataset/metadata/eval/public.tsv     filename<TAB>onset<TAB>offset<TAB>event_label (header)

``root`` may be the folder holding ``dataset/`` or ``dataset/`` itself. Clips listed
without events (or not listed at all) keep an empty event list; label rows whose audio file
is missing are reported in ``df.attrs["skipped"]``.

Licence: no licence statement for the public evaluation set was found (the clips come from
third-party recordings), so the ``licence`` column says ``see-DESED-licence``: check the
DESED terms before redistributing any derived audio.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from lalm_eval.corpora.labels import ClipPolicy, drop_event_labels
from lalm_eval.corpora.tables import (
    BACKGROUND_COLUMNS,
    Skip,
    attach_skips,
    events_to_json,
    new_table,
    safe_id,
    validate_background_table,
)
from lalm_eval.hashing import file_sha256

DESED_VERSION = "zenodo4560759"
DESED_LICENCE = "see-DESED-licence"
DESED_SCENE = "home"
AUDIO_SUBDIR = Path("audio/eval/public")
LABELS_FILE = Path("metadata/eval/public.tsv")
TSV_HEADER = ["filename", "onset", "offset", "event_label"]


def _find_base(root: Path) -> Path:
    """The ``dataset`` folder under (or equal to) ``root``."""
    for base in (root / "dataset", root):
        if (base / AUDIO_SUBDIR).is_dir():
            return base
    raise FileNotFoundError(f"desed: no dataset/{AUDIO_SUBDIR.as_posix()} under {root}")


def _read_labels(tsv: Path) -> dict[str, list[dict[str, object]]]:
    """filename -> raw events from the strong-label TSV (header required)."""
    labels: dict[str, list[dict[str, object]]] = {}
    with open(tsv, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    if not rows or [c.strip() for c in rows[0][:4]] != TSV_HEADER:
        raise ValueError(f"desed: {tsv} must start with 'filename onset offset event_label'")
    for line_no, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        cells = [c.strip() for c in row] + [""] * (4 - len(row))
        name, onset, offset, label = cells[:4]
        events = labels.setdefault(name, [])
        if not label and not onset and not offset:
            continue  # a clip listed without events
        try:
            on, off = float(onset), float(offset)
        except ValueError:
            raise ValueError(
                f"desed: {tsv}:{line_no}: bad onset/offset {onset!r}/{offset!r}"
            ) from None
        if not label:
            raise ValueError(f"desed: {tsv}:{line_no}: event without a label")
        events.append({"label": label, "onset": on, "offset": off})
    return labels


def desed_background_table(
    root: Path,
    *,
    hash_files: bool = True,
    drop_labels: Iterable[str] = frozenset({"Speech"}),
    clip_policy: ClipPolicy = "keep",
) -> pd.DataFrame:
    """Build the background table for the DESED public evaluation set under ``root``.

    Events whose label is in ``drop_labels`` are removed; ``clip_policy`` (``keep``,
    ``drop_if_only_dropped``, ``drop_if_any_dropped``) decides whether such clips stay.
    Paths are absolute; events are in seconds from the clip start.
    """
    root = Path(root).resolve()
    base = _find_base(root)
    audio_dir = base / AUDIO_SUBDIR
    tsv = base / LABELS_FILE
    if not tsv.is_file():
        raise FileNotFoundError(f"desed: labels file {tsv} not found")
    labels = _read_labels(tsv)
    wavs = sorted(p for p in audio_dir.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
    skips = [
        Skip(f"{LABELS_FILE.as_posix()}:{name}", "labels but no audio")
        for name in sorted(set(labels) - {p.name for p in wavs})
    ]
    rows: list[dict[str, object]] = []
    ids: dict[str, str] = {}
    for wav in wavs:
        sid = f"desed_{safe_id(wav.stem)}"
        if sid in ids:
            raise ValueError(f"desed: {wav.name} and {ids[sid]} give the same source_id {sid}")
        ids[sid] = wav.name
        rel = wav.relative_to(root).as_posix()
        rows.append(
            {
                "source_id": sid,
                "path": str(wav),
                "start_s": None,
                "end_s": None,
                "scene": DESED_SCENE,
                "events": events_to_json(labels.get(wav.name, [])),
                "origin": f"desed={DESED_VERSION}:{rel}",
                "licence": DESED_LICENCE,
                "sha256": file_sha256(wav) if hash_files else "",
            }
        )
    df = new_table(rows, BACKGROUND_COLUMNS)
    attach_skips(df, skips, "desed")
    df = drop_event_labels(df, drop_labels, clip_policy=clip_policy, where="desed")
    validate_background_table(df, "desed background table")
    return df
