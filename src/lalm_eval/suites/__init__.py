"""Benchmark suites as plug-ins: a lazy registry of suite kinds (:class:`~.base.Suite`).

Built-in kinds live in one folder each (``suites/<kind>/``); a plug-in module named in the
config's ``plugins:`` list registers more with :func:`register_kind` when it is imported.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

from lalm_eval.suites.base import Plan, Suite

#: kind name -> "module:class" (imported on first use, so planning stays cheap)
BUILTIN_KINDS: dict[str, str] = {
    "sseu": "lalm_eval.suites.sseu:SseuSuite",
    "jasco": "lalm_eval.suites.jasco:JascoSuite",
    "knowledge": "lalm_eval.suites.knowledge:KnowledgeSuite",
    "xares": "lalm_eval.suites.xares:XaresSuite",
}

_REGISTERED: dict[str, type[Suite]] = {}


class UnknownSuiteKind(KeyError):
    """A config names a suite kind nobody registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def register_kind(cls: type[Suite]) -> type[Suite]:
    """Register a suite kind (usable as a class decorator)."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} sets no kind name")
    _REGISTERED[cls.kind] = cls
    return cls


#: entry-point group through which an installed package publishes suite kinds
ENTRY_POINT_GROUP = "lalm_eval.suites"


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def kind_names() -> list[str]:
    return sorted(set(BUILTIN_KINDS) | set(_REGISTERED) | set(_entry_points()))


def get_kind(name: str) -> type[Suite]:
    """The class of suite kind ``name``: registered, built in, or an installed package's
    entry point (group ``lalm_eval.suites``, value ``module:Class``)."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = BUILTIN_KINDS.get(name) or _entry_points().get(name)
    if target is None:
        hint = difflib.get_close_matches(name, kind_names(), n=1)
        maybe = f"; did you mean '{hint[0]}'?" if hint else ""
        raise UnknownSuiteKind(f"unknown suite kind '{name}' (known: "
                               f"{', '.join(kind_names())}){maybe}")
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    _REGISTERED[name] = cls
    return cls


def load_plugins(modules: list[str] | None) -> None:
    """Import the config's plug-in modules (each registers its kinds on import)."""
    for module in modules or []:
        importlib.import_module(module)


def build_suite(name: str, settings: Mapping[str, Any], plan: Plan | None = None) -> Suite:
    """The suite object of one configured instance."""
    return get_kind(settings["kind"])(name, settings, plan)


def suite_from_params(params: Mapping[str, Any]) -> Suite:
    """The suite object a job script gets through ``params.suite`` (see :func:`job_params`)."""
    load_plugins(params.get("plugins"))
    return build_suite(params["name"], {"kind": params["kind"]})


def job_params(suite: Suite, plugins: list[str] | None = None) -> dict[str, Any]:
    """What a job needs to rebuild its suite object: name, kind and plug-ins only. A job's
    settings reach it through the suite's ``*_params()`` (so that only a change to what a
    job uses reruns it); run-time methods read those, never ``self.settings``."""
    return {"name": suite.name, "kind": suite.kind, "plugins": list(plugins or [])}


__all__ = ["BUILTIN_KINDS", "Plan", "Suite", "UnknownSuiteKind", "build_suite", "get_kind",
           "job_params", "kind_names", "load_plugins", "register_kind", "suite_from_params"]
