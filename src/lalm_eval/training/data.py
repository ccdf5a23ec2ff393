"""Training sets: JSON Lines of (audio, prompt, target) rows, read and hashed by content.

One row per training or held-out item (docs/training.md):

``{"item_id": str, "audio": path, "prompt": str, "target": str, "split": "train" | "heldout",
"transcript": str (optional)}``

``audio`` is absolute or relative to the file's folder. A row that breaks the contract stops
the job with one line naming the file, the row and the field; a missing or unreadable
audio file is named too (a training set is built by the workflow, so a bad row is a bug to
fix, not an item to skip).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lalm_eval.hashing import memo_file_sha256, text_sha256
from lalm_eval.jsonl import read_jsonl

SPLITS = ("train", "heldout")
REQUIRED = ("item_id", "audio", "prompt", "target", "split")


class TrainingDataError(ValueError):
    """A training set that breaks the contract; the message names file, row and field."""


@dataclass(frozen=True)
class TrainingRow:
    """One item of a training set, its audio path resolved."""

    item_id: str
    audio: Path
    prompt: str
    target: str
    split: str
    transcript: str | None = None


def read_training_set(path: str | Path) -> list[TrainingRow]:
    """Every row of a training set, checked; audio paths resolved and required to exist."""
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"training set {path} not found")
    rows: list[TrainingRow] = []
    seen: set[str] = set()
    for line_no, record in enumerate(read_jsonl(path, TrainingDataError), start=1):
        where = f"training set {path}: row {line_no}"
        if not isinstance(record, dict):
            raise TrainingDataError(f"{where}: not a JSON object")
        for key in REQUIRED:
            if not isinstance(record.get(key), str) or (key != "target" and not record[key]):
                raise TrainingDataError(f"{where}: field {key!r} must be a non-empty string")
        if record["split"] not in SPLITS:
            raise TrainingDataError(f"{where}: split {record['split']!r} is not one of {SPLITS}")
        if record["item_id"] in seen:
            raise TrainingDataError(f"{where}: item_id {record['item_id']!r} repeats")
        seen.add(record["item_id"])
        transcript = record.get("transcript")
        if transcript is not None and not isinstance(transcript, str):
            raise TrainingDataError(f"{where}: field 'transcript' must be a string")
        audio = Path(record["audio"])
        audio = audio if audio.is_absolute() else path.parent / audio
        if not audio.is_file():
            raise TrainingDataError(f"{where}: audio file {audio} not found")
        rows.append(TrainingRow(record["item_id"], audio, record["prompt"], record["target"],
                                record["split"], transcript))
    if not any(r.split == "train" for r in rows):
        raise TrainingDataError(f"training set {path}: no row with split 'train'")
    return rows


def training_set_hash(rows: list[TrainingRow]) -> str:
    """sha256 of the rows by content: audio files by their sha256, not their paths."""
    canonical = [{"item_id": r.item_id, "audio_sha256": memo_file_sha256(r.audio),
                  "prompt": r.prompt, "target": r.target, "split": r.split,
                  "transcript": r.transcript} for r in rows]
    return text_sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False))
