"""Auditory-knowledge probing with four-option multiple-choice questions (AKB-2000 shape).

AKB-2000 (not released yet) asks 2,000 four-option questions in six categories and 48
subcategories, with the correct answers spread evenly over the positions (chance 25 %); text
LLMs answer from the question text alone. This module reads any question file of that shape
(``.json``, ``.jsonl``, ``.csv``, ``.yaml``), checks the answer-position balance, renders the
questions into text-only work items and scores the option a model chose (found by
:func:`lalm_eval.answers.choice.extract_choice`) overall, per category and per answer position.

Question file fields: ``id`` (optional, also ``question_id``), ``category``, ``subcategory``
(optional, also ``sub_category`` / ``sub-category``), ``question``, ``options`` (also
``choices``: a list of 4 strings, a mapping A-D, or a JSON list in a CSV cell; CSV may use
columns ``A``-``D`` or ``option_a``-``option_d`` instead) and ``answer`` (a letter A-D, an
index 0-3, or the exact text of one option). Field names are case-insensitive. Options must be
strings: a YAML value such as ``3:2`` or ``yes`` is read as a number or a boolean unless quoted,
so unquoted non-strings are refused rather than converted.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.stats import chisquare

from lalm_eval.answers.choice import extract_choice
from lalm_eval.hashing import file_sha256
from lalm_eval.inference import WorkItem
from lalm_eval.jsonl import read_jsonl
from lalm_eval.prompts import TemplatePrompt, load_template_prompt

__all__ = [
    "CATEGORIES",
    "CHANCE_PCT",
    "LETTERS",
    "MCQ_COLUMNS",
    "McqFormatError",
    "McqPrompt",
    "chosen_position_counts",
    "demo_mcq_path",
    "load_mcq_prompt",
    "mcq_accuracy",
    "mcq_work_items",
    "position_balance",
    "read_mcq",
    "render_mcq",
    "score_mcq",
]

#: the six AKB-2000 categories, in the paper's order
CATEGORIES: tuple[str, ...] = (
    "Sound",
    "Paralinguistic",
    "Phonetic",
    "Music",
    "Audio Quality",
    "Technical",
)
N_OPTIONS = 4
LETTERS: tuple[str, ...] = tuple("ABCD")
CHANCE_PCT = 100.0 / N_OPTIONS
OPTION_COLUMNS: tuple[str, ...] = tuple(f"option_{x.lower()}" for x in LETTERS)
MCQ_COLUMNS: tuple[str, ...] = (
    "item_id", "category", "subcategory", "question", *OPTION_COLUMNS, "answer_index",
    "answer_letter",
)
STATUSES: tuple[str, ...] = ("answered", "unparsed", "failed", "missing")

_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "question_id"),
    "category": ("category",),
    "subcategory": ("subcategory", "sub_category", "sub-category"),
    "question": ("question",),
    "options": ("options", "choices"),
    "answer": ("answer",),
}
_MISSING = object()
_WS = re.compile(r"\s+")


class McqFormatError(ValueError):
    """A question file (or one of its items) does not have the expected shape."""


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def demo_mcq_path() -> Path:
    """The packaged demo question set written for lalm-eval (``corpora/akb_demo.yaml``)."""
    return Path(str(resources.files("lalm_eval.corpora").joinpath("akb_demo.yaml")))


def _load_records(path: Path) -> tuple[list[Any], dict[str, Any]]:
    """Raw items and file-level metadata (keys next to ``questions``)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            frame.columns = [str(c).strip() for c in frame.columns]
            return frame.to_dict("records"), {}
        if suffix == ".jsonl":
            return read_jsonl(path, McqFormatError), {}
        text = path.read_text(encoding="utf-8")
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise McqFormatError(f"{path}: unknown question file type {suffix!r} "
                                 "(use .json, .jsonl, .csv or .yaml)")
    except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as exc:
        raise McqFormatError(f"{path}: cannot be parsed ({exc})") from exc
    if isinstance(data, Mapping):
        if "questions" not in data:
            raise McqFormatError(f"{path}: a mapping at the top level needs a 'questions' list")
        meta = {k: v for k, v in data.items() if k != "questions"}
        data = data["questions"]
    else:
        meta = {}
    if not isinstance(data, list):
        raise McqFormatError(f"{path}: expected a list of questions, got {type(data).__name__}")
    return data, meta


def _keyed(record: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The record with stripped lower-case keys (two keys that collide are an error)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = str(key).strip().lower()
        if name in out:
            raise McqFormatError(f"{where}: field {name!r} appears twice (different case)")
        out[name] = value
    return out


def _field(record: Mapping[str, Any], name: str, where: str) -> Any:
    present = [a for a in _ALIASES[name] if a in record]
    if len(present) > 1:
        raise McqFormatError(f"{where}: fields {' and '.join(present)} both give {name!r}")
    return record[present[0]] if present else _MISSING


def _text(value: Any, where: str, name: str, required: bool = True) -> str:
    """A stripped string field; missing/None gives '' unless required."""
    if value is _MISSING or value is None:
        if required:
            raise McqFormatError(f"{where}: field {name!r} is missing")
        return ""
    if not isinstance(value, str):
        raise McqFormatError(f"{where}: field {name!r} must be a string, got "
                             f"{type(value).__name__} {value!r} (quote it)")
    text = value.strip()
    if required and not text:
        raise McqFormatError(f"{where}: field {name!r} is empty")
    return text


def _same_text(a: str, b: str) -> bool:
    return _WS.sub(" ", a).strip().casefold() == _WS.sub(" ", b).strip().casefold()


def _options(record: Mapping[str, Any], where: str) -> list[str]:
    listed = _field(record, "options", where)
    by_letter = {x: record[x.lower()] for x in LETTERS if x.lower() in record}
    by_column = {x: record[c] for x, c in zip(LETTERS, OPTION_COLUMNS, strict=True)
                 if c in record}
    forms = [name for name, given in (("options", listed is not _MISSING),
                                      ("A-D", bool(by_letter)),
                                      ("option_a-option_d", bool(by_column))) if given]
    if not forms:
        raise McqFormatError(f"{where}: field 'options' is missing "
                             "(or columns A-D / option_a-option_d)")
    if len(forms) > 1:
        raise McqFormatError(f"{where}: options given twice ({' and '.join(forms)})")
    if listed is not _MISSING:
        raw = listed
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise McqFormatError(f"{where}: field 'options' is not a JSON list ({exc})"
                                     ) from exc
        if isinstance(raw, Mapping):
            keys = sorted(str(k).strip().upper() for k in raw)
            if keys != list(LETTERS):
                raise McqFormatError(f"{where}: field 'options' as a mapping needs the keys "
                                     f"A, B, C, D, got {sorted(map(str, raw))}")
            raw = [v for _, v in sorted(raw.items(), key=lambda kv: str(kv[0]).strip().upper())]
        if not isinstance(raw, list):
            raise McqFormatError(f"{where}: field 'options' must be a list, got "
                                 f"{type(raw).__name__}")
        values = raw
    else:
        given = by_letter or by_column
        absent = [x for x in LETTERS if x not in given]
        if absent:
            raise McqFormatError(f"{where}: option(s) {', '.join(absent)} missing")
        values = [given[x] for x in LETTERS]
    if len(values) != N_OPTIONS:
        raise McqFormatError(f"{where}: field 'options' has {len(values)} options, "
                             f"expected {N_OPTIONS}")
    options = [_text(v, where, f"option {x}") for x, v in zip(LETTERS, values, strict=True)]
    for i in range(N_OPTIONS):
        for j in range(i + 1, N_OPTIONS):
            if _same_text(options[i], options[j]):
                raise McqFormatError(f"{where}: options {LETTERS[i]} and {LETTERS[j]} are the "
                                     f"same text ({options[i]!r})")
    return options


def _answer_index(answer: Any, options: Sequence[str], where: str) -> int:
    """Index of the correct option from a letter, an index 0-3 or an option's exact text."""
    if answer is _MISSING or answer is None:
        raise McqFormatError(f"{where}: field 'answer' is missing")
    if isinstance(answer, bool) or not isinstance(answer, int | str):
        raise McqFormatError(f"{where}: field 'answer' must be a letter, an index or an "
                             f"option text, got {type(answer).__name__} {answer!r}")
    if isinstance(answer, int):
        if not 0 <= answer < N_OPTIONS:
            raise McqFormatError(f"{where}: field 'answer' index {answer} is outside 0-3")
        return answer
    text = answer.strip()
    if not text:
        raise McqFormatError(f"{where}: field 'answer' is empty")
    by_position = None
    if len(text) == 1 and text.upper() in LETTERS:
        by_position = LETTERS.index(text.upper())
    elif text in {str(i) for i in range(N_OPTIONS)}:
        by_position = int(text)
    by_text = [i for i, option in enumerate(options) if option == text]
    if by_position is not None and by_text and by_text != [by_position]:
        raise McqFormatError(f"{where}: field 'answer' {text!r} is ambiguous: it names option "
                             f"{LETTERS[by_position]} and is also the text of option "
                             f"{LETTERS[by_text[0]]}")
    if by_position is not None:
        return by_position
    if len(by_text) == 1:
        return by_text[0]
    near = [LETTERS[i] for i, option in enumerate(options) if _same_text(option, text)]
    hint = f" (differs only in case or spacing from option {near[0]})" if near else ""
    raise McqFormatError(f"{where}: field 'answer' {text!r} matches no option; expected a "
                         f"letter A-D, an index 0-3 or the exact text of one option{hint}")


def _item_id(value: Any, where: str) -> str | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise McqFormatError(f"{where}: field 'id' must be a string or an integer, got "
                             f"{type(value).__name__}")
    return str(value).strip() or None


def read_mcq(
    path: str | Path,
    *,
    strict_categories: bool = False,
    categories: Sequence[str] = CATEGORIES,
) -> pd.DataFrame:
    """Read a four-option question file into one row per question (columns ``MCQ_COLUMNS``).

    Items without an id get ``q0001``, ``q0002``, ... by position. With ``strict_categories``
    every category must be one of ``categories`` (exact spelling). ``attrs`` hold the file
    path, its sha256 and the file-level metadata (YAML/JSON keys next to ``questions``).
    """
    path = Path(path)
    if not path.is_file():
        raise McqFormatError(f"{path}: question file does not exist")
    raw_items, meta = _load_records(path)
    if not raw_items:
        raise McqFormatError(f"{path}: holds no questions")
    width = max(4, len(str(len(raw_items))))
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(raw_items, start=1):
        where = f"{path}: item #{number}"
        if not isinstance(raw, Mapping):
            raise McqFormatError(f"{where}: expected an object, got {type(raw).__name__}")
        record = _keyed(raw, where)
        item_id = _item_id(_field(record, "id", where), where) or f"q{number:0{width}d}"
        where = f"{path}: item {item_id!r}"
        category = _text(_field(record, "category", where), where, "category")
        if strict_categories and category not in categories:
            close = difflib.get_close_matches(category, list(categories), n=1)
            hint = f"; did you mean {close[0]!r}" if close else ""
            raise McqFormatError(f"{where}: field 'category' {category!r} is not one of "
                                 f"{', '.join(categories)}{hint}")
        subcategory = _text(_field(record, "subcategory", where), where, "subcategory",
                            required=False)
        question = _text(_field(record, "question", where), where, "question")
        options = _options(record, where)
        index = _answer_index(_field(record, "answer", where), options, where)
        rows.append({
            "item_id": item_id, "category": category, "subcategory": subcategory,
            "question": question,
            **dict(zip(OPTION_COLUMNS, options, strict=True)),
            "answer_index": index, "answer_letter": LETTERS[index],
        })
    table = pd.DataFrame(rows, columns=list(MCQ_COLUMNS))
    dupes = sorted(set(table["item_id"][table["item_id"].duplicated()]))
    if dupes:
        raise McqFormatError(f"{path}: duplicate id(s) {', '.join(map(repr, dupes))}")
    table["answer_index"] = table["answer_index"].astype(int)
    table.attrs = {"source": str(path), "sha256": file_sha256(path),
                   "meta": meta}
    return table


# --------------------------------------------------------------------------------------------
# answer positions
# --------------------------------------------------------------------------------------------


def _position_counts(indices: Iterable[Any]) -> np.ndarray:
    values = np.asarray([int(i) for i in indices], dtype=int)
    if values.size and (values.min() < 0 or values.max() >= N_OPTIONS):
        raise ValueError(f"answer indices must lie in 0-{N_OPTIONS - 1}")
    return np.bincount(values, minlength=N_OPTIONS)


def position_balance(table: pd.DataFrame) -> dict[str, Any]:
    """How evenly the correct answers spread over A-D: counts, chi-square test of uniformity.

    ``max_deviation`` is the largest ``|count - expected|``; ``balanced`` is ``p >= 0.05``.
    """
    counts = _position_counts(table["answer_index"])
    n = int(counts.sum())
    if n == 0:
        raise ValueError("position_balance needs at least one question")
    expected = n / N_OPTIONS
    result = chisquare(counts)
    p_value = float(result.pvalue)
    return {
        "n": n,
        "counts": {x: int(c) for x, c in zip(LETTERS, counts, strict=True)},
        "expected": expected,
        "chi2": float(result.statistic),
        "p_value": p_value,
        "max_deviation": float(np.max(np.abs(counts - expected))),
        "balanced": bool(p_value >= 0.05),
    }


# --------------------------------------------------------------------------------------------
# prompt and work items
# --------------------------------------------------------------------------------------------


#: a multiple-choice prompt: ``template`` holds ``{question}`` and ``{options}``
McqPrompt = TemplatePrompt

_PROMPT_FIELDS = ("question", "options")


def load_mcq_prompt(name_or_path: str = "mcq_demo") -> McqPrompt:
    """A packaged MCQ prompt by name (e.g. ``mcq_demo``) or a YAML file path
    (:func:`lalm_eval.prompts.load_template_prompt`; errors are
    :class:`~lalm_eval.prompts.PromptError`; ``sha256`` is the file's)."""
    return load_template_prompt(name_or_path, _PROMPT_FIELDS, what="MCQ prompt")


def render_mcq(row: Mapping[str, Any], prompt: McqPrompt) -> str:
    """The prompt text of one question; options render as lines ``A. ...``."""
    options = "\n".join(f"{x}. {row[c]}" for x, c in zip(LETTERS, OPTION_COLUMNS, strict=True))
    return prompt.template.format(question=row["question"], options=options)


def mcq_work_items(table: pd.DataFrame, prompt: McqPrompt) -> list[WorkItem]:
    """One text-only "generate" request per question (item id = clip id = question id)."""
    return [
        WorkItem(item_id=str(row["item_id"]), clip_id=str(row["item_id"]), task="mcq",
                 request="generate", audio_path=None, prompt_id=prompt.name,
                 prompt=render_mcq(row, prompt), system=prompt.system)
        for row in table.to_dict("records")
    ]


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------

ITEM_SCORE_COLUMNS: tuple[str, ...] = (
    "item_id", "category", "subcategory", "answer_index", "answer_letter", "chosen_index",
    "chosen_letter", "method", "correct", "status",
)


def _given(value: Any) -> bool:
    """A present value: not None, not NaN (records read back through pandas), not blank."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    return bool(str(value).strip())


def score_mcq(table: pd.DataFrame, records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per question: the chosen option, whether it is correct, and a status.

    ``status`` is ``answered``, ``unparsed`` (no single option found), ``failed`` (the record
    has an ``error``) or ``missing`` (no record); all but ``answered`` count as wrong.
    A record for an unknown question or a second record for one question is an error.
    """
    known = set(table["item_id"].astype(str))
    by_id: dict[str, Mapping[str, Any]] = {}
    for number, record in enumerate(records, start=1):
        if record.get("item_id") is None:
            raise ValueError(f"record #{number} has no item_id")
        item_id = str(record["item_id"])
        if item_id not in known:
            raise ValueError(f"record #{number}: item_id {item_id!r} is not a question of the set")
        if item_id in by_id:
            raise ValueError(f"record #{number}: second record for item_id {item_id!r} "
                             "(score one run at a time)")
        by_id[item_id] = record
    rows = []
    for row in table.to_dict("records"):
        item_id = str(row["item_id"])
        record = by_id.get(item_id)
        chosen: int | None = None
        if record is None:
            status, method = "missing", ""
        elif _given(record.get("error")):
            status, method = "failed", ""
        else:
            options = [row[c] for c in OPTION_COLUMNS]
            output = record.get("output_text")
            chosen, method = extract_choice(output if _given(output) else None, options)
            status = "answered" if chosen is not None else "unparsed"
        answer = int(row["answer_index"])
        rows.append({
            "item_id": item_id, "category": row["category"], "subcategory": row["subcategory"],
            "answer_index": answer, "answer_letter": LETTERS[answer],
            "chosen_index": chosen, "chosen_letter": None if chosen is None else LETTERS[chosen],
            "method": method, "correct": chosen == answer, "status": status,
        })
    frame = pd.DataFrame(rows, columns=list(ITEM_SCORE_COLUMNS))
    frame["chosen_index"] = frame["chosen_index"].astype("Int64")
    frame["correct"] = frame["correct"].astype(bool)
    return frame


ACCURACY_COLUMNS: tuple[str, ...] = (
    "level", "group", "n", "n_correct", "accuracy", "n_unparsed", "n_failed", "n_missing",
    "chance",
)
LEVELS: tuple[str, ...] = ("overall", "category", "subcategory", "answer_letter")


def _accuracy_row(level: str, group: str, part: pd.DataFrame) -> dict[str, Any]:
    n = len(part)
    n_correct = int(part["correct"].sum())
    status = part["status"]
    return {
        "level": level, "group": group, "n": n, "n_correct": n_correct,
        "accuracy": 100.0 * n_correct / n if n else float("nan"),
        "n_unparsed": int((status == "unparsed").sum()),
        "n_failed": int((status == "failed").sum()),
        "n_missing": int((status == "missing").sum()),
        "chance": CHANCE_PCT,
    }


def _category_order(values: Iterable[str]) -> list[str]:
    present = set(values)
    return [c for c in CATEGORIES if c in present] + sorted(present - set(CATEGORIES))


def mcq_accuracy(
    per_item: pd.DataFrame, levels: Sequence[str] = ("overall", "category", "answer_letter")
) -> pd.DataFrame:
    """Accuracy (%) overall, per category, per subcategory and per correct-answer letter.

    Unparsed, failed and missing answers count as wrong and are also counted apart. The
    ``answer_letter`` rows (questions whose answer is A, B, ...) reveal a position bias of
    the model. Subcategory groups are named ``category/subcategory``.
    """
    unknown = [x for x in levels if x not in LEVELS]
    if unknown:
        raise ValueError(f"unknown level(s) {unknown} (allowed: {', '.join(LEVELS)})")
    if per_item.empty:
        raise ValueError("mcq_accuracy needs at least one scored question")
    rows: list[dict[str, Any]] = []
    for level in levels:
        if level == "overall":
            rows.append(_accuracy_row("overall", "all", per_item))
        elif level == "category":
            for category in _category_order(per_item["category"]):
                rows.append(_accuracy_row(level, category,
                                          per_item[per_item["category"] == category]))
        elif level == "subcategory":
            for category in _category_order(per_item["category"]):
                part = per_item[per_item["category"] == category]
                for sub in sorted(set(part["subcategory"])):
                    rows.append(_accuracy_row(level, f"{category}/{sub}",
                                              part[part["subcategory"] == sub]))
        else:
            for letter in LETTERS:
                part = per_item[per_item["answer_letter"] == letter]
                if len(part):
                    rows.append(_accuracy_row(level, letter, part))
    return pd.DataFrame(rows, columns=list(ACCURACY_COLUMNS))


def chosen_position_counts(per_item: pd.DataFrame) -> pd.DataFrame:
    """How often the model picked each letter, next to how often each letter is correct.

    ``chosen_pct`` is the share of the answered questions; ``answer_pct`` the share of all.
    """
    chosen = _position_counts(per_item["chosen_index"].dropna())
    answers = _position_counts(per_item["answer_index"])
    n_chosen, n_all = int(chosen.sum()), int(answers.sum())
    return pd.DataFrame({
        "letter": list(LETTERS),
        "n_chosen": chosen.astype(int),
        "chosen_pct": 100.0 * chosen / n_chosen if n_chosen else np.full(N_OPTIONS, np.nan),
        "n_answer": answers.astype(int),
        "answer_pct": 100.0 * answers / n_all if n_all else np.full(N_OPTIONS, np.nan),
    })
