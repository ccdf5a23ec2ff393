"""Content hashes (hex digests) of files, bytes and text, in one place.

Every sha256 the project records (source tables, manifests, downloads, prompt files,
inference cache keys) is computed here, so that a file, its bytes and its UTF-8 text give
the same digest wherever they are hashed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "CHUNK_BYTES",
    "bytes_sha256",
    "file_digests",
    "file_sha256",
    "new_hasher",
    "text_sha256",
]

#: read size used when hashing files (1 MiB)
CHUNK_BYTES = 1 << 20


def new_hasher(algorithm: str) -> Any:
    """A fresh ``hashlib`` object for ``algorithm`` (md5 flagged as not for security)."""
    if algorithm == "md5":
        return hashlib.md5(usedforsecurity=False)
    return hashlib.new(algorithm)


def file_digests(path: str | Path, algorithms: Iterable[str] = ("sha256",),
                 chunk: int = CHUNK_BYTES) -> dict[str, str]:
    """Hex digests of a file's bytes under every algorithm, reading the file once in chunks."""
    if chunk <= 0:
        raise ValueError(f"chunk must be a positive number of bytes, got {chunk}")
    hashers = {name: new_hasher(name) for name in algorithms}
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            for hasher in hashers.values():
                hasher.update(block)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def file_sha256(path: str | Path, chunk: int = CHUNK_BYTES) -> str:
    """Hex sha256 of a file's bytes, read in chunks of ``chunk`` bytes."""
    return file_digests(path, ("sha256",), chunk)["sha256"]


_FILE_SHA256_MEMO: dict[tuple[str, int, int], str] = {}


def memo_file_sha256(path: str | Path) -> str:
    """:func:`file_sha256`, memoised per path, size and mtime within the process (a job
    hashes each file once however many items, runs or segment rows ask for it)."""
    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_SHA256_MEMO:
        _FILE_SHA256_MEMO[key] = file_sha256(path)
    return _FILE_SHA256_MEMO[key]


def bytes_sha256(data: bytes | bytearray | memoryview) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def text_sha256(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
