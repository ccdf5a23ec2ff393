"""Tables, figures and provenance from hand-made SSEU-Bench score rows.

Rows: models ``m_a``/``m_b`` × modes independent/joint × runs 0-2 × the 7 SNR splits, for
ASR/wer, ASC/macc and AT/map (no wer at snr-inf, no macc/map at snr+inf). A value is
``base + 2 * split_index + run`` (so mean = base + 2i + 1 and std over runs = 1.0) with base
10/20/30/40 for m_a/independent, m_a/joint, m_b/independent, m_b/joint; one cell
(m_b/joint, wer, snr0) has runs 10, 12, 17 instead (mean 13.0, std sqrt(13) = 3.6).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lalm_eval.reports import figures, provenance, tables
from lalm_eval.reports.tables import SPLITS

BASE = {("m_a", "independent"): 10, ("m_a", "joint"): 20, ("m_b", "independent"): 30,
        ("m_b", "joint"): 40}
TASKS = {"asr": "wer", "asc": "macc", "at": "map"}
ODD_RUNS = (10.0, 12.0, 17.0)


def _row(model: str, mode: str, split: str, run: int, task: str, metric: str,
         value: float) -> dict:
    return {"suite": "sseu_demo", "model": model, "mode": mode, "split": split, "run": run,
            "task": task, "metric": metric, "value": value, "n_items": 20, "n_failed": 0}


def make_scores(modes: dict[tuple[str, str], int] | None = None) -> pd.DataFrame:
    """Score rows as described in the module docstring (plus format compliance of ASR)."""
    rows = []
    for (model, mode), base in (modes or BASE).items():
        for run in range(3):
            for i, split in enumerate(SPLITS):
                for task, metric in TASKS.items():
                    if (metric, split) in tables.UNDEFINED:
                        continue
                    value = base + 2 * i + run
                    if (model, mode, metric, split) == ("m_b", "joint", "wer", "snr0"):
                        value = ODD_RUNS[run]
                    rows.append(_row(model, mode, split, run, task, metric, value))
                rows.append(_row(model, mode, split, run, "asr", "format_compliance",
                                 100.0 - base / 10 - run))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return make_scores()


@pytest.fixture(scope="module")
def scores_cot() -> pd.DataFrame:
    return pd.concat([make_scores(), make_scores({("m_a", "cot"): 5})], ignore_index=True)


# ------------------------------------------------------------------------------ cells
def test_format_cell() -> None:
    assert tables.format_cell(12.34, 0.44) == "12.3 ± 0.4"
    assert tables.format_cell(12.34, float("nan")) == "12.3"
    assert tables.format_cell(12.34, None, digits=2) == "12.34"
    assert tables.format_cell(float("nan"), 1.0) == "–"
    assert tables.format_cell(-0.01, 0.0) == "0.0 ± 0.0"


def test_split_order_and_labels() -> None:
    shuffled = ["snr0", "snr-inf", "snr+10", "snr-10", "snr+inf", "snr-5", "snr+5"]
    assert tables.order_splits(shuffled) == list(SPLITS)
    labels = [tables.split_label(s) for s in SPLITS]
    assert labels == ["+∞", "10", "5", "0", "−5", "−10", "−∞"]


# ------------------------------------------------------------------------------ table 1
def test_table1_cells_and_averages(scores: pd.DataFrame) -> None:
    t = tables.table1(scores)
    assert list(t.columns) == list(SPLITS) + ["avg"]
    assert t.index.names == ["system", "task", "metric"]
    assert len(t) == 4 * 3
    assert t.index[0] == ("m_a/independent", "asr", "wer")
    assert t.loc[("m_a/independent", "asr", "wer"), "snr+inf"] == "11.0 ± 1.0"
    assert t.loc[("m_a/independent", "asr", "wer"), "snr-10"] == "21.0 ± 1.0"
    # avg over the 6 defined splits; std over runs of the per-run averages (15, 16, 17)
    assert t.loc[("m_a/independent", "asr", "wer"), "avg"] == "16.0 ± 1.0"
    assert t.loc[("m_a/independent", "asc", "macc"), "avg"] == "18.0 ± 1.0"
    # hand-computed std: runs 10, 12, 17 -> mean 13, sample std sqrt(13)
    std = float(np.std(ODD_RUNS, ddof=1))
    assert std == pytest.approx(13 ** 0.5)
    assert t.loc[("m_b/joint", "asr", "wer"), "snr0"] == f"13.0 ± {std:.1f}" == "13.0 ± 3.6"


def test_table1_missing_cells(scores: pd.DataFrame) -> None:
    t = tables.table1(scores)
    for system in ("m_a/independent", "m_b/joint"):
        assert t.loc[(system, "asr", "wer"), "snr-inf"] == "–"
        assert t.loc[(system, "asc", "macc"), "snr+inf"] == "–"
        assert t.loc[(system, "at", "map"), "snr+inf"] == "–"
    # an undefined cell emitted by mistake never becomes a number
    bad = pd.concat([scores, pd.DataFrame([_row("m_a", "independent", "snr-inf", 0, "asr",
                                                "wer", 99.0)])], ignore_index=True)
    assert tables.table1(bad).loc[("m_a/independent", "asr", "wer"), "snr-inf"] == "–"
    notes = " ".join(t.attrs["notes"])
    assert "ASR WER over +∞, 10, 5, 0, −5, −10 dB" in notes
    assert "ASC mACC over 10, 5, 0, −5, −10, −∞ dB" in notes


def test_single_run_has_no_std(scores: pd.DataFrame) -> None:
    t = tables.table1(scores[scores["run"] == 0])
    assert t.loc[("m_a/independent", "asr", "wer"), "snr+inf"] == "10.0"
    assert "±" not in "".join(t.to_numpy().ravel())


def test_table1_best_is_bold(scores: pd.DataFrame, tmp_path: Path) -> None:
    t = tables.table1(scores)
    mask = tables.best_mask(t, t.attrs["bold"])
    # WER: lowest wins (m_a/independent), except snr0 where m_b/joint has 13.0 < 17.0
    assert mask.loc[("m_a/independent", "asr", "wer"), "snr+inf"]
    assert not mask.loc[("m_a/independent", "asr", "wer"), "snr0"]
    assert mask.loc[("m_b/joint", "asr", "wer"), "snr0"]
    # mACC/mAP: highest wins (m_b/joint); a missing cell is never bold
    assert mask.loc[("m_b/joint", "asc", "macc"), "avg"]
    assert not mask.loc[("m_b/joint", "asc", "macc"), "snr+inf"]
    assert mask.loc[("m_b/joint", "at", "map")].sum() == 7

    csv, md, tex = tables.write_table(t, tmp_path / "table_1", "Table 1: WER_% by SNR")
    md_text, tex_text = md.read_text(), tex.read_text()
    assert "**13.0 ± 3.6**" in md_text and "**11.0 ± 1.0**" in md_text
    assert "| 17.0 ± 1.0 |" in re.sub(" +", " ", md_text)  # not the best WER at snr0
    assert r"\textbf{13.0 $\pm$ 3.6}" in tex_text
    assert r"\textbf{11.0 $\pm$ 1.0}" in tex_text
    assert pd.read_csv(csv, index_col=[0, 1, 2]).shape == t.shape


def _strip_escapes(tex: str) -> str:
    return re.sub(r"\\[{}_%$&#]", "", tex)


def test_latex_is_well_formed(scores: pd.DataFrame, tmp_path: Path) -> None:
    t = tables.table1(scores)
    _, _, tex = tables.write_table(t, tmp_path / "t1", "Errors in % for model_x {demo}")
    text = tex.read_text()
    assert text.startswith("% ")
    body = _strip_escapes(text.split("\n", 1)[1])  # without the leading comment line
    depth = 0
    for ch in body:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert "_" not in body and "%" not in body
    assert body.count("$") % 2 == 0
    assert "±" not in text and "∞" not in text and "–" not in text
    assert r"$-\infty$" in text and r"$\pm$" in text
    assert r"m\_a/independent" in text and r"Errors in \% for model\_x \{demo\}" in text
    assert text.count(r"\begin{table}") == text.count(r"\end{table}") == 1
    assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == 1
    assert r"\toprule" in text and r"\midrule" in text and r"\bottomrule" in text
    assert r"\multicolumn{7}{c}{SNR (dB)}" in text
    rows = [line for line in text.splitlines()
            if line.endswith(r"\\") and r"\multicolumn" not in line]
    assert {line.count(" & ") for line in rows} == {3 + 8 - 1}


# ------------------------------------------------------------------- tables 2 and cot
def test_table2_shapes(scores: pd.DataFrame, tmp_path: Path) -> None:
    t = tables.table2_independent_vs_joint(scores)
    assert t.shape == (2 * 3, 3)
    assert list(t.columns) == ["independent", "joint", "joint - independent"]
    assert t.loc[("m_a", "asr", "wer"), "independent"] == "16.0 ± 1.0"
    assert t.loc[("m_a", "asr", "wer"), "joint - independent"] == "+10.0"
    mask = tables.best_mask(t, t.attrs["bold"])
    assert mask.loc[("m_a", "asr", "wer"), "independent"]
    assert mask.loc[("m_a", "asc", "macc"), "joint"]
    assert not mask["joint - independent"].any()
    _, md, tex = tables.write_table(t, tmp_path / "t2", "Table 2")
    assert "Δ joint−independent" in md.read_text()
    assert r"$+$10.0" in tex.read_text()

    per_snr = tables.table2_independent_vs_joint(scores, per_snr=True)
    assert per_snr.shape == (2 * 3 * 2, 8)
    assert per_snr.index.names == ["model", "task", "metric", "mode"]


def test_table_cot_shapes(scores_cot: pd.DataFrame, tmp_path: Path) -> None:
    t = tables.table_cot(scores_cot)
    assert t.shape == (1 * 3 * 3, 8)  # only m_a has cot rows
    assert list(t.index.get_level_values("mode")[:3]) == ["independent", "joint", "cot"]
    assert t.loc[("m_a", "asr", "wer", "cot"), "avg"] == "11.0 ± 1.0"
    mask = tables.best_mask(t, t.attrs["bold"])
    assert mask.loc[("m_a", "asr", "wer", "cot"), "avg"]
    assert mask.loc[("m_a", "asc", "macc", "joint"), "avg"]

    averages = tables.table_cot(scores_cot, per_snr=False)
    assert list(averages.columns) == ["independent", "joint", "cot", "cot - independent",
                                      "cot - joint"]
    assert averages.shape == (3, 5)
    assert averages.loc[("m_a", "asr", "wer"), "cot - joint"] == "-15.0"
    tables.write_table(averages, tmp_path / "cot", "CoT")
    with pytest.raises(ValueError, match="modes"):
        tables.table_cot(make_scores())


def test_format_compliance_table(scores: pd.DataFrame) -> None:
    t = tables.format_compliance_table(scores)
    assert t.index.names == ["model", "mode"] and t.shape == (4, 8)
    assert t.loc[("m_a", "independent"), "snr+inf"] == "98.0 ± 1.0"
    by_task = tables.format_compliance_table(scores, by_task=True)
    assert by_task.index.names == ["model", "mode", "task"]


def test_partial_average_is_flagged_not_bold(scores: pd.DataFrame) -> None:
    gone = (scores["model"] == "m_a") & (scores["mode"] == "independent") & (
        scores["split"] == "snr-10")
    t = tables.table1(scores[~gone])
    assert t.loc[("m_a/independent", "asr", "wer"), "snr-10"] == "–"
    assert t.loc[("m_a/independent", "asr", "wer"), "avg"] == "15.0 ± 1.0 †"
    mask = tables.best_mask(t, t.attrs["bold"])
    assert not mask.loc[("m_a/independent", "asr", "wer"), "avg"]
    assert mask.loc[("m_a/joint", "asr", "wer"), "avg"]
    assert "†" in " ".join(t.attrs["notes"])


def test_bad_inputs(scores: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        tables.table1(pd.concat([scores, scores.iloc[:1]]))
    with pytest.raises(ValueError, match="several suites"):
        tables.table1(pd.concat([scores, scores.assign(suite="other")]))
    with pytest.raises(ValueError, match="lack column"):
        tables.table1(scores.drop(columns=["run"]))


# ------------------------------------------------------------------------------ figures
def test_figures_png_svg_deterministic(scores_cot: pd.DataFrame, tmp_path: Path) -> None:
    first = figures.metric_vs_snr(scores_cot, "wer", tmp_path / "a" / "wer_vs_snr")
    second = figures.metric_vs_snr(scores_cot, "wer", tmp_path / "b" / "wer_vs_snr")
    for png, svg in (first, second):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert svg.read_text().lstrip().startswith("<?xml")
        assert "<dc:date>" not in svg.read_text()
    assert first[1].read_bytes() == second[1].read_bytes()

    bars = figures.cot_comparison(scores_cot, tmp_path / "cot")
    again = figures.cot_comparison(scores_cot, tmp_path / "cot_again")
    assert all(p.exists() for p in bars)
    assert bars[1].read_bytes() == again[1].read_bytes()
    with pytest.raises(ValueError, match="cot"):
        figures.cot_comparison(make_scores(), tmp_path / "none")


def test_mode_styles_are_fixed() -> None:
    assert figures.mode_style("joint") == figures.MODE_STYLES["joint"]
    assert figures.mode_style("other") == figures.mode_style("other")


# --------------------------------------------------------------------------- provenance
def test_results_json(tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.json"
    record = provenance.results_json(
        path, config_slice={"suite": "sseu_demo", "snrs": (10, 0), "where": tmp_path},
        seeds={"mixing": 1, "inference": np.int64(7)}, prompt_hashes={"asr": "ab12"},
        scorer={"name": "sseu", "version": 1, "bad": float("nan")}, extra=None)
    loaded = json.loads(path.read_text())
    assert loaded == record
    for key in ("config", "seeds", "prompt_hashes", "scorer", "extra", "lalm_eval_version",
                "python", "packages", "git", "timestamp_utc"):
        assert key in loaded
    assert list(loaded) == sorted(loaded)
    assert set(loaded["packages"]) == set(provenance.KEY_PACKAGES)
    assert loaded["packages"]["numpy"] == np.__version__
    assert loaded["seeds"]["inference"] == 7 and loaded["scorer"]["bad"] is None
    assert loaded["config"]["snrs"] == [10, 0]
    commit = loaded["git"]["commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)
    assert loaded["git"]["dirty"] in (None, True, False)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", loaded["timestamp_utc"])

    outside = provenance.results_json(tmp_path / "r2.json", config_slice={}, seeds={},
                                      prompt_hashes={}, scorer={}, repo=tmp_path)
    assert outside["git"] == {"commit": None, "dirty": None}


def test_report_of_asr_only_systems_keeps_its_figure_set(scores: pd.DataFrame,
                                                          tmp_path: Path) -> None:
    from lalm_eval.suites.sseu.report import build_sseu_report

    path = tmp_path / "asr_only.csv"
    scores[scores["metric"].isin(["wer", "format_compliance"])].to_csv(path, index=False)
    build_sseu_report([path], tmp_path / "out", suite="sseu_demo", config_slice={}, seeds={},
                      prompt_hashes={}, scorer={})
    figures = tmp_path / "out" / "figures"
    for name in ("asr_wer", "asc_macc", "at_map"):
        assert (figures / f"{name}.png").stat().st_size > 0
    assert "No mACC" in (figures / "asc_macc.svg").read_text()


def test_a_cell_with_failed_items_is_marked_and_counted(scores: pd.DataFrame,
                                                         tmp_path: Path) -> None:
    """An unreadable mixture leaves items unanswered: the cell says so (mark + count)."""
    failed = scores.copy()
    hit = ((failed["model"] == "m_a") & (failed["mode"] == "independent")
           & (failed["split"] == "snr0") & (failed["metric"] == "wer") & (failed["run"] == 1))
    failed.loc[hit, "n_failed"] = 3
    table = tables.table1(failed)
    cell = table.loc[("m_a/independent", "asr", "wer"), "snr0"]
    assert cell.endswith(f" {tables.FAILED}")
    assert table.loc[("m_a/independent", "asr", "wer"), "avg"].endswith(tables.FAILED)
    assert not table.loc[("m_b/independent", "asr", "wer"), "snr0"].endswith(tables.FAILED)
    assert tables.cell_value(cell) == pytest.approx(17.0)  # still a number for bolding
    note = next(n for n in table.attrs["notes"] if n.startswith(tables.FAILED))
    assert "m_a/independent ASR 0 dB: 3 of 60" in note
    _, md, _ = tables.write_table(table, tmp_path / "t1", "Table 1")
    assert "3 of 60" in md.read_text()
    assert not any(c.endswith(tables.FAILED) for c in tables.table1(scores).to_numpy().ravel())
