"""Compare two results trees of the same workflow selection (e.g. a local and a SLURM run).

Usage: python tests/cluster/compare_results.py LOCAL_RESULTS SLURM_RESULTS

Both trees must hold the same files (logs, benchmarks and Snakemake markers aside), and
every file that carries results must hold the same results:

- audio (``.wav``): identical bytes;
- tables (``.csv``, ``.csv.gz``), JSON lines (``.jsonl``) and JSON (``.json``): equal
  values, floats to a relative 1e-9, after removing what differs between two honest runs:
  timing and host fields (``latency_s``, ``timestamp_utc``, ...), the git state recorded as
  provenance, and the absolute path of each run's folders (replaced by a placeholder); a
  table without columns (an empty frame written by pandas) is an empty table;
- anything else (figures, Markdown, LaTeX): only present in both.

Exit status 0 when they agree, 1 with one line per difference otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

# folders and files that describe the run rather than its results
SKIP_DIRS = {"logs", "benchmarks", ".snakemake"}
SKIP_NAME = re.compile(r"^\.snakemake")
# fields that differ between two runs of the same work: timing, hosts, processes, the git
# state recorded as provenance (a commit made between the two runs changes it), and a cache
# line's checksum (it covers the record's latency)
VOLATILE = re.compile(
    r"(latency|timestamp|elapsed|wall_s|cpu_time|^time_s$|^host(name)?$|^node$|^pid$|^git$"
    r"|^checksum$)",
    re.IGNORECASE,
)
REL_TOL = 1e-9
ABS_TOL = 1e-12


@dataclass
class Comparison:
    """What was compared, by kind, and the differences found."""

    compared: Counter = field(default_factory=Counter)
    differences: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.compared.items()))
        verdict = "same results" if self.same else f"{len(self.differences)} differences"
        return f"{verdict} ({kinds})"


def result_files(root: Path) -> set[str]:
    """Relative paths of the files under ``root`` that belong to the results."""
    files = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if not path.is_file() or SKIP_DIRS & set(rel.parts[:-1]) or SKIP_NAME.match(path.name):
            continue
        files.add(rel.as_posix())
    return files


def _scrub(value: Any, roots: dict[str, str]) -> Any:
    """``value`` without volatile keys, with each run's folders replaced by placeholders."""
    if isinstance(value, dict):
        return {k: _scrub(v, roots) for k, v in value.items() if not VOLATILE.search(str(k))}
    if isinstance(value, list):
        return [_scrub(v, roots) for v in value]
    if isinstance(value, str):
        for root, placeholder in roots.items():
            value = value.replace(root, placeholder)
    return value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    """A short description of where ``a`` and ``b`` first differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where or 'top'}: keys {sorted(set(a) ^ set(b))} in one only"
        for key in a:
            if not _equal(a[key], b[key]):
                return _first_difference(a[key], b[key], f"{where}.{key}" if where else key)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where or 'top'}: {len(a)} vs {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if not _equal(x, y):
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where or 'value'}: {a!r:.120} vs {b!r:.120}"


def _read_text(path: Path) -> str:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return handle.read()
    return path.read_text(encoding="utf-8")


def _table(path: Path, roots: dict[str, str]) -> list[dict[str, Any]]:
    try:
        frame = pd.read_csv(io.StringIO(_read_text(path)), keep_default_na=False, dtype=str)
    except pd.errors.EmptyDataError:  # no columns: pandas writes an empty frame as "\n"
        return []
    frame = frame[[c for c in frame.columns if not VOLATILE.search(c)]]
    rows = []
    for record in frame.to_dict("records"):
        row = {}
        for key, text in record.items():
            try:
                row[key] = float(text) if text not in ("", "nan") else text
            except ValueError:
                row[key] = text
        rows.append(_scrub(row, roots))
    return rows


def _jsonl(path: Path, roots: dict[str, str]) -> list[Any]:
    records = [json.loads(line) for line in _read_text(path).splitlines() if line.strip()]
    records = [_scrub(r, roots) for r in records]
    # line order follows completion order in some writers: compare as a sorted multiset
    return sorted(records, key=lambda r: json.dumps(r, sort_keys=True))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _kind(rel: str) -> str:
    for suffix, kind in ((".csv.gz", "tables"), (".csv", "tables"), (".jsonl", "jsonl"),
                         (".json", "json"), (".wav", "audio")):
        if rel.endswith(suffix):
            return kind
    return "other"


def compare_trees(
    left: Path, right: Path, extra_roots: dict[Path, Path] | None = None
) -> Comparison:
    """Compare the results under ``left`` and ``right`` (see the module docstring).

    ``extra_roots`` maps further folders of the left run to the right run's (e.g. the
    resources folder), so that absolute paths to them compare equal too.
    """
    left, right = Path(left).resolve(), Path(right).resolve()
    pairs = {left: right, **{Path(a).resolve(): Path(b).resolve()
                             for a, b in (extra_roots or {}).items()}}
    # longest first, so that a folder inside another is replaced by its own placeholder
    order = sorted(enumerate(pairs.items()), key=lambda item: -len(str(item[1][0])))
    left_roots = {str(a): f"<ROOT{i}>" for i, (a, _) in order}
    right_roots = dict(
        sorted(((str(b), f"<ROOT{i}>") for i, (_, b) in order), key=lambda kv: -len(kv[0]))
    )
    result = Comparison()
    left_files, right_files = result_files(left), result_files(right)
    for rel in sorted(left_files - right_files):
        result.differences.append(f"{rel}: only in {left}")
    for rel in sorted(right_files - left_files):
        result.differences.append(f"{rel}: only in {right}")
    for rel in sorted(left_files & right_files):
        kind = _kind(rel)
        a_path, b_path = left / rel, right / rel
        result.compared[kind] += 1
        try:
            if kind == "audio":
                if _sha256(a_path) != _sha256(b_path):
                    result.differences.append(f"{rel}: audio bytes differ")
                continue
            if kind == "tables":
                a, b = _table(a_path, left_roots), _table(b_path, right_roots)
            elif kind == "jsonl":
                a, b = _jsonl(a_path, left_roots), _jsonl(b_path, right_roots)
            elif kind == "json":
                a = _scrub(json.loads(_read_text(a_path)), left_roots)
                b = _scrub(json.loads(_read_text(b_path)), right_roots)
            else:
                continue
        except (ValueError, OSError, pd.errors.ParserError) as error:
            result.differences.append(f"{rel}: cannot read: {error}")
            continue
        if not _equal(a, b):
            result.differences.append(f"{rel}: {_first_difference(a, b)}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 4):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        print("       (optionally LEFT_RESOURCES RIGHT_RESOURCES after them)", file=sys.stderr)
        return 2
    extra = {Path(args[2]): Path(args[3])} if len(args) == 4 else None
    comparison = compare_trees(Path(args[0]), Path(args[1]), extra)
    for line in comparison.differences:
        print(f"DIFFERENT {line}")
    print(comparison.summary())
    return 0 if comparison.same else 1


if __name__ == "__main__":
    sys.exit(main())
