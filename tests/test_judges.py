"""Tests for the JASCO judge verdict parsing, Best-Mean, dependence and agreement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lalm_eval.answers.verdicts import (
    Verdict,
    apply_orientation_call,
    orientation_call_input,
    parse_verdict_faithful,
    parse_verdict_strict,
)
from lalm_eval.suites.jasco.judging import (
    best_mean,
    best_mean_detail,
    cohen_kappa,
    effective_score,
    krippendorff_alpha,
    modality_dependence,
    panel_best_mean,
    parse_failure_rate,
    rating_matrix,
)


def judge(rating: str | None, orientation: str | None, sep: str = " ") -> str:
    """A judge response in the upstream template layout."""
    parts = ["Explanation1: The model's answer is close to the reference.", ""]
    if rating is not None:
        parts += [f"Rating: {rating}", ""]
    parts += ["Explanation2: I think it relies on both modalities.", ""]
    if orientation is not None:
        parts += [f"Orientation:{sep}{orientation}"]
    return "\n".join(parts)


WELL_FORMED = judge("2", "Good")


# --------------------------------------------------------------------------- faithful


def test_faithful_well_formed() -> None:
    v = parse_verdict_faithful(WELL_FORMED, None)
    assert v == Verdict(2, "both", parsed_ok=True, problem=None)
    assert effective_score(v, faithful=True) == 2.0


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("Audio-Oriented", "audio"),
        ("Speech-Oriented", "speech"),
        ("Good", "both"),
        ("Both", "both"),
        ("Both-Oriented", "both"),  # substring "Orientation: Both" matches
        ("Neither", "neither"),
    ],
)
def test_faithful_orientation_spellings(spelling: str, expected: str) -> None:
    v = parse_verdict_faithful(judge("1", spelling), None)
    assert v.orientation == expected and not v.needs_orientation_call


@pytest.mark.parametrize("spelling", ["Good", "Neither", "Audio-Oriented", "Speech-Oriented"])
def test_faithful_orientation_on_next_line(spelling: str) -> None:
    v = parse_verdict_faithful(judge("1", spelling, sep=" \n"), None)
    assert v.orientation is not None and not v.needs_orientation_call


@pytest.mark.parametrize(
    "text", [judge("1", "Both", sep=" \n"), judge("1", "both"), judge("1", "Audio")]
)
def test_faithful_unrecognised_orientation_needs_second_call(text: str) -> None:
    v = parse_verdict_faithful(text, None)
    assert v.orientation is None and v.needs_orientation_call and not v.parsed_ok
    assert effective_score(v, faithful=True) == 0.0


def test_faithful_orientation_order_neither_first() -> None:
    text = judge("2", "Good") + "\nOrientation: Neither"
    assert parse_verdict_faithful(text, None).orientation == "neither"


def test_orientation_call_round_trip() -> None:
    text = judge("2", "both")  # lower-case: not recognised upstream
    assert (
        orientation_call_input(text) == "I think it relies on both modalities.\n\nOrientation: both"
    )
    v = parse_verdict_faithful(text, None)
    resolved = apply_orientation_call(v, "Good.")
    assert resolved.orientation == "both" and resolved.parsed_ok
    assert effective_score(resolved, faithful=True) == 2.0
    unresolved = apply_orientation_call(v, "I cannot tell.")
    assert unresolved.orientation is None and not unresolved.parsed_ok
    assert effective_score(unresolved, faithful=True) == 0.0
    ok = parse_verdict_faithful(WELL_FORMED, None)
    assert apply_orientation_call(ok, "Neither") is ok


@pytest.mark.parametrize(
    ("rating", "expected"),
    [("0", 0), ("1", 1), ("2", 2), ("10", 0), ("1/2", 1), ("2 (scale 0-2)", 0), ("**2**", 2)],
)
def test_faithful_rating_digit_search_order(rating: str, expected: int) -> None:
    assert parse_verdict_faithful(judge(rating, "Good"), None).rating == expected


def test_faithful_rating_last_line_wins_and_no_digit_defaults_to_zero() -> None:
    text = "Rating: 2\n" + judge("1", "Good")
    assert parse_verdict_faithful(text, None).rating == 1
    v = parse_verdict_faithful(judge("none", "Good"), None)
    assert v.rating == 0 and not v.parsed_ok and "default 0" in (v.problem or "")
    # "Rating:" without the space is not a rating line upstream
    v = parse_verdict_faithful(judge(None, "Good") + "\nRating:2", None)
    assert v.rating is None


SEQUENCE = [judge("2", "Good"), judge(None, "Good"), "", judge("1", "Audio-Oriented")]


def test_faithful_carry_over_vs_strict_failure() -> None:
    faithful: list[Verdict] = []
    prev: Verdict | None = None
    for text in SEQUENCE:
        prev = parse_verdict_faithful(text, prev)
        faithful.append(prev)
    assert [v.rating for v in faithful] == [2, 2, 2, 1]
    assert [v.carried_over for v in faithful] == [False, True, True, False]
    assert "carried over" in (faithful[1].problem or "")
    assert [effective_score(v, faithful=True) for v in faithful] == [2.0, 2.0, 0.0, 0.0]

    strict = [parse_verdict_strict(t) for t in SEQUENCE]
    assert [v.parsed_ok for v in strict] == [True, False, False, True]
    assert strict[1].rating is None and strict[1].problem == "missing rating"
    assert strict[1].orientation == "both"  # kept for diagnostics
    assert strict[2].problem == "empty response"
    assert not any(v.carried_over for v in strict)
    assert [effective_score(v, faithful=False) for v in strict] == [2.0, None, None, 0.0]


def test_faithful_first_row_without_rating() -> None:
    v = parse_verdict_faithful(judge(None, "Good"), None)
    assert v.rating is None and not v.parsed_ok and not v.carried_over
    assert effective_score(v, faithful=True) is None


# --------------------------------------------------------------------------- strict


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("Audio-Oriented", "audio"),
        ("audio", "audio"),
        ("Speech-Oriented", "speech"),
        ("SPEECH", "speech"),
        ("Good", "both"),
        ("Both", "both"),
        ("Both-Oriented", "both"),
        ("**Both**", "both"),
        ("Neither", "neither"),
        ("Neither.", "neither"),
    ],
)
def test_strict_orientation_spellings(spelling: str, expected: str) -> None:
    v = parse_verdict_strict(judge("1", spelling))
    assert v.parsed_ok and v.orientation == expected and v.rating == 1


def test_strict_orientation_on_next_line_and_markdown() -> None:
    assert parse_verdict_strict(judge("0", "Both", sep=" \n")).orientation == "both"
    v = parse_verdict_strict("**Rating:** 2\n**Orientation:** Speech-Oriented")
    assert v.parsed_ok and (v.rating, v.orientation) == (2, "speech")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (judge(None, "Good"), "missing rating"),
        (judge("", "Good"), "empty rating"),
        (judge("n/a", "Good"), "empty rating"),
        (judge("1 or 2", "Good"), "contradictory rating: 1, 2"),
        ("Rating: 1\nRating: 2\nOrientation: Good", "contradictory rating: 1, 2"),
        (judge("3", "Good"), "rating out of range: 3"),
        (judge("1.5", "Good"), "rating out of range: 1.5"),
        (judge("1", None), "missing orientation"),
        (judge("1", "unclear"), "empty orientation"),
        (judge("1", ""), "empty orientation"),
        (
            judge("1", "Audio-Oriented/Speech-Oriented/Good/Neither"),
            "contradictory orientation: audio, both, neither, speech",
        ),
        (judge("1", "Audio") + "\nOrientation: Both", "contradictory orientation: audio, both"),
        ("", "empty response"),
        ("   \n ", "empty response"),
    ],
)
def test_strict_failures(text: str, problem: str) -> None:
    v = parse_verdict_strict(text)
    assert not v.parsed_ok and v.problem == problem
    assert not v.needs_orientation_call and not v.carried_over
    assert effective_score(v, faithful=False) is None


def test_strict_repeated_same_rating_is_fine() -> None:
    v = parse_verdict_strict("Rating: 2\nRating: 2\nOrientation: Both")
    assert v.parsed_ok and v.rating == 2


def test_both_problems_recorded() -> None:
    v = parse_verdict_strict("Explanation1: nothing")
    assert v.problem == "missing rating; missing orientation"


def test_effective_score_gate_on_both() -> None:
    for orientation in ("audio", "speech", "neither"):
        v = Verdict(2, orientation, parsed_ok=True)
        assert effective_score(v, faithful=True) == 0.0
        assert effective_score(v, faithful=False) == 0.0


# --------------------------------------------------------------------------- metrics


def test_best_mean_hand_computed() -> None:
    scores = pd.DataFrame(
        {
            "clip_id": [1, 1, 1, 2, 2, 3, 3, 4],
            "prompt_id": [0, 1, 2, 0, 1, 0, 1, 0],
            "score": [0, 2, 1, 1, None, None, None, 0],
        }
    )
    # clip maxima: 2, 1, (excluded), 0 -> (2 + 1 + 0) / 3
    value, excluded = best_mean_detail(scores)
    assert value == pytest.approx(1.0) and excluded == 1
    assert best_mean(scores) == pytest.approx(1.0)
    assert math.isnan(best_mean(scores.assign(score=None)))
    with pytest.raises(ValueError):
        best_mean(scores.drop(columns="prompt_id"))


def test_panel_best_mean() -> None:
    assert panel_best_mean({"llama": 1.0, "qwen": 1.5, "mistral": 0.5}) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        panel_best_mean({})


def test_modality_dependence_hand_computed() -> None:
    verdicts = [
        Verdict(1, "audio", True),
        Verdict(2, "both", True),
        Verdict(2, "both", True),
        Verdict(0, "speech", True),
        Verdict(0, "neither", True),  # excluded
        Verdict(None, "audio", False, "missing rating"),  # unparsed: excluded by default
        Verdict(1, None, False, "missing orientation"),  # excluded
    ]
    shares = modality_dependence(verdicts)
    assert shares == pytest.approx({"audio": 0.25, "speech": 0.25, "both": 0.5})
    upstream_like = modality_dependence(verdicts, only_parsed=False)
    assert upstream_like == pytest.approx({"audio": 0.4, "speech": 0.2, "both": 0.4})
    assert all(math.isnan(x) for x in modality_dependence([]).values())


def test_parse_failure_rate() -> None:
    vs = [parse_verdict_strict(t) for t in SEQUENCE]
    assert parse_failure_rate(vs) == pytest.approx(0.5)
    assert math.isnan(parse_failure_rate([]))


# --------------------------------------------------------------------------- agreement


def test_cohen_kappa_hand_computed_2x2() -> None:
    # 50 items: both 1 -> 20, A=1/B=0 -> 5, A=0/B=1 -> 10, both 0 -> 15.
    # p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7-0.5)/(1-0.5) = 0.4
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # unparsed items on either side are dropped, not counted as disagreements
    va = [Verdict(x, "both", True) for x in a] + [Verdict(None, None, False, "x")]
    vb = [Verdict(x, "both", True) for x in b] + [Verdict(2, "both", True)]
    assert cohen_kappa(va, vb) == pytest.approx(0.4)
    assert cohen_kappa(a + [None], b + [2]) == pytest.approx(0.4)
    assert math.isnan(cohen_kappa([None], [1]))
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 2])


# Krippendorff, K. (2011). "Computing Krippendorff's Alpha-Reliability", Annenberg School
# for Communication, Departmental Papers 43, section C (4 observers, 12 units, missing
# values): published alpha nominal 0.743, ordinal 0.815, interval 0.849, ratio 0.797.
KRIPP_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
]


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_alpha_published_example(level: str, published: float) -> None:
    assert krippendorff_alpha(KRIPP_2011, level=level) == pytest.approx(published, abs=1e-3)


def test_krippendorff_default_is_ordinal_and_rating_matrix() -> None:
    assert krippendorff_alpha(KRIPP_2011) == pytest.approx(0.815, abs=1e-3)
    m = rating_matrix(
        {
            "j1": [Verdict(2, "both", True), Verdict(None, None, False, "x")],
            "j2": [Verdict(1, "audio", True), Verdict(0, "both", True)],
        }
    )
    assert m.shape == (2, 2) and m[0, 0] == 2.0 and math.isnan(m[0, 1]) and m[1, 1] == 0.0
    with pytest.raises(ValueError):
        krippendorff_alpha([[1, 2, 3]])
    with pytest.raises(ValueError):
        rating_matrix({"j1": [Verdict(1, "both", True)], "j2": []})
