"""Unit tests of the helpers shared across modules: hashing, mean ± std over runs, the SNR
split-name parser, edge fades, the adapters' audio check and the prompt-file loader."""

from __future__ import annotations

import hashlib
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml

from lalm_eval import audio as audio_module
from lalm_eval.audio import audio_problem, fade_edges
from lalm_eval.hashing import bytes_sha256, file_digests, file_sha256, text_sha256
from lalm_eval.metrics import mean_std as exported_mean_std
from lalm_eval.metrics.stats import mean_std
from lalm_eval.mixing import parse_snr, snr_of_split, snr_split_name, split_snr
from lalm_eval.prompts import (
    PromptError,
    PromptFile,
    check_prompt_data,
    load_prompt_file,
    load_prompt_set,
)
from lalm_eval.reports.tables import order_splits, snr_db, split_label

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "src" / "lalm_eval" / "prompts"

#: sha256 of the packaged prompt files: prompt hashes are recorded in every output and must
#: not change when the loaders change
PACKAGED_PROMPT_SHA256 = {
    "choice_demo": "43e6c823d3aaa1acf11dceb21a1c4819e3c1c74692b1e1518ed15c17f2841a90",
    "jasco_orientation": "c94b084f42c6610d5428a91a133316de0d4f76cef3efb24a28165f3b31b8dac7",
    "mcq_demo": "f59f4dccaaba6253645ab691681a3db6a74ab3f9f88d9be5cc1afdd08534ff69",
    "sseu_demo": "38bb383d959a118ab3d68f6e0d4bb39928d7660999d3b4c5dce592c6617398b7",
}
#: sha256 of the orientation template text (what judgement records carry)
ORIENTATION_TEMPLATE_SHA256 = "385a9c50315de00fb3df83aed4ae14294d4b72b2e18461a8289e3b0b5f4d20d9"


# --------------------------------------------------------------------------- hashing


def test_file_sha256_matches_hashlib_for_any_chunk_size(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000 + b"tail"
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert file_sha256(path) == expected
    assert file_sha256(str(path), chunk=7) == expected  # chunk boundary inside the data
    assert file_sha256(path, chunk=len(data)) == expected
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert file_sha256(empty) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(ValueError, match="chunk"):
        file_sha256(path, chunk=0)


def test_file_digests_reads_once_for_several_algorithms(tmp_path: Path) -> None:
    data = b"lalm-eval" * 12345
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    digests = file_digests(path, ["sha256", "md5"], chunk=1000)
    assert digests == {"sha256": hashlib.sha256(data).hexdigest(),
                       "md5": hashlib.md5(data).hexdigest()}


def test_text_and_bytes_sha256() -> None:
    text = "Grüße, 你好 – {question}\n"
    assert text_sha256(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert bytes_sha256(text.encode("utf-8")) == text_sha256(text)
    assert bytes_sha256(bytearray(b"abc")) == hashlib.sha256(b"abc").hexdigest()
    assert text_sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_old_hash_helpers_are_gone() -> None:
    from lalm_eval import hashing, inference
    from lalm_eval.corpora import debian, demo, download, tables
    from lalm_eval.suites.jasco import data as jasco_data

    for module in (debian, download, tables):
        assert not hasattr(module, "sha256_file"), module.__name__
    assert not hasattr(demo, "_sha256") and not hasattr(jasco_data, "_sha256")
    # the memoised file hash of inference and source preparation is the shared one
    from lalm_eval import source_store

    assert inference.memo_file_sha256 is hashing.memo_file_sha256
    assert source_store.memo_file_sha256 is hashing.memo_file_sha256
    assert not hasattr(inference, "_memo_file_sha256")
    assert not hasattr(source_store, "_file_sha256")


# --------------------------------------------------------------------------- mean ± std


def test_mean_std_sample_std_over_runs() -> None:
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    values = [0.91, 1.07, 1.3, 0.88]
    mean, std = mean_std(values)
    assert mean == pytest.approx(statistics.fmean(values))
    assert std == pytest.approx(statistics.stdev(values))  # ddof=1, not pstdev
    assert mean_std(np.array([[1.0, 3.0], [5.0, 7.0]])) == mean_std([1.0, 3.0, 5.0, 7.0])
    assert mean_std(v for v in (2.0, 4.0)) == mean_std([2.0, 4.0])
    assert exported_mean_std is mean_std


def test_mean_std_leaves_out_runs_without_a_value() -> None:
    mean, std = mean_std([1.0, math.nan, 3.0, None])
    assert mean == 2.0 and std == pytest.approx(math.sqrt(2.0))
    assert mean_std(np.array([1.0, np.nan, 3.0])) == (mean, std)
    single_mean, single_std = mean_std([math.nan, 5.0])
    assert single_mean == 5.0 and math.isnan(single_std)  # one run: no spread, never 0
    for nothing in ([], [math.nan], [None, math.nan]):
        assert all(math.isnan(v) for v in mean_std(nothing))


def test_jasco_table2_uses_the_shared_policy() -> None:
    import pandas as pd

    from lalm_eval.suites.jasco.report import table2

    rows = [
        {"model": "m", "judge": "j1", "mode": "faithful", "run": 0, "best_mean": 1.0},
        {"model": "m", "judge": "j1", "mode": "faithful", "run": 1, "best_mean": 1.5},
        {"model": "m", "judge": "j1", "mode": "faithful", "run": 2, "best_mean": math.nan},
        {"model": "m", "judge": "j2", "mode": "faithful", "run": 0, "best_mean": 0.5},
        {"model": "m", "judge": "j2", "mode": "faithful", "run": 1, "best_mean": math.nan},
        {"model": "m", "judge": "j2", "mode": "faithful", "run": 2, "best_mean": math.nan},
    ]
    frame = pd.DataFrame(rows).assign(n_lost=0, n_unparsed=0)
    table = table2(frame, "faithful")
    assert table.loc["m", "j1"] == f"1.250 ± {statistics.stdev([1.0, 1.5]):.3f}"
    assert table.loc["m", "j2"] == "0.500"  # one run with a value: mean only
    # Avg.: per-run panel means 0.75, 1.5 (run 2 has no value)
    assert table.loc["m", "Avg."] == f"1.125 ± {statistics.stdev([0.75, 1.5]):.3f}"


# --------------------------------------------------------------------------- SNR splits


@pytest.mark.parametrize("snr", ["+inf", 10, 5, 2.5, 0, -5, -10, "-inf"])
def test_canonical_split_names_round_trip(snr: object) -> None:
    value = parse_snr(snr)
    name = snr_split_name(value)
    assert snr_of_split(name) == value == split_snr(name) == snr_db(name)


@pytest.mark.parametrize(("name", "expected"), [
    ("snr+10", 10.0), ("snr10", 10.0), ("snr0", 0.0), ("snr-2.5", -2.5),
    ("snr+inf", math.inf), ("snr-inf", -math.inf),
    # the cases where the two old regexes disagreed: reports/tables.py took a bare
    # "snrinf" for +inf, the mixer rejected it; both accepted a trailing newline
    ("snrinf", None), ("snr+10\n", None), ("snr-inf\n", None),
    ("snr", None), ("snr+", None), ("snr 10", None), (" snr10", None), ("SNR10", None),
    ("snr1e+06", None), ("snr10dB", None), ("test", None), ("snr+-5", None),
])
def test_one_split_name_parser(name: str, expected: float | None) -> None:
    assert snr_of_split(name) == expected
    assert snr_db(name) == expected  # the report tables use the same parser
    if expected is None:
        with pytest.raises(ValueError, match="not an SNR split"):
            split_snr(name)
    else:
        assert split_snr(name) == expected


def test_non_snr_split_names_in_report_tables() -> None:
    assert order_splits(["snrinf", "snr-inf", "snr0", "snr+inf", "snr+5"]) == [
        "snr+inf", "snr+5", "snr0", "snr-inf", "snrinf"]
    assert split_label("snrinf") == "snrinf"
    assert split_label("snr+inf") == "+∞" and split_label("snr-5") == "−5"


# --------------------------------------------------------------------------- fades


def test_fade_edges_linear_ramps_on_a_copy() -> None:
    x = np.ones(10, dtype=np.float32)
    out = fade_edges(x, 4)
    assert np.array_equal(x, np.ones(10, dtype=np.float32))  # input untouched
    assert out.dtype == np.float32
    ramp = np.array([0.0, 0.25, 0.5, 0.75], dtype=np.float32)
    assert np.array_equal(out[:4], ramp)
    assert np.array_equal(out[-4:], ramp[::-1])
    assert np.array_equal(out[4:6], [1.0, 1.0])


def test_fade_edges_caps_and_skips() -> None:
    x = np.arange(1.0, 6.0)
    capped = fade_edges(x, 100)  # n capped at len // 2 == 2
    assert np.allclose(capped, [0.0, 1.0, 3.0, 2.0, 0.0])
    for n in (0, -3):
        same = fade_edges(x, n)
        assert same is not x and np.array_equal(same, x)
    assert np.array_equal(fade_edges(np.array([0.7]), 5), [0.7])


def test_demo_builders_share_fade_edges() -> None:
    from lalm_eval.corpora import demo, jasco_demo

    assert not hasattr(demo, "_fade") and not hasattr(jasco_demo, "_fade")
    assert demo.fade_edges is fade_edges and jasco_demo.fade_edges is fade_edges


# --------------------------------------------------------------------------- audio check


def test_audio_problem_reasons() -> None:
    good = np.zeros(1600, dtype=np.float32)
    assert audio_problem(good) is None
    assert audio_problem(good, 16000, 0.1) is None
    assert audio_problem(None) == "request has no audio"
    assert "mono (1-D)" in audio_problem(np.zeros((2, 100), np.float32))
    assert audio_problem(np.zeros(0, np.float32)) == "audio is empty"
    assert audio_problem(np.zeros(100, np.int16)) == "audio must be float, got int16"
    assert "too short (0.100 s < 0.5 s)" in audio_problem(good, 16000, 0.5)
    bad = good.copy()
    bad[3] = np.nan
    assert audio_problem(bad) == "audio contains NaN or infinite samples"
    with pytest.raises(ValueError, match="sample_rate"):
        audio_problem(good, None, 1.0)


def test_adapters_share_audio_problem() -> None:
    from lalm_eval.models import cascade, clap, hf_common, hf_whisper, sources, whisper_ct2, yamnet

    assert not hasattr(sources, "audio_problem")
    for module in (cascade, clap, hf_common, hf_whisper, whisper_ct2, yamnet):
        assert module.audio_problem is audio_module.audio_problem, module.__name__


# --------------------------------------------------------------------------- prompt files


@pytest.mark.parametrize("name", sorted(PACKAGED_PROMPT_SHA256))
def test_packaged_prompt_files_and_hashes_unchanged(name: str) -> None:
    path = PROMPTS_DIR / f"{name}.yaml"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PACKAGED_PROMPT_SHA256[name]
    loaded = load_prompt_file(name)
    assert isinstance(loaded, PromptFile)
    assert loaded.path.name == f"{name}.yaml" and loaded.sha256 == PACKAGED_PROMPT_SHA256[name]
    assert loaded.data == yaml.safe_load(path.read_text(encoding="utf-8"))
    assert load_prompt_file(str(path)).sha256 == loaded.sha256  # a path works too


def test_prompt_wrappers_keep_types_and_hashes() -> None:
    from lalm_eval.suites.jasco.data import load_orientation_prompt
    from lalm_eval.suites.knowledge.akb import McqPrompt, load_mcq_prompt
    from lalm_eval.suites.knowledge.mmau import ChoicePrompts, load_choice_prompts

    mcq = load_mcq_prompt()
    assert isinstance(mcq, McqPrompt) and mcq.sha256 == PACKAGED_PROMPT_SHA256["mcq_demo"]
    assert mcq.template.startswith("Question: {question}") and not mcq.template.endswith("\n")
    choice = load_choice_prompts()
    assert isinstance(choice, ChoicePrompts)
    assert choice.sha256 == PACKAGED_PROMPT_SHA256["choice_demo"]
    assert "{caption}" in choice.cascade_template and "{caption}" not in choice.audio_template
    assert load_prompt_set("sseu_demo").sha256 == PACKAGED_PROMPT_SHA256["sseu_demo"]
    template, digest = load_orientation_prompt()
    raw = yaml.safe_load((PROMPTS_DIR / "jasco_orientation.yaml").read_text(encoding="utf-8"))
    assert template == raw["template"] and "{explanation}" in template
    assert digest == hashlib.sha256(template.encode()).hexdigest() == ORIENTATION_TEMPLATE_SHA256


def _write(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_prompt_file_required_keys_name_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nversion: '1'\nsource: ''\ntemplate: '{q}'\n")
    with pytest.raises(PromptError, match=r"p\.yaml: my prompt lacks 'source'"):
        load_prompt_file(str(path), required=("name", "version", "source"), what="my prompt")
    with pytest.raises(PromptError, match=r"p\.yaml: prompt file lacks 'system'"):
        load_prompt_file(str(path), required=("system",))
    loaded = load_prompt_file(str(path), required=("name", "version"))
    assert loaded.data["template"] == "{q}"
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_prompt_file_template_fields(tmp_path: Path) -> None:
    path = _write(tmp_path, "template: 'Q: {question} {choices} {{literal}}'\n")
    data = load_prompt_file(str(path), templates={"template": ("question", "choices")}).data
    assert data["template"].startswith("Q: ")
    with pytest.raises(PromptError) as err:
        load_prompt_file(str(path), templates={"template": ("question", "options")})
    message = str(err.value)
    assert message.startswith(f"{path}: template must use exactly {{question}} and {{options}}")
    assert "unknown placeholder(s) ['choices']" in message and "missing ['options']" in message
    broken = _write(tmp_path, "template: 'Q: {question'\n", "broken.yaml")
    with pytest.raises(PromptError, match=r"broken\.yaml: template is not a valid format"):
        load_prompt_file(str(broken), templates={"template": ("question",)})
    with pytest.raises(PromptError, match="lacks 'other'"):
        load_prompt_file(str(path), templates={"other": ("question",)})


def test_prompt_file_literal_markers_allow_other_braces(tmp_path: Path) -> None:
    path = _write(tmp_path, 'template: \'Explain "{explanation}" as {"label": ...}\'\n')
    data = load_prompt_file(str(path), markers={"template": ("explanation",)}).data
    assert "{explanation}" in data["template"]
    with pytest.raises(PromptError, match=r"p\.yaml: template lacks placeholder\(s\) \{why\}"):
        load_prompt_file(str(path), markers={"template": ("why",)})


def test_prompt_file_shape_errors_and_error_class(tmp_path: Path) -> None:
    class MyError(ValueError):
        pass

    listed = _write(tmp_path, "- a\n- b\n", "list.yaml")
    with pytest.raises(MyError, match=r"list\.yaml: a prompt file must be a YAML mapping"):
        load_prompt_file(str(listed), error=MyError)
    broken = _write(tmp_path, "key: [unclosed\n", "bad.yaml")
    with pytest.raises(PromptError, match=r"bad\.yaml: cannot be parsed as YAML"):
        load_prompt_file(str(broken))
    with pytest.raises(PromptError, match="no packaged prompt set 'no_such_prompts'"):
        load_prompt_file("no_such_prompts")
    with pytest.raises(PromptError, match="does not exist"):
        load_prompt_file(str(tmp_path / "absent.yaml"))
    assert check_prompt_data("", "inline") == {}


def test_wrapper_errors_keep_their_classes(tmp_path: Path) -> None:
    from lalm_eval.suites.knowledge.akb import load_mcq_prompt
    from lalm_eval.suites.knowledge.mmau import ChoiceFormatError, load_choice_prompts

    bad = _write(tmp_path, "name: x\nversion: 1\nsource: me\naudio_template: '{question}'\n"
                 "cascade_template: '{caption} {question} {choices}'\n")
    with pytest.raises(ChoiceFormatError, match=r"audio_template must use exactly .*missing "
                                                 r"\['choices'\]"):
        load_choice_prompts(str(bad))
    no_caption = _write(tmp_path, "name: x\nversion: 1\nsource: me\naudio_template: "
                        "'{question} {choices}'\ncascade_template: '{question} {choices}'\n",
                        "nc.yaml")
    with pytest.raises(ChoiceFormatError, match=r"cascade_template .*missing \['caption'\]"):
        load_choice_prompts(str(no_caption))
    with pytest.raises(PromptError, match="MCQ prompt lacks 'template'"):
        load_mcq_prompt(str(_write(tmp_path, "name: x\nversion: 1\nsource: me\n", "m.yaml")))
