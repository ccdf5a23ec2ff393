"""Resumable, verified downloads and safe archive extraction for external corpora.

``download`` streams a URL into ``<dest>.part``, resumes with HTTP ``Range`` requests,
retries transient failures with bounded exponential backoff, verifies size and checksums,
and only then renames the file into place. Without a pinned checksum it records the sha256
it saw in a ``<dest>.sha256`` sidecar (trust on first use) and refuses a different file
later.

``safe_extract`` checks every member of a zip or tar archive before writing anything,
extracts into a temporary sibling folder, moves the result into place and writes a stamp
(``.extracted.json``) so that repeated calls are cheap and an interrupted extraction never
looks complete.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import urllib3

from lalm_eval.hashing import file_digests, file_sha256, new_hasher

__all__ = [
    "ArchiveError",
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "VerifiedFile",
    "detect_archive_format",
    "download",
    "download_verified",
    "md5_file",
    "safe_extract",
]

#: First retry waits this long (seconds); each further retry doubles it. Tests set it to 0.
BACKOFF_BASE_S = 1.0
#: Upper bound for one backoff sleep (also caps a server's ``Retry-After``).
BACKOFF_MAX_S = 30.0
#: Read size used when hashing local files.
HASH_CHUNK_BYTES = 1 << 20
#: HTTP statuses worth retrying besides 5xx.
RETRY_STATUSES = frozenset({408, 425, 429})
#: Name of the stamp file ``safe_extract`` writes into the target folder.
STAMP_NAME = ".extracted.json"
USER_AGENT = "lalm-eval corpus downloader (python-requests)"

_HEX_RE = re.compile(r"^[0-9a-f]+$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


# --------------------------------------------------------------------------- errors


class DownloadError(Exception):
    """A file could not be downloaded or verified."""


class ChecksumError(DownloadError):
    """A downloaded or existing file does not match its expected size or digest."""

    def __init__(
        self, filename: str, algorithm: str, expected: str, actual: str, detail: str = ""
    ) -> None:
        self.filename = filename
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        message = f"{algorithm} mismatch for {filename}: expected {expected}, got {actual}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class _TransientError(DownloadError):
    """A failure worth retrying (connection reset, short read, 5xx...)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ArchiveError(Exception):
    """An archive is not a supported zip/tar file or could not be extracted."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would escape the target folder or is not a plain file/dir/link."""

    def __init__(self, archive: Path | str, member: str, reason: str) -> None:
        self.archive = Path(archive)
        self.member = member
        self.reason = reason
        super().__init__(f"unsafe member {member!r} in archive {self.archive.name}: {reason}")


# --------------------------------------------------------------------------- hashing


def _hash_file(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    """Hash ``path`` once with every algorithm in ``algorithms``; return hex digests."""
    return file_digests(path, algorithms, HASH_CHUNK_BYTES)


def md5_file(path: Path | str) -> str:
    """Return the hex md5 of a file, read in chunks."""
    return _hash_file(Path(path), ["md5"])["md5"]


def _normalise_digest(value: str | None, length: int, algorithm: str) -> str | None:
    """Lower-case and validate a hex digest given by the caller."""
    if value is None:
        return None
    digest = value.strip().lower()
    if len(digest) != length or not _HEX_RE.match(digest):
        raise ValueError(f"{algorithm} must be {length} hex characters, got {value!r}")
    return digest


# --------------------------------------------------------------------------- TOFU sidecar


def _sidecar_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _read_sidecar(dest: Path) -> str | None:
    """Return the sha256 recorded on first download of ``dest``, if any."""
    sidecar = _sidecar_path(dest)
    if not sidecar.exists():
        return None
    fields = sidecar.read_text(encoding="utf-8").split()
    digest = fields[0].lower() if fields else ""
    if len(digest) != 64 or not _HEX_RE.match(digest):
        raise DownloadError(f"{sidecar} does not hold a sha256; delete it to re-pin {dest.name}")
    return digest


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_sidecar(dest: Path, digest: str) -> None:
    _write_text_atomic(_sidecar_path(dest), f"{digest}  {dest.name}\n")


# --------------------------------------------------------------------------- download


@dataclass(frozen=True)
class VerifiedFile:
    """A file on disk whose size and digests were checked."""

    path: Path
    size: int
    sha256: str
    md5: str | None
    #: "registry" when checked against a pinned digest, "tofu" when against the sidecar.
    verified_by: str


def _find_mismatch(
    name: str,
    actual_size: int,
    digests: dict[str, str],
    *,
    sha256: str | None,
    md5: str | None,
    size: int | None,
    tofu_sha256: str | None,
) -> ChecksumError | None:
    """Compare observed size/digests with the expectations; return the first mismatch."""
    if size is not None and actual_size != size:
        return ChecksumError(name, "size", f"{size} bytes", f"{actual_size} bytes")
    if sha256 is not None and digests["sha256"] != sha256:
        return ChecksumError(name, "sha256", sha256, digests["sha256"])
    if md5 is not None and digests.get("md5") != md5:
        return ChecksumError(name, "md5", md5, digests.get("md5", "?"))
    if sha256 is None and tofu_sha256 is not None and digests["sha256"] != tofu_sha256:
        return ChecksumError(
            name,
            "sha256",
            tofu_sha256,
            digests["sha256"],
            "the upstream file changed since the first download recorded in "
            f"{name}.sha256; that pin is unverified (trust on first use), so check the "
            "source before deleting the sidecar",
        )
    return None


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """Parse ``bytes a-b/total`` or ``bytes */total``; unknown parts become None."""
    match = re.match(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", value or "")
    if not match:
        return None, None, None
    start, end, total = match.groups()
    return (
        int(start) if start is not None else None,
        int(end) if end is not None else None,
        int(total) if total not in (None, "*") else None,
    )


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _iter_body(response: requests.Response, chunk_size: int) -> Iterator[bytes]:
    """Yield the raw (not content-decoded) body; broken transfers become transient errors."""
    try:
        yield from response.raw.stream(chunk_size, decode_content=False)
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        raise _TransientError(f"connection broken: {exc}") from exc


def _progress_bar(name: str, total: int | None, initial: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, initial=initial, desc=name, unit="B", unit_scale=True, unit_divisor=1024
    )


@dataclass
class _Transfer:
    """Outcome of streaming into the .part file."""

    size: int
    digests: dict[str, str]
    resumed: bool


def _attempt(
    session: requests.Session,
    url: str,
    part: Path,
    *,
    name: str,
    size: int | None,
    timeout: float,
    chunk_size: int,
    progress: bool,
    algorithms: list[str],
) -> _Transfer:
    """One HTTP request: append to (or restart) the .part file and return its digests."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Accept-Encoding": "identity", "User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = session.get(url, headers=headers, stream=True, timeout=(timeout, timeout))
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _TransientError(f"request failed: {exc}") from exc
    except requests.RequestException as exc:
        raise DownloadError(f"cannot download {name} from {url}: {exc}") from exc

    with response:
        status = response.status_code
        if status == 416:
            _, _, total = _parse_content_range(response.headers.get("Content-Range"))
            if offset and total == offset:  # the .part already holds the whole file
                return _Transfer(offset, _hash_file(part, algorithms), resumed=True)
            part.unlink(missing_ok=True)
            raise _TransientError(f"HTTP 416 for bytes={offset}-; restarting from zero")
        if status >= 500 or status in RETRY_STATUSES:
            raise _TransientError(f"HTTP {status} from {url}", _retry_after(response))
        if status not in (200, 206):
            raise DownloadError(f"cannot download {name}: HTTP {status} {response.reason} ({url})")

        if status == 206:
            start, end, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset or end is None:
                part.unlink(missing_ok=True)
                raise _TransientError(
                    f"server answered range {start}-{end} to bytes={offset}-; restarting"
                )
            expected_len: int | None = end - start + 1
            remote_total = total if total is not None else end + 1
            mode = "ab"
        else:  # 200: a fresh request, or a server ignoring Range -> restart from zero
            offset = 0
            length = response.headers.get("Content-Length", "")
            expected_len = int(length) if length.isdigit() else None
            remote_total = expected_len
            mode = "wb"

        if size is not None and remote_total is not None and remote_total != size:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                name, "size", f"{size} bytes", f"{remote_total} bytes", f"as announced by {url}"
            )

        hashers = {algo: new_hasher(algo) for algo in algorithms}
        if offset:
            with open(part, "rb") as fh:
                while block := fh.read(HASH_CHUNK_BYTES):
                    for hasher in hashers.values():
                        hasher.update(block)

        received = 0
        bar = _progress_bar(name, remote_total, offset, progress)
        try:
            with open(part, mode) as out:
                for chunk in _iter_body(response, chunk_size):
                    out.write(chunk)
                    for hasher in hashers.values():
                        hasher.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()

    total_now = offset + received
    if expected_len is not None and received < expected_len:
        raise _TransientError(f"short read: {received} of {expected_len} bytes")
    if size is not None and total_now < size:
        raise _TransientError(f"short read: {total_now} of {size} bytes")
    digests = {algo: hasher.hexdigest() for algo, hasher in hashers.items()}
    return _Transfer(total_now, digests, resumed=offset > 0)


def _backoff_seconds(failures: int, retry_after: float | None) -> float:
    delay = BACKOFF_BASE_S * 2 ** (failures - 1)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, BACKOFF_MAX_S)


def _transfer_with_retries(
    url: str,
    part: Path,
    *,
    name: str,
    size: int | None,
    retries: int,
    timeout: float,
    chunk_size: int,
    progress: bool,
    algorithms: list[str],
) -> _Transfer:
    """Stream ``url`` into ``part``, resuming and retrying transient failures."""
    failures = 0
    with requests.Session() as session:
        while True:
            offset = part.stat().st_size if part.exists() else 0
            if size is not None and offset > size:
                part.unlink()
                offset = 0
            if size is not None and offset == size and offset > 0:
                # An earlier run fetched every byte but stopped before verification.
                return _Transfer(offset, _hash_file(part, algorithms), resumed=True)
            try:
                return _attempt(
                    session,
                    url,
                    part,
                    name=name,
                    size=size,
                    timeout=timeout,
                    chunk_size=chunk_size,
                    progress=progress,
                    algorithms=algorithms,
                )
            except _TransientError as exc:
                failures += 1
                if failures > retries:
                    raise DownloadError(
                        f"giving up on {name} after {failures} attempts ({url}): {exc}; "
                        f"{part.name} is kept so a later run can resume"
                    ) from exc
                time.sleep(_backoff_seconds(failures, exc.retry_after))


def _verify_existing(
    dest: Path, *, sha256: str | None, md5: str | None, size: int | None, tofu: str | None
) -> VerifiedFile | None:
    """Return a VerifiedFile if ``dest`` already matches every expectation, else None."""
    actual_size = dest.stat().st_size
    if size is not None and actual_size != size:
        return None
    digests = _hash_file(dest, ["sha256", "md5"] if md5 else ["sha256"])
    mismatch = _find_mismatch(
        dest.name, actual_size, digests, sha256=sha256, md5=md5, size=size, tofu_sha256=tofu
    )
    if mismatch is not None:
        return None
    return VerifiedFile(
        dest, actual_size, digests["sha256"], digests.get("md5"), _verified_by(sha256, md5)
    )


def _verified_by(sha256: str | None, md5: str | None) -> str:
    return "registry" if (sha256 or md5) else "tofu"


def download_verified(
    url: str,
    dest: Path | str,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    retries: int = 4,
    timeout: float = 60,
    chunk_size: int = 1 << 20,
    progress: bool = False,
) -> VerifiedFile:
    """Like :func:`download`, but return the verified size and digests as well."""
    dest = Path(dest)
    sha256 = _normalise_digest(sha256, 64, "sha256")
    md5 = _normalise_digest(md5, 32, "md5")
    if size is not None and size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tofu = _read_sidecar(dest) if sha256 is None else None

    if dest.is_file():
        existing = _verify_existing(dest, sha256=sha256, md5=md5, size=size, tofu=tofu)
        if existing is not None:
            if sha256 is None and tofu is None:
                _write_sidecar(dest, existing.sha256)
            return existing

    part = dest.with_name(dest.name + ".part")
    fetch = functools.partial(
        _transfer_with_retries,
        url,
        part,
        name=dest.name,
        size=size,
        retries=retries,
        timeout=timeout,
        chunk_size=chunk_size,
        progress=progress,
        algorithms=["sha256", "md5"] if md5 else ["sha256"],
    )
    check = functools.partial(
        _find_mismatch, dest.name, sha256=sha256, md5=md5, size=size, tofu_sha256=tofu
    )
    transfer = fetch()
    mismatch = check(transfer.size, transfer.digests)
    if mismatch is not None and transfer.resumed:
        # Part of the bytes came from an earlier attempt (maybe of an older upstream file):
        # fetch the whole file once more before blaming the source.
        part.unlink(missing_ok=True)
        transfer = fetch()
        mismatch = check(transfer.size, transfer.digests)
    if mismatch is not None:
        part.unlink(missing_ok=True)
        raise mismatch

    os.replace(part, dest)
    if sha256 is None and tofu is None:
        _write_sidecar(dest, transfer.digests["sha256"])
    return VerifiedFile(
        dest,
        transfer.size,
        transfer.digests["sha256"],
        transfer.digests.get("md5"),
        _verified_by(sha256, md5),
    )


def download(
    url: str,
    dest: Path | str,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    retries: int = 4,
    timeout: float = 60,
    chunk_size: int = 1 << 20,
    progress: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` (resumable, verified, atomic) and return ``dest``.

    Does nothing when ``dest`` already verifies. Without a pinned sha256 (even if an md5
    is pinned) the first sha256 seen is recorded in ``<dest>.sha256`` and enforced later.
    ``retries`` counts retries after the first attempt; ``timeout`` applies to connecting
    and to each read. Raises :class:`ChecksumError` on a size/digest mismatch and
    :class:`DownloadError` otherwise (a ``.part`` file is kept then, for resuming).
    """
    return download_verified(
        url,
        dest,
        sha256=sha256,
        md5=md5,
        size=size,
        retries=retries,
        timeout=timeout,
        chunk_size=chunk_size,
        progress=progress,
    ).path


# --------------------------------------------------------------------------- archives


def detect_archive_format(archive: Path | str) -> str:
    """Return ``zip``, ``tar``, ``tar.gz``, ``tar.xz`` or ``tar.bz2`` judged by content."""
    archive = Path(archive)
    with open(archive, "rb") as fh:
        head = fh.read(512)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "tar.xz"
    if head.startswith(b"BZh"):
        return "tar.bz2"
    if head[257:262] == b"ustar" or tarfile.is_tarfile(archive):
        return "tar"
    if zipfile.is_zipfile(archive):  # e.g. a zip with a prefix (self-extracting)
        return "zip"
    raise ArchiveError(f"{archive.name} is neither a zip nor a tar archive")


@dataclass(frozen=True)
class _Member:
    """A validated archive member: its normalised relative path and kind."""

    rel: str
    kind: str  # "file" | "dir" | "symlink" | "hardlink"
    link: str = ""


def _walk(parts: Iterable[str], links: set[str]) -> tuple[str | None, str | None]:
    """Resolve path components lexically from the target root.

    Returns (relative path or None if it leaves the root, name of a symlink member that
    the path goes *through*, if any).
    """
    parts = [p for p in parts if p not in ("", ".")]
    stack: list[str] = []
    for index, part in enumerate(parts):
        if part == "..":
            if not stack:
                return None, None
            stack.pop()
            continue
        stack.append(part)
        current = "/".join(stack)
        if index < len(parts) - 1 and current in links:
            return current, current
    return "/".join(stack), None


def _split(name: str) -> list[str]:
    return name.replace("\\", "/").split("/")


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or bool(_DRIVE_RE.match(name))


def _check_name(archive: Path, name: str, links: set[str]) -> str:
    """Validate a member name and return its normalised relative path ('' = the root)."""
    if "\x00" in name:
        raise UnsafeArchiveError(archive, name, "NUL byte in name")
    if _is_absolute(name):
        raise UnsafeArchiveError(archive, name, "absolute path")
    rel, through = _walk(_split(name), links)
    if rel is None:
        raise UnsafeArchiveError(archive, name, "path leaves the target folder")
    if through is not None:
        raise UnsafeArchiveError(archive, name, f"path goes through symlink member {through!r}")
    if rel == STAMP_NAME:
        raise UnsafeArchiveError(archive, name, "would overwrite the extraction stamp")
    return rel


def _check_link(archive: Path, name: str, rel: str, link: str, hard: bool, links: set[str]) -> None:
    """Reject a link whose target is absolute or resolves outside the target folder."""
    kind = "hardlink" if hard else "symlink"
    if not link or _is_absolute(link):
        raise UnsafeArchiveError(archive, name, f"{kind} to absolute or empty path {link!r}")
    base = [] if hard else _split(rel)[:-1]
    resolved, through = _walk(base + _split(link), links)
    if resolved is None:
        raise UnsafeArchiveError(archive, name, f"{kind} target {link!r} is outside the target")
    if through is not None:
        raise UnsafeArchiveError(
            archive, name, f"{kind} target {link!r} goes through symlink member {through!r}"
        )


def _plan_tar(archive: Path, members: list[tarfile.TarInfo]) -> list[_Member]:
    """Validate every tar member; return the plan (raises before anything is written)."""
    links = set()
    for info in members:
        if info.issym():
            rel, _ = _walk(_split(info.name), set())
            if rel:
                links.add(rel)
    plan = []
    for info in members:
        if info.ischr() or info.isblk() or info.isfifo():
            raise UnsafeArchiveError(archive, info.name, "device or fifo member")
        if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
            raise UnsafeArchiveError(archive, info.name, f"unsupported member type {info.type!r}")
        rel = _check_name(archive, info.name, links)
        if info.issym() or info.islnk():
            _check_link(archive, info.name, rel, info.linkname, info.islnk(), links)
        if not rel and not info.isdir():
            raise UnsafeArchiveError(archive, info.name, "non-directory member at the root")
        plan.append(_Member(rel, _tar_kind(info), info.linkname))
    return plan


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    return "hardlink" if info.islnk() else "file"


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


def _plan_zip(archive: Path, zf: zipfile.ZipFile) -> list[_Member]:
    """Validate every zip member; return the plan (raises before anything is written)."""
    infos = zf.infolist()
    links = set()
    for info in infos:
        if stat.S_ISLNK(_zip_mode(info)):
            rel, _ = _walk(_split(info.filename), set())
            if rel:
                links.add(rel)
    plan = []
    for info in infos:
        mode = _zip_mode(info)
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise UnsafeArchiveError(archive, info.filename, "device, fifo or socket member")
        rel = _check_name(archive, info.filename, links)
        if stat.S_ISLNK(mode):
            link = zf.read(info).decode("utf-8", errors="surrogateescape")
            _check_link(archive, info.filename, rel, link, False, links)
            kind = "symlink"
        elif info.is_dir():
            kind, link = "dir", ""
        else:
            kind, link = "file", ""
        if not rel and kind != "dir":
            raise UnsafeArchiveError(archive, info.filename, "non-directory member at the root")
        plan.append(_Member(rel, kind, link))
    return plan


def _extract_zip(zf: zipfile.ZipFile, plan: list[_Member], staging: Path) -> None:
    for info, member in zip(zf.infolist(), plan, strict=True):
        if not member.rel:
            continue
        out = staging / member.rel
        if member.kind == "dir":
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.is_symlink() or out.is_file():
            out.unlink()
        if member.kind == "symlink":
            os.symlink(member.link, out)
            continue
        with zf.open(info) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, HASH_CHUNK_BYTES)


def _merge_into(src: Path, dst: Path) -> None:
    """Move the contents of folder ``src`` into folder ``dst`` (renames, no copies)."""
    for child in src.iterdir():
        target = dst / child.name
        if child.is_dir() and not child.is_symlink() and target.is_dir():
            _merge_into(child, target)
            continue
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(child, target)
    src.rmdir()


def _read_stamp(target: Path) -> dict[str, Any]:
    try:
        data = json.loads((target / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": 1, "archives": {}}
    if not isinstance(data, dict) or not isinstance(data.get("archives"), dict):
        return {"format": 1, "archives": {}}
    return data


def _stamp_matches(target: Path, record: Any, sha256: str) -> bool:
    if not isinstance(record, dict) or record.get("sha256") != sha256:
        return False
    files = record.get("files")
    if not isinstance(files, list):
        return False
    return all((target / rel).exists() or (target / rel).is_symlink() for rel in files)


def safe_extract(
    archive: Path | str, target: Path | str, *, archive_sha256: str | None = None
) -> list[Path]:
    """Safely extract a zip/tar(.gz/.xz/.bz2) archive into ``target``; return its files.

    Every member is checked first; an absolute path, a path leaving ``target``, a link
    pointing outside it, or a device/fifo member raises :class:`UnsafeArchiveError` and
    nothing is written. ``target`` may already exist (several archives can share it);
    a per-archive record in ``target/.extracted.json`` makes repeated calls a no-op.
    Pass ``archive_sha256`` when already known to skip hashing the archive.
    """
    archive = Path(archive)
    target = Path(target)
    fmt = detect_archive_format(archive)
    digest = _normalise_digest(archive_sha256, 64, "sha256") or file_sha256(archive)
    stamp = _read_stamp(target)
    if _stamp_matches(target, stamp["archives"].get(archive.name), digest):
        return [target / rel for rel in stamp["archives"][archive.name]["files"]]

    try:
        if fmt == "zip":
            with zipfile.ZipFile(archive) as zf:
                plan = _plan_zip(archive, zf)
                staging = _extract_to_staging(target, lambda d: _extract_zip(zf, plan, d))
        else:
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                plan = _plan_tar(archive, members)
                staging = _extract_to_staging(
                    target, lambda d: _extract_tar(archive, tf, members, d)
                )
    except (tarfile.ReadError, tarfile.CompressionError, zipfile.BadZipFile, EOFError) as exc:
        raise ArchiveError(f"cannot read {fmt} archive {archive.name}: {exc}") from exc

    files = sorted({m.rel for m in plan if m.kind != "dir" and m.rel})
    try:
        if not target.exists():
            os.replace(staging, target)  # the whole tree appears at once
        else:
            old = stamp["archives"].pop(archive.name, None)
            _write_stamp(target, stamp)  # forget the old record before touching files
            if isinstance(old, dict):
                for rel in set(old.get("files") or []) - set(files):
                    stale = target / rel
                    if stale.is_symlink() or stale.is_file():
                        stale.unlink()
            _merge_into(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    stamp["archives"][archive.name] = {
        "archive": archive.name,
        "sha256": digest,
        "format": fmt,
        "member_count": len(plan),
        "extracted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    _write_stamp(target, stamp)
    return [target / rel for rel in files]


def _extract_tar(
    archive: Path, tf: tarfile.TarFile, members: list[tarfile.TarInfo], staging: Path
) -> None:
    try:
        tf.extractall(staging, members=members, filter="data")
    except tarfile.FilterError as exc:  # our checks should have caught it first
        member = exc.tarinfo.name if exc.tarinfo is not None else "?"
        raise UnsafeArchiveError(archive, member, str(exc)) from exc


def _extract_to_staging(target: Path, extract: Any) -> Path:
    """Create a temporary sibling of ``target``, run ``extract`` into it, return it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.extracting-", dir=target.parent))
    try:
        extract(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _write_stamp(target: Path, stamp: dict[str, Any]) -> None:
    _write_text_atomic(target / STAMP_NAME, json.dumps(stamp, indent=1, sort_keys=True) + "\n")
