"""Small text helpers shared by the answer extractors."""

from __future__ import annotations

import re

__all__ = ["THINK_BLOCK", "join_problems"]

#: a reasoning model's ``<think>...</think>`` block
THINK_BLOCK = re.compile(r"<think>.*?</think>", re.I | re.S)


def join_problems(*problems: str | None) -> str | None:
    """The non-empty problem notes joined with '; ' (None when there are none)."""
    kept = [p for p in problems if p]
    return "; ".join(kept) if kept else None
