"""Prepared sources: every source resampled and loudness-normalised once, packed for reuse.

A store is two files sharing a prefix: ``<prefix>.f32`` (all items' float32 samples, back to
back) and ``<prefix>.csv`` (one row per item: the source-table columns plus ``offset`` and
``n_samples`` into the sample file, measured loudness and gain). Items that cannot be used
are listed with their reason in ``<prefix>.rejected.csv``. Mixture jobs read one item at a time
from the sample file, so their memory does not grow with the corpus.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lalm_eval.audio import AudioError, load_audio, power
from lalm_eval.hashing import memo_file_sha256
from lalm_eval.loudness import LoudnessError, normalise_loudness
from lalm_eval.parallel import ordered_map

SOURCE_ROLES = ("speech", "background")


@dataclass(frozen=True)
class PrepareSettings:
    """How sources are prepared; part of every store's provenance."""

    sample_rate: int
    target_lufs: float
    min_duration_s: float = 0.5


@dataclass(frozen=True)
class PrepareSummary:
    n_ok: int
    n_rejected: int
    total_seconds: float


def _with_ext(prefix: Path, ext: str) -> Path:
    return prefix.parent / (prefix.name + ext)


def read_source_tables(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Concatenate source tables, resolving each ``path`` against its table's folder."""
    frames = []
    for table_path in map(Path, paths):
        df = pd.read_csv(table_path, dtype=str, keep_default_na=False)
        if "path" not in df.columns or "source_id" not in df.columns:
            raise ValueError(f"{table_path}: a source table needs 'source_id' and 'path' columns")
        base = table_path.parent
        df["path"] = [str(p if Path(p).is_absolute() else (base / p)) for p in df["path"]]
        df["table"] = str(table_path)
        frames.append(df)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    dupes = table["source_id"][table["source_id"].duplicated()].unique() if len(table) else []
    if len(dupes):
        raise ValueError(f"duplicate source_id across tables {list(paths)}: {list(dupes)[:5]}")
    return table


def _segment_bound(value: str) -> float | None:
    return float(value) if value not in ("", None) else None


def _check_sha256(row: dict) -> None:
    """AudioError when the row gives a sha256 and the file's bytes do not match it."""
    expected = str(row.get("sha256") or "").strip()
    if not expected:
        return
    actual = memo_file_sha256(row["path"])
    if actual != expected:
        raise AudioError(f"{row['path']}: sha256 mismatch (table says {expected}, "
                         f"file has {actual})")


def _prepare_one(args: tuple[dict, PrepareSettings]) -> tuple[dict, np.ndarray | None, str]:
    """Load, check and normalise one source row. Returns (row, samples or None, error)."""
    row, settings = args
    where = row["path"]
    try:
        audio = load_audio(
            row["path"],
            settings.sample_rate,
            _segment_bound(row.get("start_s", "")),
            _segment_bound(row.get("end_s", "")),
        )
        _check_sha256(row)
        if audio.duration_s < settings.min_duration_s:
            raise AudioError(
                f"{where}: too short ({audio.duration_s:.3f} s < {settings.min_duration_s} s)"
            )
        try:
            samples, measured, gain_db = normalise_loudness(
                audio.samples, settings.sample_rate, settings.target_lufs
            )
        except LoudnessError as exc:
            raise AudioError(f"{where}: {exc}; SNR and loudness are undefined") from exc
    except AudioError as exc:
        return row, None, str(exc)
    out = dict(row)
    out.update(
        original_rate=audio.original_rate,
        original_channels=audio.original_channels,
        conversions=audio.conversions,
        lufs_in=round(measured, 4),
        gain_db=round(gain_db, 4),
        lufs=settings.target_lufs,
        peak=float(np.max(np.abs(samples))),
        power=power(samples),
    )
    return out, samples, ""


def prepare_sources(
    table_paths: Sequence[str | Path],
    out_prefix: str | Path,
    settings: PrepareSettings,
    threads: int = 1,
    on_bad: str = "skip",
    progress: bool = False,
) -> PrepareSummary:
    """Prepare every row of ``table_paths`` into the store at ``out_prefix``.

    Bad items (missing, unreadable, truncated, not matching their ``sha256``, empty, NaN,
    silent, too short) are written to the rejected table with a reason naming the file;
    with ``on_bad='fail'`` the first one raises instead.
    """
    if on_bad not in ("skip", "fail"):
        raise ValueError(f"on_bad must be 'skip' or 'fail', not {on_bad!r}")
    table = read_source_tables(table_paths)
    if table.empty:
        raise ValueError(f"no source rows in {list(map(str, table_paths))}")
    out_prefix = Path(out_prefix)
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    rows_ok: list[dict] = []
    rejected: list[dict] = []
    offset = 0
    tasks = [(row, settings) for row in table.to_dict("records")]
    tmp_samples = _with_ext(out_prefix, ".f32.tmp")
    with open(tmp_samples, "wb") as sample_file:
        for row, samples, error in _map_ordered(_prepare_one, tasks, threads, progress):
            if samples is None:
                if on_bad == "fail":
                    raise AudioError(error)
                rejected.append(
                    {"source_id": row["source_id"], "path": row["path"], "reason": error}
                )
                continue
            sample_file.write(samples.tobytes())
            row.update(offset=offset, n_samples=len(samples))
            row["duration_s"] = round(len(samples) / settings.sample_rate, 6)
            offset += len(samples)
            rows_ok.append(row)
    if not rows_ok:
        tmp_samples.unlink(missing_ok=True)
        reasons = "; ".join(r["reason"] for r in rejected[:3])
        raise AudioError(f"every source in {list(map(str, table_paths))} was rejected: {reasons}")
    pd.DataFrame(rejected, columns=["source_id", "path", "reason"]).to_csv(
        _with_ext(out_prefix, ".rejected.csv"), index=False
    )
    pd.DataFrame(rows_ok).to_csv(_with_ext(out_prefix, ".csv"), index=False)
    meta = {"sample_rate": settings.sample_rate, "target_lufs": settings.target_lufs,
            "min_duration_s": settings.min_duration_s, "n_items": len(rows_ok),
            "n_rejected": len(rejected), "n_samples": offset}
    _with_ext(out_prefix, ".json").write_text(json.dumps(meta, indent=2) + "\n")
    tmp_samples.replace(_with_ext(out_prefix, ".f32"))
    return PrepareSummary(len(rows_ok), len(rejected), offset / settings.sample_rate)


def _map_ordered(func, tasks: list, threads: int, progress: bool) -> Iterator:
    """Ordered map over tasks, in worker processes when threads > 1, with optional tqdm."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), disable=not progress, unit="file", mininterval=2.0)
    for result in ordered_map(func, tasks, threads if len(tasks) >= 4 else 1, chunksize=4):
        yield result
        bar.update()
    bar.close()


class SourceStore:
    """Read-only view of a prepared store; each item is read on demand, never all at once."""

    def __init__(self, prefix: str | Path):
        prefix = Path(prefix)
        self.prefix = prefix
        self.meta = json.loads(_with_ext(prefix, ".json").read_text())
        self.index = pd.read_csv(_with_ext(prefix, ".csv"), dtype={"source_id": str},
                                 keep_default_na=False)
        self.sample_rate = int(self.meta["sample_rate"])
        self._fd = os.open(_with_ext(prefix, ".f32"), os.O_RDONLY)
        self._rows = {sid: i for i, sid in enumerate(self.index["source_id"])}

    def __len__(self) -> int:
        return len(self.index)

    def row(self, source_id: str) -> dict:
        return self.index.iloc[self._rows[source_id]].to_dict()

    def samples(self, source_id: str) -> np.ndarray:
        """The prepared (resampled, loudness-normalised) samples of one item."""
        row = self.index.iloc[self._rows[source_id]]
        n_bytes = int(row["n_samples"]) * 4
        data = os.pread(self._fd, n_bytes, int(row["offset"]) * 4)
        if len(data) != n_bytes:
            raise OSError(f"{self.prefix}.f32 is shorter than its index says ({source_id})")
        return np.frombuffer(data, dtype=np.float32)

    def close(self) -> None:
        os.close(self._fd)

    def __del__(self) -> None:
        try:
            os.close(self._fd)
        except (OSError, AttributeError):
            pass
