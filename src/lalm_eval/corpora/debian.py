"""Fetch pinned Debian package archives and read files out of them with plain Python.

Only the ordinary client (``apt-get download``) touches the network. Everything else
(``ar`` container, ``data.tar.*``) is parsed here; ``dpkg-deb`` is used only as a
fallback for compressions the running Python cannot open (zstd before Python 3.14).
"""

from __future__ import annotations

import io
import lzma
import shutil
import subprocess
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from lalm_eval.hashing import file_sha256

__all__ = [
    "DebArchiveError",
    "DebFetchError",
    "DebMemberMissingError",
    "deb_file_name_prefix",
    "extract_deb",
    "fetch_deb",
    "read_deb_members",
]

AR_MAGIC = b"!<arch>\n"
AR_HEADER_SIZE = 60


class DebFetchError(RuntimeError):
    """``apt-get download`` failed or delivered a file with the wrong sha256."""


class DebArchiveError(ValueError):
    """A .deb file is not a well-formed Debian binary package."""


class DebMemberMissingError(DebArchiveError, KeyError):
    """Requested member(s) are not present in the package's data archive."""

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return str(self.args[0]) if self.args else ""


def deb_file_name_prefix(name: str, version: str) -> str:
    """File-name prefix apt uses for ``name=version`` (an epoch ``1:`` becomes ``1%3a``)."""
    return f"{name}_{version.replace(':', '%3a')}_"


def _find_downloaded(dest_dir: Path, name: str, version: str) -> Path | None:
    """The .deb apt-get wrote for ``name=version`` in ``dest_dir`` (any architecture)."""
    prefix = deb_file_name_prefix(name, version)
    hits = sorted(
        p for p in dest_dir.iterdir() if p.name.startswith(prefix) and p.name.endswith(".deb")
    )
    return hits[0] if hits else None


def fetch_deb(name: str, version: str, sha256: str, dest_dir: Path) -> Path:
    """Download ``name=version`` with ``apt-get download`` into ``dest_dir`` and verify it.

    Idempotent: an existing file whose sha256 matches is returned without running apt.
    A file with the wrong hash is deleted; if a fresh download still mismatches, a
    :class:`DebFetchError` names the package, the expected and the actual hash.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    expected = sha256.strip().lower()
    existing = _find_downloaded(dest_dir, name, version)
    if existing is not None:
        if file_sha256(existing) == expected:
            return existing
        existing.unlink()  # stale or corrupt copy: fetch it again
    try:
        proc = subprocess.run(
            ["apt-get", "download", f"{name}={version}"],
            cwd=dest_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise DebFetchError(
            f"cannot download {name}={version}: apt-get is not available ({exc}); "
            "this step needs a Debian/Ubuntu machine with apt"
        ) from exc
    if proc.returncode != 0:
        raise DebFetchError(
            f"apt-get download {name}={version} failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()}\nHint: run `apt-get update` first (the package lists may "
            "be missing or stale) and check that this exact version is in the configured "
            "Debian release."
        )
    path = _find_downloaded(dest_dir, name, version)
    if path is None:
        raise DebFetchError(
            f"apt-get download {name}={version} reported success but no "
            f"{deb_file_name_prefix(name, version)}*.deb appeared in {dest_dir}"
        )
    actual = file_sha256(path)
    if actual != expected:
        path.unlink()
        raise DebFetchError(
            f"sha256 mismatch for {name}={version}: expected {expected}, got {actual} "
            f"(deleted {path.name})"
        )
    return path


def _ar_members(blob: bytes, source: str) -> dict[str, bytes]:
    """Parse a System V / GNU ``ar`` archive into ``{member name: bytes}``."""
    if not blob.startswith(AR_MAGIC):
        raise DebArchiveError(f"{source}: not an ar archive (bad magic)")
    members: dict[str, bytes] = {}
    pos = len(AR_MAGIC)
    while pos < len(blob):
        if pos + AR_HEADER_SIZE > len(blob):
            raise DebArchiveError(f"{source}: truncated ar header at byte {pos}")
        header = blob[pos : pos + AR_HEADER_SIZE]
        if header[58:60] != b"`\n":
            raise DebArchiveError(f"{source}: corrupt ar header at byte {pos}")
        name = header[0:16].decode("ascii", "replace").strip()
        if name.endswith("/") and name != "/":
            name = name[:-1]  # GNU style terminator
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as exc:
            raise DebArchiveError(f"{source}: bad member size in ar header at {pos}") from exc
        start = pos + AR_HEADER_SIZE
        if start + size > len(blob):
            raise DebArchiveError(f"{source}: ar member {name!r} is truncated")
        members[name] = blob[start : start + size]
        pos = start + size + (size % 2)  # members are 2-byte aligned
    return members


def _package_label(deb_path: Path) -> str:
    """Human name of a .deb for messages: ``name=version`` from its file name."""
    parts = deb_path.name.removesuffix(".deb").split("_")
    if len(parts) >= 2:
        return f"{parts[0]}={parts[1].replace('%3a', ':')}"
    return deb_path.name


def _data_tar(deb_path: Path) -> tarfile.TarFile:
    """Open the data.tar.* member of a .deb as an in-memory :class:`tarfile.TarFile`."""
    members = _ar_members(deb_path.read_bytes(), str(deb_path))
    if "debian-binary" not in members:
        raise DebArchiveError(f"{deb_path}: no debian-binary member; not a .deb")
    data_names = [n for n in members if n.startswith("data.tar")]
    if not data_names:
        raise DebArchiveError(f"{deb_path}: no data.tar.* member")
    data_name = data_names[0]
    payload = members[data_name]
    raw: bytes | None
    if data_name == "data.tar":
        raw = payload
    elif data_name == "data.tar.xz":
        raw = lzma.decompress(payload)
    elif data_name == "data.tar.gz":
        raw = zlib.decompress(payload, 16 + zlib.MAX_WBITS)
    elif data_name == "data.tar.bz2":
        import bz2

        raw = bz2.decompress(payload)
    elif data_name == "data.tar.zst":
        raw = _zstd_decompress(payload)
    else:
        raw = None
    if raw is None:
        raw = _dpkg_fsys_tarfile(deb_path)
    return tarfile.open(fileobj=io.BytesIO(raw), mode="r:")


def _zstd_decompress(payload: bytes) -> bytes | None:
    """Decompress zstd with whatever module this Python has; ``None`` when it has none."""
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14

        return zstd.decompress(payload)
    except ImportError:
        pass
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        return None
    return zstandard.ZstdDecompressor().decompressobj().decompress(payload)


def _dpkg_fsys_tarfile(deb_path: Path) -> bytes:
    """The uncompressed data tar via ``dpkg-deb --fsys-tarfile`` (fallback path)."""
    if shutil.which("dpkg-deb") is None:
        raise DebArchiveError(
            f"{deb_path}: Python cannot decompress its data archive and dpkg-deb is missing"
        )
    proc = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb_path)], capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise DebArchiveError(
            f"dpkg-deb --fsys-tarfile {deb_path} failed: {proc.stderr.decode(errors='replace')}"
        )
    return proc.stdout


def _norm(member: str) -> str:
    """Normalise a tar member path: no leading ``./`` or ``/``."""
    while member.startswith("./"):
        member = member[2:]
    return member.lstrip("/")


def read_deb_members(deb_path: Path, members: Iterable[str]) -> dict[str, bytes]:
    """Read regular files (or links to them) from a .deb's data archive.

    ``members`` are paths inside the package (``usr/share/...``; a leading ``./`` or
    ``/`` is ignored). Returns ``{member as given: bytes}``. Raises
    :class:`DebMemberMissingError` naming the missing member(s) and the package.
    """
    deb_path = Path(deb_path)
    wanted = list(dict.fromkeys(members))
    by_norm = {_norm(m): m for m in wanted}
    found: dict[str, bytes] = {}
    with _data_tar(deb_path) as tar:
        for info in tar.getmembers():
            key = _norm(info.name)
            if key not in by_norm or by_norm[key] in found:
                continue
            try:
                fh = tar.extractfile(info)
            except KeyError as exc:  # link whose target is not in the archive
                raise DebArchiveError(
                    f"member {by_norm[key]!r} of package {_package_label(deb_path)} is a "
                    f"link to {info.linkname!r}, which the package does not contain"
                ) from exc
            if fh is None:
                raise DebArchiveError(
                    f"member {by_norm[key]!r} of package {_package_label(deb_path)} "
                    "is not a regular file"
                )
            found[by_norm[key]] = fh.read()
    missing = [m for m in wanted if m not in found]
    if missing:
        raise DebMemberMissingError(
            f"package {_package_label(deb_path)} ({deb_path.name}) has no member(s): "
            + ", ".join(missing)
        )
    return {m: found[m] for m in wanted}


def extract_deb(deb_path: Path, dest_dir: Path) -> Path:
    """Unpack a .deb's whole data archive under ``dest_dir`` (tar 'data' safety filter)."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with _data_tar(Path(deb_path)) as tar:
        tar.extractall(dest_dir, filter="data")
    return dest_dir
