"""JSON Lines files: one object per non-blank line (predictions, judgements, item lists)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def read_jsonl(path: str | Path, error: type[Exception] = ValueError) -> list[Any]:
    """Every non-blank line of ``path`` parsed as JSON; a bad line raises ``error`` naming
    the file and the line number."""
    items = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise error(f"{path}: line {number} is not valid JSON ({exc})") from exc
    return items


def write_jsonl(path: str | Path, records: Iterable[Any]) -> None:
    """Write one JSON object per line (UTF-8, non-ASCII kept) atomically: a temporary file
    beside ``path`` replaces it, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                   encoding="utf-8")
    os.replace(tmp, path)
