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


def _key_path(error: jsonschema.ValidationError, prefix: str = "") -> str:
    parts = prefix
    for part in error.absolute_path:
        parts += f"[{part}]" if isinstance(part, int) else (f".{part}" if parts else str(part))
    return parts or "(top level)"


def _describe(error: jsonschema.ValidationError, prefix: str = "") -> str:
    """One line: where (under ``prefix``), what is wrong, what is allowed."""
    where = _key_path(error, prefix)
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


def _first_error(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    """The deepest error is the most specific; anyOf errors are described as a whole."""
    return max(errors, key=lambda e: (len(list(e.absolute_path)),
                                      e.validator == "additionalProperties"))


def validate_config(config: dict[str, Any], schema: dict | None = None, *,
                    check_tables: bool = True) -> dict[str, Any]:
    """Validate ``config`` in place, filling defaults; raise ConfigError on the first problem.

    The top level is checked against the packaged schema, each suite instance against its
    kind's schema (``suites.<name>.kind``; plug-in modules in ``plugins`` are imported
    first), then references the schemas cannot express (a suite naming an unknown corpus).
    With ``check_tables`` the source tables of ``kind: tables`` corpora are checked against
    the contract too (:func:`check_table_corpora`; relative paths from the working folder).
    """
    from lalm_eval.suites import UnknownSuiteKind, get_kind, load_plugins

    schema = schema or load_schema()
    _coerce_command_line_numbers(config)
    errors = list(_Validator(schema).iter_errors(config))
    if errors:
        raise ConfigError(f"config error: {_describe(_first_error(errors))}")
    try:
        load_plugins(config.get("plugins"))
    except ImportError as exc:
        raise ConfigError(f"config error: plugins: cannot import {exc.name!r} ({exc})") from exc
    _check_models(config.get("models", {}))
    for name, settings in config.get("suites", {}).items():
        try:
            kind = get_kind(settings["kind"])
        except UnknownSuiteKind as exc:
            raise ConfigError(f"config error: suites.{name}.kind: {exc}") from None
        errors = list(_Validator(kind.schema()).iter_errors(settings))
        if errors:
            raise ConfigError(f"config error: {_describe(_first_error(errors), f'suites.{name}')}")
    _check_references(config)
    _check_training(config)
    if check_tables:
        check_table_corpora(config)
    return config


def check_table_corpora(config: dict[str, Any]) -> None:
    """The source tables of every ``kind: tables`` corpus must exist and follow the contract
    (docs/architecture.md): columns, cell types, required cells, audio files present. One
    line naming the corpus, the file, the row and the column. Reads each table once and
    stats each audio file (about a second for 40,000 rows); the file hashes are checked
    when the sources are prepared (:mod:`lalm_eval.source_store`)."""
    from lalm_eval.corpora.tables import check_table_file

    for name, corpus in config.get("corpora", {}).items():
        if corpus.get("kind") != "tables":
            continue
        for role in ("speech", "background"):
            path = corpus.get(role)
            if path is None:
                continue
            try:
                check_table_file(path, role)
            except FileNotFoundError:
                raise ConfigError(f"config error: corpora.{name}.{role}: {path}: no such file"
                                  ) from None
            except ValueError as exc:
                raise ConfigError(f"config error: corpora.{name}.{role} table {exc}") from None


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


def _check_models(models: dict[str, Any]) -> None:
    """Each ``models.<name>.adapter`` must be registered, and its ``options`` keys ones the
    adapter accepts (adapters with free-form options, ``option_keys = None``, are not
    checked). The registry maps names to module paths; reading the option keys imports
    the configured adapters' modules, which import no heavy library."""
    from lalm_eval.models.base import ModelError
    from lalm_eval.models.registry import ADAPTERS, allowed_options

    for name, entry in models.items():
        adapter = entry["adapter"]
        if adapter not in ADAPTERS:
            hint = difflib.get_close_matches(adapter, list(ADAPTERS), n=1)
            maybe = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(
                f"config error: models.{name}.adapter '{adapter}' is not a known adapter "
                f"(known: {', '.join(sorted(ADAPTERS))}){maybe}")
        try:
            allowed = allowed_options(adapter)
        except ModelError as exc:
            raise ConfigError(f"config error: models.{name}.adapter: {exc}") from None
        if allowed is None:
            continue
        unknown = sorted(set(entry.get("options") or {}) - allowed)
        if unknown:
            key = unknown[0]
            hint = difflib.get_close_matches(key, sorted(allowed), n=1)
            maybe = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(
                f"config error: unknown key '{key}' in models.{name}.options (adapter "
                f"{adapter} allows: {', '.join(sorted(allowed)) or 'none'}){maybe}")


def trained_model_dir(results: str, name: str) -> str:
    """Where the train rule writes model ``name`` (the source of its trained_lalm entry)."""
    return f"{results}/training/{name}"


def _check_training(config: dict[str, Any]) -> None:
    """Models with a ``training`` block: adapter trained_lalm, a known encoder and LLM
    entry, and their source set to the train rule's output folder; every other model
    needs a ``source``."""
    from lalm_eval.encoders import ENCODER_KINDS, USER_KINDS

    models = config.get("models", {})
    encoders = config.get("encoders", {})
    results = config.get("paths", {}).get("results", "results")
    kinds = [*ENCODER_KINDS, *USER_KINDS]
    for name, spec in encoders.items():
        if spec["kind"] not in kinds:
            hint = difflib.get_close_matches(spec["kind"], kinds, n=1)
            maybe = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(f"config error: encoders.{name}.kind '{spec['kind']}' is not a "
                              f"known encoder kind (known: {', '.join(kinds)}){maybe}")
        needed = {"file": "path", "module": "target"}.get(spec["kind"])
        if needed and not spec.get(needed):
            raise ConfigError(f"config error: encoders.{name}: kind {spec['kind']} needs "
                              f"'{needed}'")
    for name, entry in models.items():
        training = entry.get("training")
        if training is None:
            if "source" not in entry:
                raise ConfigError(f"config error: models.{name}: 'source' is a required property")
            if entry["adapter"] == "trained_lalm":
                raise ConfigError(f"config error: models.{name}: adapter trained_lalm needs a "
                                  "'training' block (recipe, encoder, llm, data)")
            continue
        if entry["adapter"] != "trained_lalm":
            raise ConfigError(f"config error: models.{name}.training: only adapter "
                              f"trained_lalm is trained by the workflow (got {entry['adapter']})")
        require_known(training["encoder"], encoders, f"models.{name}.training.encoder names",
                      "encoders")
        require_known(training["llm"], models, f"models.{name}.training.llm names", "models")
        if models[training["llm"]].get("training") is not None:
            raise ConfigError(f"config error: models.{name}.training.llm: "
                              f"{training['llm']} is itself a trained model")
        data_suite = training["data"].get("suite")
        if data_suite is not None:
            from lalm_eval.suites import get_kind

            require_known(data_suite, config.get("suites", {}),
                          f"models.{name}.training.data.suite names", "suites")
            kind = get_kind(config["suites"][data_suite]["kind"])
            if not getattr(kind, "writes_training_sets", False):
                raise ConfigError(f"config error: models.{name}.training.data.suite: suite "
                                  f"{data_suite} (kind {kind.kind}) writes no training set")
        expected = trained_model_dir(results, name)
        if entry.get("source", expected) != expected:
            raise ConfigError(f"config error: models.{name}.source: a trained model's source is "
                              f"its training output ({expected}); leave it out")
        entry["source"] = expected


def _check_references(config: dict[str, Any]) -> None:
    from lalm_eval.suites import get_kind

    corpora = config.get("corpora", {})
    for name, settings in config.get("suites", {}).items():
        get_kind(settings["kind"]).check(name, settings, config)
    for name, corpus in corpora.items():
        if "events_from" in corpus:
            require_known(corpus["events_from"], corpora,
                          f"corpora.{name}.events_from names corpus", "corpora")
    _check_selection(config)


def require_corpus(name: Any, corpora: dict[str, Any], kinds: tuple[str, ...], what: str
                   ) -> None:
    """``name`` must be a configured corpus of one of ``kinds`` (one-line ConfigError)."""
    require_known(name, corpora, f"{what} names corpus", "corpora")
    if corpora[name]["kind"] not in kinds:
        raise ConfigError(f"config error: {what} '{name}' has kind '{corpora[name]['kind']}' "
                          f"(needs one of: {', '.join(kinds)})")


def _snr_key(value: Any) -> float:
    return float(str(value).replace("+inf", "inf"))


def _check_selection(config: dict[str, Any]) -> None:
    """``select`` may only name configured suites, suite systems and configured SNRs."""
    from lalm_eval.suites import get_kind

    select = config.get("select") or {}
    suites = config.get("suites", {})
    for suite in select.get("suites") or []:
        require_known(suite, suites, "select.suites names suite", "suites")
    systems = {m: None for s in suites.values()
               for m in get_kind(s["kind"]).configured_systems(s)}
    for model in select.get("models") or []:
        require_known(model, systems, "select.models names system", "suites.*.systems")
    configured = {_snr_key(v): v for v in config.get("mixing", {}).get("snrs", [])}
    for snr in select.get("snrs") or []:
        if _snr_key(snr) not in configured:
            raise ConfigError(f"config error: select.snrs names SNR {snr!r}, which is not in "
                              f"mixing.snrs ({', '.join(map(str, configured.values()))})")


def selected_suites(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Enabled suites after ``select`` (suites, and systems filtered by ``select.models``)."""
    from lalm_eval.suites import get_kind

    select = config.get("select") or {}
    wanted_suites, wanted_models = select.get("suites"), select.get("models")
    out: dict[str, dict[str, Any]] = {}
    for name, suite in config.get("suites", {}).items():
        if not suite.get("enabled", True) or (wanted_suites and name not in wanted_suites):
            continue
        out[name] = get_kind(suite["kind"]).select(suite, wanted_models)
    return out


def selected_snrs(config: dict[str, Any]) -> list[Any]:
    """``mixing.snrs`` in configured order, restricted to ``select.snrs`` when given."""
    snrs = list(config["mixing"]["snrs"])
    wanted = (config.get("select") or {}).get("snrs")
    if wanted is None:
        return snrs
    keys = {_snr_key(v) for v in wanted}
    return [v for v in snrs if _snr_key(v) in keys]


def require_known(name: Any, known: dict[str, Any], what: str, section: str) -> None:
    """ConfigError (one line, with a suggestion) when ``name`` is not a key of ``known``."""
    if name in known:
        return
    if not known:
        block = (f"the config has no '{section}:' block (or it is empty)"
                 if section.isidentifier() else f"nothing is configured under {section}")
        raise ConfigError(f"config error: {what} '{name}', but {block}")
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
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config error: {path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"config error: {path}: cannot read ({exc.strerror})") from None
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"config error: {path} is not valid YAML ({detail})") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"config error: {path}: the top level must be a mapping of keys, "
                          f"not {type(config).__name__}")
    if overrides:
        config.update(overrides)
    return validate_config(config)
