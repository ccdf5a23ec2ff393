"""Auditory-knowledge MCQs: loader formats and errors, position balance, answer extraction,
scoring, prompt rendering and the packaged demo set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from lalm_eval.answers.choice import extract_choice
from lalm_eval.inference import WorkItem
from lalm_eval.prompts import PromptError
from lalm_eval.suites.knowledge import akb

OPTIONS = ["Violin", "Oboe", "Trumpet", "Harp"]
ANIMALS = ["A cat meows", "A dog barks", "A bird sings", "A car horn"]


def _item(**changes) -> dict:
    item = {"id": "x1", "category": "Music", "subcategory": "instruments",
            "question": "Which one has a double reed?", "options": list(OPTIONS), "answer": "B"}
    item.update(changes)
    return item


def _write_json(path: Path, items) -> Path:
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# loader
# --------------------------------------------------------------------------------------------


def test_json_list_and_answer_forms(tmp_path):
    items = [
        _item(id="m1", answer="B"),
        _item(id="m2", answer=2),
        _item(id="m3", answer="Harp"),
        _item(id=7, answer="a", category="Sound", subcategory=None),
    ]
    table = akb.read_mcq(_write_json(tmp_path / "q.json", items))
    assert list(table.columns) == list(akb.MCQ_COLUMNS)
    assert list(table["item_id"]) == ["m1", "m2", "m3", "7"]
    assert list(table["answer_index"]) == [1, 2, 3, 0]
    assert list(table["answer_letter"]) == ["B", "C", "D", "A"]
    assert table.loc[0, "option_b"] == "Oboe"
    assert table.loc[3, "subcategory"] == ""
    assert table.attrs["source"].endswith("q.json") and len(table.attrs["sha256"]) == 64


def test_json_mapping_generated_ids_and_metadata(tmp_path):
    items = [{k: v for k, v in _item(question=f"Question {i}?").items() if k != "id"}
             for i in range(3)]
    path = _write_json(tmp_path / "q.json", {"version": "2", "questions": items})
    table = akb.read_mcq(path)
    assert list(table["item_id"]) == ["q0001", "q0002", "q0003"]
    assert table.attrs["meta"] == {"version": "2"}


def test_jsonl_with_choices_alias_and_lettered_mapping(tmp_path):
    lines = [
        json.dumps({"question_id": "j1", "Category": "Music", "sub-category": "x",
                    "question": "Q1?", "choices": OPTIONS, "answer": "1"}),
        "",
        json.dumps({"id": "j2", "category": "Music", "question": "Q2?",
                    "options": {"a": "w", "B": "x", "C": "y", "D": "z"}, "answer": "D"}),
    ]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = akb.read_mcq(path)
    assert list(table["item_id"]) == ["j1", "j2"]
    assert list(table["answer_index"]) == [1, 3]
    assert table.loc[0, "subcategory"] == "x"
    assert list(table.loc[1, ["option_a", "option_d"]]) == ["w", "z"]


@pytest.mark.parametrize(
    "header, row",
    [
        ("id,category,subcategory,question,A,B,C,D,answer", 'c1,Music,s,Q?,w,x,"y, z",v,C'),
        ("id,category,subcategory,question,option_a,option_b,option_c,option_d,answer",
         'c1,Music,s,Q?,w,x,"y, z",v,2'),
        ("id,category,subcategory,question,options,answer",
         'c1,Music,s,Q?,"[""w"", ""x"", ""y, z"", ""v""]","y, z"'),
    ],
)
def test_csv_option_layouts(tmp_path, header, row):
    path = tmp_path / "q.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    table = akb.read_mcq(path)
    assert table.loc[0, "option_c"] == "y, z"
    assert table.loc[0, "answer_index"] == 2
    assert table.loc[0, "answer_letter"] == "C"


def test_yaml_file(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(
        "version: '1'\nquestions:\n"
        "  - {id: y1, category: Music, question: 'Ratio of a fifth?',"
        " options: ['3:2', '2:1', '4:3', '5:4'], answer: '3:2'}\n",
        encoding="utf-8",
    )
    table = akb.read_mcq(path)
    assert table.loc[0, "answer_index"] == 0 and table.loc[0, "option_a"] == "3:2"


@pytest.mark.parametrize(
    "items, message",
    [
        ([_item(id="d"), _item(id="d", question="Other?")], "duplicate id(s) 'd'"),
        ([_item(options=OPTIONS[:3])], "item 'x1': field 'options' has 3 options, expected 4"),
        ([_item(options=["Violin", "Oboe", "oboe ", "Harp"])],
         "item 'x1': options B and C are the same text"),
        ([_item(answer="Bassoon")], "item 'x1': field 'answer' 'Bassoon' matches no option"),
        ([_item(answer="oboe")], "differs only in case or spacing from option B"),
        ([_item(answer=4)], "item 'x1': field 'answer' index 4 is outside 0-3"),
        ([_item(options=["1", "2", "3", "4"], answer="2")],
         "item 'x1': field 'answer' '2' is ambiguous"),
        ([_item(question="  ")], "item 'x1': field 'question' is empty"),
        ([_item(category="")], "item 'x1': field 'category' is empty"),
        ([_item(options=["Violin", 3, "Trumpet", "Harp"])],
         "item 'x1': field 'option B' must be a string"),
        ([_item(choices=OPTIONS)], "item 'x1': fields options and choices both give 'options'"),
        ([_item(A="x")], "item 'x1': options given twice (options and A-D)"),
        ([{k: v for k, v in _item().items() if k != "answer"}], "field 'answer' is missing"),
        (["just text"], "item #1: expected an object"),
        ([], "holds no questions"),
    ],
)
def test_bad_input_names_file_item_and_field(tmp_path, items, message):
    path = _write_json(tmp_path / "bad.json", items)
    with pytest.raises(akb.McqFormatError) as err:
        akb.read_mcq(path)
    assert "bad.json" in str(err.value)
    assert message in str(err.value)


def test_unknown_category_only_when_strict(tmp_path):
    path = _write_json(tmp_path / "q.json", [_item(category="Musik")])
    assert akb.read_mcq(path).loc[0, "category"] == "Musik"
    with pytest.raises(akb.McqFormatError, match="'Musik' is not one of .*did you mean 'Music'"):
        akb.read_mcq(path, strict_categories=True)


def test_unquoted_yaml_boolean_option_is_refused(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text("- {id: b1, category: Sound, question: 'Audible?', "
                    "options: [yes, no, maybe, never], answer: A}\n", encoding="utf-8")
    with pytest.raises(akb.McqFormatError, match=r"b1.*option A.*bool.*quote it"):
        akb.read_mcq(path)


def test_csv_missing_option_column_and_unknown_suffix(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("id,category,question,A,B,C,answer\nc1,Music,Q?,w,x,y,A\n", encoding="utf-8")
    with pytest.raises(akb.McqFormatError, match=r"'c1': option\(s\) D missing"):
        akb.read_mcq(path)
    other = tmp_path / "q.txt"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(akb.McqFormatError, match="unknown question file type"):
        akb.read_mcq(other)


# --------------------------------------------------------------------------------------------
# answer-position balance
# --------------------------------------------------------------------------------------------


def _chi2_sf_df3(x: float) -> float:
    """Survival function of chi-square with 3 degrees of freedom (closed form)."""
    return math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)


def test_position_balance_hand_values():
    table = pd.DataFrame({"answer_index": [0] * 10 + [1] * 5 + [2] * 3 + [3] * 2})
    result = akb.position_balance(table)
    # expected 5 each: chi2 = (25 + 0 + 4 + 9) / 5 = 7.6
    assert result["counts"] == {"A": 10, "B": 5, "C": 3, "D": 2}
    assert result["expected"] == 5.0
    assert result["chi2"] == pytest.approx(7.6)
    assert result["p_value"] == pytest.approx(_chi2_sf_df3(7.6), rel=1e-9)
    assert result["p_value"] == pytest.approx(0.05497, abs=1e-4)
    assert result["max_deviation"] == 5.0
    assert result["balanced"] is True

    skewed = akb.position_balance(pd.DataFrame({"answer_index": [0] * 12 + [1] * 4 + [2, 2, 3, 3]}))
    assert skewed["chi2"] == pytest.approx(13.6)  # (49 + 1 + 9 + 9) / 5
    assert skewed["p_value"] == pytest.approx(_chi2_sf_df3(13.6), rel=1e-9)
    assert skewed["balanced"] is False and skewed["max_deviation"] == 7.0

    even = akb.position_balance(pd.DataFrame({"answer_index": [0, 1, 2, 3] * 3}))
    assert even["chi2"] == 0.0 and even["p_value"] == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# answer extraction
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("B", (1, "letter")),
        ("(B)", (1, "letter")),
        ("B.", (1, "letter")),
        ("B)", (1, "letter")),
        ("**B**", (1, "letter")),
        ("b", (1, "letter")),
        ("Answer: B", (1, "letter")),
        ("answer: c", (2, "letter")),
        ("The answer is B: Oboe", (1, "letter_and_text")),
        ("B. Oboe", (1, "letter_and_text")),
        ("The correct option is (C) Trumpet", (2, "letter_and_text")),
        ("Option D", (3, "letter")),
        ("It is B.", (1, "letter")),
        ("I'd say A.", (0, "letter")),
        ("The answer is A because the violin is bowed.", (0, "letter")),
        ("The answer is B, since the violin (A) has no reed.", (1, "letter")),
        ("A. Violin\nB. Oboe\nC. Trumpet\nD. Harp\nAnswer: D", (3, "letter")),
        ("<think>maybe A</think>C", (2, "letter")),
        ("\\boxed{D}", (3, "letter")),
        ("Oboe", (1, "option_text")),
        ("oboe.", (1, "option_text")),
        ("  OBOE!  ", (1, "option_text")),
        ("I think it is the oboe.", (1, "option_text")),
        ("Answer: Harp", (3, "option_text")),
        ("Answer: the oboe. The violin has no reed.", (1, "option_text")),
        ("The answer is a violin.", (0, "option_text")),
        ("B. Trumpet", (None, "ambiguous")),
        ("B or C", (None, "ambiguous")),
        ("A, B", (None, "ambiguous")),
        ("The answer is B. No, the answer is C.", (None, "ambiguous")),
        ("A. Violin\nB. Oboe\nC. Trumpet\nD. Harp", (None, "ambiguous")),
        ("The oboe, not the violin.", (None, "ambiguous")),
        ("A dog barks in the distance.", (None, "none")),
        ("A bassoon would be my guess.", (None, "none")),
        ("I am not sure.", (None, "none")),
        ("", (None, "none")),
        ("   ", (None, "none")),
        (None, (None, "none")),
    ],
)
def test_extract_choice(text, expected):
    assert extract_choice(text, OPTIONS) == expected


@pytest.mark.parametrize(
    "options, text, expected",
    [
        # the article trap: "A ..." is option text, not letter A
        (ANIMALS, "A dog barks", (1, "option_text")),
        (ANIMALS, "Answer: A bird sings.",
         (2, "option_text")),
        (ANIMALS, "C. A bird sings",
         (2, "letter_and_text")),
        (ANIMALS, "A. A bird sings",
         (None, "ambiguous")),
        (ANIMALS, "A", (0, "letter")),
        (["Cat", "Dog", "Bird", "Car"], "A dog barks", (1, "option_text")),
        (["A major", "C major", "D minor", "B minor"], "Answer: A major", (0, "option_text")),
        (["A major", "C major", "D minor", "B minor"], "B minor (D)", (3, "letter")),
        # punctuation that matters is kept apart
        (["+6 dB", "-6 dB", "0 dB", "12 dB"], "-6 dB", (1, "option_text")),
        (["+6 dB", "-6 dB", "0 dB", "12 dB"], "6 dB", (None, "none")),
        # an option inside a longer one
        (["Violin", "Violin and piano", "Piano", "Harp"], "violin and piano", (1, "option_text")),
    ],
)
def test_extract_choice_option_texts(options, text, expected):
    assert extract_choice(text, options) == expected


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------


def _scoring_table(tmp_path) -> pd.DataFrame:
    rows = [
        ("s1", "Sound", "physics", "A"), ("s2", "Sound", "physics", "B"),
        ("s3", "Sound", "hearing", "C"), ("m1", "Music", "instruments", "D"),
        ("m2", "Music", "instruments", "A"), ("m3", "Music", "tempo", "B"),
    ]
    items = [_item(id=i, category=c, subcategory=s, question=f"Question {i}?", answer=a)
             for i, c, s, a in rows]
    return akb.read_mcq(_write_json(tmp_path / "q.json", items))


def test_score_mcq_and_accuracy(tmp_path):
    table = _scoring_table(tmp_path)
    records = [
        {"item_id": "s1", "output_text": "A", "error": None, "run": 0},  # correct
        {"item_id": "s2", "output_text": "Trumpet", "error": None, "run": 0},  # wrong (C)
        {"item_id": "s3", "output_text": "no idea", "error": None, "run": 0},  # unparsed
        {"item_id": "m1", "output_text": "The answer is D.", "error": None, "run": 0},  # correct
        {"item_id": "m2", "output_text": None, "error": "RuntimeError: boom", "run": 0},  # failed
        # m3: missing
    ]
    per_item = akb.score_mcq(table, records)
    assert list(per_item.columns) == list(akb.ITEM_SCORE_COLUMNS)
    assert list(per_item["status"]) == ["answered", "answered", "unparsed", "answered", "failed",
                                        "missing"]
    assert list(per_item["correct"]) == [True, False, False, True, False, False]
    assert per_item["chosen_index"].tolist() == [0, 2, pd.NA, 3, pd.NA, pd.NA]
    assert per_item["chosen_letter"].fillna("-").tolist() == ["A", "C", "-", "D", "-", "-"]

    acc = akb.mcq_accuracy(per_item).set_index(["level", "group"])
    overall = acc.loc[("overall", "all")]
    assert (overall["n"], overall["n_correct"]) == (6, 2)
    assert overall["accuracy"] == pytest.approx(100 * 2 / 6)
    assert (overall["n_unparsed"], overall["n_failed"], overall["n_missing"]) == (1, 1, 1)
    assert overall["chance"] == 25.0
    sound, music = acc.loc[("category", "Sound")], acc.loc[("category", "Music")]
    assert sound["accuracy"] == pytest.approx(100 / 3) and sound["n_unparsed"] == 1
    assert music["accuracy"] == pytest.approx(100 / 3)
    assert (music["n_failed"], music["n_missing"]) == (1, 1)
    # category rows follow CATEGORIES order: Sound before Music
    assert list(acc.xs("category", level="level").index) == ["Sound", "Music"]
    by_letter = acc.xs("answer_letter", level="level")["accuracy"]
    assert by_letter.to_dict() == pytest.approx({"A": 50.0, "B": 0.0, "C": 0.0, "D": 100.0})

    sub = akb.mcq_accuracy(per_item, levels=("subcategory",)).set_index("group")
    assert sub.loc["Sound/physics", "accuracy"] == pytest.approx(50.0)
    assert sub.loc["Music/tempo", "n_missing"] == 1

    picks = akb.chosen_position_counts(per_item).set_index("letter")
    assert picks["n_chosen"].to_dict() == {"A": 1, "B": 0, "C": 1, "D": 1}
    assert picks.loc["A", "chosen_pct"] == pytest.approx(100 / 3)
    assert picks["n_answer"].to_dict() == {"A": 2, "B": 2, "C": 1, "D": 1}
    assert picks.loc["A", "answer_pct"] == pytest.approx(100 / 3)


def test_score_mcq_records_read_back_through_pandas(tmp_path):
    """NaN in error / output_text (records from a DataFrame) means 'not given'."""
    table = _scoring_table(tmp_path)
    records = pd.DataFrame([{"item_id": "s1", "output_text": "A", "error": float("nan")},
                            {"item_id": "s2", "output_text": float("nan"), "error": float("nan")}])
    per_item = akb.score_mcq(table, records.to_dict("records")).set_index("item_id")
    assert per_item.loc["s1", "status"] == "answered" and per_item.loc["s1", "correct"]
    assert per_item.loc["s2", "status"] == "unparsed" and per_item.loc["s2", "method"] == "none"


def test_score_mcq_rejects_unknown_and_repeated_records(tmp_path):
    table = _scoring_table(tmp_path)
    with pytest.raises(ValueError, match="'zz' is not a question"):
        akb.score_mcq(table, [{"item_id": "zz", "output_text": "A"}])
    with pytest.raises(ValueError, match="second record for item_id 's1'"):
        akb.score_mcq(table, [{"item_id": "s1", "output_text": "A"},
                              {"item_id": "s1", "output_text": "B"}])
    with pytest.raises(ValueError, match="unknown level"):
        akb.mcq_accuracy(akb.score_mcq(table, []), levels=("overall", "bogus"))


# --------------------------------------------------------------------------------------------
# prompt and work items
# --------------------------------------------------------------------------------------------


def test_packaged_prompt_render_and_work_items(tmp_path):
    prompt = akb.load_mcq_prompt("mcq_demo")
    assert prompt.name == "mcq_demo" and len(prompt.sha256) == 64 and prompt.system
    table = akb.read_mcq(_write_json(tmp_path / "q.json", [_item()]))
    text = akb.render_mcq(table.iloc[0], prompt)
    assert "Which one has a double reed?" in text
    assert "A. Violin\nB. Oboe\nC. Trumpet\nD. Harp" in text
    (work,) = akb.mcq_work_items(table, prompt)
    assert isinstance(work, WorkItem)
    assert (work.item_id, work.clip_id, work.task, work.request) == ("x1", "x1", "mcq", "generate")
    assert work.audio_path is None and work.prompt_id == "mcq_demo"
    assert work.prompt == text and work.system == prompt.system


def test_prompt_file_checks_placeholders(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text("name: mine\nversion: '3'\nsource: test\n"
                    "template: 'Q: {question} Options: {options} ({{letter}})'\n",
                    encoding="utf-8")
    prompt = akb.load_mcq_prompt(str(good))
    assert prompt.system is None and prompt.version == "3"
    row = {"question": "Q?", "option_a": "1", "option_b": "2", "option_c": "3", "option_d": "4"}
    assert akb.render_mcq(row, prompt) == "Q: Q? Options: A. 1\nB. 2\nC. 3\nD. 4 ({letter})"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nversion: '1'\nsource: test\ntemplate: '{question} {choices}'\n",
                   encoding="utf-8")
    with pytest.raises(PromptError, match=r"bad.yaml: template must use exactly"):
        akb.load_mcq_prompt(str(bad))


# --------------------------------------------------------------------------------------------
# packaged demo set
# --------------------------------------------------------------------------------------------


def test_demo_set_shape_and_balance():
    table = akb.read_mcq(akb.demo_mcq_path(), strict_categories=True)
    assert len(table) >= 72
    assert table.attrs["meta"]["licence"] == "CC0-1.0" and "version" in table.attrs["meta"]
    assert table.groupby("category").size().to_dict() == {c: 12 for c in akb.CATEGORIES}
    for _, part in table.groupby("category"):
        assert 2 <= part["subcategory"].nunique() <= 4
        assert sorted(part["answer_letter"].value_counts().tolist()) == [3, 3, 3, 3]
    balance = akb.position_balance(table)
    assert balance["counts"] == {"A": 18, "B": 18, "C": 18, "D": 18}
    assert balance["chi2"] == 0.0 and balance["balanced"]
    normalised = table["question"].str.casefold().str.split().str.join(" ")
    assert not normalised.duplicated().any()
    assert table["answer_index"].between(0, 3).all()
    assert (table["answer_letter"] == table["answer_index"].map(dict(enumerate("ABCD")))).all()


def test_demo_set_answers_extract_as_option_text():
    """Every correct option, answered as text, is found again (no option shadows another)."""
    table = akb.read_mcq(akb.demo_mcq_path())
    for row in table.to_dict("records"):
        options = [row[c] for c in akb.OPTION_COLUMNS]
        for index, option in enumerate(options):
            assert extract_choice(option, options) == (index, "option_text"), row["item_id"]
