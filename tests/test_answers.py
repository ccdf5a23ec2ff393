"""The answers package: family rules from families.yaml, and the one family answer clean-up
shared by the model adapters and the SSEU parser."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lalm_eval.answers import families, fields
from lalm_eval.answers.families import (
    FAMILIES,
    FamilyRules,
    clean_answer,
    family_rules,
    load_families,
)
from lalm_eval.answers.fields import parse_answer
from lalm_eval.models import external_common, ltu, salmonn
from lalm_eval.models.base import ModelEntry, Request
from lalm_eval.models.desta import Desta25Model
from lalm_eval.models.ltu import ltu_response
from lalm_eval.models.salmonn import SalmonnModel

#: the Qwen answer wrappers as they were written in Python before moving to families.yaml
QWEN_PREFIXES = (
    r"the\s+original\s+content\s+of\s+this\s+audio\s+is\s*[:：,]?",
    r"(?:the\s+)?(?:speech|speaker|person|audio|voice)\s+(?:says|said|is\s+saying)\s*[:：,]?",
    r"(?:the\s+)?(?:spoken|speech)\s+content\s+(?:is|says)\s*[:：,]?",
    r"the\s+transcription\s+of\s+(?:the|this)\s+(?:speech|audio)\s+is\s*[:：,]?",
    r"the\s+speech\s+is\s*[:：]",
)


def model_entry(adapter: str, **options: object) -> ModelEntry:
    return ModelEntry(name="m", adapter=adapter, source="org/model", options=dict(options))


# --------------------------------------------------------------------------- families.yaml


def test_packaged_family_rules() -> None:
    rules = load_families()
    assert {name: FAMILIES[name] for name in rules} == rules  # others may register more
    assert rules["generic"] == FamilyRules()
    assert rules["qwen2_audio"] == FamilyRules(prefixes=QWEN_PREFIXES)
    assert rules["qwen2_5_omni"] == rules["qwen2_audio"]
    assert rules["desta25"] == FamilyRules(
        answer_prefixes=(r"the\s+correct\s+answer\s+is\b\s*[:：]?",))
    assert rules["cascade"] == FamilyRules(
        prefixes=(r"the\s+audio\s+clip\s+(?:is|contains|says)\s*[:：]?",))
    assert rules["salmonn"] == rules["ltu_as"] == FamilyRules(markers=("</s>", "<s>"))
    assert rules["desta25"].wrappers == rules["desta25"].answer_prefixes
    assert family_rules("DeSTA25 ") is FAMILIES["desta25"]
    assert family_rules(None) is family_rules("no_such_family") is FAMILIES["generic"]


def test_family_file_loading(tmp_path: Path) -> None:
    path = tmp_path / "families.yaml"
    path.write_text("generic:\nMy_Model:\n  markers: ['<eos>']\n  prefixes: ['guess\\s*:']\n",
                    encoding="utf-8")
    assert load_families(path) == {
        "generic": FamilyRules(),
        "my_model": FamilyRules(prefixes=(r"guess\s*:",), markers=("<eos>",))}


@pytest.mark.parametrize(("text", "message"), [
    ("qwen: {}\n", "no 'generic' family"),
    ("- generic\n", "expected a mapping"),
    ("generic: {}\nx: {suffixes: ['a']}\n", "unknown key"),
    ("generic: {}\nx: {prefixes: 'a'}\n", "must be a list of non-empty strings"),
    ("generic: {}\nx: {markers: ['']}\n", "must be a list of non-empty strings"),
    ("generic: {}\nx: {answer_prefixes: ['(unclosed']}\n", "bad regex"),
    ("generic: {}\nx: []\n", "must be a mapping"),
    ("generic: {}\nX: {}\nx: {}\n", "defined twice"),
])
def test_family_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "families.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_families(path)


# --------------------------------------------------------------------------- the clean-up


@pytest.mark.parametrize(("text", "family", "expected"), [
    ('  The correct answer is: "dog" ', "desta25", '"dog"'),
    ("the correct answer is:cat", "desta25", "cat"),
    ("The correct answer is B", "desta25", "B"),
    ("The  correct answer is：  a violin", "desta25", "a violin"),
    ("The correct answer is: The correct answer is: x", "desta25", "The correct answer is: x"),
    ("The correct answer isn't listed.", "desta25", "The correct answer isn't listed."),
    ("I think the correct answer is: cat", "desta25", "I think the correct answer is: cat"),
    ("<s> a dog barks</s>\n", "salmonn", "a dog barks"),
    ("<s> a dog barks</s>", "ltu_as", "a dog barks"),
    ("<s> a dog barks</s> ", "generic", "<s> a dog barks</s>"),
    ("The speech says: hi", "qwen2_audio", "The speech says: hi"),  # wrappers: parser only
])
def test_clean_answer(text: str, family: str, expected: str) -> None:
    assert clean_answer(text, family) == expected


def test_one_clean_up_function() -> None:
    assert external_common.clean_answer is families.clean_answer
    assert salmonn.clean_answer is ltu.clean_answer is fields.clean_answer is clean_answer


RAW_DESTA = [
    "The correct answer is: metro station",
    "The correct answer is metro station",
    "The correct answer is I am not sure.",
    'The correct answer is ["metro station"]',
    "The correct answer is **Acoustic scene:** Home.",
    'The correct answer is: {"transcript": "hi", "scene": "home", "events": ["dog"]}',
    "The correct answer isn't clear: a park",
]


@pytest.mark.parametrize("raw", RAW_DESTA)
@pytest.mark.parametrize(("task", "mode"), [("asr", "independent"), ("asc", "independent"),
                                            ("at", "independent"), ("asr", "joint"),
                                            ("asr", "cot")])
def test_parser_and_adapter_share_the_clean_up(raw: str, task: str, mode: str) -> None:
    adapter = Desta25Model(model_entry("desta25"))
    cleaned = adapter.postprocess(raw)
    assert cleaned == clean_answer(raw, "desta25")
    assert parse_answer(raw, task, mode, "desta25") == parse_answer(cleaned, task, mode,
                                                                   "desta25")


def test_adapters_follow_the_family_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing a family's rules changes the adapter output and the parse alike."""
    monkeypatch.setitem(FAMILIES, "desta25", FamilyRules(answer_prefixes=(r"my\s+pick\s*:",)))
    monkeypatch.setitem(FAMILIES, "salmonn", FamilyRules(markers=("<eos>",)))
    monkeypatch.setitem(FAMILIES, "ltu_as", FamilyRules(markers=("<eos>",)))
    desta = Desta25Model(model_entry("desta25"))
    assert desta.postprocess("My pick: park") == "park"
    assert desta.postprocess("The correct answer is: park") == "The correct answer is: park"
    assert parse_answer("My pick: park", "asc", "independent", "desta25") == \
        fields.ParsedAnswer(scene="park", well_formed=True)

    class FakeRunner:
        template = "USER: {}\nASSISTANT:"

        def generate(self, wav_path: str, prompts: list[str], cfg: dict) -> list[str]:
            return ["a dog barks<eos>"]

    model = SalmonnModel(model_entry("salmonn"))
    model._client, model._loaded = FakeRunner(), True
    audio = np.zeros(1600, dtype=np.float32)
    (response,) = model.predict([Request(item_id="a", task="caption", audio=audio)])
    assert response.text == "a dog barks"
    assert ltu_response("### Response:\n a cat<eos>") == "a cat"


def test_entry_answer_prefixes_replace_the_family_prefix() -> None:
    model = Desta25Model(model_entry("desta25", answer_prefixes="Answer:"))
    assert model.postprocess(" Answer: The correct answer is: dog ") == \
        "The correct answer is: dog"
    listed = Desta25Model(model_entry("desta25", answer_prefixes=["Final:", "Answer:"]))
    assert listed.postprocess("answer: dog") == "dog"
    plain = SimpleNamespace(entry=model_entry("kimi_audio"), answer_family=None)
    assert external_common.ExternalLALM.postprocess(plain, "  The correct answer is: x ") == \
        "The correct answer is: x"
