"""MMAU test-mini and MMAR: item tables, prompts, work items and official-format predictions.

Both benchmarks ship one JSON list of multiple-choice items. MMAU test-mini
(``mmau-test-mini.json``) has ``id, audio_id, question, choices, answer, dataset, task,
split, category, sub-category, difficulty``; MMAR (``MMAR-meta.json``, later ``.jsonl``) has
``id, audio_path, question, choices, answer, modality, category, sub-category, language,
source, url, timestamp``. Both are read into one table (:data:`TABLE_COLUMNS`):

- ``item_id`` the upstream ``id``; ``benchmark`` ``mmau`` or ``mmar``;
- ``audio_ref`` the upstream relative audio path, ``audio_path`` it resolved under the given
  audio root, ``audio_key`` a stable filename-safe id of the audio (from ``audio_ref``);
- ``task``: MMAU's task (sound / music / speech); for MMAR its ``modality`` (one of seven),
  because the MMAR script breaks results down by modality and maps it to nothing else;
- ``modality`` (MMAR only, else empty), ``category`` (MMAU: its category, a list joined by
  ``"; "``; MMAR: the layer), ``sub_category``, ``difficulty`` (MMAU), ``language`` (MMAR);
- ``problem``: empty, or why the item cannot be run as is (audio file not found, ...);
- ``note``: empty, or what the item has that the official script accepts but that is
  irregular, kept as upstream scores it: an empty (or blank) choice, which gives no token to
  the matching rule and is left out of our prompt (``MMAR-meta.json`` at 6249700 has 4);
- ``raw``: the upstream record, unchanged, written back by :func:`write_official_predictions`.

The official scripts read the prediction from ``model_output`` (MMAU ``evaluation.py``) and
``answer_prediction`` (MMAR ``code/evaluation.py``; at 6249700, the commit of the pinned
question file, it read ``model_prediction``); both READMEs name ``model_prediction``.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lalm_eval.hashing import text_sha256
from lalm_eval.inference import WorkItem
from lalm_eval.jsonl import read_jsonl
from lalm_eval.metrics.choice import predictions_from_records

BENCHMARKS = ("mmau", "mmar")
#: the key each official evaluation script reads the model's answer from
PREDICTION_KEYS = {"mmau": "model_output", "mmar": "answer_prediction"}
MMAU_TASKS = ("sound", "music", "speech")
MMAU_DIFFICULTIES = ("easy", "medium", "hard")
MMAR_MODALITIES = (
    "sound", "music", "speech", "mix-sound-music", "mix-sound-speech", "mix-music-speech",
    "mix-sound-music-speech",
)
MMAR_LAYERS = ("Signal Layer", "Perception Layer", "Semantic Layer", "Cultural Layer")
TABLE_COLUMNS = (
    "item_id", "benchmark", "audio_ref", "audio_path", "audio_key", "question", "choices",
    "answer", "task", "modality", "category", "sub_category", "difficulty", "language",
    "problem", "note", "raw",
)
#: start of the ``note`` of an item with an empty (or blank) choice
EMPTY_CHOICE_NOTE = ("empty choice kept: it adds no token to the official matching rule and "
                     "is not shown in the prompt")
#: placeholders a question template may use
TEMPLATE_FIELDS = ("question", "choices", "caption")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ChoiceFormatError(ValueError):
    """A benchmark file or prompt file does not have the expected shape."""


# --------------------------------------------------------------------------- reading


def _read_json_items(path: Path) -> list[Any]:
    """A JSON list, or JSON Lines (one object per non-blank line) for ``.jsonl``."""
    if path.suffix == ".jsonl":
        return read_jsonl(path, ChoiceFormatError)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChoiceFormatError(f"{path}: invalid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise ChoiceFormatError(f"{path}: expected a JSON list of items, got "
                                f"{type(data).__name__}")
    return data


def _field(path: Path, where: str, record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ChoiceFormatError(f"{path}: {where}: field {name!r} must be a non-empty string, "
                                f"got {value!r}")
    return value


def audio_key(benchmark: str, audio_ref: str) -> str:
    """A stable, filename-safe id of an audio file: its stem plus 8 hex digits of its ref."""
    stem = _UNSAFE.sub("_", Path(audio_ref).stem).strip("_.") or "audio"
    digest = text_sha256(f"{benchmark}:{audio_ref}")[:8]
    return f"{stem[:60]}-{digest}"


def _resolve_audio(path: Path, where: str, root: Path, ref: str) -> Path:
    """``root/ref`` normalised; a ref that is absolute or leaves the root is refused."""
    if os.path.isabs(ref):
        raise ChoiceFormatError(f"{path}: {where}: audio path {ref!r} must be relative")
    resolved = Path(os.path.normpath(root / ref))
    if os.path.commonpath([resolved, root]) != str(root):
        raise ChoiceFormatError(f"{path}: {where}: audio path {ref!r} leaves {root}")
    return resolved


def _common_row(path: Path, n: int, record: Any, benchmark: str, audio_field: str,
                root: Path, strict_answers: bool) -> dict[str, Any]:
    """The benchmark-independent columns of one record; errors name file, item and field."""
    if not isinstance(record, Mapping):
        raise ChoiceFormatError(f"{path}: item {n}: expected an object, got "
                                f"{type(record).__name__}")
    item_id = _field(path, f"item {n}", record, "id")
    where = f"item {item_id!r}"
    ref = _field(path, where, record, audio_field)
    question = _field(path, where, record, "question")
    choices = record.get("choices")
    if (not isinstance(choices, list) or not all(isinstance(c, str) for c in choices)
            or sum(1 for c in choices if c.strip()) < 2):
        raise ChoiceFormatError(f"{path}: {where}: field 'choices' must be a list of strings, "
                                f"at least 2 of them non-empty, got {choices!r}")
    blank = [k for k, c in enumerate(choices, 1) if not c.strip()]
    notes = []
    if blank:
        notes.append(f"{EMPTY_CHOICE_NOTE} (choice {', '.join(map(str, blank))} of "
                     f"{len(choices)})")
    answer = _field(path, where, record, "answer")
    problems = []
    if answer not in choices:
        message = f"answer {answer!r} is not among the choices {choices!r}"
        if strict_answers:
            raise ChoiceFormatError(f"{path}: {where}: field 'answer': {message}")
        problems.append(message)
    audio = _resolve_audio(path, where, root, ref)
    if not audio.is_file():
        problems.append(f"audio file not found: {audio}")
    return {
        "item_id": item_id, "benchmark": benchmark, "audio_ref": ref, "audio_path": str(audio),
        "audio_key": audio_key(benchmark, ref), "question": question, "choices": list(choices),
        "answer": answer, "problem": "; ".join(problems), "note": "; ".join(notes),
        "raw": dict(record),
    }


def _optional_text(path: Path, where: str, record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    if not isinstance(value, str):
        raise ChoiceFormatError(f"{path}: {where}: field {name!r} must be a string, got "
                                f"{value!r}")
    return value


def _one_of(path: Path, where: str, record: Mapping[str, Any], name: str,
            allowed: tuple[str, ...]) -> str:
    value = record.get(name)
    if value not in allowed:
        raise ChoiceFormatError(f"{path}: {where}: field {name!r} is {value!r}; the official "
                                f"script expects one of {', '.join(allowed)}")
    return str(value)


def _table(path: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    counts = Counter(row["item_id"] for row in rows)
    dupes = sorted(x for x, k in counts.items() if k > 1)
    if dupes:
        raise ChoiceFormatError(f"{path}: duplicate id(s) {dupes[:5]}")
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def read_mmau(path: str | Path, audio_root: str | Path, *,
              strict_answers: bool = True) -> pd.DataFrame:
    """Read an MMAU-format JSON list (test-mini or the demo set) into the common table.

    Audio is ``audio_root / audio_id`` (test-mini's ``audio_id`` reads
    ``./test-mini-audios/<id>.wav``, so ``audio_root`` is the folder holding
    ``test-mini-audios``). ``task`` and ``difficulty`` must be values the official script
    counts. An answer that is not one of the choices is an error, or with
    ``strict_answers=False`` an item problem.
    """
    path, root = Path(path), Path(os.path.abspath(audio_root))
    rows = []
    for n, record in enumerate(_read_json_items(path)):
        row = _common_row(path, n, record, "mmau", "audio_id", root, strict_answers)
        where = f"item {row['item_id']!r}"
        row.update(
            task=_one_of(path, where, record, "task", MMAU_TASKS),
            difficulty=_one_of(path, where, record, "difficulty", MMAU_DIFFICULTIES),
            modality="",
            category=_optional_text(path, where, record, "category"),
            sub_category=_optional_text(path, where, record, "sub-category"),
            language="",
        )
        rows.append(row)
    return _table(path, rows)


def read_mmar(path: str | Path, audio_root: str | Path, *,
              strict_answers: bool = False) -> pd.DataFrame:
    """Read ``MMAR-meta.json`` (or ``.jsonl``) into the common table.

    Audio is ``audio_root / audio_path`` (upstream reads ``./audio/<id>.wav``). ``modality``
    and ``category`` (the layer) must be values the official script counts; ``task`` is the
    modality. An answer that is not one of the choices is an item problem (the item is kept
    and scored by the token rule, as upstream; ``MMAR-meta.json`` at 6249700 has 6 such
    items), or with ``strict_answers=True`` an error.
    """
    path, root = Path(path), Path(os.path.abspath(audio_root))
    rows = []
    for n, record in enumerate(_read_json_items(path)):
        row = _common_row(path, n, record, "mmar", "audio_path", root, strict_answers)
        where = f"item {row['item_id']!r}"
        modality = _one_of(path, where, record, "modality", MMAR_MODALITIES)
        row.update(
            task=modality,
            modality=modality,
            category=_one_of(path, where, record, "category", MMAR_LAYERS),
            sub_category=_optional_text(path, where, record, "sub-category"),
            difficulty="",
            language=_optional_text(path, where, record, "language"),
        )
        rows.append(row)
    return _table(path, rows)


def read_benchmark(benchmark: str, path: str | Path, audio_root: str | Path, *,
                   strict_answers: bool | None = None) -> pd.DataFrame:
    """:func:`read_mmau` or :func:`read_mmar` by name (``strict_answers`` None: the
    reader's default)."""
    readers = {"mmau": read_mmau, "mmar": read_mmar}
    if benchmark not in readers:
        raise ValueError(f"unknown benchmark {benchmark!r} (known: {', '.join(BENCHMARKS)})")
    if strict_answers is None:
        return readers[benchmark](path, audio_root)
    return readers[benchmark](path, audio_root, strict_answers=strict_answers)


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class ChoicePrompts:
    """Our wording for multiple-choice questions: with the audio, and from a caption."""

    name: str
    version: str
    source: str
    system: str | None
    audio_template: str
    cascade_template: str
    sha256: str
    #: question alone (no audio, no caption): the question-only baseline; None = not set
    question_template: str | None = None
    #: text the prompts ask answers to start with, removed before matching (as DeSTA2.5's
    #: MMAU script does: every occurrence, case-sensitive); None = nothing removed
    answer_prefix: str | None = None

    def strip_answer(self, text: str) -> str:
        """``text`` without the answer prefix (see :func:`strip_answer_prefix`)."""
        return strip_answer_prefix(text, self.answer_prefix)


def strip_answer_prefix(text: str, prefix: str | None) -> str:
    """DeSTA2.5's MMAU post-processing: ``text.replace(prefix, "").strip()`` (every
    occurrence, case-sensitive); the text unchanged when ``prefix`` is None or empty."""
    return text.replace(prefix, "").strip() if prefix else text


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def load_choice_prompts(name_or_path: str = "choice_demo") -> ChoicePrompts:
    """A packaged prompt file by name (``choice_demo``) or a YAML path; templates checked.

    Read and checked by :func:`lalm_eval.prompts.load_prompt_file`: ``name``, ``version``,
    ``source`` required; ``audio_template`` must use exactly ``{question}`` and
    ``{choices}``, ``cascade_template`` exactly those and ``{caption}``. Errors are
    :class:`ChoiceFormatError` (an unknown name or missing file: ``PromptError``).
    """
    from lalm_eval.prompts import load_prompt_file

    file = load_prompt_file(
        name_or_path, required=("name", "version", "source"),
        templates={"audio_template": ("question", "choices"),
                   "cascade_template": TEMPLATE_FIELDS},
        what="choice prompt file", error=ChoiceFormatError)
    raw = file.data
    system = raw.get("system")
    question = raw.get("question_template")
    if question is not None and _template_fields(str(question)) != {"question", "choices"}:
        raise ChoiceFormatError(f"{file.path}: question_template must use exactly "
                                f"{{question}} and {{choices}} (no caption, no audio)")
    prefix = raw.get("answer_prefix")
    if prefix is not None and (not isinstance(prefix, str) or not prefix.strip()):
        raise ChoiceFormatError(f"{file.path}: answer_prefix must be a non-empty string")
    return ChoicePrompts(
        name=str(raw["name"]), version=str(raw["version"]), source=str(raw["source"]),
        system=str(system).strip() if system else None,
        audio_template=str(raw["audio_template"]).strip(),
        cascade_template=str(raw["cascade_template"]).strip(), sha256=file.sha256,
        question_template=str(question).strip() if question is not None else None,
        answer_prefix=prefix,
    )


def format_choices(choices: Iterable[str]) -> str:
    """Options one per line, each after ``- `` (no letters: the matcher reads the text).

    Empty (or blank) choices are left out: there is nothing to pick (see ``note``).
    """
    return "\n".join(f"- {choice}" for choice in choices if choice.strip())


def render_question(row: Mapping[str, Any], template: str, caption: str | None = None) -> str:
    """Fill ``{question}``, ``{choices}`` (see :func:`format_choices`) and ``{caption}``."""
    values = {"question": str(row["question"]).strip(),
              "choices": format_choices(row["choices"])}
    if caption is not None:
        values["caption"] = caption.strip()
    fields = _template_fields(template)
    unknown = sorted(fields - set(values))
    if unknown:
        raise ChoiceFormatError(f"template uses {unknown}, which is not available here "
                                f"(available: {', '.join(sorted(values))})")
    return template.format_map(values)


# --------------------------------------------------------------------------- work items


def _rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    missing = [c for c in ("item_id", "benchmark", "audio_path", "audio_key", "question",
                           "choices") if c not in table.columns]
    if missing:
        raise ValueError(f"item table lacks column(s) {missing}")
    return table.to_dict("records")


def audio_work_items(table: pd.DataFrame, template: str, system: str | None = None, *,
                     prompt_id: str | None = None) -> list[WorkItem]:
    """One ``generate`` request with the audio per item (task = benchmark).

    Items with a ``problem`` (e.g. audio not found) are kept: their failure is recorded by
    the inference job, never dropped here.
    """
    return [
        WorkItem(item_id=str(row["item_id"]), clip_id=str(row["audio_key"]),
                 task=str(row["benchmark"]), request="generate",
                 audio_path=str(row["audio_path"]), prompt_id=prompt_id,
                 prompt=render_question(row, template), system=system)
        for row in _rows(table)
    ]


def question_work_items(table: pd.DataFrame, template: str, system: str | None = None, *,
                        prompt_id: str | None = None) -> list[WorkItem]:
    """The question-only baseline: one text-only ``generate`` request per item, with no
    audio path and no caption (the template may use only ``{question}`` and ``{choices}``)."""
    if _template_fields(template) - {"question", "choices"}:
        raise ChoiceFormatError("the question-only template may use only {question} and "
                                "{choices}")
    return [
        WorkItem(item_id=str(row["item_id"]), clip_id=str(row["item_id"]),
                 task=str(row["benchmark"]), request="generate", audio_path=None,
                 prompt_id=prompt_id, prompt=render_question(row, template), system=system)
        for row in _rows(table)
    ]


def caption_work_items(table: pd.DataFrame, *, prompt: str | None = None,
                       system: str | None = None, prompt_id: str | None = None
                       ) -> list[WorkItem]:
    """One ``caption`` request per distinct audio file (item_id = clip_id = audio_key)."""
    items: dict[str, WorkItem] = {}
    for row in _rows(table):
        key = str(row["audio_key"])
        if key in items:
            if items[key].audio_path != str(row["audio_path"]):
                raise ValueError(f"audio key {key!r} names two files: {items[key].audio_path} "
                                 f"and {row['audio_path']}")
            continue
        items[key] = WorkItem(item_id=key, clip_id=key, task=str(row["benchmark"]),
                              request="caption", audio_path=str(row["audio_path"]),
                              prompt_id=prompt_id, prompt=prompt, system=system)
    return list(items.values())


@dataclass(frozen=True)
class UnaskedItem:
    """An item a derived job cannot ask: the cascade's caption (or, for a judge, the judged
    answer) is missing, failed or empty; ``kind`` names what is lacking."""

    item_id: str
    clip_id: str
    reason: str
    kind: str = "no caption"


def cascade_work_items(
    table: pd.DataFrame,
    captions: Mapping[str, str | None],
    template: str,
    system: str | None = None,
    *,
    prompt_id: str | None = None,
) -> tuple[list[WorkItem], list[UnaskedItem]]:
    """Text-only ``generate`` requests with the audio's caption in the prompt.

    ``captions`` maps audio_key to the caption text, or None when captioning failed (as
    :func:`lalm_eval.metrics.choice.predictions_from_records` gives for caption records).
    Items whose caption is absent, None or blank are returned as failures, so a strict score
    can count them wrong: pass ``{f.item_id: None for f in failures}`` with the predictions.
    """
    items: list[WorkItem] = []
    failures: list[UnaskedItem] = []
    for row in _rows(table):
        item_id, key = str(row["item_id"]), str(row["audio_key"])
        caption = captions.get(key)
        if key not in captions:
            failures.append(UnaskedItem(item_id, key, f"no caption for audio {key}"))
        elif caption is None:
            failures.append(UnaskedItem(item_id, key, f"captioning failed for audio {key}"))
        elif not isinstance(caption, str):
            raise ValueError(f"caption of audio {key!r} must be a string or None, got "
                             f"{type(caption).__name__}")
        elif not caption.strip():
            failures.append(UnaskedItem(item_id, key, f"caption of audio {key} is empty"))
        else:
            items.append(WorkItem(item_id=item_id, clip_id=key, task=str(row["benchmark"]),
                                  request="generate", audio_path=None, prompt_id=prompt_id,
                                  prompt=render_question(row, template, caption),
                                  system=system))
    return items, failures


# --------------------------------------------------------------------------- official format


def write_official_predictions(
    table: pd.DataFrame,
    records: Iterable[Mapping[str, Any]] | Mapping[str, str | None],
    path: str | Path,
    benchmark: str,
    *,
    key: str | None = None,
) -> Path:
    """Write the benchmark's own JSON list with each item's prediction under the upstream key.

    ``records`` are inference records (or item_id -> text / None). Each upstream record is
    written unchanged plus ``key`` (default :data:`PREDICTION_KEYS`); items without a
    prediction (missing or failed) get no key, so the official script skips them exactly as
    the ``faithful`` score does.
    """
    if benchmark not in PREDICTION_KEYS:
        raise ValueError(f"unknown benchmark {benchmark!r} (known: {', '.join(BENCHMARKS)})")
    key = key or PREDICTION_KEYS[benchmark]
    if "raw" not in table.columns:
        raise ValueError("item table lacks column 'raw' (read it with read_mmau / read_mmar)")
    predictions = (dict(records) if isinstance(records, Mapping)
                   else predictions_from_records(records))
    ids = {str(x) for x in table["item_id"]}
    unknown = sorted(set(predictions) - ids)
    if unknown:
        raise ValueError(f"{len(unknown)} prediction(s) for unknown item(s), e.g. {unknown[:5]}")
    out = []
    for row in table.to_dict("records"):
        item_id = str(row["item_id"])
        if row.get("benchmark", benchmark) != benchmark:
            raise ValueError(f"item {item_id!r} belongs to {row['benchmark']!r}, not "
                             f"{benchmark!r}")
        record = dict(row["raw"])
        if key in record:
            raise ValueError(f"item {item_id!r}: upstream record already has {key!r}")
        text = predictions.get(item_id)
        if text is not None:
            if not isinstance(text, str):
                raise ValueError(f"item {item_id!r}: prediction must be a string, got "
                                 f"{type(text).__name__}")
            record[key] = text
        out.append(record)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
