"""Which conda environment a model's ``infer_<model>`` rule runs in (``--sdm conda``).

Most adapters run in ``envs/models.yaml`` (generated from pyproject.toml). The adapters for
LALMs that ship their own code cannot share it: Step-Audio 2 and DeSTA2.5 want transformers
4.49, SALMONN wants transformers 4.28 and torch 2.0, LTU-AS ships its own forks of
transformers and peft, msclap wants numpy<2 and transformers<5. Each such family has its own
environment file in ``envs/`` (:data:`FAMILY_ENVS`); a model entry's ``conda:`` key overrides
it. Each family environment is completed by its ``.post-deploy.sh`` script, which installs
this checkout's ``lalm_eval`` without dependencies (its exact pins, numpy 2 among them, do
not fit every family) and what a pip section cannot hold (Kimi-Audio's flash-attn).

``make check-envs`` resolves every environment's pip part against PyPI without installing
anything (``tools/check_envs.py``).

Pure Python: imports neither torch nor the adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

#: environment of every adapter not listed in :data:`FAMILY_ENVS`
DEFAULT_ENV = "envs/models.yaml"

#: adapter -> its family's environment file (repository-relative)
FAMILY_ENVS: dict[str, str] = {
    "kimi_audio": "envs/kimi_audio.yaml",
    "step_audio2": "envs/step_audio2.yaml",
    "salmonn": "envs/salmonn.yaml",
    "ltu_as": "envs/ltu_as.yaml",
    "desta25": "envs/desta25.yaml",
    "ms_clap": "envs/ms_clap.yaml",
    "mga_clap": "envs/mga_clap.yaml",
}

#: what the inference path (workflow/scripts/infer.py -> suites -> engine -> adapter module)
#: imports besides the standard library, as distribution names; every family environment
#: must carry them (``tests/test_repo_adapters.py`` checks both lists)
INFERENCE_RUNTIME = ("numpy", "soundfile", "soxr", "PyYAML", "tqdm", "threadpoolctl",
                     "jsonschema")


def conda_env(entry: Mapping[str, Any]) -> str:
    """The environment file of a model entry (a ``models.<name>`` mapping of the config):
    its ``conda`` key, else its adapter family's file, else :data:`DEFAULT_ENV`."""
    given = entry.get("conda")
    if given:
        return str(given)
    return FAMILY_ENVS.get(str(entry.get("adapter", "")), DEFAULT_ENV)


def rule_conda_env(entry: Mapping[str, Any], rules_dir: str = "workflow/rules") -> str:
    """:func:`conda_env` as a Snakemake ``conda:`` directive in ``rules_dir`` takes it
    (relative paths are relative to the rule file's folder; absolute paths stay)."""
    path = conda_env(entry)
    if PurePosixPath(path).is_absolute():
        return path
    up = "/".join(".." for _ in PurePosixPath(rules_dir).parts)
    return f"{up}/{path}" if up else path
