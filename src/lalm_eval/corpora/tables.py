"""Source tables: the CSV contract between corpus adapters and the mixer.

See ``docs/architecture.md``. A source table is a DataFrame with the columns below; the
``events`` column of a background table holds a JSON string (a list of
``{"label", "onset", "offset"}`` objects, seconds relative to the clip start).

Loaders never drop an item silently: what they leave out is listed in
``df.attrs["skipped"]`` (see :func:`attach_skips`) and summarised in the log.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

SPEECH_COLUMNS: tuple[str, ...] = (
    "source_id",
    "path",
    "start_s",
    "end_s",
    "transcript",
    "speaker",
    "origin",
    "licence",
    "sha256",
)
BACKGROUND_COLUMNS: tuple[str, ...] = (
    "source_id",
    "path",
    "start_s",
    "end_s",
    "scene",
    "events",
    "origin",
    "licence",
    "sha256",
)
FLOAT_COLUMNS: tuple[str, ...] = ("start_s", "end_s")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SKIPPED_ATTR = "skipped"
_EVENT_KEYS = ("label", "onset", "offset")
_TOL = 1e-6
_DECIMALS = 6


@dataclass(frozen=True)
class Skip:
    """One corpus item left out of a table, and why."""

    item: str
    reason: str


def write_rows(path: str | Path, columns: Sequence[str],
               rows: Iterable[Mapping[str, Any]]) -> None:
    """A CSV of ``rows`` in ``columns`` order (missing cells empty, ``\n`` line ends),
    written atomically (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    tmp.replace(path)


def attach_skips(df: pd.DataFrame, skips: Iterable[Skip], where: str) -> pd.DataFrame:
    """Store ``skips`` in ``df.attrs["skipped"]`` (appending) and log a per-reason summary."""
    skips = list(skips)
    previous = list(df.attrs.get(SKIPPED_ATTR, []))
    df.attrs[SKIPPED_ATTR] = previous + [asdict(s) for s in skips]
    if skips:
        counts = Counter(s.reason for s in skips)
        summary = "; ".join(f"{n} x {reason}" for reason, n in sorted(counts.items()))
        logger.warning("%s: %d item(s) skipped: %s", where, len(skips), summary)
    return df


def skipped_items(df: pd.DataFrame) -> list[Skip]:
    """The skip list a loader attached to ``df`` (empty when none)."""
    return [Skip(**d) for d in df.attrs.get(SKIPPED_ATTR, [])]


def safe_id(text: str) -> str:
    """Turn ``text`` into a filename-safe id (disallowed characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def round_time(value: float) -> float:
    """Round a time in seconds to the table precision (microseconds)."""
    return round(float(value), _DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def events_to_json(events: Iterable[Mapping[str, Any]]) -> str:
    """Canonical JSON for an event list: keys label/onset/offset, sorted by onset, label."""
    items = [
        {
            "label": str(e["label"]),
            "onset": round_time(e["onset"]),
            "offset": round_time(e["offset"]),
        }
        for e in events
    ]
    items.sort(key=lambda e: (e["onset"], e["label"], e["offset"]))
    return json.dumps(items, ensure_ascii=False, separators=(",", ":"))


def parse_events(cell: Any) -> list[dict[str, Any]]:
    """Parse an ``events`` cell (JSON string, list, or empty) into a list of dicts.

    Raises ``ValueError`` when the JSON is malformed; shape is checked by the validators.
    """
    if isinstance(cell, list):
        return cell
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    text = str(cell).strip()
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"events is not valid JSON ({exc.msg})") from exc
    if not isinstance(value, list):
        raise ValueError("events JSON must be a list")
    return value


def _is_empty(value: Any) -> bool:
    """True for NaN / None / empty string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _fail(where: str, row: int, source_id: Any, column: str, problem: str) -> ValueError:
    """A ValueError naming the table, the row (``row`` is 0-based; the message counts from 1,
    the first row under the header), its source_id and the column."""
    return ValueError(
        f"{where}: row {row + 1} (source_id={source_id!r}), column {column!r}: {problem}")


def _as_number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _check_common(df: pd.DataFrame, where: str, columns: tuple[str, ...]) -> None:
    """Required columns, ids, paths, segments, provenance and hashes."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing required column(s) {missing}")
    seen: dict[str, int] = {}
    for i, row in enumerate(df.itertuples(index=False)):
        rec = row._asdict()
        sid = rec["source_id"]
        if _is_empty(sid) or not ID_PATTERN.match(str(sid)):
            raise _fail(where, i, sid, "source_id", "must match [A-Za-z0-9_.-]+")
        if str(sid) in seen:
            raise _fail(where, i, sid, "source_id", f"duplicate of row {seen[str(sid)] + 1}")
        seen[str(sid)] = i
        for col in ("path", "origin", "licence"):
            if _is_empty(rec[col]):
                raise _fail(where, i, sid, col, "must not be empty")
        if not re.match(r"^[^=:]+=[^:]*:.+$", str(rec["origin"])):
            raise _fail(where, i, sid, "origin", "must look like '<corpus>=<version>:<member>'")
        start, end = rec["start_s"], rec["end_s"]
        start_v = None if _is_empty(start) else _as_number(start)
        end_v = None if _is_empty(end) else _as_number(end)
        if not _is_empty(start) and (start_v is None or start_v < 0):
            raise _fail(where, i, sid, "start_s", f"must be empty or a number >= 0, got {start!r}")
        if not _is_empty(end) and (end_v is None or end_v <= (start_v or 0.0)):
            raise _fail(where, i, sid, "end_s", f"must be empty or > start_s, got {end!r}")
        sha = rec["sha256"]
        if not _is_empty(sha) and not SHA256_PATTERN.match(str(sha)):
            raise _fail(where, i, sid, "sha256", "must be empty or 64 lower-case hex digits")


def validate_speech_table(df: pd.DataFrame, where: str) -> None:
    """Check a speech table against the contract; raise ``ValueError`` naming the problem."""
    _check_common(df, where, SPEECH_COLUMNS)
    for i, (sid, text) in enumerate(zip(df["source_id"], df["transcript"], strict=True)):
        if _is_empty(text):
            raise _fail(where, i, sid, "transcript", "must not be empty")


def validate_events(events: Any, clip_len: float | None = None) -> list[dict[str, Any]]:
    """Check one event list; return it parsed. Raises ``ValueError`` with the problem."""
    parsed = parse_events(events)
    for k, event in enumerate(parsed):
        if not isinstance(event, dict):
            raise ValueError(f"event {k} is not an object")
        if set(event) != set(_EVENT_KEYS):
            raise ValueError(f"event {k} must have exactly the keys {list(_EVENT_KEYS)}")
        label = event["label"]
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"event {k} has an empty or non-string label")
        onset, offset = _as_number(event["onset"]), _as_number(event["offset"])
        if onset is None or offset is None:
            raise ValueError(f"event {k} ({label}) onset/offset must be finite numbers")
        if onset < 0:
            raise ValueError(f"event {k} ({label}) has a negative onset {onset}")
        if offset < onset:
            raise ValueError(f"event {k} ({label}) has offset {offset} < onset {onset}")
        if clip_len is not None and offset > clip_len + _TOL:
            raise ValueError(
                f"event {k} ({label}) ends at {offset} s, after the clip ({clip_len} s)"
            )
    return parsed


def validate_background_table(df: pd.DataFrame, where: str) -> None:
    """Check a background table against the contract; raise ``ValueError`` naming the problem."""
    _check_common(df, where, BACKGROUND_COLUMNS)
    for i, row in enumerate(df.itertuples(index=False)):
        rec = row._asdict()
        sid = rec["source_id"]
        if _is_empty(rec["scene"]):
            raise _fail(where, i, sid, "scene", "must not be empty")
        clip_len = None
        if not _is_empty(rec["end_s"]):
            start = 0.0 if _is_empty(rec["start_s"]) else float(rec["start_s"])
            clip_len = float(rec["end_s"]) - start
        try:
            validate_events(rec["events"], clip_len)
        except ValueError as exc:
            raise _fail(where, i, sid, "events", str(exc)) from None


def table_kind(df: pd.DataFrame) -> str:
    """``"background"`` when the table has an events column, else ``"speech"``."""
    return "background" if "events" in df.columns else "speech"


def _format_float(value: Any) -> str:
    """Deterministic text for a time value: empty for NaN, else at most 6 decimals."""
    if _is_empty(value):
        return ""
    text = f"{round_time(float(value)):.{_DECIMALS}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _format_cell(column: str, value: Any) -> str:
    """Text for one CSV cell."""
    if column in FLOAT_COLUMNS:
        return _format_float(value)
    if column == "events":
        return events_to_json(parse_events(value))
    return "" if _is_empty(value) else str(value)


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Validate and write a source table as CSV (contract columns first, extras sorted).

    Times get at most 6 decimals, events are re-serialised canonically, so the same table
    always gives the same bytes.
    """
    path = Path(path)
    kind = table_kind(df)
    columns = BACKGROUND_COLUMNS if kind == "background" else SPEECH_COLUMNS
    if kind == "background":
        validate_background_table(df, str(path))
    else:
        validate_speech_table(df, str(path))
    order = list(columns) + sorted(c for c in df.columns if c not in columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(order)
        for row in df[order].itertuples(index=False):
            writer.writerow([_format_cell(c, v) for c, v in zip(order, row, strict=True)])
    return path


def _read_text_table(path: Path) -> pd.DataFrame:
    """Every cell of a CSV table as text; ValueError (one line, naming the file) when the
    file is not a readable CSV table."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"{path}: not a readable CSV table ({detail})") from None


def validate_table(df: pd.DataFrame, where: str, role: str) -> None:
    """Check a ``role`` ("speech" or "background") table against the contract."""
    if role == "background":
        validate_background_table(df, where)
    elif role == "speech":
        validate_speech_table(df, where)
    else:
        raise ValueError(f"unknown source-table role {role!r} (speech, background)")


def read_table(path: Path, *, validate: bool = True) -> pd.DataFrame:
    """Read a source table written by :func:`write_table` (all text, times as floats).

    Validation runs on the text cells, so a time that is not a number is named by row and
    column rather than failing the float conversion."""
    path = Path(path)
    df = _read_text_table(path)
    if validate:
        validate_table(df, str(path), table_kind(df))
    for column in FLOAT_COLUMNS:
        if column in df.columns:
            df[column] = pd.to_numeric(df[column].replace("", None), errors="raise").astype(
                "float64"
            )
    return df


def audio_path(table_path: str | Path, cell: str) -> Path:
    """A row's ``path`` cell resolved against its table's folder (absolute paths kept)."""
    path = Path(cell)
    return path if path.is_absolute() else Path(table_path).parent / path


def check_table_file(path: str | Path, role: str, *, check_audio: bool = True) -> int:
    """Check a source table file before any job reads it; return its number of rows.

    Checked: the file is a CSV table with at least one row, the contract's columns for
    ``role``, every cell's type and required cells (:func:`validate_table`) and, with
    ``check_audio``, that every row's audio file exists (sha256 values are checked against
    the files when the sources are prepared, :mod:`lalm_eval.source_store`). Raises
    ``FileNotFoundError`` for a missing table and ``ValueError`` naming the file, the row
    and the column otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    df = _read_text_table(path)
    if df.empty:
        raise ValueError(f"{path}: the table has no rows")
    validate_table(df, str(path), role)
    if check_audio:
        for i, (sid, cell) in enumerate(zip(df["source_id"], df["path"], strict=True)):
            audio = audio_path(path, cell)
            if not audio.is_file():
                raise _fail(str(path), i, sid, "path", f"audio file not found: {audio}")
    return len(df)


def new_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    """A DataFrame with exactly ``columns`` (times as float64, NaN when empty)."""
    df = pd.DataFrame(rows, columns=list(columns))
    for column in FLOAT_COLUMNS:
        df[column] = pd.to_numeric(df[column], errors="raise").astype("float64")
    return df
