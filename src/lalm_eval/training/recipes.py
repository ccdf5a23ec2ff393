"""Training recipes as data (``recipes/<name>.yaml``) and a model's resolved training spec.

A recipe holds the connector, LoRA, prompt template, training settings and decoding of one
published method; a model's ``training`` block in config names a recipe and overrides keys
of it. :func:`resolve_recipe` merges the two into the one mapping that both the training job
and the trained model's adapter rebuild the LALM from (``<out>/build.json``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

RECIPE_KEYS = frozenset({"name", "upstream", "connector", "lora", "template", "max_length",
                         "max_transcript_tokens", "llm_dtype", "settings", "decoding"})
TEMPLATE_KEYS = frozenset({"text", "chat", "system", "add_eos", "chat_kwargs"})


class RecipeError(ValueError):
    """A recipe or its overrides cannot be used; the message names the key."""


def recipe_names() -> list[str]:
    """The packaged recipes."""
    folder = resources.files("lalm_eval.training").joinpath("recipes")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_recipe(name_or_path: str) -> dict[str, Any]:
    """A packaged recipe by name, or a recipe YAML file by path."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise RecipeError(f"recipe file {path} not found")
        text = path.read_text()
    else:
        if name_or_path not in recipe_names():
            raise RecipeError(f"unknown recipe {name_or_path!r} (known: "
                              f"{', '.join(recipe_names())}; or give a path to a YAML file)")
        text = (resources.files("lalm_eval.training").joinpath("recipes")
                .joinpath(f"{name_or_path}.yaml").read_text())
    recipe = yaml.safe_load(text)
    if not isinstance(recipe, dict):
        raise RecipeError(f"recipe {name_or_path}: not a mapping")
    unknown = sorted(set(recipe) - RECIPE_KEYS)
    if unknown:
        raise RecipeError(f"recipe {name_or_path}: unknown key(s) {unknown}")
    return recipe


def _merged(base: Mapping[str, Any] | None, overrides: Mapping[str, Any], what: str,
            allowed: frozenset[str] | None = None) -> dict[str, Any]:
    if allowed is not None:
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise RecipeError(f"{what}: unknown key(s) {unknown} (allowed: {sorted(allowed)})")
    return {**copy.deepcopy(dict(base or {})), **copy.deepcopy(dict(overrides))}


def resolve_recipe(training: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe named by a model's ``training`` block with that block's overrides.

    ``connector``, ``template`` and ``settings`` overrides replace single keys; ``lora`` is
    true (the recipe's), false (frozen LLM) or a mapping of keys to change; a connector
    override with another ``kind`` replaces the recipe's connector as a whole."""
    recipe = load_recipe(str(training["recipe"]))
    name = recipe.get("name", training["recipe"])
    connector_override = dict(training.get("connector") or {})
    base_connector = recipe.get("connector") or {}
    if "kind" in connector_override and connector_override["kind"] != base_connector.get("kind"):
        base_connector = {}
    lora_setting = training.get("lora", True)
    if lora_setting is False:
        lora = None
    elif lora_setting is True:
        lora = copy.deepcopy(recipe.get("lora") or None)
    else:
        lora = _merged(recipe.get("lora") or {"r": 8, "alpha": 32, "dropout": 0.1,
                                              "target_modules": "all-linear"},
                       lora_setting, f"training.lora (recipe {name})")
    resolved = {
        "recipe": name,
        "upstream": recipe.get("upstream"),
        "connector": _merged(base_connector, connector_override, f"recipe {name} connector"),
        "lora": lora,
        "template": _merged(recipe.get("template"), training.get("template") or {},
                            f"recipe {name} template", TEMPLATE_KEYS),
        "max_length": training.get("max_length", recipe.get("max_length")),
        "max_transcript_tokens": recipe.get("max_transcript_tokens"),
        "llm_dtype": recipe.get("llm_dtype", "float32"),
        "settings": _merged(recipe.get("settings"), training.get("settings") or {},
                            f"recipe {name} settings"),
        "decoding": copy.deepcopy(recipe.get("decoding") or {}),
    }
    if "text" not in resolved["template"] or "{audio}" not in resolved["template"]["text"]:
        raise RecipeError(f"recipe {name}: template.text must contain {{audio}}")
    return resolved
