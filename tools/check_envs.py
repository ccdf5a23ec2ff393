#!/usr/bin/env python3
"""Resolve every conda environment's pip part against the package index, installing nothing.

For each ``envs/*.yaml`` (or the files named): the ``pip:`` list is written to a temporary
requirements file (``-e ..`` made absolute against ``envs/``) and resolved with

    python -m pip install --dry-run --ignore-installed --quiet --report <json> -r <file>

which downloads metadata only (PyPI serves wheel metadata on its own, PEP 658) and prepares
sdists' metadata in pip's build isolation; ``--ignore-installed`` makes the resolution
independent of what the running environment has. The pins of the ``<env>.post-deploy.sh``
script (packages a pip section cannot hold) are looked up with ``pip index versions``.

pip runs without this machine's pip configuration (``PIP_CONFIG_FILE=/dev/null``; find-links,
extra indexes and constraints dropped), so the answer is PyPI's (or ``PIP_INDEX_URL``'s, when
set), not a local wheel folder's; ``--local-config`` keeps the configuration. A pin counts as
kept when the resolved version has the pinned public version (``2.13.0+cpu`` keeps
``torch==2.13.0``).

The interpreter running this must have the environments' Python version (3.11): markers and
wheel tags are evaluated for it. Needs the package index, so it is not part of ``make test``.
Exit status 1 when any environment does not resolve.

    python tools/check_envs.py               # every envs/*.yaml (make check-envs)
    python tools/check_envs.py envs/ltu_as.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")
POST_DEPLOY_PIN = re.compile(
    r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def env_parts(env_file: Path) -> tuple[str | None, list[str]]:
    """(python version, pip requirements) of a conda environment file."""
    data = yaml.safe_load(env_file.read_text())
    python, pip = None, []
    for dep in data.get("dependencies", []):
        if isinstance(dep, dict) and "pip" in dep:
            for req in dep["pip"] or []:
                req = str(req).strip()
                if req.startswith("-e "):
                    target = (env_file.parent / req[3:].strip()).resolve()
                    req = f"-e {target}"
                pip.append(req)
        elif str(dep).startswith("python="):
            python = str(dep).split("=", 1)[1]
    return python, pip


#: pip settings of this machine that would answer from local folders instead of the index
LOCAL_PIP_SETTINGS = ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX",
                      "PIP_CONFIG_FILE")
USE_LOCAL_CONFIG = False


def pip_env() -> dict[str, str]:
    """The environment pip runs in: PyPI only unless ``--local-config``."""
    env = dict(os.environ)
    if not USE_LOCAL_CONFIG:
        for key in LOCAL_PIP_SETTINGS:
            env.pop(key, None)
        env["PIP_CONFIG_FILE"] = os.devnull
    return env


def resolve(requirements: list[str]) -> tuple[bool, dict[str, str], str]:
    """(ok, name -> version resolved, pip's error output)."""
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("\n".join(requirements) + "\n")
        report = Path(tmp) / "report.json"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
             "--quiet", "--disable-pip-version-check", "--report", str(report), "-r", str(reqs)],
            capture_output=True, text=True, env=pip_env())
        if result.returncode != 0 or not report.exists():
            return False, {}, (result.stderr or result.stdout).strip()
        installed = json.loads(report.read_text()).get("install", [])
    versions = {item["metadata"]["name"]: item["metadata"]["version"] for item in installed}
    return True, versions, ""


def index_has(name: str, version: str) -> bool:
    result = subprocess.run([sys.executable, "-m", "pip", "index", "versions", name,
                             "--disable-pip-version-check"], capture_output=True, text=True,
                            env=pip_env())
    listed = re.search(r"Available versions:(.*)", result.stdout)
    return bool(listed) and version in [v.strip() for v in listed.group(1).split(",")]


def post_deploy_pins(env_file: Path) -> list[tuple[str, str]]:
    script = env_file.with_name(env_file.name.removesuffix(".yaml") + ".post-deploy.sh")
    if not script.exists():
        return []
    pins = []
    for line in script.read_text().splitlines():
        if "pip install" in line and not line.lstrip().startswith("#"):
            pins += POST_DEPLOY_PIN.findall(line)
    return pins


def check(env_file: Path) -> bool:
    rel = env_file.resolve().relative_to(ROOT) if env_file.resolve().is_relative_to(ROOT) \
        else env_file
    python, requirements = env_parts(env_file)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python and python != running:
        print(f"{rel}: FAIL python={python} but this interpreter is {running}; run it with "
              f"Python {python}")
        return False
    start = time.monotonic()
    ok, versions, error = resolve(requirements)
    seconds = time.monotonic() - start
    if not ok:
        print(f"{rel}: FAIL does not resolve ({seconds:.0f} s)\n    "
              + "\n    ".join(error.splitlines()[-12:]))
        return False
    resolved = {normalise(n): v.split("+")[0] for n, v in versions.items()}
    wrong = []
    for req in requirements:
        match = PIN.match(req)
        if match and resolved.get(normalise(match.group(1))) != match.group(2):
            wrong.append(f"{match.group(1)} {resolved.get(normalise(match.group(1)))}")
    if wrong:
        print(f"{rel}: FAIL pins not kept: {', '.join(wrong)}")
        return False
    missing = [f"{n}=={v}" for n, v in post_deploy_pins(env_file) if not index_has(n, v)]
    if missing:
        print(f"{rel}: FAIL post-deploy pins not on the index: {', '.join(missing)}")
        return False
    pinned = sum(bool(PIN.match(r)) for r in requirements)
    key = ", ".join(f"{n} {resolved[n]}" for n in ("torch", "transformers", "numpy")
                    if n in resolved)
    extra = post_deploy_pins(env_file)
    post = f"; post-deploy pins on the index: {', '.join(f'{n}=={v}' for n, v in extra)}" \
        if extra else ""
    print(f"{rel}: ok, {len(versions)} packages resolved ({pinned} pinned; {key}) "
          f"in {seconds:.0f} s{post}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("envs", nargs="*", type=Path,
                        help="environment files (default: envs/*.yaml)")
    parser.add_argument("--local-config", action="store_true",
                        help="keep this machine's pip configuration (find-links, constraints)")
    args = parser.parse_args(argv)
    global USE_LOCAL_CONFIG
    USE_LOCAL_CONFIG = args.local_config
    files = args.envs or sorted((ROOT / "envs").glob("*.yaml"))
    results = [check(f) for f in files]
    print(f"{sum(results)} of {len(results)} environments resolve")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
