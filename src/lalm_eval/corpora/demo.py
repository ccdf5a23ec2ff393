"""Offline demo corpus: real speech, synthetic speech and real sound events from Debian.

``build_demo_sources`` turns the pinned catalog (``demo_catalog.yaml``) into source
tables (``speech.csv``, ``events.csv``; see docs/architecture.md) plus WAV files.
``compose_backgrounds`` mixes those real event recordings into acoustic-scene
background clips and writes ``background.csv``.

Everything is deterministic: the same catalog, packages and seed give byte-identical
outputs.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import yaml

from lalm_eval.audio import fade_edges
from lalm_eval.corpora.tables import write_rows
from lalm_eval.hashing import bytes_sha256

from . import tables as _tables
from .debian import extract_deb, fetch_deb, read_deb_members
from .opensfx import read_opensfx_entries

__all__ = [
    "BACKGROUND_COLUMNS",
    "EVENT_COLUMNS",
    "SPEECH_COLUMNS",
    "active_span",
    "build_demo_sources",
    "compose_backgrounds",
    "load_catalog",
    "validate_catalog",
]

# Contract columns (docs/architecture.md), in the order the tables module writes them.
SPEECH_COLUMNS = list(_tables.SPEECH_COLUMNS)
BACKGROUND_COLUMNS = list(_tables.BACKGROUND_COLUMNS)
EVENT_COLUMNS = ["event_id", "label", "path", "origin", "licence", "sha256", "duration_s"]

_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_CONTAINER_SEP = "#"

# Activity detection: 10 ms frames, active = within 35 dB of the loudest frame.
_FRAME_S = 0.01
_ACTIVE_REL_DB = 35.0
_ACTIVE_FLOOR_DB = -70.0

# Mixing levels for compose_backgrounds (dBFS RMS over the active part).
_FG_REF_DB = -20.0
_FG_GAIN_DB = (-6.0, 0.0)
_BED_GAIN_DB = (-14.0, -8.0)
_PEAK_LIMIT = 10 ** (-1.0 / 20)  # -1 dBFS
_MAX_PLACEMENT_TRIES = 25


# --------------------------------------------------------------------------- catalog


def read_packaged_yaml(name: str, path: Path | None = None) -> Any:
    """Parse ``path``, or the YAML file ``name`` packaged in ``lalm_eval.corpora``."""
    if path is None:
        text = resources.files("lalm_eval.corpora").joinpath(name).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def load_catalog(path: Path | None = None) -> dict[str, Any]:
    """Load and validate the demo catalog (the packaged one when ``path`` is None)."""
    catalog = read_packaged_yaml("demo_catalog.yaml", path)
    validate_catalog(catalog)
    return catalog


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(f"demo catalog: {message}")


def validate_catalog(catalog: Mapping[str, Any]) -> None:
    """Check the catalog's structure and cross references; raise ValueError on problems."""
    _require(isinstance(catalog, Mapping), "top level must be a mapping")
    for key in ("packages", "speech_real", "speech_tts", "events", "scenes"):
        _require(key in catalog, f"missing section {key!r}")
    packages = {}
    for pkg in catalog["packages"]:
        for key in ("name", "version", "sha256", "licence"):
            _require(key in pkg, f"package entry {pkg!r} lacks {key!r}")
        _require(
            re.fullmatch(r"[0-9a-f]{64}", str(pkg["sha256"])) is not None,
            f"package {pkg['name']}: sha256 must be 64 lower-case hex digits",
        )
        _require(pkg["name"] not in packages, f"package {pkg['name']} listed twice")
        packages[pkg["name"]] = pkg
    ids: set[str] = set()

    def check_id(value: str, what: str) -> None:
        _require(bool(_ID_RE.match(str(value))), f"{what} {value!r} is not filename-safe")
        _require(value not in ids, f"duplicate id {value!r}")
        ids.add(value)

    for item in catalog["speech_real"]:
        for key in ("source_id", "package", "member", "transcript"):
            _require(key in item, f"speech_real entry {item!r} lacks {key!r}")
        check_id(item["source_id"], "speech source_id")
        _require(item["package"] in packages, f"{item['source_id']}: unknown package")
    tts = catalog.get("tts", {})
    if catalog["speech_tts"]:
        _require(bool(tts), "speech_tts needs a 'tts' section naming the flite packages")
        for name in tts.get("packages", []):
            _require(name in packages, f"tts package {name!r} is not in packages")
    for item in catalog["speech_tts"]:
        for key in ("source_id", "voice", "text"):
            _require(key in item, f"speech_tts entry {item!r} lacks {key!r}")
        check_id(item["source_id"], "speech source_id")
    labels: set[str] = set()
    for ev in catalog["events"]:
        for key in ("event_id", "label", "package", "member", "licence"):
            _require(key in ev, f"event entry {ev!r} lacks {key!r}")
        check_id(ev["event_id"], "event_id")
        _require(bool(_ID_RE.match(ev["label"])), f"label {ev['label']!r} is not filename-safe")
        _require(ev["package"] in packages, f"{ev['event_id']}: unknown package")
        if _CONTAINER_SEP in ev["member"]:
            container = ev["member"].split(_CONTAINER_SEP, 1)[0]
            _require(
                container in packages[ev["package"]].get("containers", {}),
                f"{ev['event_id']}: container {container!r} not declared for {ev['package']}",
            )
        t0, t1 = ev.get("trim_start_s"), ev.get("trim_end_s")
        if t0 is not None and t1 is not None:
            _require(float(t1) > float(t0), f"{ev['event_id']}: trim_end_s <= trim_start_s")
        labels.add(ev["label"])
    _require(isinstance(catalog["scenes"], Mapping), "scenes must be a mapping")
    for scene, spec in catalog["scenes"].items():
        _require(bool(_ID_RE.match(scene)), f"scene name {scene!r} is not filename-safe")
        _require(bool(spec.get("events")), f"scene {scene} has no event classes")
        for label in list(spec.get("events", [])) + list(spec.get("bed") or []):
            _require(label in labels, f"scene {scene} uses unknown label {label!r}")


# --------------------------------------------------------------------------- audio utils


def _to_mono(x: np.ndarray) -> np.ndarray:
    """Average channels of a (frames, channels) array into float64 mono."""
    x = np.asarray(x, dtype=np.float64)
    return x.mean(axis=1) if x.ndim == 2 else x


def decode_audio(data: bytes, what: str) -> tuple[np.ndarray, int]:
    """Decode WAV/FLAC/OGG/MP3 bytes to float64 mono; errors name ``what``."""
    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    except Exception as exc:  # soundfile raises several types
        raise ValueError(f"{what}: cannot decode audio ({exc})") from exc
    return _to_mono(x), int(sr)


def wav_bytes(x: np.ndarray, sr: int) -> bytes:
    """Encode mono float audio as 16-bit PCM WAV (scaled down if it would clip)."""
    x = np.asarray(x, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        x = x / peak * 0.999
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _frame_db(x: np.ndarray, hop: int) -> np.ndarray:
    n = max(1, int(np.ceil(len(x) / hop)))
    padded = np.zeros(n * hop)
    padded[: len(x)] = x
    power = np.mean(padded.reshape(n, hop) ** 2, axis=1)
    return 10 * np.log10(power + 1e-20)


def active_span(x: np.ndarray, sr: int) -> tuple[int, int] | None:
    """Sample range ``[start, end)`` where ``x`` is audibly non-silent, or None if silent.

    A 10 ms frame is active when it is within 35 dB of the loudest frame and above
    -70 dBFS.
    """
    if len(x) == 0:
        return None
    hop = max(1, int(round(sr * _FRAME_S)))
    db = _frame_db(np.asarray(x, dtype=np.float64), hop)
    threshold = max(float(db.max()) - _ACTIVE_REL_DB, _ACTIVE_FLOOR_DB)
    active = np.flatnonzero(db > threshold)
    if active.size == 0:
        return None
    return int(active[0] * hop), int(min(len(x), (active[-1] + 1) * hop))


def _rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x)) + 1e-20))


def _check_audio(x: np.ndarray, sr: int, what: str, min_s: float, max_s: float) -> None:
    """Refuse audio that is silent, too short or too long."""
    dur = len(x) / sr
    if not min_s <= dur <= max_s:
        raise ValueError(f"{what}: duration {dur:.2f} s outside [{min_s}, {max_s}] s")
    span = active_span(x, sr)
    if span is None or _rms_db(x[span[0] : span[1]]) < -50.0:
        raise ValueError(f"{what}: audio is silent")


# --------------------------------------------------------------------------- flite


@dataclass(frozen=True)
class _Flite:
    """A runnable flite binary and the package version it comes from."""

    binary: Path
    env: dict[str, str]
    version: str

    def synth(self, voice: str, text: str, tmp_dir: Path) -> bytes:
        """Synthesise ``text`` with ``voice``; return the WAV bytes flite wrote."""
        out = tmp_dir / "flite_out.wav"
        proc = subprocess.run(
            [str(self.binary), "-voice", voice, "-t", text, "-o", str(out)],
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"flite failed for voice {voice!r}: {proc.stderr.strip()}")
        data = out.read_bytes()
        out.unlink()
        return data

    def voices(self) -> set[str]:
        """Voices compiled into this flite (``flite -lv``)."""
        proc = subprocess.run(
            [str(self.binary), "-lv"], capture_output=True, text=True, env=self.env, check=False
        )
        text = proc.stdout + proc.stderr
        return set(text.split(":", 1)[-1].split())


def _host_arch() -> str | None:
    try:
        proc = subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    return proc.stdout.strip() or None


def _prepare_flite(catalog: Mapping[str, Any], debs: Mapping[str, Path], work_dir: Path) -> _Flite:
    """Unpack the pinned flite packages into ``work_dir`` (or fall back to a system flite)."""
    tts = catalog["tts"]
    names: list[str] = list(tts["packages"])
    versions = {p["name"]: p["version"] for p in catalog["packages"]}
    arches = {debs[n].name.removesuffix(".deb").rsplit("_", 1)[-1] for n in names}
    host = _host_arch()
    if host is not None and arches <= {host, "all"}:
        root = work_dir / "flite-root"
        if root.exists():
            shutil.rmtree(root)
        for name in names:
            extract_deb(debs[name], root)
        env = dict(os.environ)
        lib_dir = str(root / tts["library_dir"])
        env["LD_LIBRARY_PATH"] = lib_dir + (
            os.pathsep + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else ""
        )
        return _Flite(root / tts["binary"], env, versions[names[0]])
    system = shutil.which("flite")
    if system is None:
        raise RuntimeError(
            f"the pinned flite packages are for {sorted(arches)}, this host is {host}; "
            "install flite (apt-get install flite) to synthesise the TTS speech"
        )
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "flite"], capture_output=True, text=True
    )
    return _Flite(Path(system), dict(os.environ), proc.stdout.strip() or "unknown")


# --------------------------------------------------------------------------- build


def _transcripts(catalog: Mapping[str, Any], debs: Mapping[str, Path]) -> dict[str, str]:
    """Asterisk prompt transcripts keyed by prompt name (``demo-thanks``, ``followme/sorry``)."""
    spec = catalog["transcripts"]
    member = spec["member"]
    raw = read_deb_members(debs[spec["package"]], [member])[member]
    if member.endswith(".gz"):
        raw = gzip.decompress(raw)
    out: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.strip() or line.startswith(";") or ":" not in line:
            continue
        key, text = line.split(":", 1)
        out[key.strip()] = " ".join(text.split())
    return out


def _prompt_key(member: str, sound_root: str) -> str:
    rel = member.removeprefix(sound_root.rstrip("/") + "/")
    return rel.rsplit(".", 1)[0]


def _apply_trim(x: np.ndarray, sr: int, ev: Mapping[str, Any]) -> np.ndarray:
    start = ev.get("trim_start_s")
    end = ev.get("trim_end_s")
    i0 = int(round(float(start) * sr)) if start is not None else 0
    i1 = int(round(float(end) * sr)) if end is not None else len(x)
    i1 = min(i1, len(x))
    if i1 <= i0:
        raise ValueError(f"{ev['event_id']}: trim leaves no audio")
    return x[i0:i1]


def _sources_md(
    catalog: Mapping[str, Any],
    speech_rows: Sequence[Mapping[str, Any]],
    event_rows: Sequence[Mapping[str, Any]],
    flite_version: str,
) -> str:
    """Human-readable manifest of packages, versions and licences."""
    lines = [
        "# Demo corpus sources",
        "",
        "Built by `lalm_eval.corpora.demo.build_demo_sources` from Debian package archives",
        "(fetched with `apt-get download NAME=VERSION`, sha256-pinned) and speech synthesised",
        "locally with flite. Licence texts: `licenses/<package>.copyright`.",
        "",
        "## Packages",
        "",
        "| package | version | sha256 | licence |",
        "|---|---|---|---|",
    ]
    for pkg in catalog["packages"]:
        lines.append(
            f"| {pkg['name']} | {pkg['version']} | `{pkg['sha256'][:16]}…` | {pkg['licence']} |"
        )
    real = [r for r in speech_rows if r["speaker"] == "asterisk"]
    tts = [r for r in speech_rows if r["speaker"] != "asterisk"]
    voices = sorted({r["speaker"] for r in tts})
    lines += [
        "",
        "## Speech",
        "",
        f"- {len(real)} real prompts (Allison Smith, Asterisk core sounds, 8 kHz), "
        f"licence {', '.join(sorted({r['licence'] for r in real})) or '-'}.",
        f"- {len(tts)} synthetic sentences written for this project, flite {flite_version} "
        f"voices {', '.join(voices) or '-'}, licence "
        f"{', '.join(sorted({r['licence'] for r in tts})) or '-'}.",
        "",
        "## Sound events",
        "",
        "| event_id | label | origin | licence |",
        "|---|---|---|---|",
    ]
    for row in event_rows:
        lines.append(f"| {row['event_id']} | {row['label']} | {row['origin']} | {row['licence']} |")
    counts: dict[str, int] = {}
    for row in event_rows:
        counts[row["licence"]] = counts.get(row["licence"], 0) + 1
    lines += [
        "",
        "Event licences: " + ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())) + ".",
        "CC-BY/CC-BY-SA files require attribution (authors are in the copyright files and,",
        "for OpenSFX, in the container's entry descriptions); share-alike terms apply to",
        "derived mixtures of CC-BY-SA material.",
        "",
        "## Scenes",
        "",
    ]
    for scene, spec in catalog["scenes"].items():
        bed = ", ".join(spec.get("bed") or []) or "none"
        lines.append(f"- **{scene}**: events {', '.join(spec['events'])}; bed {bed}")
    return "\n".join(lines) + "\n"


def _write_speech(
    out_dir: Path, source_id: str, blob: bytes, transcript: str, *, speaker: str, origin: str,
    licence: str,
) -> dict[str, Any]:
    """Decode, check and write one speech item; return its source-table row."""
    x, sr = decode_audio(blob, source_id)
    _check_audio(x, sr, source_id, 1.0, 20.0)
    data = wav_bytes(x, sr)
    rel = f"speech/{source_id}.wav"
    (out_dir / rel).write_bytes(data)
    return {"source_id": source_id, "path": rel, "transcript": transcript, "speaker": speaker,
            "origin": origin, "licence": licence, "sha256": bytes_sha256(data)}


def build_demo_sources(
    catalog_path: Path | None, work_dir: Path, out_dir: Path, seed: int = 0
) -> None:
    """Fetch the pinned packages and write speech/event WAVs and source tables to ``out_dir``.

    Writes ``speech/*.wav``, ``events/*.wav``, ``speech.csv``, ``events.csv``,
    ``SOURCES.md`` and ``licenses/<package>.copyright``. Debs are cached in
    ``work_dir/debs``. The build has no random choices; ``seed`` is accepted for interface
    symmetry with :func:`compose_backgrounds` and does not change the output.
    """
    del seed  # no randomness here: the catalog fixes every choice
    catalog = load_catalog(catalog_path)
    work_dir = Path(work_dir)
    out_dir = Path(out_dir)
    deb_dir = work_dir / "debs"
    debs: dict[str, Path] = {}
    versions: dict[str, str] = {}
    for pkg in catalog["packages"]:
        debs[pkg["name"]] = fetch_deb(pkg["name"], pkg["version"], pkg["sha256"], deb_dir)
        versions[pkg["name"]] = pkg["version"]
    spdx_default = {p["name"]: p.get("spdx", "") for p in catalog["packages"]}
    for sub in ("speech", "events", "licenses"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)

    # Copyright files, for attribution.
    for name, deb in debs.items():
        member = f"usr/share/doc/{name}/copyright"
        data = read_deb_members(deb, [member])[member]
        (out_dir / "licenses" / f"{name}.copyright").write_bytes(data)

    speech_rows: list[dict[str, Any]] = []

    # Real speech with transcripts checked against the package's transcript file.
    transcripts = _transcripts(catalog, debs)
    sound_root = catalog["transcripts"]["sound_root"]
    by_pkg: dict[str, list[Mapping[str, Any]]] = {}
    for item in catalog["speech_real"]:
        by_pkg.setdefault(item["package"], []).append(item)
    for pkg_name, items in by_pkg.items():
        blobs = read_deb_members(debs[pkg_name], [it["member"] for it in items])
        for item in items:
            key = _prompt_key(item["member"], sound_root)
            official = transcripts.get(key)
            if official is None or official != " ".join(item["transcript"].split()):
                raise ValueError(
                    f"{item['source_id']}: catalog transcript {item['transcript']!r} does not "
                    f"match the package transcript {official!r} for {key!r}"
                )
            speech_rows.append(
                _write_speech(
                    out_dir, item["source_id"], blobs[item["member"]], item["transcript"],
                    speaker="asterisk",
                    origin=f"{pkg_name}={versions[pkg_name]}:{item['member']}",
                    licence=item.get("licence") or spdx_default[pkg_name],
                )
            )

    # Synthetic speech (flite from the pinned packages), checked for determinism.
    flite_version = "-"
    if catalog["speech_tts"]:
        flite = _prepare_flite(catalog, debs, work_dir)
        flite_version = flite.version
        available = flite.voices()
        wanted = {it["voice"] for it in catalog["speech_tts"]}
        if not wanted <= available:
            raise RuntimeError(f"flite lacks voice(s) {sorted(wanted - available)}")
        tts_licence = catalog["tts"].get("licence", "")
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            for item in catalog["speech_tts"]:
                first = flite.synth(item["voice"], item["text"], Path(tmp))
                second = flite.synth(item["voice"], item["text"], Path(tmp))
                if first != second:
                    raise RuntimeError(f"{item['source_id']}: flite output is not deterministic")
                speech_rows.append(
                    _write_speech(
                        out_dir, item["source_id"], first, item["text"],
                        speaker=item["voice"],
                        origin=f"flite={flite.version}:voice={item['voice']}",
                        licence=item.get("licence") or tts_licence,
                    )
                )

    # Sound events.
    event_rows: list[dict[str, Any]] = []
    members_by_pkg: dict[str, list[str]] = {}
    for ev in catalog["events"]:
        member = ev["member"]
        if _CONTAINER_SEP in member:
            container = member.split(_CONTAINER_SEP, 1)[0]
            member = catalog_container(catalog, ev["package"], container)
        members_by_pkg.setdefault(ev["package"], [])
        if member not in members_by_pkg[ev["package"]]:
            members_by_pkg[ev["package"]].append(member)
    blobs_by_pkg = {
        name: read_deb_members(debs[name], members) for name, members in members_by_pkg.items()
    }
    container_cache: dict[tuple[str, str], dict[str, Any]] = {}
    for ev in catalog["events"]:
        pkg_name = ev["package"]
        blobs = blobs_by_pkg[pkg_name]
        if _CONTAINER_SEP in ev["member"]:
            container, entry = ev["member"].split(_CONTAINER_SEP, 1)
            cache_key = (pkg_name, container)
            if cache_key not in container_cache:
                path_in_deb = catalog_container(catalog, pkg_name, container)
                container_cache[cache_key] = {
                    e.name: e for e in read_opensfx_entries(blobs[path_in_deb])
                }
            entries = container_cache[cache_key]
            if entry not in entries:
                raise ValueError(
                    f"{ev['event_id']}: {container} in {pkg_name} has no entry {entry!r}"
                )
            found = entries[entry]
            if found.licence and found.licence != ev["licence"]:
                raise ValueError(
                    f"{ev['event_id']}: catalog licence {ev['licence']} but the entry says "
                    f"{found.licence}"
                )
            raw = found.wav
        else:
            raw = blobs[ev["member"]]
        x, sr = decode_audio(raw, ev["event_id"])
        x = _apply_trim(x, sr, ev)
        _check_audio(x, sr, ev["event_id"], 0.05, 60.0)
        data = wav_bytes(x, sr)
        rel = f"events/{ev['event_id']}.wav"
        (out_dir / rel).write_bytes(data)
        event_rows.append(
            {
                "event_id": ev["event_id"],
                "label": ev["label"],
                "path": rel,
                "origin": f"{pkg_name}={versions[pkg_name]}:{ev['member']}",
                "licence": ev["licence"],
                "sha256": bytes_sha256(data),
                "duration_s": f"{len(x) / sr:.3f}",
            }
        )

    write_rows(out_dir / "speech.csv", SPEECH_COLUMNS, speech_rows)
    write_rows(out_dir / "events.csv", EVENT_COLUMNS, event_rows)
    (out_dir / "SOURCES.md").write_text(
        _sources_md(catalog, speech_rows, event_rows, flite_version), encoding="utf-8"
    )


def catalog_container(catalog: Mapping[str, Any], package: str, container: str) -> str:
    """Path inside ``package`` of a declared sound container such as ``opensfx.cat``."""
    for pkg in catalog["packages"]:
        if pkg["name"] == package:
            try:
                return pkg["containers"][container]
            except KeyError:
                break
    raise ValueError(f"package {package} declares no container {container!r}")


# --------------------------------------------------------------------------- backgrounds


def _stable_int(text: str) -> int:
    """A platform-independent 32-bit integer derived from ``text`` (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "little")


def _normalise_scenes(scenes: Mapping[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    """Accept ``{scene: {events: [...], bed: [...]}}`` or ``{scene: [labels]}``."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for name, spec in scenes.items():
        if not _ID_RE.match(name):
            raise ValueError(f"scene name {name!r} is not filename-safe")
        if isinstance(spec, Mapping):
            events = sorted(set(spec.get("events") or []))
            bed = sorted(set(spec.get("bed") or []))
        else:
            events, bed = sorted(set(spec)), []
        if not events:
            raise ValueError(f"scene {name!r} has no event classes")
        out[name] = (events, bed)
    return out


def _loop_to_length(x: np.ndarray, n: int, xfade: int) -> np.ndarray:
    """Repeat ``x`` with linear cross-fades until it has ``n`` samples."""
    out = x.copy()
    while len(out) < n:
        xf = min(xfade, len(x) // 2, len(out))
        if xf <= 0:
            out = np.concatenate([out, x])
            continue
        ramp = np.linspace(0.0, 1.0, xf, endpoint=False)
        joint = out[-xf:] * (1.0 - ramp) + x[:xf] * ramp
        out = np.concatenate([out[:-xf], joint, x[xf:]])
    return out[:n]


class _EventAudio:
    """Loads event WAVs once, as mono float64 at the target rate."""

    def __init__(self, base: Path, sample_rate: int) -> None:
        self.base = base
        self.sample_rate = sample_rate
        self._cache: dict[str, np.ndarray] = {}

    def get(self, row: Mapping[str, str]) -> np.ndarray:
        path = Path(row["path"])
        if not path.is_absolute():
            path = self.base / path
        key = str(path)
        if key not in self._cache:
            x, sr = sf.read(str(path), dtype="float64", always_2d=True)
            mono = _to_mono(x)
            if sr != self.sample_rate:
                mono = soxr.resample(mono, sr, self.sample_rate)
            self._cache[key] = np.asarray(mono, dtype=np.float64)
        return self._cache[key]


def _render_clip(
    rng: np.random.Generator,
    events: list[str],
    bed: list[str],
    by_label: Mapping[str, list[dict[str, str]]],
    audio: _EventAudio,
    n_clip: int,
    sr: int,
) -> tuple[np.ndarray, list[dict[str, Any]], list[dict[str, str]]]:
    """Mix one clip; return audio, annotations and the event rows used."""
    mix = np.zeros(n_clip)
    annotations: list[dict[str, Any]] = []
    used: list[dict[str, str]] = []
    edge = max(1, int(0.01 * sr))

    if bed:
        label = bed[int(rng.integers(len(bed)))]
        row = by_label[label][int(rng.integers(len(by_label[label])))]
        x = audio.get(row)
        span = active_span(x, sr)
        if span is not None:
            unit = x[span[0] : span[1]]
            unit = np.roll(unit, -int(rng.integers(len(unit))))
            track = fade_edges(_loop_to_length(unit, n_clip, int(0.05 * sr)), int(0.05 * sr))
            target_db = _FG_REF_DB + float(rng.uniform(*_BED_GAIN_DB))
            track *= 10 ** ((target_db - _rms_db(track)) / 20)
            placed = active_span(track, sr)
            if placed is not None:
                mix += track
                annotations.append({"label": label, "onset": placed[0], "offset": placed[1]})
                used.append(row)

    spans: list[tuple[int, int]] = []
    max_len = max(1, int(0.9 * n_clip))
    n_events = int(rng.integers(2, 6))
    # Distinct classes while the pool lasts, then repeats.
    picks = [events[int(j)] for j in rng.permutation(len(events))[:n_events]]
    picks += [events[int(j)] for j in rng.integers(len(events), size=n_events - len(picks))]
    for label in picks:
        row = by_label[label][int(rng.integers(len(by_label[label])))]
        x = audio.get(row)
        span = active_span(x, sr)
        if span is None:
            continue
        seg = x[max(0, span[0] - edge) : min(len(x), span[1] + edge)]
        if len(seg) > max_len:
            start = int(rng.integers(len(seg) - max_len + 1))
            seg = seg[start : start + max_len]
        seg = fade_edges(seg, edge)
        local = active_span(seg, sr)
        if local is None:
            continue
        target_db = _FG_REF_DB + float(rng.uniform(*_FG_GAIN_DB))
        seg = seg * 10 ** ((target_db - _rms_db(seg[local[0] : local[1]])) / 20)
        seg_peak = float(np.max(np.abs(seg)))
        if seg_peak > _PEAK_LIMIT:  # impulsive sounds: cap the peak rather than the mix
            seg = seg * (_PEAK_LIMIT / seg_peak)
        chosen = None
        for _try in range(_MAX_PLACEMENT_TRIES):
            pos = int(rng.integers(n_clip - len(seg) + 1))
            a, b = pos + local[0], pos + local[1]
            if sum(1 for s, e in spans if a < e and s < b) <= 1:  # polyphony <= 2
                chosen = pos
                break
        if chosen is None:
            continue
        mix[chosen : chosen + len(seg)] += seg
        spans.append((chosen + local[0], chosen + local[1]))
        annotations.append(
            {"label": label, "onset": chosen + local[0], "offset": chosen + local[1]}
        )
        used.append(row)

    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak > _PEAK_LIMIT:
        mix *= _PEAK_LIMIT / peak
    for ann in annotations:
        ann["onset"] = round(ann["onset"] / sr, 3)
        ann["offset"] = round(ann["offset"] / sr, 3)
    annotations.sort(key=lambda a: (a["onset"], a["offset"], a["label"]))
    return mix, annotations, used


def text_label(label_id: str) -> str:
    """The text form scorers embed: catalog ids use underscores ('dog_bark' -> 'dog bark')."""
    return label_id.replace("_", " ")


def compose_backgrounds(
    events_csv: Path,
    scenes: Mapping[str, Any],
    out_dir: Path,
    n_per_scene: int,
    duration_s: float,
    sample_rate: int = 44100,
    seed: int = 0,
) -> Path:
    """Mix real event recordings into acoustic-scene background clips.

    Each clip holds 2-5 foreground events from the scene's classes (distinct classes
    while the pool lasts; at most two sounding at once; -6..0 dB around -20 dBFS RMS,
    peaks capped at -1 dBFS) plus, if the scene has a bed, one looped ambience recording
    8-14 dB below that. Recordings are resampled with soxr and mixed in mono. Clip ``i``
    of a scene depends only on ``(seed, scene, i)``. Writes ``out_dir/clips/*.wav`` and returns
    ``out_dir/background.csv`` whose ``events`` column gives each event's label and the
    onset/offset (s) of its non-silent part.
    """
    events_csv = Path(events_csv)
    out_dir = Path(out_dir)
    if n_per_scene < 0:
        raise ValueError("n_per_scene must be >= 0")
    if duration_s <= 0:
        raise ValueError("duration_s must be > 0")
    with open(events_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    by_label: dict[str, list[dict[str, str]]] = {}
    for row in sorted(rows, key=lambda r: r["event_id"]):
        by_label.setdefault(row["label"], []).append(row)
    spec = _normalise_scenes(scenes)
    for name, (events, bed) in spec.items():
        missing = [lab for lab in events + bed if lab not in by_label]
        if missing:
            raise ValueError(f"scene {name!r}: no recordings in {events_csv} for {missing}")
    audio = _EventAudio(events_csv.parent, sample_rate)
    n_clip = int(round(duration_s * sample_rate))
    clips_dir = out_dir / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    table: list[dict[str, Any]] = []
    for name in sorted(spec):
        events, bed = spec[name]
        for i in range(n_per_scene):
            rng = np.random.default_rng([seed, _stable_int(name), i])
            mix, annotations, used = _render_clip(
                rng, events, bed, by_label, audio, n_clip, sample_rate
            )
            data = wav_bytes(mix, sample_rate)
            source_id = f"demo_bg_{name}_{i:03d}"
            rel = f"clips/{source_id}.wav"
            (out_dir / rel).write_bytes(data)
            table.append(
                {
                    "source_id": source_id,
                    "path": rel,
                    "origin": f"demo-compose=seed{seed}:" + "+".join(r["event_id"] for r in used),
                    "licence": " AND ".join(sorted({r["licence"] for r in used})),
                    "sha256": bytes_sha256(data),
                    "scene": text_label(name),
                    "events": json.dumps(
                        [{**a, "label": text_label(a["label"])} for a in annotations]
                    ),
                }
            )
    csv_path = out_dir / "background.csv"
    write_rows(csv_path, BACKGROUND_COLUMNS, table)
    return csv_path
