"""Tests for the corpus download layer against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lalm_eval.corpora import download as download_module
from lalm_eval.corpora.download import (
    STAMP_NAME,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    detect_archive_format,
    download,
    md5_file,
    safe_extract,
)
from lalm_eval.corpora.registry import (
    COMPLETE_NAME,
    CorpusNotReleasedError,
    RegistryError,
    UnknownCorpusError,
    fetch_corpus,
    get_corpus,
    load_registry,
)
from lalm_eval.hashing import file_sha256

# --------------------------------------------------------------------------- test server


class _Server(ThreadingHTTPServer):
    """Serves in-memory files; records (path, Range header, status) for every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.log: list[tuple[str, str | None, int]] = []
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def hits(self, path: str) -> list[tuple[str | None, int]]:
        with self.lock:
            return [(rng, status) for p, rng, status in self.log if p == path]


class _Handler(BaseHTTPRequestHandler):
    """GET with Range support plus per-path misbehaviour modes.

    Modes: ``normal`` (Range -> 206/416), ``truncate_first`` (first answer announces the
    full length but closes after half), ``ignore_range`` (always 200), ``flaky`` (first
    answer 503), ``always_500``.
    """

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence
        pass

    def _record(self, status: int) -> int:
        with self.server.lock:
            earlier = sum(1 for p, _, _ in self.server.log if p == self.path)
            self.server.log.append((self.path, self.headers.get("Range"), status))
        return earlier

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        body = self.server.files.get(self.path)
        mode = self.server.modes.get(self.path, "normal")
        range_header = self.headers.get("Range")
        if body is None:
            self._record(404)
            self._send(404, b"not found")
            return
        with self.server.lock:
            earlier = sum(1 for p, _, _ in self.server.log if p == self.path)
        if mode == "always_500" or (mode == "flaky" and earlier == 0):
            self._record(503 if mode == "flaky" else 500)
            self._send(503 if mode == "flaky" else 500, b"try later")
            return
        if mode == "truncate_first" and earlier == 0:
            self._record(200)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if range_header and mode != "ignore_range":
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self._record(416)
                self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                return
            self._record(206)
            content_range = f"bytes {start}-{len(body) - 1}/{len(body)}"
            self._send(206, body[start:], {"Content-Range": content_range})
            return
        self._record(200)
        self._send(200, body)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_module, "BACKOFF_BASE_S", 0.0)


# --------------------------------------------------------------------------- helpers


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar_bytes(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tar_with_member(info: tarfile.TarInfo, data: bytes = b"") -> bytes:
    """A tar.gz holding a harmless file first, then ``info``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ok = tarfile.TarInfo("ok.txt")
        ok.size = 2
        tf.addfile(ok, io.BytesIO(b"ok"))
        info.size = len(data) if info.isreg() else 0
        tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _zip_bytes(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name), data)
        for name, link in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, link)
    return buf.getvalue()


def _snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _relative(paths: list[Path], root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in paths)


ARCHIVE_FILES = {"top/a.txt": b"alpha\n", "top/sub/b.txt": b"beta\n" * 100, "c.txt": b"c"}


def _archive(kind: str) -> bytes:
    if kind == "zip":
        return _zip_bytes(ARCHIVE_FILES)
    mode = {"tar": "w", "tar.gz": "w:gz", "tar.xz": "w:xz", "tar.bz2": "w:bz2"}[kind]
    return _tar_bytes(ARCHIVE_FILES, mode)


# --------------------------------------------------------------------------- download


@pytest.mark.parametrize("kind", ["tar.gz", "zip", "tar", "tar.xz", "tar.bz2"])
def test_good_archive_downloads_verifies_extracts_and_is_idempotent(
    server: _Server, tmp_path: Path, kind: str
) -> None:
    data = _archive(kind)
    server.files["/corpus.bin"] = data
    dest = tmp_path / "downloads" / "corpus.bin"  # misleading suffix: format comes from bytes

    out = download(server.url("/corpus.bin"), dest, sha256=_sha256(data), size=len(data))

    assert out == dest
    assert dest.read_bytes() == data
    assert not dest.with_name("corpus.bin.part").exists()
    assert detect_archive_format(dest) == kind
    target = tmp_path / "corpus"
    extracted = safe_extract(dest, target)
    assert _relative(extracted, target) == sorted(ARCHIVE_FILES)
    for name, content in ARCHIVE_FILES.items():
        assert (target / name).read_bytes() == content
    stamp = json.loads((target / STAMP_NAME).read_text())["archives"]["corpus.bin"]
    assert stamp["sha256"] == _sha256(data)
    assert stamp["member_count"] == len(ARCHIVE_FILES)
    assert not [p for p in tmp_path.iterdir() if ".extracting-" in p.name]

    requests_before = len(server.log)
    assert download(server.url("/corpus.bin"), dest, sha256=_sha256(data)) == dest
    assert len(server.log) == requests_before, "a verified file must not be fetched again"
    (target / "c.txt").write_bytes(b"edited")  # a skipped extraction leaves this untouched
    again = safe_extract(dest, target)
    assert _relative(again, target) == sorted(ARCHIVE_FILES)
    assert (target / "c.txt").read_bytes() == b"edited"


def test_corrupt_file_raises_checksum_error_and_leaves_nothing(
    server: _Server, tmp_path: Path
) -> None:
    good = _archive("tar.gz")
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    server.files["/corpus.tar.gz"] = bytes(bad)
    dest = tmp_path / "corpus.tar.gz"

    with pytest.raises(ChecksumError) as info:
        download(server.url("/corpus.tar.gz"), dest, sha256=_sha256(good))

    message = str(info.value)
    assert "corpus.tar.gz" in message and "sha256" in message
    assert _sha256(good) in message and _sha256(bytes(bad)) in message
    assert not dest.exists()
    assert not dest.with_name("corpus.tar.gz.part").exists()
    assert len(server.hits("/corpus.tar.gz")) == 1


def test_md5_and_size_mismatches_are_reported(server: _Server, tmp_path: Path) -> None:
    data = b"some bytes" * 10
    server.files["/f.bin"] = data
    with pytest.raises(ChecksumError, match=r"md5 mismatch for f\.bin.*expected 0{32}"):
        download(server.url("/f.bin"), tmp_path / "f.bin", md5="0" * 32)
    with pytest.raises(ChecksumError, match=r"size mismatch for g\.bin: expected 101 bytes"):
        download(server.url("/f.bin"), tmp_path / "g.bin", size=len(data) + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert download(server.url("/f.bin"), tmp_path / "h.bin", md5=hashlib.md5(data).hexdigest())
    assert md5_file(tmp_path / "h.bin") == hashlib.md5(data).hexdigest()
    assert file_sha256(tmp_path / "h.bin") == _sha256(data)


def test_truncated_transfer_resumes_with_range(server: _Server, tmp_path: Path) -> None:
    data = bytes(range(256)) * 64
    half = len(data) // 2
    server.files["/big.bin"] = data
    server.modes["/big.bin"] = "truncate_first"
    dest = tmp_path / "big.bin"

    download(server.url("/big.bin"), dest, sha256=_sha256(data), chunk_size=1024)

    assert server.hits("/big.bin") == [(None, 200), (f"bytes={half}-", 206)]
    assert dest.read_bytes() == data
    assert file_sha256(dest) == _sha256(data)


def test_existing_part_from_interrupted_run_is_resumed(server: _Server, tmp_path: Path) -> None:
    data = b"0123456789" * 500
    server.files["/resume.bin"] = data
    dest = tmp_path / "resume.bin"
    dest.with_name("resume.bin.part").write_bytes(data[:1234])

    download(server.url("/resume.bin"), dest, sha256=_sha256(data), size=len(data))

    assert server.hits("/resume.bin") == [("bytes=1234-", 206)]
    assert dest.read_bytes() == data


def test_stale_part_that_fails_verification_is_fetched_once_more_in_full(
    server: _Server, tmp_path: Path
) -> None:
    data = b"new upstream bytes " * 50
    server.files["/stale.bin"] = data
    dest = tmp_path / "stale.bin"
    dest.with_name("stale.bin.part").write_bytes(b"old upstream prefix")

    download(server.url("/stale.bin"), dest, sha256=_sha256(data), progress=True)

    assert server.hits("/stale.bin") == [("bytes=19-", 206), (None, 200)]
    assert dest.read_bytes() == data


def test_complete_part_answered_416_is_verified_without_body(
    server: _Server, tmp_path: Path
) -> None:
    data = b"complete" * 100
    server.files["/done.bin"] = data
    dest = tmp_path / "done.bin"
    dest.with_name("done.bin.part").write_bytes(data)

    download(server.url("/done.bin"), dest, sha256=_sha256(data))

    assert server.hits("/done.bin") == [(f"bytes={len(data)}-", 416)]
    assert dest.read_bytes() == data


def test_server_ignoring_range_restarts_from_zero(server: _Server, tmp_path: Path) -> None:
    data = b"abcdefghij" * 300
    server.files["/norange.bin"] = data
    server.modes["/norange.bin"] = "ignore_range"
    dest = tmp_path / "norange.bin"
    # A stale prefix that would corrupt the file if the 200 answer were appended to it.
    dest.with_name("norange.bin.part").write_bytes(b"X" * 700)

    download(server.url("/norange.bin"), dest, sha256=_sha256(data))

    assert server.hits("/norange.bin") == [("bytes=700-", 200)]
    assert dest.read_bytes() == data


def test_transient_5xx_is_retried_and_permanent_errors_are_not(
    server: _Server, tmp_path: Path
) -> None:
    server.files["/flaky.bin"] = b"eventually"
    server.modes["/flaky.bin"] = "flaky"
    download(server.url("/flaky.bin"), tmp_path / "flaky.bin", sha256=_sha256(b"eventually"))
    assert [status for _, status in server.hits("/flaky.bin")] == [503, 200]

    server.files["/down.bin"] = b"never"
    server.modes["/down.bin"] = "always_500"
    with pytest.raises(DownloadError, match="giving up on down.bin after 3 attempts"):
        download(server.url("/down.bin"), tmp_path / "down.bin", retries=2)
    assert len(server.hits("/down.bin")) == 3

    with pytest.raises(DownloadError, match="HTTP 404") as info:
        download(server.url("/missing.bin"), tmp_path / "missing.bin")
    assert not isinstance(info.value, ChecksumError)
    assert len(server.hits("/missing.bin")) == 1


def test_existing_dest_that_does_not_verify_is_replaced(server: _Server, tmp_path: Path) -> None:
    data = b"fresh content"
    server.files["/f.txt"] = data
    dest = tmp_path / "f.txt"
    dest.write_bytes(b"stale content")

    download(server.url("/f.txt"), dest, sha256=_sha256(data))

    assert dest.read_bytes() == data
    assert len(server.hits("/f.txt")) == 1


def test_trust_on_first_use_pins_then_refuses_changed_upstream(
    server: _Server, tmp_path: Path
) -> None:
    server.files["/tofu.txt"] = b"version one"
    dest = tmp_path / "tofu.txt"
    sidecar = tmp_path / "tofu.txt.sha256"

    download(server.url("/tofu.txt"), dest)
    assert sidecar.read_text().split()[0] == _sha256(b"version one")
    download(server.url("/tofu.txt"), dest)  # idempotent: no request
    assert len(server.hits("/tofu.txt")) == 1

    dest.write_bytes(b"locally damaged")  # local damage is repaired from upstream
    download(server.url("/tofu.txt"), dest)
    assert dest.read_bytes() == b"version one"

    server.files["/tofu.txt"] = b"version two"
    dest.unlink()
    with pytest.raises(ChecksumError) as info:
        download(server.url("/tofu.txt"), dest)
    message = str(info.value)
    assert "tofu.txt" in message and "changed" in message and "unverified" in message
    assert _sha256(b"version one") in message and _sha256(b"version two") in message
    assert not dest.exists() and not tmp_path.joinpath("tofu.txt.part").exists()
    assert sidecar.read_text().split()[0] == _sha256(b"version one")


# --------------------------------------------------------------------------- safe_extract


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _hardlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    return info


def _fifo(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    return info


def _through_link_archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.addfile(_symlink("a/b/s", "../../"))
        evil = tarfile.TarInfo("a/b/s/../../evil")
        evil.size = 4
        tf.addfile(evil, io.BytesIO(b"evil"))
    return buf.getvalue()


UNSAFE_CASES: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "tar_dotdot": (lambda root: _tar_with_member(tarfile.TarInfo("../evil"), b"x"), "../evil"),
    "tar_absolute": (
        lambda root: _tar_with_member(tarfile.TarInfo(f"{root}/abs_evil"), b"x"),
        "abs_evil",
    ),
    "tar_symlink_out": (
        lambda root: _tar_with_member(_symlink("link", "../../outside")),
        "link",
    ),
    "tar_symlink_abs": (lambda root: _tar_with_member(_symlink("passwd", "/etc/passwd")), "passwd"),
    "tar_hardlink_out": (lambda root: _tar_with_member(_hardlink("hard", "../x")), "hard"),
    "tar_fifo": (lambda root: _tar_with_member(_fifo("pipe")), "pipe"),
    "tar_through_symlink": (lambda root: _through_link_archive(), "a/b/s/../../evil"),
    "zip_dotdot": (lambda root: _zip_bytes({"ok.txt": b"ok", "../evil": b"x"}), "../evil"),
    "zip_absolute": (
        lambda root: _zip_bytes({"ok.txt": b"ok", f"{root}/abs_evil": b"x"}),
        "abs_evil",
    ),
    "zip_symlink_out": (
        lambda root: _zip_bytes({"ok.txt": b"ok"}, {"link": "../../outside"}),
        "link",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSAFE_CASES))
def test_unsafe_archive_is_rejected_before_writing_anything(tmp_path: Path, case: str) -> None:
    build, member = UNSAFE_CASES[case]
    archive = tmp_path / "evil.archive"
    archive.write_bytes(build(tmp_path))
    before = _snapshot(tmp_path)

    with pytest.raises(UnsafeArchiveError) as info:
        safe_extract(archive, tmp_path / "work" / "target")

    assert member in info.value.member
    assert member in str(info.value) and "evil.archive" in str(info.value)
    assert _snapshot(tmp_path) == before, "nothing may be written inside or outside target"


def test_safe_extract_merges_archives_into_an_existing_folder(tmp_path: Path) -> None:
    target = tmp_path / "corpus"
    (target / "downloads").mkdir(parents=True)
    first = tmp_path / "audio.zip"
    first.write_bytes(_zip_bytes({"audio/1.wav": b"RIFF1", "audio/2.wav": b"RIFF2"}))
    second = tmp_path / "labels.tar.gz"
    second.write_bytes(_tar_bytes({"audio/labels.tsv": b"a\tb\n", "README": b"hi"}))

    safe_extract(first, target)
    safe_extract(second, target)

    assert sorted(p.name for p in (target / "audio").iterdir()) == ["1.wav", "2.wav", "labels.tsv"]
    assert (target / "downloads").is_dir()
    stamp = json.loads((target / STAMP_NAME).read_text())["archives"]
    assert set(stamp) == {"audio.zip", "labels.tar.gz"}
    assert stamp["audio.zip"]["member_count"] == 2


def test_links_inside_the_target_are_extracted(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        real = tarfile.TarInfo("data/real.txt")
        real.size = 2
        tf.addfile(real, io.BytesIO(b"hi"))
        tf.addfile(_symlink("data/alias.txt", "real.txt"))
        tf.addfile(_hardlink("data/hard.txt", "data/real.txt"))
    archive = tmp_path / "links.tgz"
    archive.write_bytes(buf.getvalue())

    files = safe_extract(archive, tmp_path / "out")

    assert _relative(files, tmp_path / "out") == [
        "data/alias.txt",
        "data/hard.txt",
        "data/real.txt",
    ]
    assert (tmp_path / "out" / "data" / "alias.txt").is_symlink()
    assert (tmp_path / "out" / "data" / "alias.txt").read_text() == "hi"
    assert (tmp_path / "out" / "data" / "hard.txt").read_text() == "hi"


# --------------------------------------------------------------------------- registry


def test_shipped_registry_loads_and_holds_the_pinned_facts() -> None:
    registry = load_registry()
    from lalm_eval.suites.xares.tasks import load_task_set

    # one entry per XARES task with shards (lalm_eval.corpora.xares_shards), unpinned
    xares = {f"xares_{name}" for name, task in load_task_set("challenge").tasks.items()
             if task.shards}
    assert len(xares) == 20 and all(not f.pin_verified for n in xares
                                    for f in registry[n].files)
    assert set(registry) - xares == {
        "vctk",
        "desed_public_eval",
        "maestro_real",
        "what_are_they_doing",
        "mmau_test_mini",
        "mmar",
        "akb_2000",
        "desta_aqa5m",
    }
    aqa = registry["desta_aqa5m"].files
    assert len(aqa) == 20 and not any(f.pin_verified for f in aqa)
    assert {f.filename for f in aqa} >= {"audio.0.jsonl", "speech.9.jsonl"}
    for entry in registry.values():
        assert entry.licence and entry.version and entry.used_by
        for item in entry.files:
            assert item.pin_verified is False or item.pinned
    vctk = registry["vctk"].files[0]
    assert vctk.size == 11_747_302_977 and vctk.extract and vctk.pin_verified
    assert vctk.sha256 == "f96258be9fdc2cbff6559541aae7ea4f59df3fcaf5cf963aae5ca647357e359c"
    maestro = registry["maestro_real"].files
    assert [f.md5 for f in maestro] == [
        "3de7cb4f92a115a6f5cc077a41ca07b3",
        "e6a3f84f8020725d559b38ccb494ef3d",
    ]
    assert not any(f.pin_verified for f in maestro)
    watd = registry["what_are_they_doing"].files
    wavs = [f for f in watd if f.filename.endswith(".wav")]
    assert len(wavs) == 80 and wavs[-1].filename == "dataset/v0/80.wav"
    assert all("e728f83c6014d97a47294ab4810a6390598f8af5" in f.url for f in watd)
    csv = next(f for f in watd if f.filename.endswith("v0.csv"))
    assert csv.size == 17_481 and csv.sha256 and csv.sha256.startswith("61a24673")
    assert registry["mmau_test_mini"].version == "v05.15.25"
    mmar_audio = registry["mmar"].files[1]
    assert mmar_audio.size == 2_983_578_514 and mmar_audio.extract
    assert registry["akb_2000"].released is False and registry["akb_2000"].files == ()


def test_unknown_corpus_suggests_close_match() -> None:
    with pytest.raises(UnknownCorpusError) as info:
        get_corpus("vtck")
    assert isinstance(info.value, KeyError)
    assert "did you mean 'vctk'" in str(info.value)


def test_invalid_registry_names_entry_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        """
corpora:
  - name: broken
    version: "1"
    description: d
    homepage: https://example.org
    licence: MIT
    licence_note: ""
    used_by: [x]
    layout_note: ""
    files:
      - {url: "https://example.org/a", filename: a, size: null, sha256: "abc",
         md5: null, pin_verified: false, extract: false, note: ""}
"""
    )
    with pytest.raises(RegistryError, match=r"entry 'broken', field 'files\[0\]\.sha256'"):
        load_registry(path)


def test_fetch_corpus_end_to_end(server: _Server, tmp_path: Path) -> None:
    audio = _tar_bytes({"audio/one.wav": b"RIFF-one", "audio/two.wav": b"RIFF-two"})
    labels = _zip_bytes({"labels/events.tsv": b"filename\tonset\n"})
    server.files.update({"/a/audio.tar.gz": audio, "/a/labels.zip": labels})
    for i in (1, 2, 3):
        server.files[f"/a/clip{i}.txt"] = f"clip {i}".encode()
    registry_path = tmp_path / "registry.yaml"
    registry_path.write_text(
        f"""
corpora:
  - name: tiny
    version: "1.0"
    description: A tiny test corpus.
    homepage: {server.url("/")}
    licence: CC0-1.0
    licence_note: ""
    used_by: [tests]
    layout_note: audio/ and labels/
    files:
      - url: {server.url("/a/audio.tar.gz")}
        filename: audio.tar.gz
        size: {len(audio)}
        sha256: {_sha256(audio)}
        md5: null
        pin_verified: true
        extract: true
        note: ""
      - url: {server.url("/a/labels.zip")}
        filename: labels.zip
        size: null
        sha256: null
        md5: {hashlib.md5(labels).hexdigest()}
        pin_verified: false
        extract: true
        note: ""
      - file_pattern:
          url: {server.url("/a/clip{id}.txt")}
          filename: clips/{{id}}.txt
          ids: 1..3
        extract: false
  - name: later
    version: unreleased
    description: Not yet out.
    homepage: https://example.org
    licence: NOASSERTION
    licence_note: ""
    used_by: [tests]
    layout_note: ""
    released: false
    files: []
"""
    )
    root = tmp_path / "data"

    corpus_dir = fetch_corpus("tiny", root, registry_path)

    assert corpus_dir == root / "tiny"
    assert (corpus_dir / "audio" / "two.wav").read_bytes() == b"RIFF-two"
    assert (corpus_dir / "labels" / "events.tsv").exists()
    assert (corpus_dir / "downloads" / "clips" / "3.txt").read_text() == "clip 3"
    assert (corpus_dir / "downloads" / "clips" / "3.txt.sha256").exists()
    complete = json.loads((corpus_dir / COMPLETE_NAME).read_text())
    assert complete["version"] == "1.0" and complete["completed_at"]
    by_name = {f["filename"]: f for f in complete["files"]}
    assert by_name["audio.tar.gz"]["sha256"] == _sha256(audio)
    assert by_name["audio.tar.gz"]["extracted_files"] == 2
    assert by_name["labels.zip"]["md5"] == hashlib.md5(labels).hexdigest()
    assert by_name["clips/1.txt"]["verified_by"] == "tofu"
    assert by_name["audio.tar.gz"]["verified_by"] == "registry"

    requests_before = len(server.log)
    assert fetch_corpus("tiny", root, registry_path) == corpus_dir
    assert fetch_corpus("tiny", root, registry_path, verify=True) == corpus_dir
    assert len(server.log) == requests_before

    with pytest.raises(CorpusNotReleasedError, match="not released"):
        fetch_corpus("later", root, registry_path)


def test_fetch_corpus_refuses_unreleased_akb(tmp_path: Path) -> None:
    with pytest.raises(CorpusNotReleasedError, match="not released"):
        fetch_corpus("akb_2000", tmp_path)
    assert not (tmp_path / "akb_2000").exists()
