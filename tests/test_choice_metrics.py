"""The MMAU / MMAR token matcher and the faithful / strict accuracy tables, on hand-made cases."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lalm_eval.metrics.choice import (
    answer_tokens,
    choice_accuracy,
    match_choice,
    predictions_from_records,
    score_choice,
)

VOICES = ["Man", "Woman", "Child", "Robot"]


def test_answer_tokens_lowercase_words_split_on_punctuation() -> None:
    assert answer_tokens("Hello, World! It's 2.5 dB_level") == {
        "hello", "world", "it", "s", "2", "5", "db_level"}
    assert answer_tokens(" ?! ") == set()
    with pytest.raises(TypeError, match="NoneType"):
        answer_tokens(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("Man", True),
        ("The answer is: MAN.", True),  # case and punctuation do not matter
        ("man or woman", False),  # a wrong choice's word
        ("Woman", False),
        ("", False),  # no tokens
        ("?!", False),
        ("manly", False),  # tokens, not substrings
    ],
)
def test_match_simple_choices(prediction: str, expected: bool) -> None:
    assert match_choice(prediction, "Man", VOICES) is expected


def test_match_tokens_shared_with_wrong_choices() -> None:
    choices = ["A child", "A woman", "An adult man", "A teenager"]
    assert match_choice("a child", "A child", choices)
    assert match_choice("It is a child.", "A child", choices)
    assert not match_choice("child", "A child", choices)  # lacks the answer's "a"
    assert not match_choice("a child, not an adult", "A child", choices)
    doors = ["Car door", "House door", "Cabinet door", "Elevator door"]
    assert match_choice("the car door", "Car door", doors)  # "door" is shared: allowed
    assert not match_choice("the car", "Car door", doors)
    assert not match_choice("car door or house door", "Car door", doors)


def test_match_numbers() -> None:
    counts = ["1", "2", "3", "4"]
    assert match_choice("3", "3", counts)
    assert match_choice("There are 3 speakers.", "3", counts)
    assert not match_choice("3 or 4", "3", counts)
    assert not match_choice("three", "3", counts)
    assert not match_choice("13", "3", counts)
    decimals = ["2", "2.5", "3", "5"]
    assert not match_choice("2", "2.5", decimals)  # lacks the token "5"
    assert match_choice("5 and 2", "2.5", decimals)  # the rule reads tokens, not order
    assert not match_choice("25", "2.5", decimals)


def test_match_duplicate_token_set_and_underscore() -> None:
    assert match_choice("man", "Man", ["Man", "man", "Woman", "Boy"])  # same token set
    assert not match_choice("dog_bark", "dog bark", ["dog bark", "cat", "bird", "cow"])


def test_match_with_an_empty_choice() -> None:
    # an empty choice (MMAR has some) has no tokens: it forbids nothing and changes nothing
    choices = ["It went in", "It stayed out", ""]
    for prediction in ("it went in", "It stayed out", "in", "went in, it did", "maybe"):
        assert match_choice(prediction, "It went in", choices) is match_choice(
            prediction, "It went in", choices[:2])
    assert match_choice("It went in.", "It went in", choices)
    assert not match_choice("It stayed out", "It went in", choices)


def _items() -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": ["i1", "i2", "i3", "i4"],
        "question": ["q"] * 4,
        "choices": [VOICES] * 4,
        "answer": ["Man", "Woman", "Child", "Robot"],
        "task": ["sound", "sound", "speech", "speech"],
        "benchmark": ["mmau"] * 4,
    })


PREDICTIONS = {"i1": "man", "i2": "child", "i3": None}  # i4 missing


def test_score_faithful_skips_missing_and_failed() -> None:
    per_item = score_choice(_items(), PREDICTIONS, "faithful")
    assert list(per_item["status"]) == ["answered", "answered", "failed", "missing"]
    assert list(per_item["counted"]) == [True, True, False, False]
    assert list(per_item["correct"]) == [True, False, None, None]
    assert list(per_item.columns[:3]) == ["item_id", "benchmark", "task"]
    table = choice_accuracy(per_item, by=["task"]).set_index(["breakdown", "value"])
    overall = table.loc[("overall", "all")]
    assert (overall["n"], overall["n_correct"], overall["accuracy"]) == (2, 1, 50.0)
    assert (overall["n_skipped"], overall["n_missing"], overall["n_failed"]) == (2, 1, 1)
    assert table.loc[("task", "sound"), "accuracy"] == 50.0
    speech = table.loc[("task", "speech")]
    assert speech["n"] == 0 and math.isnan(speech["accuracy"]) and speech["n_skipped"] == 2


def test_score_strict_counts_missing_and_failed_wrong() -> None:
    per_item = score_choice(_items(), PREDICTIONS, "strict")
    assert list(per_item["correct"]) == [True, False, False, False]
    table = choice_accuracy(per_item, by=["task"]).set_index(["breakdown", "value"])
    assert table.loc[("overall", "all"), "accuracy"] == 25.0
    assert table.loc[("overall", "all"), "n_skipped"] == 0
    assert table.loc[("task", "speech"), "accuracy"] == 0.0
    assert table.loc[("task", "speech"), "n"] == 2


def test_score_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown scoring mode 'lenient'"):
        score_choice(_items(), {}, "lenient")
    with pytest.raises(ValueError, match="unknown item"):
        score_choice(_items(), {"zzz": "man"}, "strict")
    with pytest.raises(ValueError, match="item 'i1': prediction must be a string"):
        score_choice(_items(), {"i1": 3}, "strict")  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="breakdown column"):
        score_choice(_items(), {}, "strict", breakdown=["difficulty"])
    with pytest.raises(ValueError, match="lacks column 'region'"):
        choice_accuracy(score_choice(_items(), {}, "strict"), by=["region"])


def test_predictions_from_records() -> None:
    records = [
        {"item_id": "a", "output_text": "Man", "error": None},
        {"item_id": "b", "output_text": "", "error": "empty model output"},
        {"item_id": "c", "output_text": None, "error": "AudioError: missing"},
    ]
    assert predictions_from_records(records) == {"a": "Man", "b": None, "c": None}
    with pytest.raises(ValueError, match="duplicate item_id 'a'"):
        predictions_from_records(records + [records[0]])


def test_accuracy_leaves_items_with_an_empty_group_value_out_of_that_breakdown() -> None:
    # as the official scripts do for items without a sub-category
    items = _items().assign(sub_category=["Voices", "", "Voices", "Robots"])
    per_item = score_choice(items, {"i1": "man", "i2": "woman", "i3": "robot", "i4": "robot"},
                            "strict")
    table = choice_accuracy(per_item, by=["sub_category"]).set_index(["breakdown", "value"])
    assert list(table.index) == [("overall", "all"), ("sub_category", "Robots"),
                                 ("sub_category", "Voices")]
    assert table.loc[("overall", "all"), "accuracy"] == 75.0  # i2 still counts overall
    assert table.loc[("sub_category", "Voices"), "accuracy"] == 50.0
    assert table.loc[("sub_category", "Voices"), "n"] == 2
    assert table.loc[("sub_category", "Robots"), "accuracy"] == 100.0
