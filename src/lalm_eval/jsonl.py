"""JSON Lines files: one object per non-blank line (predictions, judgements, item lists)."""

from __future__ import annotations

import json
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
