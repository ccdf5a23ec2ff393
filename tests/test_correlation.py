"""Correlation between metrics: Pearson r, Kendall tau, bootstrap, heatmap and table."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lalm_eval.metrics.correlation import (
    COLUMNS,
    bootstrap_pearson,
    correlation_matrix,
    pairwise_correlations,
    unordered_pairs,
)
from lalm_eval.reports.heatmap import correlation_heatmap, correlation_table, wrap_label


def pair(long: pd.DataFrame, a: str, b: str) -> pd.Series:
    rows = long[(long["metric_a"] == a) & (long["metric_b"] == b)]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.fixture
def hand() -> pd.DataFrame:
    """x = 1..4, y = 1,3,2,4: deviations (-1.5,-.5,.5,1.5) and (-1.5,.5,-.5,1.5), so
    sxy = 4, sxx = syy = 5, r = 0.8; 5 concordant and 1 discordant pair, tau = 2/3."""
    return pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [1.0, 3, 2, 4]},
                        index=["m1", "m2", "m3", "m4"])


def test_perfectly_linear_gives_one_and_minus_one() -> None:
    table = pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "up": [3.0, 5, 7, 9, 11],
                          "down": [10.0, 8, 6, 4, 2]}, index=list("pqrst"))
    long = pairwise_correlations(table, n_boot=200)
    assert pair(long, "a", "up")["pearson_r"] == pytest.approx(1.0)
    assert pair(long, "a", "up")["kendall_tau"] == pytest.approx(1.0)
    assert pair(long, "a", "down")["pearson_r"] == pytest.approx(-1.0)
    assert pair(long, "a", "down")["kendall_tau"] == pytest.approx(-1.0)
    assert pair(long, "a", "down")["ci_low"] == pytest.approx(-1.0)
    assert pair(long, "a", "down")["ci_high"] == pytest.approx(-1.0)


def test_hand_computed_example_matches_scipy(hand: pd.DataFrame) -> None:
    row = pair(pairwise_correlations(hand, n_boot=100), "x", "y")
    assert row["n"] == 4 and row["defined"] and row["reason"] == ""
    assert row["pearson_r"] == pytest.approx(0.8, abs=1e-12)
    assert row["kendall_tau"] == pytest.approx(2 / 3, abs=1e-12)
    # exact Kendall test: 4 of 24 orderings have <= 1 discordant pair, two-sided p = 8/24
    assert row["kendall_p"] == pytest.approx(1 / 3, abs=1e-9)
    assert row["pearson_p"] == pytest.approx(stats.pearsonr(hand["x"], hand["y"]).pvalue)


def test_full_square_symmetric_with_diagonal(hand: pd.DataFrame) -> None:
    table = hand.assign(z=[2.0, np.nan, 1.0, 7.0])
    long = pairwise_correlations(table, n_boot=50)
    assert list(long.columns) == list(COLUMNS)
    assert len(long) == 9
    assert list(zip(long["metric_a"], long["metric_b"], strict=True))[:3] == [
        ("x", "x"), ("x", "y"), ("x", "z")]
    stats_columns = ["n", "pearson_r", "ci_low", "ci_high", "kendall_tau", "n_boot_valid"]
    assert pair(long, "x", "z")[stats_columns].equals(pair(long, "z", "x")[stats_columns])
    diagonal = pair(long, "z", "z")
    assert diagonal["n"] == 3 and diagonal["pearson_r"] == 1.0
    assert diagonal["kendall_tau"] == 1.0 and diagonal["ci_low"] == 1.0
    assert long.attrs["metric_order"] == ["x", "y", "z"]


def test_missing_values_reduce_n_to_shared_models() -> None:
    table = pd.DataFrame({"x": [1.0, 2, 3, 4, 100], "y": [1.0, 3, 2, 4, np.nan],
                          "w": [np.nan, 1.0, 1.5, 9.0, 2.0]}, index=list("abcde"))
    long = pairwise_correlations(table, n_boot=50)
    assert pair(long, "x", "y")["n"] == 4  # model e lacks y
    assert pair(long, "x", "y")["pearson_r"] == pytest.approx(0.8)
    assert pair(long, "y", "w")["n"] == 3
    assert pair(long, "x", "x")["n"] == 5 and pair(long, "y", "y")["n"] == 4
    shared = table[["x", "w"]].dropna()
    assert pair(long, "x", "w")["pearson_r"] == pytest.approx(
        stats.pearsonr(shared["x"], shared["w"]).statistic, rel=1e-12)


def test_fewer_than_min_n_shared_models_is_undefined() -> None:
    table = pd.DataFrame({"x": [1.0, 2, 3, 4], "y": [1.0, 3, np.nan, np.nan],
                          "z": [5.0, 1, 2, 8]}, index=list("abcd"))
    long = pairwise_correlations(table, n_boot=50)
    row = pair(long, "x", "y")
    assert row["n"] == 2 and not row["defined"] and row["reason"] == "n<3"
    assert np.isnan(row[["pearson_r", "pearson_p", "ci_low", "ci_high", "kendall_tau",
                         "kendall_p"]].astype(float)).all()
    assert pair(long, "y", "y")["reason"] == "n<3"  # the diagonal follows the same rule
    matrix = correlation_matrix(long)
    assert np.isnan(matrix.loc["x", "y"]) and np.isnan(matrix.loc["y", "y"])
    assert matrix.loc["x", "z"] == pytest.approx(pair(long, "x", "z")["pearson_r"])
    assert correlation_matrix(long, "n").loc["x", "y"] == 2
    strict = pairwise_correlations(table, min_n=5, n_boot=0)
    assert pair(strict, "x", "z")["reason"] == "n<5"


def test_constant_metric_is_undefined() -> None:
    table = pd.DataFrame({"x": [1.0, 2, 3, 4], "flat": [0.5, 0.5, 0.5, 0.5],
                          "y": [2.0, 2, 2, 9]}, index=list("abcd"))
    long = pairwise_correlations(table, n_boot=50)
    for a, b in [("x", "flat"), ("flat", "y"), ("flat", "flat")]:
        row = pair(long, a, b)
        assert not row["defined"] and row["reason"] == "constant" and row["n"] == 4
        assert np.isnan(row["pearson_r"])
    # y is constant over the models it shares with x only when x lacks model d
    partial = table.assign(x=[1.0, 2, 3, np.nan])
    assert pair(pairwise_correlations(partial, n_boot=0), "x", "y")["reason"] == "constant"


def test_bootstrap_contains_r_and_is_seeded() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=12)
    table = pd.DataFrame({"x": x, "y": x + rng.normal(scale=0.8, size=12)})
    first = pair(pairwise_correlations(table, seed=3), "x", "y")
    again = pair(pairwise_correlations(table, seed=3), "x", "y")
    other = pair(pairwise_correlations(table, seed=4), "x", "y")
    assert first["ci_low"] < first["pearson_r"] < first["ci_high"]
    assert (first["ci_low"], first["ci_high"]) == (again["ci_low"], again["ci_high"])
    assert (first["ci_low"], first["ci_high"]) != (other["ci_low"], other["ci_high"])
    assert first["n_boot_valid"] == 1000
    narrow = pair(pairwise_correlations(table, seed=3, confidence=0.5), "x", "y")
    assert first["ci_low"] < narrow["ci_low"] < narrow["ci_high"] < first["ci_high"]


def test_bootstrap_replicates_match_scipy_and_drop_constant_resamples() -> None:
    x = np.array([1.0, 4.0, 2.0, 8.0, 5.0])
    y = np.array([2.0, 3.0, 3.0, 9.0, 1.0])
    draws = np.array([[0, 1, 2, 3, 4], [4, 4, 1, 0, 3], [2, 2, 2, 2, 2], [1, 2, 2, 1, 1]])
    r = bootstrap_pearson(x, y, draws)
    for k in (0, 1):
        assert r[k] == pytest.approx(stats.pearsonr(x[draws[k]], y[draws[k]]).statistic,
                                     rel=1e-12)
    assert np.isnan(r[2])  # x constant
    assert np.isnan(r[3])  # y constant (3, 3, 3, ...)
    # with n = 3 about 2/9 of the resamples hold one model only and are dropped
    small = pd.DataFrame({"x": [1.0, 2, 3], "y": [1.0, 3, 2]})
    row = pair(pairwise_correlations(small, n_boot=900), "x", "y")
    assert 100 < 900 - row["n_boot_valid"] < 400
    strict = pair(pairwise_correlations(small, n_boot=900, min_valid_fraction=1.0), "x", "y")
    assert strict["defined"] and np.isnan(strict["ci_low"]) and np.isnan(strict["ci_high"])


def test_forty_metrics_twenty_models_is_fast() -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(20, 40)), columns=[f"m{k}" for k in range(40)])
    table.iloc[:5, ::3] = np.nan
    start = time.perf_counter()
    long = pairwise_correlations(table)
    assert time.perf_counter() - start < 15
    assert len(long) == 1600 and long["defined"].all()


@pytest.mark.parametrize(("table", "message"), [
    (pd.DataFrame({"x": ["a", "b", "c"]}), "metric column 'x' is not numeric"),
    (pd.DataFrame({"x": [1.0, 2, 3]}, index=["a", "a", "b"]), "duplicate model rows: a"),
    (pd.DataFrame({"x": [1.0, np.inf, 3]}, index=list("abc")), r"infinite values.*b/x"),
    (pd.DataFrame(index=list("abc")), "no metric columns"),
    (pd.DataFrame({0: [1.0, 2, 3]}), "non-empty strings"),
])
def test_bad_tables_are_refused(table: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pairwise_correlations(table)


def test_bad_settings_are_refused(hand: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="min_n"):
        pairwise_correlations(hand, min_n=1)
    with pytest.raises(ValueError, match="confidence"):
        pairwise_correlations(hand, confidence=95)
    with pytest.raises(ValueError, match="n_boot"):
        pairwise_correlations(hand, n_boot=-1)


def test_matrix_order_and_missing_pairs(hand: pd.DataFrame) -> None:
    long = pairwise_correlations(hand.assign(z=[3.0, 1, 2, 0]), n_boot=0)
    matrix = correlation_matrix(long, "kendall_tau", metric_order=["z", "x"])
    assert list(matrix.index) == ["z", "x"] and list(matrix.columns) == ["z", "x"]
    assert matrix.loc["x", "z"] == matrix.loc["z", "x"]
    with pytest.raises(ValueError, match="not in the correlations: q"):
        correlation_matrix(long, metric_order=["x", "q"])
    with pytest.raises(ValueError, match="lack 1 ordered pair"):
        correlation_matrix(long.iloc[1:])
    pairs = unordered_pairs(long, metric_order=["z", "y", "x"])
    assert list(zip(pairs["metric_a"], pairs["metric_b"], strict=True)) == [
        ("z", "y"), ("z", "x"), ("y", "x")]


def test_wrap_label_breaks_long_names() -> None:
    assert wrap_label("mmau_cascade_qwen2_audio", width=13) == "mmau_cascade_\nqwen2_audio"
    assert wrap_label("short") == "short"
    assert all(len(line) <= 8 for line in wrap_label("abcdefghijklmnopq", width=8).split("\n"))


def test_heatmap_writes_png_and_svg_with_cell_texts(tmp_path) -> None:
    table = pd.DataFrame({"AKB text-only": [1.0, 2, 3, 4], "MMAU cascade": [1.0, 3, 2, 4],
                          "MMAU audio-grounded": [2.0, 1, np.nan, np.nan]},
                         index=list("abcd"))
    long = pairwise_correlations(table, n_boot=100)
    order = list(table.columns)
    png, svg = correlation_heatmap(
        long, tmp_path / "fig" / "heat", metric_order=order,
        blocks={"text-only": order[:2], "audio-grounded": order[2:]}, title="r")
    assert png.suffix == ".png" and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text(encoding="utf-8")
    assert "<!-- n/a -->" in text  # the undefined cells (n = 2)
    assert "<!-- n=2 -->" in text and "<!-- n=4 -->" in text
    assert "<!-- 0.80 -->" in text and "<!-- 1.00 -->" in text
    again = correlation_heatmap(long, tmp_path / "again", metric_order=order,
                                blocks={"text-only": order[:2], "audio-grounded": order[2:]},
                                title="r")[1]
    assert again.read_text(encoding="utf-8") == text


def test_heatmap_refuses_inconsistent_blocks_and_values(tmp_path, hand: pd.DataFrame) -> None:
    long = pairwise_correlations(hand, n_boot=0)
    with pytest.raises(ValueError, match="in no block: y"):
        correlation_heatmap(long, tmp_path / "h", metric_order=["x", "y"],
                            blocks={"a": ["x"]})
    with pytest.raises(ValueError, match="metric_order's order"):
        correlation_heatmap(long, tmp_path / "h", metric_order=["x", "y"],
                            blocks={"a": ["y"], "b": ["x"]})
    with pytest.raises(ValueError, match="value must be one of"):
        correlation_heatmap(long, tmp_path / "h", metric_order=["x", "y"], blocks=None,
                            value="n")


def test_correlation_table_writes_pairs(tmp_path, hand: pd.DataFrame) -> None:
    table = hand.assign(z=[1.0, np.nan, np.nan, 2.0])
    long = pairwise_correlations(table, n_boot=200)
    paths = correlation_table(long, tmp_path / "corr")
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    markdown = paths[1].read_text(encoding="utf-8")
    assert "0.80 [" in markdown and "0.67" in markdown
    assert "n/a (too few models)" in markdown
    csv = pd.read_csv(paths[0])
    assert list(zip(csv["metric_a"], csv["metric_b"], strict=True)) == [
        ("x", "y"), ("x", "z"), ("y", "z")]
    assert "r [95\\% CI]" in paths[2].read_text(encoding="utf-8")
