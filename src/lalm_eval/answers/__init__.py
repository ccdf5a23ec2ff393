"""Answer extraction: what a model's (or a judge's) text says, for every suite.

* :mod:`~lalm_eval.answers.json_like` - tolerant JSON / Python-literal values and objects
  inside free text and code fences.
* :mod:`~lalm_eval.answers.fields` - SSEU-Bench transcript / scene / events
  (:func:`parse_answer`, :class:`ParsedAnswer`, :func:`format_compliance`).
* :mod:`~lalm_eval.answers.choice` - the option chosen in a multiple-choice answer
  (:func:`extract_choice`).
* :mod:`~lalm_eval.answers.verdicts` - JASCO judge verdicts, faithful and strict
  (:class:`Verdict`, :func:`parse_verdict_faithful`, :func:`parse_verdict_strict`).
* :mod:`~lalm_eval.answers.families` - per-model-family rules, data in ``families.yaml``
  (:func:`family_rules`, :func:`register_family`), and the family answer clean-up
  (:func:`clean_answer`) shared by the model adapters and the parser.

Scoring rules (accuracy, Best-Mean, the MMAU / MMAR token matcher) live with the metrics
and suites, not here.
"""

from lalm_eval.answers.choice import extract_choice
from lalm_eval.answers.families import FamilyRules, clean_answer, family_rules, register_family
from lalm_eval.answers.fields import ParsedAnswer, clean_label, format_compliance, parse_answer
from lalm_eval.answers.json_like import find_json_object, parse_json_like
from lalm_eval.answers.verdicts import (
    Verdict,
    apply_orientation_call,
    orientation_call_input,
    parse_verdict_faithful,
    parse_verdict_strict,
)

__all__ = [
    "FamilyRules",
    "ParsedAnswer",
    "Verdict",
    "apply_orientation_call",
    "clean_answer",
    "clean_label",
    "extract_choice",
    "family_rules",
    "find_json_object",
    "format_compliance",
    "orientation_call_input",
    "parse_answer",
    "parse_json_like",
    "parse_verdict_faithful",
    "parse_verdict_strict",
    "register_family",
]
