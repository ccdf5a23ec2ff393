#!/usr/bin/env python3
"""Open a Snakemake HTML report in headless Chromium and check that it renders cleanly.

    python tests/report/check_report.py REPORT.html --screenshot OUT.png [--views-dir DIR]

What it does, with Debian's ``chromium`` driven over the DevTools protocol:

1. loads the report from disk (``file://``) with every host name unresolvable, so the
   check is the same with or without a network and any fetch from outside fails;
2. waits until the report app has rendered (React root filled, loading screen hidden, the
   rule graph drawn) and saves a PNG screenshot of the front page;
3. walks the app: every result category, every result's info panel, every image and HTML
   result displayed in the content pane, and the statistics view (optional screenshots of
   each in ``--views-dir``);
4. exits 1 if anything went wrong on the way: a console error or failed assertion
   (``console.error``/``console.assert``), an uncaught JavaScript exception, a browser log
   entry at level error (failed resource loads, CSP and network errors), a request to
   anything but ``data:``/``file:``/``blob:``/``about:`` URLs (the report must be
   self-contained), an image that does not decode, or an app that never renders.
   Warnings are printed but do not fail.

Why the DevTools protocol over a pipe: ``chromium --headless --screenshot`` says nothing
about console errors, and parsing ``--enable-logging=stderr`` output depends on Chromium's
log format and verbosity flags, which change between releases. ``--remote-debugging-pipe``
gives structured events (Runtime.consoleAPICalled, Runtime.exceptionThrown,
Log.entryAdded, Network.requestWillBeSent) with no TCP port to pick or leak and no
websocket library: messages are NUL-terminated JSON on file descriptors 3 (to Chromium)
and 4 (from Chromium). Standard library only.

Exit codes: 0 clean, 1 problems found, 2 usage error or Chromium missing/failing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: URL schemes a self-contained report may load
LOCAL_SCHEMES = ("data:", "file:", "blob:", "about:", "chrome-error:", "devtools:")
#: console API call types that count as errors
CONSOLE_ERROR_TYPES = {"error", "assert"}
#: the report app's content pane (right of the navigation bar)
CONTENT_PANE = "#app div.justify-center.h-screen.overflow-auto"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class CheckError(RuntimeError):
    """Chromium could not be driven (not a finding about the report)."""


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.external_requests

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "errors": self.errors, "warnings": self.warnings,
                "external_requests": self.external_requests, "views": self.views,
                "screenshots": self.screenshots, "seconds": round(self.seconds, 2)}


def find_chromium(explicit: str | None = None) -> str | None:
    """Path of the Chromium binary: ``explicit``, $CHROMIUM, or the first name on PATH."""
    for name in (explicit, os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        if name:
            found = shutil.which(name)
            if found:
                return found
    return None


class DevToolsPipe:
    """A Chromium process and its DevTools connection over --remote-debugging-pipe."""

    def __init__(self, chromium: str, profile_dir: Path, width: int, height: int):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()

        def child_fds() -> None:  # runs in the child before exec: Chromium reads 3, writes 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        args = [
            chromium, "--headless", "--remote-debugging-pipe", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-sync",
            "--disable-component-update", "--disable-default-apps", "--mute-audio",
            "--hide-scrollbars", "--password-store=basic", "--use-mock-keychain",
            # offline by construction: no host name resolves, so nothing outside loads
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
            f"--window-size={width},{height}", f"--user-data-dir={profile_dir}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to start as root otherwise
        args.append("about:blank")
        self.stderr_path = profile_dir / "chromium.stderr.log"
        self._stderr = open(self.stderr_path, "wb")  # closed in close()
        try:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
                pass_fds=(3, 4, to_chrome_r, from_chrome_w), preexec_fn=child_fds,
                start_new_session=True,  # its own process group: kill() ends all its children
            )
        except OSError as error:
            self._stderr.close()
            raise CheckError(f"cannot start {chromium}: {error}") from error
        finally:
            os.close(to_chrome_r)
            os.close(from_chrome_w)
        self._out = os.fdopen(to_chrome_w, "wb", buffering=0)
        self._in_fd = from_chrome_r
        self._next_id = 0
        self._inbox: queue.Queue[dict | None] = queue.Queue()
        self._responses: dict[int, dict] = {}
        self.listeners: list[Callable[[dict], None]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._in_fd, "rb", buffering=0) as stream:
            while True:
                chunk = stream.read(1 << 16)
                if not chunk:
                    break
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    if raw:
                        self._inbox.put(json.loads(raw))
        self._inbox.put(None)  # Chromium closed the pipe

    def _dispatch(self, timeout: float) -> None:
        """Handle one incoming message (or return after ``timeout`` seconds)."""
        try:
            message = self._inbox.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return
        if message is None:
            raise CheckError(f"Chromium closed the DevTools pipe (exit code "
                             f"{self.process.poll()}); its stderr ends:\n{self.stderr_tail()}")
        if "id" in message:
            self._responses[message["id"]] = message
        else:
            for listener in self.listeners:
                listener(message)

    def stderr_tail(self, lines: int = 15) -> str:
        self._stderr.flush()
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return "(no stderr)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty)"

    def post(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        """Send a command without waiting for its answer; returns its id."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            self._out.write(json.dumps(message).encode() + b"\0")
        except OSError as error:
            raise CheckError(f"cannot write to Chromium's DevTools pipe: {error}") from error
        return self._next_id

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        """Send a command and return its result (events arriving meanwhile are dispatched)."""
        command_id = self.post(method, params, session)
        deadline = time.monotonic() + timeout
        while command_id not in self._responses:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckError(f"no answer to {method} within {timeout:.0f}s")
            self._dispatch(min(left, 0.5))
        answer = self._responses.pop(command_id)
        if "error" in answer:
            raise CheckError(f"{method} failed: {answer['error']}")
        return answer.get("result", {})

    def pump(self, seconds: float) -> None:
        """Dispatch events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._dispatch(min(left, 0.1))

    def kill(self) -> None:
        """End Chromium and every process it started (its process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.post("Browser.close")
                self.process.wait(timeout=10)
        except (CheckError, subprocess.TimeoutExpired, OSError):
            pass
        self.kill()  # renderer and helper processes left behind, if any
        if self.process.poll() is None:
            self.process.wait(timeout=10)
        try:
            self._out.close()
        except OSError:
            pass
        self._stderr.close()


def _describe_remote(args: list[dict]) -> str:
    parts = []
    for arg in args:
        if "value" in arg:
            value = arg["value"]
            parts.append(value if isinstance(value, str) else json.dumps(value))
        else:
            parts.append(arg.get("description") or arg.get("type", "?"))
    return " ".join(parts)


class ReportChecker:
    """Drives one page through the report app, collecting findings from every frame."""

    def __init__(self, browser: DevToolsPipe, findings: Findings):
        self.browser = browser
        self.findings = findings
        self.session: str | None = None
        self.loaded = False
        browser.listeners.append(self._on_event)

    # -- events ------------------------------------------------------------------------
    def _on_event(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        where = self.findings.views[-1] if self.findings.views else "load"
        if method == "Runtime.consoleAPICalled":
            args = _describe_remote(params.get("args", []))
            text = f"[{where}] console.{params.get('type')}: {args}"
            if params.get("type") in CONSOLE_ERROR_TYPES:
                self.findings.errors.append(text)
            elif params.get("type") == "warning":
                self.findings.warnings.append(text)
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception", {})
            text = exception.get("description") or details.get("text", "exception")
            self.findings.errors.append(
                f"[{where}] uncaught exception: {text} (at {details.get('url', '?')}:"
                f"{details.get('lineNumber', '?')})")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            text = f"[{where}] {entry.get('source')} {entry.get('level')}: {entry.get('text')}"
            if entry.get("url"):
                text += f" ({entry['url'][:120]})"
            if entry.get("level") == "error":
                self.findings.errors.append(text)
            elif entry.get("level") == "warning":
                self.findings.warnings.append(text)
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                self.findings.external_requests.append(f"[{where}] {url}")
        elif method == "Page.loadEventFired" and message.get("sessionId") == self.session:
            self.loaded = True
        elif method == "Target.attachedToTarget" and message.get("sessionId"):
            # auto-attached children of the page (out-of-process iframes, workers): listen
            # to them too, then let them run
            child = params["sessionId"]
            for domain in ("Runtime.enable", "Log.enable", "Network.enable"):
                self.browser.post(domain, session=child)
            self.browser.post("Target.setAutoAttach", {"autoAttach": True,
                              "waitForDebuggerOnStart": True, "flatten": True}, session=child)
            self.browser.post("Runtime.runIfWaitingForDebugger", session=child)

    # -- helpers -------------------------------------------------------------------------
    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        result = self.browser.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
        }, session=self.session, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            raise CheckError(f"evaluating {expression[:80]!r} failed: {description}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, what: str, timeout: float) -> bool:
        """Poll ``expression`` until truthy; records an error and returns False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return True
            self.browser.pump(0.1)
        where = self.findings.views[-1] if self.findings.views else "load"
        self.findings.errors.append(f"[{where}] {what} within {timeout:.0f}s")
        return False

    def screenshot(self, path: Path) -> None:
        data = self.browser.call("Page.captureScreenshot", {"format": "png"},
                                 session=self.session)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        self.findings.screenshots.append(str(path))

    def settle(self, seconds: float = 0.4) -> None:
        """Let rendering, vega charts and iframes finish and their events arrive."""
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        self.browser.pump(seconds)

    # -- the run -------------------------------------------------------------------------
    def open(self, url: str, width: int, height: int, timeout: float) -> None:
        targets = self.browser.call("Target.getTargets")["targetInfos"]
        page = next((t for t in targets if t["type"] == "page"), None)
        if page is None:
            page = {"targetId": self.browser.call("Target.createTarget",
                                                  {"url": "about:blank"})["targetId"]}
        attached = self.browser.call("Target.attachToTarget",
                                     {"targetId": page["targetId"], "flatten": True})
        self.session = attached["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable", "Network.enable"):
            self.browser.call(domain, session=self.session)
        self.browser.call("Target.setAutoAttach", {"autoAttach": True,
                          "waitForDebuggerOnStart": False, "flatten": True}, session=self.session)
        self.browser.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=self.session)
        self.findings.views.append("load")
        answer = self.browser.call("Page.navigate", {"url": url}, session=self.session)
        if answer.get("errorText"):
            raise CheckError(f"cannot open {url}: {answer['errorText']}")
        deadline = time.monotonic() + timeout
        while not self.loaded and time.monotonic() < deadline:
            self.browser.pump(0.1)
        if not self.loaded:
            self.findings.errors.append(f"[load] page load event not fired within {timeout:.0f}s")

    def show_result(self, result: dict) -> None:
        """Open a result's info panel and, for images, HTML and PDF, its content view."""
        path, mime = json.dumps(result["path"]), result["mime"]
        self.findings.views.append(f"result {result['name']}")
        self.evaluate(f"app.showResultInfo({path})")
        if mime.startswith("image/"):
            self.evaluate(f"app.setView({{content: 'img', contentPath: results[{path}].data_uri,"
                          f" resultPath: {path}}})")
            image = f"document.querySelector('{CONTENT_PANE} img')"
            self.wait_for(f"(() => {{ const i = {image}; return i !== null && i.complete"
                          f" && i.getAttribute('src') === results[{path}].data_uri; }})()",
                          f"image {result['name']} did not load", 20)
            if not self.evaluate(f"(() => {{ const i = {image}; "
                                 "return i !== null && i.naturalWidth > 0; })()"):
                self.findings.errors.append(f"[result {result['name']}] image does not decode")
        elif mime in ("text/html", "application/pdf"):
            kind = "html" if mime == "text/html" else "pdf"
            self.evaluate(f"app.setView({{content: '{kind}', contentPath: results[{path}].data_uri,"
                          f" resultPath: {path}}})")
            self.wait_for(f"document.querySelector('{CONTENT_PANE} iframe') !== null",
                          f"{result['name']} was not shown", 20)
        self.settle(0.4)

    def check_snakemake_app(self, timeout: float, screenshot: Path,
                            views_dir: Path | None, height: int) -> None:
        rendered = self.wait_for(
            "typeof app === 'object' && app !== null"
            " && document.querySelector('#app').childElementCount > 0"
            " && getComputedStyle(document.querySelector('#loading-screen')).display === 'none'",
            "the Snakemake report app did not render", timeout)
        if not rendered:
            self.screenshot(screenshot)
            return
        # the front page draws the rule graph with vega-embed (canvas or svg)
        self.wait_for("(() => { const g = document.querySelector("
                      "'.vega-embed canvas, .vega-embed svg');"
                      " return g !== null && g.getBoundingClientRect().height > 0; })()",
                      "the rule graph was not drawn", timeout)
        self.settle(0.5)
        self.findings.views.append("front page")
        self.screenshot(screenshot)
        # Snakemake centres the content pane vertically: content taller than the window
        # overflows upwards, where it cannot be scrolled to
        clipped = self.evaluate(f"(() => {{ const c = document.querySelector("
                                f"'{CONTENT_PANE} > *'); return c === null ? 0 :"
                                f" Math.max(0, -c.getBoundingClientRect().top); }})()")
        if clipped:
            self.findings.warnings.append(
                f"[front page] its top {clipped:.0f} px lie above the {height}-px window and "
                "cannot be scrolled to (a long workflow description or rule graph; see "
                "docs/report.md)")

        inventory = self.evaluate("""(() => ({
            categories: Object.entries(categories).map(([cat, subs]) => ({name: cat,
                subcategories: Object.entries(subs).map(([sub, paths]) => ({name: sub,
                    results: paths.map(p => ({path: p, mime: getResultMimeType(p),
                                              name: results[p].name}))}))})),
            results: Object.keys(results).length,
        }))()""")
        if not inventory["results"]:
            self.findings.errors.append("[front page] the report has no results")
        shot = 0

        def view_shot(label: str) -> None:
            nonlocal shot
            if views_dir is not None:
                shot += 1
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:80]
                self.screenshot(views_dir / f"{shot:02d}_{safe}.png")

        seen = 0
        for category in inventory["categories"]:
            self.findings.views.append(f"category {category['name']}")
            self.evaluate(f"app.showCategory({json.dumps(category['name'])})")
            self.settle(0.2)
            for subcategory in category["subcategories"]:
                self.evaluate(f"app.setView({{navbarMode: 'subcategory', subcategory: "
                              f"{json.dumps(subcategory['name'])}}})")
                self.settle(0.1)
                for result in subcategory["results"]:
                    seen += 1
                    self.show_result(result)
                    view_shot(result["name"])
        if seen != inventory["results"]:
            self.findings.errors.append(f"[front page] {inventory['results']} results but "
                                        f"{seen} listed under categories")
        self.findings.views.append("statistics")
        self.evaluate("app.setView({content: 'stats'})")
        self.settle(0.8)
        view_shot("statistics")


def check_report(report: Path, screenshot: Path, *, views_dir: Path | None = None,
                 chromium: str | None = None, timeout: float = 60.0,
                 total_timeout: float = 300.0, width: int = 1400, height: int = 900,
                 app: bool = True) -> Findings:
    """Open ``report`` in headless Chromium and return what went wrong (see module doc).

    ``app=False`` checks any HTML page: load, console, requests and a screenshot only.
    Raises CheckError when Chromium is missing or cannot be driven.
    """
    binary = find_chromium(chromium)
    if binary is None:
        raise CheckError("chromium not found: run tools/install-chromium.sh "
                         "(Debian package 'chromium') or set $CHROMIUM")
    report = Path(report).resolve()
    if not report.is_file():
        raise CheckError(f"no such report: {report}")
    started = time.monotonic()
    findings = Findings()
    with tempfile.TemporaryDirectory(prefix="lalm-report-chromium-") as profile:
        browser = DevToolsPipe(binary, Path(profile), width, height)
        # hard limit on the whole check: killing Chromium closes the pipe, which ends it
        watchdog = threading.Timer(total_timeout, browser.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            checker = ReportChecker(browser, findings)
            checker.open(report.as_uri(), width, height, timeout)
            if app:
                checker.check_snakemake_app(timeout, Path(screenshot), views_dir, height)
            else:
                checker.settle(0.5)
                checker.screenshot(Path(screenshot))
            browser.pump(0.3)  # late events
        except CheckError as error:
            if time.monotonic() - started >= total_timeout:
                raise CheckError(f"the check took over {total_timeout:.0f}s") from error
            raise
        finally:
            watchdog.cancel()
            browser.close()
    findings.seconds = time.monotonic() - started
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the HTML file made by snakemake --report")
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG of the front page")
    parser.add_argument("--views-dir", type=Path, help="also save a PNG of every result view")
    parser.add_argument("--chromium", help="browser binary (default: $CHROMIUM or chromium)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for load and for the app to render")
    parser.add_argument("--total-timeout", type=float, default=300.0,
                        help="seconds for the whole check before Chromium is killed")
    parser.add_argument("--plain", action="store_true",
                        help="any HTML page: do not walk the Snakemake report app")
    parser.add_argument("--json", type=Path, help="write the findings as JSON here")
    args = parser.parse_args(argv)
    try:
        findings = check_report(args.report, args.screenshot, views_dir=args.views_dir,
                                chromium=args.chromium, timeout=args.timeout,
                                total_timeout=args.total_timeout, app=not args.plain)
    except CheckError as error:
        print(f"check_report: {error}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(findings.as_dict(), indent=2) + "\n")
    for warning in findings.warnings:
        print(f"warning: {warning}")
    for error in findings.errors:
        print(f"ERROR: {error}")
    for url in findings.external_requests:
        print(f"ERROR: request outside the report: {url}")
    size = args.report.stat().st_size / 1e6
    status = "OK" if findings.ok else "FAILED"
    print(f"{status}: {args.report} ({size:.1f} MB), {len(findings.views)} views, "
          f"{len(findings.errors)} errors, {len(findings.external_requests)} external requests, "
          f"{len(findings.warnings)} warnings, {findings.seconds:.1f}s; "
          f"screenshot {args.screenshot}")
    return 0 if findings.ok else 1


if __name__ == "__main__":
    sys.exit(main())
