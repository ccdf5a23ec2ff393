"""The execution profiles: every key is a Snakemake option, the local workflow profile does
not override the SLURM profile, and the SLURM profile fits the workflow's rules and models."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "profiles" / "default" / "config.v8+.yaml"
SLURM = REPO / "profiles" / "slurm" / "config.v8+.yaml"
LOCAL_OVERRIDE = REPO / "cluster" / "slurm-local.yaml"
# keys of profiles/default that do nothing under a cluster executor
INERT_ON_CLUSTER = {"cores", "resources"}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _parse(argv: list[str]):
    from snakemake.cli import parse_args

    cwd = Path.cwd()
    try:  # profiles/default is found relative to the working directory
        os.chdir(REPO)
        return parse_args(argv)[1]
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("profile", [DEFAULT, SLURM, LOCAL_OVERRIDE], ids=lambda p: p.parent.name)
def test_every_profile_key_is_a_snakemake_option(profile):
    # Snakemake ignores unknown keys in a profile without a word
    from snakemake.cli import get_argument_parser

    options = {s for action in get_argument_parser()._actions for s in action.option_strings}
    unknown = [key for key in _load(profile) if f"--{key}" not in options]
    assert not unknown, f"{profile}: not Snakemake options: {unknown}"


def test_the_local_workflow_profile_does_not_change_the_slurm_settings():
    default, slurm = _load(DEFAULT), _load(SLURM)
    for key in set(default) & set(slurm):
        assert default[key] == slurm[key], f"profiles/default overrides {key} of profiles/slurm"
    assert set(default) - set(slurm) <= INERT_ON_CLUSTER, set(default) - set(slurm)
    # and as Snakemake reads them: --profile profiles/slurm plus the workflow profile
    both = _parse(["--profile", "profiles/slurm", "-n"])
    alone = _parse(["--profile", "profiles/slurm", "--workflow-profile", "none", "-n"])
    for dest in ("executor", "jobs", "retries", "latency_wait", "rerun_incomplete",
                 "keep_going", "set_resource_scopes", "default_resources", "set_resources",
                 "slurm_partition_config", "slurm_array_jobs"):
        assert repr(getattr(both, dest)) == repr(getattr(alone, dest)), dest
    assert both.executor == "slurm"
    assert both.set_resource_scopes == {"gpu": "local"}


def test_the_local_override_changes_only_the_partitions_and_status_checks():
    args = _parse(["--profile", "profiles/slurm", "--profile", "cluster/slurm-local.yaml", "-n"])
    assert Path(args.slurm_partition_config).name == "partitions-local.yaml"
    assert args.slurm_status_command == "squeue"
    assert args.executor == "slurm" and args.slurm_array_jobs == "build_mixtures"
    assert set(_load(LOCAL_OVERRIDE)) <= {
        "slurm-partition-config", "slurm-status-command",
        "slurm-init-seconds-before-status-checks", "max-status-checks-per-second"}


def _rule_names() -> set[str]:
    names = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        names |= set(re.findall(r"^rule (\w+):", smk.read_text(), re.M))
    return names


def test_set_resources_name_rules_of_the_workflow():
    # a misspelt rule name in set-resources is ignored by Snakemake
    unknown = set(_load(SLURM).get("set-resources") or {}) - _rule_names()
    assert not unknown, f"set-resources names no rule: {unknown}"


def test_rule_resources_have_one_source_of_truth():
    # every rule's mem_mb/runtime live in job_resources.yaml; no profile repeats them
    from lalm_eval.job_resources import resource_table

    table = resource_table()
    assert set(table) <= _rule_names(), set(table) - _rule_names()
    for profile in (DEFAULT, SLURM, LOCAL_OVERRIDE):
        for rule, given in (_load(profile).get("set-resources") or {}).items():
            repeated = {"mem_mb", "runtime", "threads"} & set(given)
            assert not repeated, f"{profile} repeats {repeated} of rule {rule}"
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for rule, body in re.findall(r"^rule (\w+):\n((?:    .*\n|\n)*)", text, re.M):
            if "resources:" in body:
                assert f'job_resources("{rule}")' in body, f"{smk.name}: {rule}"
                assert rule in table, f"{rule} is not in job_resources.yaml"


def test_every_model_fits_a_partition_and_gpu_jobs_only_gpu_partitions():
    from snakemake_executor_plugin_slurm.partitions import read_partition_file

    partitions = read_partition_file(SLURM.parent / "partitions.yaml")
    assert any(p.limits.max_gpu == 0 for p in partitions)
    for config in ("config.yaml", "demo.yaml"):
        models = _load(REPO / "config" / config).get("models", {})
        for name, model in models.items():
            # inference jobs, and the training job of a trained model
            for needs in (model.get("resources", {}),
                          (model.get("training") or {}).get("resources", {})):
                fits = [p.name for p in partitions
                        if needs.get("gpu", 0) <= p.limits.max_gpu
                        and needs.get("mem_mb", 0) <= p.limits.max_mem_mb
                        and needs.get("runtime", 0) <= p.limits.max_runtime]
                assert fits, f"{config}: model {name} ({needs}) fits no partition"


@pytest.mark.slow
def test_the_slurm_profile_dry_runs_the_demo():
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-F", "--quiet", "rules", "--configfile",
         "config/demo.yaml", "--profile", "profiles/slurm",
         "--profile", "cluster/slurm-local.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "build_mixtures" in run.stdout + run.stderr
