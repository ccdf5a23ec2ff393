"""Run information for the HTML report: the run's config, code version and packages.

One self-contained HTML page (inline CSS, no scripts, no external URLs) that
``snakemake --report`` embeds under the category "Run". It shows

- the code: lalm-eval version, git commit and whether tracked files differed from it,
  Python and platform;
- the configuration as the workflow used it (validated, defaults filled in), one row per
  setting, and the config files it came from;
- the versions of the packages that can change the numbers
  (:data:`lalm_eval.reports.provenance.KEY_PACKAGES`) and of every installed distribution.

:func:`code_state` is also what the ``run_info`` rule passes as a parameter, so the page
is remade when the commit, the tree's dirty flag or a key package version changes.
"""

from __future__ import annotations

import html
import json
import os
import platform
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from lalm_eval.reports.provenance import (
    KEY_PACKAGES,
    _plain,
    git_state,
    lalm_eval_version,
    package_version,
)

#: config keys whose values are never shown (keys must come from the environment anyway)
SECRET_KEY = re.compile(r"(^|_)(api_?key|token|password|secret)$", re.IGNORECASE)
REDACTED = "(redacted)"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
       margin: 1.5rem; color: #1f2933; font-size: 14px; line-height: 1.4; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem 0; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .4rem 0; border-bottom: 1px solid #d9e2ec; }
p.note { color: #52606d; margin: .2rem 0 .6rem 0; }
table { border-collapse: collapse; margin: .3rem 0; }
th, td { text-align: left; padding: .2rem .7rem .2rem 0; vertical-align: top;
         border-bottom: 1px solid #eef2f6; }
th { color: #52606d; font-weight: 600; }
td.key, td.value, code { font-family: "DejaVu Sans Mono", monospace; font-size: 12.5px; }
td.value { word-break: break-word; max-width: 60rem; }
.dirty { color: #b42318; font-weight: 600; }
.clean { color: #067647; font-weight: 600; }
.missing { color: #9aa5b1; }
details { margin: .4rem 0; }
summary { cursor: pointer; color: #334e68; }
""".strip()


def code_state(repo: str | Path | None = None) -> dict[str, Any]:
    """What code made the results: ``{"lalm_eval": version, "git": {"commit", "dirty"},
    "python": version, "packages": {KEY_PACKAGES name: version or None}}``."""
    return {
        "lalm_eval": lalm_eval_version(),
        "git": git_state(repo),
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in KEY_PACKAGES},
    }


def installed_distributions() -> list[tuple[str, str]]:
    """``(name, version)`` of every installed distribution, sorted by lower-case name."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name") if dist.metadata else None
        if name:
            found.setdefault(name, dist.version)
    return sorted(found.items(), key=lambda item: item[0].lower())


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Settings as ``(dotted.key, value text)`` rows in config order.

    Nested mappings become dotted keys, lists of scalars one JSON row, lists holding
    mappings ``key[i].sub`` rows; empty mappings read ``{}``; secret-looking keys
    (``api_key``, ``token``, ``password``, ``secret``) are redacted.
    """
    rows: list[tuple[str, str]] = []
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if SECRET_KEY.search(str(key)) and value is not None:
            rows.append((path, REDACTED))
        elif isinstance(value, Mapping):
            rows.extend(flatten_config(value, path) if value else [(path, "{}")])
        elif isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    rows.extend(flatten_config(item, f"{path}[{index}]"))
                else:
                    rows.append((f"{path}[{index}]", _scalar(item)))
        else:
            rows.append((path, _scalar(value)))
    return rows


def _table(header: Iterable[str], rows: Iterable[Iterable[str]],
           classes: tuple[str, ...] = ()) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            css = f' class="{classes[index]}"' if index < len(classes) and classes[index] else ""
            cells.append(f"<td{css}>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _version_cell(version: str | None) -> str:
    return html.escape(version) if version else '<span class="missing">not installed</span>'


def run_info_html(config: Mapping[str, Any], *, configfiles: Iterable[str | Path] = (),
                  code: Mapping[str, Any] | None = None, repo: str | Path | None = None,
                  distributions: list[tuple[str, str]] | None = None,
                  timestamp: str | None = None) -> str:
    """The run-information page as one HTML document (see module doc).

    ``code`` defaults to :func:`code_state` (of ``repo``), ``distributions`` to
    :func:`installed_distributions`, ``timestamp`` to now (UTC, ISO 8601).
    """
    config = _plain(dict(config))
    code = dict(code) if code is not None else code_state(repo)
    distributions = installed_distributions() if distributions is None else distributions
    timestamp = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_name = str(config.get("run_name", "")) or "(unnamed)"
    git = code.get("git") or {}
    commit = git.get("commit")
    if commit is None:
        git_cell = '<span class="missing">not a git checkout (or git missing)</span>'
    else:
        dirty = git.get("dirty")
        state = ('<span class="dirty">tracked files differ from this commit</span>' if dirty
                 else '<span class="clean">clean</span>' if dirty is False
                 else '<span class="missing">state unknown</span>')
        git_cell = f"<code>{html.escape(commit)}</code> ({state})"
    files = [html.escape(str(f)) for f in configfiles]
    code_rows = [
        ("run name", html.escape(run_name)),
        ("made at (UTC)", html.escape(timestamp)),
        ("lalm-eval", html.escape(str(code.get("lalm_eval")))),
        ("git commit", git_cell),
        ("config files", "<br>".join(f"<code>{f}</code>" for f in files) or
         '<span class="missing">none named (config given on the command line)</span>'),
        ("Python", html.escape(str(code.get("python") or platform.python_version()))),
        ("platform", html.escape(platform.platform())),
        ("CPU cores", html.escape(str(os.cpu_count()))),
    ]
    config_rows = [(html.escape(key), html.escape(value)) for key, value in flatten_config(config)]
    package_rows = [(html.escape(name), _version_cell(version))
                    for name, version in (code.get("packages") or {}).items()]
    all_rows = [(html.escape(name), html.escape(version)) for name, version in distributions]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>lalm-eval run {html.escape(run_name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>lalm-eval run <code>{html.escape(run_name)}</code></h1>",
        '<p class="note">The configuration, code and package versions this report was made '
        "with. Every result's own provenance (seeds, prompt hashes, scorer settings) is in "
        "its suite's <code>results.json</code>.</p>",
        "<h2>Code</h2>",
        _table(("what", "value"), code_rows),
        "<h2>Packages that can change the numbers</h2>",
        _table(("package", "version"), package_rows, classes=("key", "")),
        f"<details><summary>All {len(all_rows)} installed Python distributions</summary>",
        _table(("distribution", "version"), all_rows, classes=("key", "")),
        "</details>",
        "<h2>Configuration</h2>",
        '<p class="note">As the workflow used it: validated against '
        "<code>src/lalm_eval/schemas/config.schema.yaml</code>, defaults filled in. "
        f"{len(config_rows)} settings.</p>",
        _table(("setting", "value"), config_rows, classes=("key", "value")),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_run_info(path: str | Path, config: Mapping[str, Any], **options: Any) -> Path:
    """Write :func:`run_info_html` to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = run_info_html(config, **options)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
