"""Per-model-family answer rules (data in ``families.yaml``) and the answer clean-up.

:func:`clean_answer` is the one clean-up of a family's raw answer: the family's decoder
markers removed, surrounding whitespace stripped and one leading answer prefix cut. Model
adapters apply it to their raw output; the SSEU parser applies it again before parsing, so
parsing a raw answer and parsing the adapter's cleaned answer give the same result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "FAMILIES",
    "FamilyRules",
    "clean_answer",
    "family_rules",
    "load_families",
    "register_family",
]

GENERIC = "generic"
_RULE_KEYS = ("markers", "answer_prefixes", "prefixes")


@dataclass(frozen=True)
class FamilyRules:
    """One family's answer rules.

    ``markers``: literal strings removed everywhere. ``answer_prefixes``: regexes of the
    prefix the family writes before its answer (cut once by :func:`clean_answer`, also known
    wrappers for the parser). ``prefixes``: regexes of further known wrappers (parser only).
    Regexes match at the start of the answer, case-insensitively.
    """

    prefixes: tuple[str, ...] = ()
    answer_prefixes: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()

    @property
    def wrappers(self) -> tuple[str, ...]:
        """Every prefix regex the parser strips as a known wrapper."""
        return (*self.answer_prefixes, *self.prefixes)


def _strings(value: Any, where: str, regex: bool) -> tuple[str, ...]:
    """A YAML list of non-empty strings (compiled once when ``regex``) as a tuple."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where} must be a list of non-empty strings, got {value!r}")
    if regex:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{where}: bad regex {pattern!r}: {exc}") from exc
    return tuple(value)


def _rules(name: str, spec: Any, source: str) -> FamilyRules:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ValueError(f"{source}: family {name!r} must be a mapping, got {spec!r}")
    unknown = sorted(set(spec) - set(_RULE_KEYS))
    if unknown:
        raise ValueError(f"{source}: family {name!r} has unknown key(s) {unknown} "
                         f"(keys: {', '.join(_RULE_KEYS)})")
    return FamilyRules(**{key: _strings(spec[key], f"{source}: {name}.{key}",
                                        regex=key != "markers")
                          for key in _RULE_KEYS if key in spec})


def load_families(path: str | Path | None = None) -> dict[str, FamilyRules]:
    """Family name (lower case) -> rules, from ``path`` (default: the packaged
    ``families.yaml``); the file must define ``generic``."""
    if path is None:
        source = "lalm_eval/answers/families.yaml"
        text = resources.files("lalm_eval.answers").joinpath("families.yaml").read_text(
            encoding="utf-8")
    else:
        source = str(path)
        text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping of family names to rules")
    families: dict[str, FamilyRules] = {}
    for name, spec in data.items():
        key = str(name).strip().lower()
        if key in families:
            raise ValueError(f"{source}: family {key!r} is defined twice")
        families[key] = _rules(key, spec, source)
    if GENERIC not in families:
        raise ValueError(f"{source}: no {GENERIC!r} family")
    return families


#: family name -> rules, loaded once from ``families.yaml``; unknown families use ``generic``
FAMILIES: dict[str, FamilyRules] = load_families()


def register_family(name: str, rules: FamilyRules) -> None:
    """Add or replace a family's rules (for this process)."""
    FAMILIES[name] = rules


def family_rules(name: str | None) -> FamilyRules:
    """Rules of a family; unknown names (and None) get the generic rules."""
    return FAMILIES.get((name or GENERIC).strip().lower(), FAMILIES[GENERIC])


def clean_answer(text: str, family: str | FamilyRules | None) -> str:
    """A raw answer with the family's markers removed, whitespace stripped and the first
    matching answer prefix cut (once; the rest stripped again)."""
    rules = family if isinstance(family, FamilyRules) else family_rules(family)
    for marker in rules.markers:
        text = text.replace(marker, "")
    text = text.strip()
    for pattern in rules.answer_prefixes:
        m = re.match(pattern, text, re.I)
        if m and m.end() > 0:
            return text[m.end():].strip()
    return text
