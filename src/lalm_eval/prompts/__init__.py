"""Prompt sets as data: loading, rendering with label lists, hashing, per-model overrides.

A prompt set is a YAML file: ``name``, ``version``, ``source`` (where the wording comes
from), optional ``system``, ``prompts`` (prompt id -> template) and ``modes`` (mode -> list
of ``{task, prompt}``). Templates may use ``{scenes}`` and ``{events}`` (comma-separated
label lists of the suite). Packaged sets live next to this file; a path works too.

:func:`load_prompt_file` is the one reader of prompt YAML files (prompt sets here, the MCQ
prompt of :mod:`lalm_eval.suites.knowledge.akb`, the choice prompts of
:mod:`lalm_eval.suites.knowledge.mmau`, the JASCO orientation prompt): it resolves a
packaged name or a path, parses the YAML, checks required keys and template placeholders
with errors naming the file and the key, and returns the data with the sha256 of the text.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lalm_eval.hashing import text_sha256


class PromptError(ValueError):
    """A prompt set is malformed or names something that does not exist."""


@dataclass(frozen=True)
class TaskPrompt:
    task: str
    prompt_id: str
    template: str


@dataclass(frozen=True)
class PromptSet:
    name: str
    version: str
    source: str
    system: str | None
    prompts: dict[str, str]
    modes: dict[str, tuple[TaskPrompt, ...]]
    sha256: str

    def mode(self, mode: str) -> tuple[TaskPrompt, ...]:
        if mode not in self.modes:
            raise PromptError(f"prompt set {self.name!r} has no mode {mode!r} "
                              f"(modes: {', '.join(sorted(self.modes))})")
        return self.modes[mode]


def prompt_set_path(name_or_path: str) -> Path:
    """The file of a packaged set (by name, e.g. ``sseu_demo``) or of a YAML path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise PromptError(f"prompt set file {path} does not exist")
        return path
    resource = resources.files("lalm_eval.prompts").joinpath(f"{name_or_path}.yaml")
    if not resource.is_file():
        raise PromptError(f"no packaged prompt set {name_or_path!r} (and not a .yaml path)")
    return Path(str(resource))


@dataclass(frozen=True)
class PromptFile:
    """A prompt YAML file as read: where it is, its top-level mapping, the sha256 of its text."""

    path: Path
    data: dict[str, Any]
    sha256: str


#: what raises a loader's errors: an exception class taking the message
ErrorType = Callable[[str], Exception]


def _is_missing(value: Any) -> bool:
    """A key counts as missing when its value is null or a blank string."""
    return value is None or (isinstance(value, str) and not value.strip())


def _braced(names: Sequence[str]) -> str:
    """``{a}``, ``{a} and {b}``, ``{a}, {b} and {c}``."""
    items = ["{" + n + "}" for n in names]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def format_fields(template: str) -> set[str]:
    """The ``str.format`` field names of ``template`` (``{{``/``}}`` are literal braces).

    Raises ValueError for a string ``str.format`` cannot parse (e.g. an unmatched brace).
    """
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def check_prompt_data(
    text: str,
    where: str,
    *,
    required: Sequence[str] = (),
    templates: Mapping[str, Sequence[str]] | None = None,
    markers: Mapping[str, Sequence[str]] | None = None,
    what: str = "prompt file",
    error: ErrorType = PromptError,
) -> dict[str, Any]:
    """Parse prompt YAML ``text`` and check it; return its top-level mapping.

    ``required``: keys that must be present with a value that is not null or blank.
    ``templates``: key -> the ``str.format`` placeholders its template must use, exactly
    (no others, none missing). ``markers``: key -> names whose literal ``{name}`` must occur
    in the text (templates filled with ``str.replace``, where other braces are allowed).
    Template and marker keys are required too. Every failure raises ``error`` with a message
    that starts with ``where`` and names the key.
    """
    templates = dict(templates or {})
    markers = dict(markers or {})
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{where}: cannot be parsed as YAML ({exc})") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise error(f"{where}: a {what} must be a YAML mapping, got {type(raw).__name__}")
    for key in dict.fromkeys([*required, *templates, *markers]):
        if key not in raw or _is_missing(raw[key]):
            raise error(f"{where}: {what} lacks {key!r}")
    for key, names in templates.items():
        try:
            found = format_fields(str(raw[key]))
        except ValueError as exc:
            raise error(f"{where}: {key} is not a valid format string ({exc})") from exc
        if found != set(names):
            unknown = sorted(found - set(names))
            absent = [n for n in names if n not in found]
            details = "; ".join(part for part in (
                f"unknown placeholder(s) {unknown}" if unknown else "",
                f"missing {absent}" if absent else "") if part)
            raise error(f"{where}: {key} must use exactly {_braced(names)}, "
                        f"found {sorted(found)} ({details})")
    for key, names in markers.items():
        absent = ["{" + n + "}" for n in names if "{" + n + "}" not in str(raw[key])]
        if absent:
            raise error(f"{where}: {key} lacks placeholder(s) {', '.join(absent)}")
    return dict(raw)


def load_prompt_file(
    name_or_path: str | Path,
    *,
    required: Sequence[str] = (),
    templates: Mapping[str, Sequence[str]] | None = None,
    markers: Mapping[str, Sequence[str]] | None = None,
    what: str = "prompt file",
    error: ErrorType = PromptError,
) -> PromptFile:
    """Read and check a packaged prompt file (by name, e.g. ``mcq_demo``) or a YAML path.

    See :func:`check_prompt_data` for the checks. ``sha256`` is that of the file's text as
    read (UTF-8; the same as the hash of its bytes for a UTF-8 file with LF line ends). An
    unknown name or a missing file raises :class:`PromptError`.
    """
    path = prompt_set_path(str(name_or_path))
    text = path.read_text(encoding="utf-8")
    data = check_prompt_data(text, str(path), required=required, templates=templates,
                             markers=markers, what=what, error=error)
    return PromptFile(path, data, text_sha256(text))


@dataclass(frozen=True)
class TemplatePrompt:
    """A prompt file with one ``template`` (and an optional ``system`` text): the MCQ
    prompt, the judge prompt."""

    name: str
    version: str
    source: str
    system: str | None
    template: str
    sha256: str


def load_template_prompt(name_or_path: str | Path, fields: Sequence[str], *,
                         what: str = "prompt file", error: ErrorType = PromptError
                         ) -> TemplatePrompt:
    """A packaged single-template prompt by name or a YAML path: ``name``, ``version``,
    ``source`` required, ``template`` using exactly ``fields``, ``system`` optional."""
    file = load_prompt_file(name_or_path, required=("name", "version", "source"),
                            templates={"template": tuple(fields)}, what=what, error=error)
    raw = file.data
    system = raw.get("system")
    return TemplatePrompt(str(raw["name"]), str(raw["version"]), str(raw["source"]),
                          str(system).strip() if system else None,
                          str(raw["template"]).strip(), file.sha256)


_PROMPT_SET_KEYS = ("name", "version", "source", "prompts", "modes")


def load_prompt_set(name_or_path: str) -> PromptSet:
    """A packaged set by name (e.g. ``sseu_demo``) or a YAML file path."""
    file = load_prompt_file(name_or_path, required=_PROMPT_SET_KEYS, what="prompt set")
    return _prompt_set(file.data, str(file.path), file.sha256)


def parse_prompt_set(text: str, where: str) -> PromptSet:
    """A prompt set from YAML ``text`` (``where`` names it in errors)."""
    raw = check_prompt_data(text, where, required=_PROMPT_SET_KEYS, what="prompt set")
    return _prompt_set(raw, where, text_sha256(text))


def _prompt_set(raw: Mapping[str, Any], where: str, sha256: str) -> PromptSet:
    prompts = {str(k): str(v).strip() for k, v in raw["prompts"].items()}
    modes: dict[str, tuple[TaskPrompt, ...]] = {}
    for mode, steps in raw["modes"].items():
        entries = []
        for step in steps:
            if step.get("prompt") not in prompts:
                raise PromptError(f"{where}: mode {mode!r} uses unknown prompt "
                                  f"{step.get('prompt')!r}")
            entries.append(TaskPrompt(str(step["task"]), step["prompt"], prompts[step["prompt"]]))
        modes[str(mode)] = tuple(entries)
    return PromptSet(str(raw["name"]), str(raw["version"]), str(raw["source"]),
                     raw.get("system"), prompts, modes, sha256)


def render(template: str, labels: dict[str, list[str]]) -> str:
    """Fill ``{scenes}`` / ``{events}`` with comma-separated label lists."""
    values = {key: ", ".join(items) for key, items in labels.items()}
    try:
        return template.format_map(values)
    except KeyError as exc:
        raise PromptError(f"prompt uses {{{exc.args[0]}}}, which this suite does not provide"
                          ) from exc


def prompt_for(step: TaskPrompt, overrides: dict[str, str], labels: dict[str, list[str]]
               ) -> tuple[str, str]:
    """(prompt id, rendered text), with a model's override of that prompt id if any."""
    template = overrides.get(step.prompt_id, step.template)
    prompt_id = step.prompt_id if step.prompt_id not in overrides else f"{step.prompt_id}@model"
    return prompt_id, render(template, labels)


def fetch_prompt_set(url: str, dest: str | Path, sha256: str | None = None) -> PromptSet:
    """Download a prompt-set YAML (resumable, verified: a pinned ``sha256`` must match; with
    none the first hash seen is recorded next to the file and enforced later), then parse it
    so a malformed file fails here rather than in every inference job."""
    from lalm_eval.corpora.download import download

    path = download(url, Path(dest), sha256=sha256)
    prompts = parse_prompt_set(path.read_text(encoding="utf-8"), str(path))
    if prompts.sha256 != (sha256 or prompts.sha256):
        raise PromptError(f"{path}: sha256 {prompts.sha256} differs from the pin {sha256}")
    return prompts
