"""The Snakemake HTML report: built from a tiny run, opened in headless Chromium.

The end-to-end test runs the workflow on the tiny tables corpus (one Whisper system),
makes ``snakemake --report report.html`` and opens it with tests/report/check_report.py
(Debian's ``chromium`` over the DevTools protocol): no console errors, no uncaught
exceptions, no request outside the file, every result viewable; the front-page screenshot
is kept in the test's tmp dir, and copied to $LALM_EVAL_REPORT_SCREENSHOT when set (the
Makefile sets it to results/report-screenshot.png).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from conftest import run_snakemake as _snakemake

from lalm_eval.reports.run_info import REDACTED, flatten_config, run_info_html

CHECK = REPO / "tests" / "report" / "check_report.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_check_module():
    spec = importlib.util.spec_from_file_location("check_report", CHECK)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_report", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check_report = _load_check_module()
CHROMIUM = check_report.find_chromium()


@pytest.fixture
def chromium() -> str:
    """The browser; the test is skipped without it, except under CI (CI=true), where a
    missing browser means the setup is broken and fails the test."""
    if CHROMIUM is None:
        message = ("chromium is not installed: run tools/install-chromium.sh (Debian package "
                   "'chromium'; `make test` does this)")
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must not skip the report check")
        pytest.skip(message)
    return CHROMIUM


def _check(page: Path, screenshot: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    findings = screenshot.with_suffix(".json")
    done = subprocess.run(
        [sys.executable, str(CHECK), str(page), "--chromium", CHROMIUM,
         "--screenshot", str(screenshot),
         "--json", str(findings), *extra],
        capture_output=True, text=True, timeout=300,
    )
    result = json.loads(findings.read_text()) if findings.exists() else {}
    return done, result


# -- run information page ---------------------------------------------------------------

def test_flatten_config_dotted_keys_lists_and_redaction():
    config = {
        "run_name": "x",
        "mixing": {"snrs": ["+inf", 5], "margin_s": 0.25},
        "corpora": {},
        "models": {"m": {"options": {"api_key": "sk-123", "api_key_env": "KEY"}}},
        "select": {"items": [{"a": 1}, "b"]},
    }
    rows = dict(flatten_config(config))
    assert rows["run_name"] == "x"
    assert rows["mixing.snrs"] == '["+inf", 5]'
    assert rows["mixing.margin_s"] == "0.25"
    assert rows["corpora"] == "{}"
    assert rows["models.m.options.api_key"] == REDACTED
    assert rows["models.m.options.api_key_env"] == "KEY"
    assert rows["select.items[0].a"] == "1" and rows["select.items[1]"] == "b"


def test_run_info_page_shows_config_code_and_versions_escaped():
    code = {"lalm_eval": "0.1.0", "git": {"commit": "abc123", "dirty": True},
            "python": "3.11.7", "packages": {"numpy": "2.4.6", "torch": None}}
    page = run_info_html({"run_name": "<tiny>", "seed": 7}, configfiles=["config/x.yaml"],
                         code=code, distributions=[("numpy", "2.4.6")],
                         timestamp="2026-01-01T00:00:00Z")
    assert "&lt;tiny&gt;" in page and "<tiny>" not in page
    assert "abc123" in page and "tracked files differ" in page
    assert "config/x.yaml" in page and "2026-01-01T00:00:00Z" in page
    assert "not installed" in page  # torch None
    assert re.search(r"<td class=\"key\">seed</td><td class=\"value\">7</td>", page)
    # self-contained: no scripts, nothing fetched
    assert "<script" not in page and "http://" not in page and "https://" not in page


# -- the checker itself ---------------------------------------------------------------------

def test_checker_reports_console_errors_exceptions_and_external_requests(chromium, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><head><title>bad</title></head><body><p>bad page</p>"
        '<img src="https://example.org/pixel.png">'
        '<script>console.error("boom from test"); console.warn("only a warning");</script>'
        '<script>setTimeout(() => { throw new Error("uncaught later"); }, 10);</script>'
        "</body></html>"
    )
    done, findings = _check(page, tmp_path / "bad.png", "--plain", "--timeout", "20")
    assert done.returncode == 1, done.stdout + done.stderr
    errors = "\n".join(findings["errors"])
    assert "boom from test" in errors and "uncaught later" in errors
    assert any("example.org" in url for url in findings["external_requests"])
    assert any("only a warning" in w for w in findings["warnings"])
    assert (tmp_path / "bad.png").read_bytes().startswith(PNG_MAGIC)

    good = tmp_path / "good.html"
    good.write_text(run_info_html({"run_name": "ok"}))
    done, findings = _check(good, tmp_path / "good.png", "--plain", "--timeout", "20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert findings["ok"] and not findings["errors"]


# -- end to end: tiny run -> snakemake --report -> Chromium --------------------------------

@pytest.mark.slow
def test_html_report_is_self_contained_and_renders_without_console_errors(
        chromium, tables_config, tmp_path):
    config_path = tables_config
    work = tmp_path / "work"
    run = _snakemake(work, "--configfile", str(config_path))
    assert run.returncode == 0, run.stderr[-3000:]
    run_info = work / "out" / "report" / "run_info.html"
    assert run_info.exists(), "the workflow made no out/report/run_info.html (rule run_info)"

    report = tmp_path / "report.html"
    started = time.monotonic()
    made = _snakemake(work, "--configfile", str(config_path), "--report", str(report))
    report_seconds = time.monotonic() - started
    assert made.returncode == 0, made.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    # one self-contained file: no script, style sheet or image loaded from elsewhere
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=[\"']?(https?:)?//", text, re.I)
    assert not re.search(r"<link[^>]*\shref=[\"']?(https?:)?//", text, re.I)
    # the workflow description (workflow/report/workflow.rst) is the front page
    assert "evaluates Large Audio Language Models" in text
    assert "Configuration and versions" in text and "app.showCategory(" in text
    # reStructuredText errors in a caption or the front page become docutils system messages
    assert "system-message" not in text, "a report caption does not render (see the report)"
    for name in ("run_info.html", "table1.html", "asr_wer.png", "corpus_summary.csv",
                 "inference_summary.csv"):
        assert name in text, f"{name} missing from the report"

    screenshot = tmp_path / "report-screenshot.png"
    done, findings = _check(report, screenshot, "--views-dir", str(tmp_path / "views"))
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert findings["ok"] and not findings["errors"] and not findings["external_requests"]
    clipped = [w for w in findings["warnings"] if w.startswith("[front page] its top")]
    assert not clipped, f"workflow/report/workflow.rst is too long for a 900-px window: {clipped}"
    views = set(findings["views"])
    for category in ("Run", "SSEU-Bench", "Corpus", "Inference"):
        assert f"category {category}" in views, sorted(views)
    assert {"result run_info.html", "result asr_wer.png", "front page"} <= views
    png = screenshot.read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 20_000  # a drawn page, not a blank one
    print(f"report {report.stat().st_size / 1e6:.1f} MB made in {report_seconds:.1f}s, "
          f"checked in {findings['seconds']:.1f}s")

    keep = os.environ.get("LALM_EVAL_REPORT_SCREENSHOT")
    if keep:
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, keep)
