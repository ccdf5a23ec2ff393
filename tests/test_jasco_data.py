"""JASCO data preparation: v0.csv reading, README extraction, 640-row expansion, work items."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lalm_eval.inference import WorkItem
from lalm_eval.suites.jasco import data as jasco

# Facts read from BenoitWang/What_Are_They_Doing (dataset/v0/v0.csv, evaluation/example.csv).
UPSTREAM_V0_HEADER = (
    "audio_id,Audio,Speech,Audio-Only Answer,Speech-Only Answer,Correct Answer,"
    "Correct Answer Keyword"
)
UPSTREAM_EXAMPLE_HEADER = (
    "id,audio,n_frames,audio_sound,spoken_text,prompt,with_speech,audio_only_target,"
    "speech_only_target,target_keywords,tgt_text,allm_output"
)

# Our own clip descriptions, in the upstream CSV layout (quoted fields with commas).
V0_ROWS = (
    '1,"Typewriter keys, a bell",Only one more page to go.,They are typing.,'
    "They are finishing a document.,They are likely finishing a manuscript on a typewriter.,"
    "manuscript\n"
    '2,Cash register,"Would you like a bag,   too?",They are in a shop.,'
    'They are offering a bag.,They are likely paying at a checkout.,"checkout,pay"\n'
    "3,Snow crunching,Put your hat on!,They are walking outside.,"
    "They are getting dressed.,They are likely going for a walk in winter.,winter\n"
)

OUR_INSTRUCTIONS = [
    f"Test instruction {k}: using the sound and the words, say what is going on?"
    for k in range(1, 9)
]


def make_readme(instructions: list[str]) -> str:
    """A README in the upstream layout: instructions in pairs, then a judge template block."""
    pairs = []
    for i in range(0, len(instructions), 2):
        pairs.append("\n".join(instructions[i : i + 2]))
    block = "\n\n".join(pairs)
    return (
        "# Test benchmark\n\nIntro text.\n\n## The dataset\n1. A numbered feature.\n\n"
        "## Inference with ALLMs\nEach clip gets 8 instructions:\n"
        f"```\n{block}\n```\n\nSome links.\n\n"
        "## Evaluation\nA judge is asked:\n```\n"
        "[Audio Sound]\n{audio_sound}\n\n[Spoken Text]\n{spoken_text}\n\n[Question]\n{question}\n\n"
        "[A]\n{audio_only_target}\n\n[S]\n{speech_only_target}\n\n[Ref]\n{reference}\n\n"
        "[Keys]\n{keywords}\n\n[Pred]\n{prediction}\n\nRate it.\n```\n\n"
        "Example outputs:\n```\n##### Rating 0 #####\nRating: 0\n```\n\n## Results\n"
    )


def write_wav(path: Path, seconds: float, rate: int) -> int:
    frames = int(seconds * rate)
    sf.write(path, np.zeros(frames, dtype=np.float32), rate, subtype="PCM_16")
    return frames


@pytest.fixture()
def corpus(tmp_path: Path) -> dict[str, object]:
    v0 = tmp_path / "v0.csv"
    v0.write_text(UPSTREAM_V0_HEADER + "\n" + V0_ROWS, encoding="utf-8")
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    frames = {
        "1": write_wav(audio_dir / "1.wav", 0.5, 16000),
        "2": write_wav(audio_dir / "2.wav", 0.25, 48000),  # like upstream 47.wav
    }  # 3.wav deliberately absent
    return {"v0": v0, "audio_dir": audio_dir, "frames": frames}


def test_read_v0_csv(corpus: dict[str, object]) -> None:
    table = jasco.read_v0_csv(corpus["v0"])
    assert list(table.columns) == UPSTREAM_V0_HEADER.split(",")
    assert table["audio_id"].tolist() == ["1", "2", "3"]
    assert table.loc[0, "Audio"] == "Typewriter keys, a bell"
    assert table.loc[1, "Speech"] == "Would you like a bag, too?"  # whitespace collapsed
    assert table.loc[1, "Correct Answer Keyword"] == "checkout,pay"


def test_read_v0_csv_names_missing_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("audio_id,Audio,Speech,Correct Answer\n1,a,b,c\n", encoding="utf-8")
    with pytest.raises(jasco.JascoFormatError) as err:
        jasco.read_v0_csv(bad)
    message = str(err.value)
    assert "bad.csv" in message
    for name in ("Audio-Only Answer", "Speech-Only Answer", "Correct Answer Keyword"):
        assert name in message
    assert "'Correct Answer'" not in message


def test_extract_instructions_and_template() -> None:
    readme = make_readme(OUR_INSTRUCTIONS)
    instructions, digest = jasco.extract_instructions(readme)
    assert instructions == OUR_INSTRUCTIONS
    assert digest == hashlib.sha256("\n".join(OUR_INSTRUCTIONS).encode()).hexdigest()
    template, tdigest = jasco.extract_judge_template(readme)
    assert template.startswith("[Audio Sound]\n{audio_sound}\n")
    assert template.endswith("Rate it.")
    assert "Rating: 0" not in template  # later example block not taken
    assert tdigest == hashlib.sha256(template.encode()).hexdigest()


def test_extract_instructions_errors_on_seven() -> None:
    with pytest.raises(jasco.JascoFormatError, match="expected 8 instructions, found 7"):
        jasco.extract_instructions(make_readme(OUR_INSTRUCTIONS[:7]))


def test_extract_judge_template_requires_placeholders() -> None:
    readme = make_readme(OUR_INSTRUCTIONS).replace("{prediction}", "PRED")
    with pytest.raises(jasco.JascoFormatError, match="prediction"):
        jasco.extract_judge_template(readme)


def test_expand_items_shape(corpus: dict[str, object], tmp_path: Path) -> None:
    v0 = jasco.read_v0_csv(corpus["v0"])
    audio_dir = corpus["audio_dir"]
    items = jasco.expand_items(v0, OUR_INSTRUCTIONS, audio_dir)
    assert len(items) == 3 * 8
    assert ",".join(items.columns) == UPSTREAM_EXAMPLE_HEADER
    # upstream: id is the clip's audio_id, repeated for its 8 prompts, clip-major order
    assert items["id"].tolist() == [i for i in ("1", "2", "3") for _ in range(8)]
    assert items["prompt"].tolist() == OUR_INSTRUCTIONS * 3
    assert items["audio"].tolist()[::8] == [str(audio_dir / f"{i}.wav") for i in "123"]
    frames = corpus["frames"]
    assert items.loc[0, "n_frames"] == frames["1"] == 8000  # 16 kHz
    assert items.loc[8, "n_frames"] == frames["2"] == 12000  # 48 kHz, native frames
    assert math.isnan(items.loc[16, "n_frames"])  # missing wav
    assert items["with_speech"].tolist() == [True] * 24
    assert items["allm_output"].tolist() == [""] * 24
    first = items.iloc[8]
    assert first["audio_sound"] == "Cash register"
    assert first["spoken_text"] == "Would you like a bag, too?"
    assert first["audio_only_target"] == "They are in a shop."
    assert first["speech_only_target"] == "They are offering a bag."
    assert first["target_keywords"] == "checkout,pay"
    assert first["tgt_text"] == "They are likely paying at a checkout."
    # round trip through CSV keeps the upstream header
    out = tmp_path / "items.csv"
    items.to_csv(out, index=False)
    assert out.read_text(encoding="utf-8").splitlines()[0] == UPSTREAM_EXAMPLE_HEADER
    assert len(pd.read_csv(out)) == 24


def test_items_to_work(corpus: dict[str, object]) -> None:
    v0 = jasco.read_v0_csv(corpus["v0"])
    items = jasco.expand_items(v0, OUR_INSTRUCTIONS, corpus["audio_dir"])
    work = jasco.items_to_work(items)
    assert len(work) == len(items)
    assert all(isinstance(w, WorkItem) for w in work)
    assert {w.request for w in work} == {"generate"}
    assert {w.task for w in work} == {"jasco"}
    assert len({w.item_id for w in work}) == len(work)
    assert [w.prompt_id for w in work[:8]] == [f"jasco-{k}" for k in range(1, 9)]
    assert work[9].clip_id == "2"
    assert work[9].prompt_id == "jasco-2"
    assert work[9].prompt == OUR_INSTRUCTIONS[1]
    assert work[9].audio_path == str(corpus["audio_dir"] / "2.wav")
