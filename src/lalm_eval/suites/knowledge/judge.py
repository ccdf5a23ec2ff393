"""An LLM judge of the audio-grounded answers, reported beside the official matcher.

The AKB paper's text scores its audio-grounded LALMs with GPT-4o judging each answer
against the reference; DeSTA2.5's own MMAU evaluation uses the matcher only. So the
knowledge suite scores both: the official matcher always, and, where ``grounded.judges``
names registry text LLMs, one judge job per (judge, grounded LALM, benchmark, run) that
reads the LALM's predictions file and asks, item by item, whether the answer picks the
reference option (mode ``judge-<lalm>``; :mod:`lalm_eval.suites.knowledge.jobs`).

A verdict is the first standalone "yes" or "no" of the judge's output (case-insensitive);
an output with neither is unparsed. Judged accuracy counts items with a parsed verdict
(unparsed verdicts and items the LALM did not answer are skipped and counted, as the
faithful matcher skips missing predictions); its rows carry ``matcher = judge:<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lalm_eval.inference import WorkItem
from lalm_eval.prompts import TemplatePrompt, load_template_prompt
from lalm_eval.suites.knowledge import JUDGE_PREFIX, mmau

__all__ = ["JUDGE_PREFIX", "JudgePrompts", "judge_matcher", "judge_work_items",
           "load_judge_prompts", "parse_judgement", "score_judgements"]

#: task name of judge requests
TASK = "judge"
TEMPLATE_FIELDS = ("question", "choices", "reference", "response")
UNPARSED = "unparsed"
_VERDICT = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def judge_matcher(judge: str) -> str:
    """The ``matcher`` value of a judge's accuracy rows."""
    return f"judge:{judge}"


#: the judge's wording (ours): a system text and one template
JudgePrompts = TemplatePrompt


def load_judge_prompts(name_or_path: str = "choice_judge_demo") -> JudgePrompts:
    """A packaged judge prompt file by name or a YAML path; ``template`` must use exactly
    ``{question}``, ``{choices}``, ``{reference}`` and ``{response}``."""
    return load_template_prompt(name_or_path, TEMPLATE_FIELDS, what="judge prompt file",
                                error=mmau.ChoiceFormatError)


def judge_work_items(table: pd.DataFrame, answers: Mapping[str, str | None],
                     prompts: JudgePrompts, answer_prefix: str | None = None
                     ) -> tuple[list[WorkItem], list[mmau.UnaskedItem]]:
    """One text-only request per benchmark item with the judged answer (its answer prefix
    removed, as for the matcher); items the LALM did not answer (absent, failed, empty)
    are failures of kind ``no answer``, never dropped."""
    items: list[WorkItem] = []
    failures: list[mmau.UnaskedItem] = []
    for row in table.to_dict("records"):
        item_id = str(row["item_id"])
        answer = answers.get(item_id)
        if item_id not in answers:
            failures.append(mmau.UnaskedItem(item_id, item_id, "the LALM has no record "
                                                "of this item", kind="no answer"))
            continue
        response = (None if answer is None
                    else mmau.strip_answer_prefix(answer, answer_prefix).strip())
        if not response:
            failures.append(mmau.UnaskedItem(
                item_id, item_id, "the LALM's call failed" if answer is None
                else "the LALM's answer is empty", kind="no answer"))
            continue
        prompt = prompts.template.format_map({
            "question": str(row["question"]).strip(),
            "choices": mmau.format_choices(row["choices"]),
            "reference": str(row["answer"]).strip(), "response": response})
        items.append(WorkItem(item_id=item_id, clip_id=str(row["audio_key"]), task=TASK,
                              request="generate", audio_path=None,
                              prompt_id=f"{prompts.name}:judge", prompt=prompt,
                              system=prompts.system))
    return items, failures


def parse_judgement(text: str | None) -> bool | None:
    """True for "yes", False for "no" (the first of them as a word), None otherwise."""
    if not text:
        return None
    found = _VERDICT.search(text)
    return None if found is None else found.group(1).lower() == "yes"


def score_judgements(table: pd.DataFrame, records: Sequence[Mapping[str, Any]],
                     breakdown: Sequence[str]) -> pd.DataFrame:
    """Per-item rows in the shape of :func:`lalm_eval.metrics.choice.score_choice`
    (``status``, ``counted``, ``correct``, the breakdown columns) plus ``verdict``; an item
    counts when its verdict parsed."""
    from lalm_eval.metrics.choice import ANSWERED, FAILED, MISSING

    by_id = {str(r["item_id"]): r for r in records}
    rows = []
    for row in table.to_dict("records"):
        item_id = str(row["item_id"])
        record = by_id.get(item_id)
        if record is None:
            status, verdict = MISSING, None
        elif record.get("error"):
            status, verdict = FAILED, None
        else:
            verdict = parse_judgement(record.get("output_text"))
            status = ANSWERED if verdict is not None else UNPARSED
        rows.append({"item_id": item_id, **{c: row[c] for c in breakdown},
                     "status": status, "counted": verdict is not None,
                     "correct": verdict, "verdict": record.get("output_text")
                     if record else None})
    return pd.DataFrame(rows)
