"""Config validation: defaults are filled, and a wrong key or value names the key."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from lalm_eval.config import ConfigError, load_config, validate_config

DEMO = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())


def _error(section: str, value) -> str:
    config = copy.deepcopy(DEMO)
    config[section] = value
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_shipped_configs_validate_and_get_defaults():
    demo = load_config(REPO / "config" / "demo.yaml")
    assert demo["loudness"]["on_bad_source"] == "skip"
    assert demo["mixing"]["margin_s"] == 0.25
    full = load_config(REPO / "config" / "config.yaml")
    assert full["corpora"]["vctk"]["registry_name"] == "vctk"
    assert full["mixing"]["snrs"] == ["+inf", 10, 5, 0, -5, -10, "-inf"]


def test_unknown_key_is_named_with_allowed_keys_and_a_suggestion():
    message = _error("suites", {"sseu": {"kind": "sseu", "speech_corpus": "demo",
                                         "background_corpora": ["demo"], "n_clip": 3}})
    assert "unknown key 'n_clip' in suites.sseu" in message
    assert "n_clips" in message and "did you mean 'n_clips'" in message
    assert "unknown key 'seeds'" in _error("seeds", 1)


def test_bad_values_name_the_key_and_what_is_allowed():
    assert "mixing.snrs[1]: 'loud' is not allowed" in _error("mixing", {"snrs": [0, "loud"]})
    assert "'+inf'" in _error("mixing", {"snrs": [0, "loud"]})
    message = _error("audio", {"sample_rate": 44000})
    assert "audio.sample_rate" in message and "44100" in message
    assert "loudness.speech_lufs" in _error("loudness", {"speech_lufs": 3})
    assert "corpora.demo.kind" in _error("corpora", {"demo": {"kind": "demoo"}})
    assert "wrong type" in _error("seed", "abc")


def test_suite_must_name_a_configured_corpus():
    message = _error("suites", {"sseu": {"kind": "sseu", "speech_corpus": "dmo",
                                         "background_corpora": ["demo"]}})
    assert "suites.sseu names corpus 'dmo'" in message and "did you mean 'demo'" in message


def test_snakemake_stops_before_any_job_with_one_line(tmp_path):
    bad = copy.deepcopy(DEMO)
    bad["mixing"]["peak_ceiling"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--cores", "1",
         "-d", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode != 0
    out = run.stdout + run.stderr
    assert "config error: unknown key 'peak_ceiling' in mixing" in out
    assert "peak_ceiling_dbfs" in out


def test_select_snrs_given_as_text_on_the_command_line_are_numbers():
    from lalm_eval.config import load_config, selected_snrs

    config = load_config(REPO / "config" / "demo.yaml",
                         {"select": {"snrs": ["+inf", "0", "-5"], "models": ["whisper_base"]}})
    assert selected_snrs(config) == ["+inf", 0, -5]
    with pytest.raises(ConfigError, match="select.snrs names SNR 3"):
        load_config(REPO / "config" / "demo.yaml", {"select": {"snrs": ["3"]}})
    with pytest.raises(ConfigError, match="select.models names system 'whisper_big'"):
        load_config(REPO / "config" / "demo.yaml", {"select": {"models": ["whisper_big"]}})


def _with_model(name: str, **changes) -> dict:
    config = copy.deepcopy(DEMO)
    config["models"][name].update(changes)
    return config


def _model_error(name: str, **changes) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(_with_model(name, **changes))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_adapter_is_named_with_a_suggestion():
    message = _model_error("whisper_tiny_en", adapter="faster_whisperr")
    assert message.startswith("config error: models.whisper_tiny_en.adapter 'faster_whisperr' "
                              "is not a known adapter (known: ")
    assert "yamnet" in message and message.endswith("did you mean 'faster_whisper'?")


def test_unknown_option_key_is_named_with_the_allowed_keys_and_a_suggestion():
    message = _model_error("whisper_tiny_en", options={"cpu_thread": 1})
    assert message.startswith("config error: unknown key 'cpu_thread' in "
                              "models.whisper_tiny_en.options (adapter faster_whisper allows: ")
    assert "compute_type" in message and message.endswith("did you mean 'cpu_threads'?")
    # the transformers LALMs share their option set; the judges' backend has its own
    assert "attn_implementation" in _model_error("smollm2", adapter="qwen2_audio",
                                                 options={"dtyp": "auto"})
    assert "did you mean 'engine'" in _model_error("smollm2", adapter="vllm",
                                                   options={"engnie": {}})


def test_adapters_with_free_form_options_are_not_checked():
    from lalm_eval.models.registry import ADAPTERS, allowed_options

    free = sorted(name for name in ADAPTERS if allowed_options(name) is None)
    assert free == ["desta25", "kimi_audio", "ltu_as", "mga_clap", "ms_clap", "salmonn",
                    "step_audio2"]
    validate_config(_with_model("smollm2", adapter="kimi_audio", options={"anything": 1}))


def test_option_check_imports_no_heavy_library():
    """Config validation reads every adapter's option keys without torch & co."""
    code = ("import sys; from lalm_eval.config import load_config; "
            "from lalm_eval.models.registry import ADAPTERS, allowed_options; "
            f"load_config({str(REPO / 'config' / 'config.yaml')!r}); "
            "[allowed_options(a) for a in ADAPTERS]; "
            "heavy = ['torch', 'transformers', 'ctranslate2', 'faster_whisper', 'onnxruntime', "
            "'vllm', 'sentence_transformers', 'msclap', 'librosa']; "
            "print([m for m in heavy if m in sys.modules])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert run.stdout.strip() == "[]"


@pytest.mark.parametrize("changes, expected", [
    ({"adapter": "faster_whisperr"},
     "config error: models.whisper_tiny_en.adapter 'faster_whisperr' is not a known adapter"),
    ({"options": {"beam_size": 1, "cpu_thread": 1}},
     "config error: unknown key 'beam_size' in models.whisper_tiny_en.options"),
])
def test_misspelt_adapter_or_option_stops_validate_config_and_snakemake(tmp_path, changes,
                                                                        expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with_model("whisper_tiny_en", **changes)))
    check = subprocess.run([sys.executable, "-m", "lalm_eval.cli", "validate-config", str(path)],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert check.returncode == 2 and check.stdout == ""
    lines = check.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), check.stderr
    plan = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(path), "--cores", "1",
         "-d", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert plan.returncode != 0
    assert [line for line in (plan.stdout + plan.stderr).splitlines()
            if line.startswith("config error")] == lines
