"""Configuration: JSON-schema validation with defaults, and errors that name the key."""

from __future__ import annotations

import copy
import difflib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_RESOURCE = "config.schema.yaml"


class ConfigError(ValueError):
    """Invalid configuration; ``str()`` is one line naming the key and what is allowed."""


def load_schema() -> dict:
    """The packaged configuration schema."""
    text = resources.files("lalm_eval.schemas").joinpath(SCHEMA_RESOURCE).read_text()
    return yaml.safe_load(text)


def _with_defaults(validator_class: type) -> type:
    """A validator class that also writes schema defaults into the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = ""
    for part in error.absolute_path:
        parts += f"[{part}]" if isinstance(part, int) else (f".{part}" if parts else str(part))
    return parts or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line: where, what is wrong, what is allowed."""
    where = _key_path(error)
    schema, instance = error.schema, error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(instance) - set(allowed))
        key = extra[0] if extra else "?"
        hint = difflib.get_close_matches(key, allowed, n=1)
        maybe = f"; did you mean '{hint[0]}'?" if hint else ""
        scope = "" if where == "(top level)" else f" in {where}"
        return f"unknown key '{key}'{scope} (allowed: {', '.join(allowed)}){maybe}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator in ("enum", "const"):
        allowed = schema.get("enum", [schema.get("const")])
        return f"{where}: {instance!r} is not allowed (allowed: {', '.join(map(repr, allowed))})"
    if error.validator == "type":
        return f"{where}: {instance!r} has the wrong type (expected {schema['type']})"
    if error.validator == "anyOf":
        options = []
        for option in error.validator_value:
            if "enum" in option:
                options.extend(map(repr, option["enum"]))
            elif "type" in option:
                bounds = [f">= {option['minimum']}" if "minimum" in option else "",
                          f"<= {option['maximum']}" if "maximum" in option else ""]
                options.append(f"{option['type']} {' '.join(b for b in bounds if b)}".strip())
        return f"{where}: {instance!r} is not allowed (allowed: {' or '.join(options)})"
    if error.validator == "propertyNames":
        return f"{where}: key {instance!r} is not allowed ({error.message})"
    return f"{where}: {error.message}"


def validate_config(config: dict[str, Any], schema: dict | None = None) -> dict[str, Any]:
    """Validate ``config`` in place, filling defaults; raise ConfigError on the first problem.

    Also checks references the schema cannot express (suites naming configured corpora).
    """
    schema = schema or load_schema()
    _coerce_command_line_numbers(config)
    errors = list(_Validator(schema).iter_errors(config))
    if errors:
        # the deepest error is the most specific; anyOf errors are described as a whole
        chosen = max(
            errors,
            key=lambda e: (len(list(e.absolute_path)), e.validator == "additionalProperties"),
        )
        raise ConfigError(f"config error: {_describe(chosen)}")
    _check_references(config)
    return config


def _coerce_command_line_numbers(config: dict[str, Any]) -> None:
    """``--config 'select={"snrs": [0]}'`` reaches the workflow with "0" as a string (Snakemake
    parses nested command-line values as text): SNR strings that are numbers become numbers."""
    select = config.get("select")
    if not isinstance(select, dict) or not isinstance(select.get("snrs"), list):
        return
    coerced = []
    for value in select["snrs"]:
        if isinstance(value, str) and value not in ("+inf", "-inf"):
            try:
                number = float(value)
            except ValueError:
                coerced.append(value)  # left for the schema to name
                continue
            value = int(number) if number.is_integer() else number
        coerced.append(value)
    select["snrs"] = coerced


def _check_references(config: dict[str, Any]) -> None:
    corpora = config.get("corpora", {})
    models = config.get("models", {})
    for suite, settings in config.get("suites", {}).items():
        for model in settings.get("systems", {}):
            _require_known(model, models, f"suites.{suite}.systems names model", "models")
        for model in settings.get("judges", []):
            _require_known(model, models, f"suites.{suite}.judges names model", "models")
        if suite == "knowledge":
            _check_knowledge(settings, corpora, models)
            continue
        if suite == "jasco":
            _require_known(settings["corpus"], corpora, "suites.jasco names corpus", "corpora")
            kind = corpora[settings["corpus"]]["kind"]
            if kind not in JASCO_CORPUS_KINDS:
                raise ConfigError(f"config error: suites.jasco.corpus '{settings['corpus']}' has "
                                  f"kind '{kind}' (needs one of: {', '.join(JASCO_CORPUS_KINDS)})")
            continue
        names = [settings.get("speech_corpus")] + list(settings.get("background_corpora", []))
        for name in names:
            _require_known(name, corpora, f"suites.{suite} names corpus", "corpora")
    for name, corpus in corpora.items():
        if corpus["kind"] in ("jasco_demo", "mmau_demo"):
            _require_known(corpus["events_from"], corpora,
                           f"corpora.{name}.events_from names corpus", "corpora")
    _check_selection(config)


JASCO_CORPUS_KINDS = ("jasco_demo", "what_are_they_doing")
KNOWLEDGE_MODEL_LISTS = ("text_llms", "captioners", "cascade_llms", "audio_llms")
BENCHMARK_KINDS = ("mmau_demo", "mmau", "mmar")


def knowledge_models(settings: dict[str, Any]) -> list[str]:
    """Every model the knowledge suite runs (text LLMs, captioners, cascade LLMs, LALMs)."""
    names: list[str] = []
    for key in KNOWLEDGE_MODEL_LISTS:
        for name in settings.get(key) or []:
            if name not in names:
                names.append(name)
    return names


def _check_knowledge(settings: dict[str, Any], corpora: dict[str, Any],
                     models: dict[str, Any]) -> None:
    for key in KNOWLEDGE_MODEL_LISTS:
        for name in settings.get(key) or []:
            _require_known(name, models, f"suites.knowledge.{key} names model", "models")
    checks = [("mcq_corpus", settings.get("mcq_corpus"), ("mcq",))]
    checks += [("benchmarks", b, BENCHMARK_KINDS) for b in settings.get("benchmarks", [])]
    for key, name, kinds in checks:
        if name is None:
            continue
        _require_known(name, corpora, f"suites.knowledge.{key} names corpus", "corpora")
        if corpora[name]["kind"] not in kinds:
            raise ConfigError(f"config error: suites.knowledge.{key} '{name}' has kind "
                              f"'{corpora[name]['kind']}' (needs one of: {', '.join(kinds)})")


def _snr_key(value: Any) -> float:
    return float(str(value).replace("+inf", "inf"))


def _check_selection(config: dict[str, Any]) -> None:
    """``select`` may only name configured suites, suite systems and configured SNRs."""
    select = config.get("select") or {}
    suites = config.get("suites", {})
    for suite in select.get("suites") or []:
        _require_known(suite, suites, "select.suites names suite", "suites")
    systems = {m: None for s in suites.values() for m in s.get("systems", {})}
    systems.update({m: None for m in knowledge_models(suites.get("knowledge", {}))})
    for model in select.get("models") or []:
        _require_known(model, systems, "select.models names system", "suites.*.systems")
    configured = {_snr_key(v): v for v in config.get("mixing", {}).get("snrs", [])}
    for snr in select.get("snrs") or []:
        if _snr_key(snr) not in configured:
            raise ConfigError(f"config error: select.snrs names SNR {snr!r}, which is not in "
                              f"mixing.snrs ({', '.join(map(str, configured.values()))})")


def selected_suites(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Enabled suites after ``select`` (suites, and systems filtered by ``select.models``)."""
    select = config.get("select") or {}
    wanted_suites, wanted_models = select.get("suites"), select.get("models")
    out: dict[str, dict[str, Any]] = {}
    for name, suite in config.get("suites", {}).items():
        if not suite.get("enabled", True) or (wanted_suites and name not in wanted_suites):
            continue
        suite = dict(suite)
        if name == "knowledge":
            for key in KNOWLEDGE_MODEL_LISTS:
                if key == "cascade_llms" and suite.get(key) is None:
                    suite[key] = list(suite.get("text_llms", []))
                if wanted_models is not None:
                    suite[key] = [m for m in suite.get(key) or [] if m in wanted_models]
            suite["systems"] = knowledge_models(suite)
            out[name] = suite
            continue
        systems = suite.get("systems", {})
        if wanted_models is not None:
            if isinstance(systems, dict):
                systems = {m: v for m, v in systems.items() if m in wanted_models}
            else:
                systems = [m for m in systems if m in wanted_models]
        suite["systems"] = systems
        out[name] = suite
    return out


def selected_snrs(config: dict[str, Any]) -> list[Any]:
    """``mixing.snrs`` in configured order, restricted to ``select.snrs`` when given."""
    snrs = list(config["mixing"]["snrs"])
    wanted = (config.get("select") or {}).get("snrs")
    if wanted is None:
        return snrs
    keys = {_snr_key(v) for v in wanted}
    return [v for v in snrs if _snr_key(v) in keys]


def _require_known(name: Any, known: dict[str, Any], what: str, section: str) -> None:
    """ConfigError (one line, with a suggestion) when ``name`` is not a key of ``known``."""
    if name in known:
        return
    hint = difflib.get_close_matches(str(name), list(known), n=1)
    maybe = f"; did you mean '{hint[0]}'?" if hint else ""
    raise ConfigError(
        f"config error: {what} '{name}', which is not under {section} "
        f"(configured: {', '.join(sorted(known))}){maybe}"
    )


def load_config(path: str | Path, overrides: dict | None = None) -> dict[str, Any]:
    """Read a YAML config, apply shallow ``overrides``, validate and fill defaults."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config error: {path} is not valid YAML ({exc})") from exc
    if overrides:
        config.update(overrides)
    return validate_config(config)
