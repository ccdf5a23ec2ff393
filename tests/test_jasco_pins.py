"""JASCO pins and judge inputs: the config pins the README texts of the release at e728f83,
the pin recipe (what the extractor hashes) holds for a README in the upstream layout, and a
judge job depends on the orientation prompt exactly when it makes the second call."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from lalm_eval.config import load_config
from lalm_eval.prompts import prompt_set_path
from lalm_eval.suites import Plan, build_suite
from lalm_eval.suites.jasco import data as jasco

# sha256 of the 8 instructions and of the judge template of the README at e728f83, as
# lalm_eval.suites.jasco.data extracts them (the check against the real file: docs/judging.md)
INSTRUCTIONS_SHA256 = "ead066df750b7afddc6abcf5c93e12dce71fbd507092c103ca93db340ea6a136"
JUDGE_TEMPLATE_SHA256 = "ab16f4cda842252c01a286848d5e3811e02b35c7e62b7794c4c53cbd46b34f88"

# Our own wording, in the upstream layout: the instructions in four pairs (blank lines
# between pairs, stray spaces), the judge template in the first block of the evaluation
# section (a line ending in a space, a typographic apostrophe, no newline at its end) and a
# later block whose lines start with '#'.
OUR_INSTRUCTIONS = [f"Listen, read along   and tell me what happens, take {k}? " for k in
                    range(1, 9)]
OUR_TEMPLATE_LINES = [
    "[Audio Sound]", "{audio_sound}", "", "[Spoken Text]", "{spoken_text}", "",
    "[Question]", "{question}", "", "[Audio-Oriented Prediction]", "{audio_only_target}", "",
    "[Speech-Oriented Prediction]", "{speech_only_target}", "", "[Reference Answer]",
    "{reference}", "", "[Reference Answer Key Words]", "{keywords}", "", "[Model Prediction]",
    "{prediction}", "", "Give a grade from 0 to 2 and say which modality it rests on. ",
    "Answer with the grade’s line first.", "Orientation: A/S/Both/Neither",
]


def _readme() -> str:
    pairs = ["\n".join(OUR_INSTRUCTIONS[i:i + 2]) for i in range(0, 8, 2)]
    return ("# A benchmark\n\nAbout it.\n\n## The dataset\nClips.\n\n"
            "## Inference with ALLMs\nEvery clip is asked:\n\n```\n" + "\n\n".join(pairs)
            + "\n```\n\n## Evaluation\nThe judge reads:\n\n```\n"
            + "\n".join(OUR_TEMPLATE_LINES) + "\n```\n\nExamples:\n```\n"
            + "###### Rating 0 ######\nRating: 0\n```\n\n## Results\n")


def _between_fences(text: str, heading: str) -> list[str]:
    """The lines of the first fenced block after ``heading`` (the docs' sed recipe)."""
    lines = text.split("\n")
    start = lines.index(heading)
    opening = next(i for i in range(start, len(lines)) if lines[i] == "```")
    closing = lines.index("```", opening + 1)
    return lines[opening + 1:closing]


def test_config_pins_the_release_readme_texts() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    corpus = config["corpora"]["what_are_they_doing"]
    assert corpus["instructions_sha256"] == INSTRUCTIONS_SHA256
    assert corpus["judge_template_sha256"] == JUDGE_TEMPLATE_SHA256
    docs = (REPO / "docs" / "judging.md").read_text(encoding="utf-8")
    assert INSTRUCTIONS_SHA256 in docs and JUDGE_TEMPLATE_SHA256 in docs
    # the pins reach jasco_items through the suite's corpus entry
    full = load_config(REPO / "config" / "config.yaml")
    suite = build_suite("jasco", full["suites"]["jasco"], Plan(full, "res", "out"))
    assert suite.corpus["instructions_sha256"] == INSTRUCTIONS_SHA256
    assert suite.corpus["judge_template_sha256"] == JUDGE_TEMPLATE_SHA256


def test_pin_recipe_on_a_readme_in_the_upstream_layout(tmp_path: Path) -> None:
    text = _readme()
    # instructions: the block's non-blank lines, spaces collapsed, joined by newlines
    block = _between_fences(text, "## Inference with ALLMs")
    expected = [" ".join(line.split()) for line in block if line.strip()]
    instructions, digest = jasco.extract_instructions(text)
    assert instructions == expected and len(expected) == 8
    assert digest == hashlib.sha256("\n".join(expected).encode("utf-8")).hexdigest()
    # judge template: the block's lines joined by newlines, unchanged (trailing space kept,
    # no final newline)
    template, template_digest = jasco.extract_judge_template(text)
    assert template == "\n".join(OUR_TEMPLATE_LINES) == "\n".join(
        _between_fences(text, "## Evaluation"))
    assert template_digest == hashlib.sha256(template.encode("utf-8")).hexdigest()
    # a pin equal to the recipe passes; the release's pins refuse this README, naming both
    root = tmp_path / "release"
    (root / "dataset" / "v0").mkdir(parents=True)
    (root / "README.md").write_text(text, encoding="utf-8")
    (root / "dataset" / "v0" / "v0.csv").write_text(
        "audio_id,Audio,Speech,Audio-Only Answer,Speech-Only Answer,Correct Answer,"
        "Correct Answer Keyword\n1,Rain,Take the umbrella.,It rains.,They leave.,"
        "They are leaving in the rain.,rain\n", encoding="utf-8")
    _, protocol = jasco.prepare_items(root, instructions_sha256=digest,
                                      judge_template_sha256=template_digest)
    assert protocol["instructions_pinned"] and protocol["judge_template_pinned"]
    with pytest.raises(jasco.JascoFormatError,
                       match=f"instructions sha256 {digest} differs from the pinned "
                             f"{INSTRUCTIONS_SHA256}"):
        jasco.prepare_items(root, instructions_sha256=INSTRUCTIONS_SHA256)
    with pytest.raises(jasco.JascoFormatError,
                       match=f"judge template sha256 {template_digest} differs from the "
                             f"pinned {JUDGE_TEMPLATE_SHA256}"):
        jasco.prepare_items(root, judge_template_sha256=JUDGE_TEMPLATE_SHA256)


@pytest.mark.parametrize("orientation_call", [True, False])
def test_judge_inputs_hold_the_orientation_prompt_when_the_second_call_is_on(
        orientation_call: bool) -> None:
    config = load_config(REPO / "config" / "demo.yaml")
    settings = {**config["suites"]["jasco"], "orientation_call": orientation_call}
    suite = build_suite("jasco", settings, Plan(config, "res", "out"))
    inputs = suite.judge_inputs("cascade_smollm2", 0)
    expected = {"item_table": "out/jasco/items.csv", "protocol": "out/jasco/protocol.json",
                "answers": "out/jasco/predictions/cascade_smollm2/open/all/run0.jsonl"}
    if orientation_call:
        expected["orientation_prompt"] = str(prompt_set_path("jasco_orientation"))
        assert Path(expected["orientation_prompt"]).name == "jasco_orientation.yaml"
        assert Path(expected["orientation_prompt"]).is_file()
    assert inputs == expected


def _judge_rule_inputs(work: Path, config: Path) -> list[str]:
    """The input line of the demo judge job in a dry run of the real workflow."""
    target = "results/demo/jasco/judgements/qwen05_judge/cascade_smollm2/run0.jsonl"
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
         "--configfile", str(config), "-n", "--cores", "1", target],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    job = re.search(r"rule judge_qwen05_judge:\n\s+input: (.*)\n", run.stdout + run.stderr)
    assert job, (run.stdout + run.stderr)[-2000:]
    return job.group(1).split(", ")


@pytest.mark.slow
def test_judge_rule_depends_on_the_orientation_prompt_when_it_is_used(tmp_path: Path) -> None:
    prompt = str(prompt_set_path("jasco_orientation"))
    on = _judge_rule_inputs(tmp_path / "on", REPO / "config" / "demo.yaml")
    assert prompt in on
    assert "results/demo/jasco/predictions/cascade_smollm2/open/all/run0.jsonl" in on
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text(encoding="utf-8"))
    config["suites"]["jasco"]["orientation_call"] = False
    off_config = tmp_path / "off.yaml"
    off_config.write_text(yaml.safe_dump(config), encoding="utf-8")
    off = _judge_rule_inputs(tmp_path / "off", off_config)
    assert prompt not in off and len(off) == len(on) - 1
