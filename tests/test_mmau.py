"""MMAU / MMAR readers, prompts, work items, official-format output and the demo-set builder."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lalm_eval.corpora.mmau_demo import JSON_NAME, build_mmau_demo
from lalm_eval.metrics.choice import choice_accuracy, score_choice
from lalm_eval.suites.knowledge.mmau import (
    EMPTY_CHOICE_NOTE,
    ChoiceFormatError,
    audio_work_items,
    caption_work_items,
    cascade_work_items,
    format_choices,
    load_choice_prompts,
    read_mmar,
    read_mmau,
    render_question,
    write_official_predictions,
)


def _tone(path: Path, seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), rate, subtype="PCM_16")


def _mmau_item(item_id: str, **changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "id": item_id,
        "audio_id": f"./test-mini-audios/{item_id}.wav",
        "question": "Who is talking?",
        "choices": ["Man", "Woman", "Child", "Robot"],
        "answer": "Woman",
        "dataset": "toy",
        "task": "speech",
        "split": "test-mini",
        "category": "Reasoning",
        "sub-category": "Speaker",
        "difficulty": "easy",
    }
    item.update(changes)
    return item


def _write(path: Path, items: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


@pytest.fixture
def mmau_file(tmp_path: Path) -> Path:
    _tone(tmp_path / "test-mini-audios" / "a1.wav")
    _tone(tmp_path / "test-mini-audios" / "a3.wav")
    items = [
        _mmau_item("a1"),
        _mmau_item("a2", task="music", category=["Reasoning", "Information Extraction"],
                   difficulty="hard"),
        _mmau_item("a3", task="sound", **{"sub-category": None}),
    ]
    return _write(tmp_path / "mmau-test-mini.json", items)


# --------------------------------------------------------------------------- readers


def test_read_mmau(mmau_file: Path, tmp_path: Path) -> None:
    table = read_mmau(mmau_file, tmp_path)
    assert list(table["item_id"]) == ["a1", "a2", "a3"]
    assert table.loc[0, "audio_path"] == str(tmp_path / "test-mini-audios" / "a1.wav")
    assert list(table["task"]) == ["speech", "music", "sound"]
    assert table.loc[1, "category"] == "Reasoning; Information Extraction"
    assert list(table["sub_category"]) == ["Speaker", "Speaker", ""]
    assert table.loc[0, "problem"] == ""
    assert table.loc[1, "problem"].startswith("audio file not found")
    assert table.loc[0, "choices"] == ["Man", "Woman", "Child", "Robot"]
    assert table.loc[0, "raw"]["audio_id"] == "./test-mini-audios/a1.wav"
    assert table.loc[0, "audio_key"] != table.loc[2, "audio_key"]
    assert set(table["benchmark"]) == {"mmau"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"answer": "Girl"}, "item 'x': field 'answer': answer 'Girl' is not among"),
        ({"question": ""}, "item 'x': field 'question' must be a non-empty string"),
        ({"choices": "Man, Woman"}, "item 'x': field 'choices' must be a list"),
        ({"task": "noise"}, "item 'x': field 'task' is 'noise'"),
        ({"difficulty": None}, "item 'x': field 'difficulty'"),
        ({"audio_id": "../elsewhere/x.wav"}, "leaves"),
        ({"audio_id": "/abs/x.wav"}, "must be relative"),
    ],
)
def test_read_mmau_errors_name_file_item_and_field(tmp_path: Path, changes: dict,
                                                   message: str) -> None:
    path = _write(tmp_path / "bad.json", [_mmau_item("x", **changes)])
    with pytest.raises(ChoiceFormatError, match="bad.json") as err:
        read_mmau(path, tmp_path)
    assert message in str(err.value)


def test_read_mmau_other_errors_and_lenient_answers(tmp_path: Path) -> None:
    with pytest.raises(ChoiceFormatError, match="duplicate id"):
        read_mmau(_write(tmp_path / "d.json", [_mmau_item("x"), _mmau_item("x")]), tmp_path)
    (tmp_path / "o.json").write_text('{"id": "x"}', encoding="utf-8")
    with pytest.raises(ChoiceFormatError, match="expected a JSON list"):
        read_mmau(tmp_path / "o.json", tmp_path)
    path = _write(tmp_path / "l.json", [_mmau_item("x", answer="Girl")])
    table = read_mmau(path, tmp_path, strict_answers=False)
    assert "answer 'Girl' is not among the choices" in table.loc[0, "problem"]


def _mmar_item(item_id: str, **changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "id": item_id, "audio_path": f"./audio/{item_id}.wav", "question": "Which is louder?",
        "choices": ["the first sound", "the second sound"], "answer": "the second sound",
        "modality": "mix-sound-speech", "category": "Signal Layer",
        "sub-category": "Acoustic Quality Analysis", "language": "en", "source": "toy",
        "url": "", "timestamp": "",
    }
    item.update(changes)
    return item


def test_read_mmar_json_and_jsonl(tmp_path: Path) -> None:
    _tone(tmp_path / "audio" / "m1.wav")
    items = [_mmar_item("m1"), _mmar_item("m2", modality="music", category="Cultural Layer")]
    table = read_mmar(_write(tmp_path / "MMAR-meta.json", items), tmp_path)
    assert list(table["task"]) == ["mix-sound-speech", "music"]
    assert list(table["modality"]) == list(table["task"])
    assert list(table["category"]) == ["Signal Layer", "Cultural Layer"]
    assert list(table["language"]) == ["en", "en"]
    assert table.loc[1, "problem"].startswith("audio file not found")
    jsonl = tmp_path / "MMAR-meta.jsonl"
    jsonl.write_text("\n".join(json.dumps(x) for x in items) + "\n", encoding="utf-8")
    assert list(read_mmar(jsonl, tmp_path)["item_id"]) == ["m1", "m2"]
    bad = _write(tmp_path / "bad.json", [_mmar_item("m3", category="Layer 5")])
    with pytest.raises(ChoiceFormatError, match="item 'm3': field 'category' is 'Layer 5'"):
        read_mmar(bad, tmp_path)


def test_read_mmar_keeps_an_empty_choice_as_the_official_script_does(tmp_path: Path) -> None:
    # MMAR-meta.json (6249700) has 4 items whose last choice is ""; upstream scores them
    items = [_mmar_item("e1", choices=["it stopped", "it kept going", ""],
                        answer="it stopped"),
             _mmar_item("e2", choices=["", "high", "low", " "], answer="low"),
             _mmar_item("ok")]
    table = read_mmar(_write(tmp_path / "MMAR-meta.json", items), tmp_path)
    assert table.loc[0, "choices"] == ["it stopped", "it kept going", ""]  # kept as read
    assert table.loc[0, "note"] == f"{EMPTY_CHOICE_NOTE} (choice 3 of 3)"
    assert table.loc[1, "note"] == f"{EMPTY_CHOICE_NOTE} (choice 1, 4 of 4)"
    assert table.loc[2, "note"] == ""
    # the empty choice adds no token: the right answer matches, a wrong one does not
    per_item = score_choice(table, {"e1": "It stopped.", "e2": "high", "ok": "the second "
                                    "sound"}, "faithful")
    assert list(per_item["correct"]) == [True, False, True]
    # it is not offered in the prompt
    prompt = audio_work_items(table, "{choices}")[1].prompt
    assert prompt == "- high\n- low"
    # fewer than two real choices is still malformed
    bad = _write(tmp_path / "bad.json", [_mmar_item("b", choices=["low", ""], answer="low")])
    with pytest.raises(ChoiceFormatError, match="item 'b': field 'choices'.*at least 2"):
        read_mmar(bad, tmp_path)


def test_read_mmar_answer_not_among_choices_is_an_item_problem(tmp_path: Path) -> None:
    # MMAR-meta.json (6249700) has 6 such items; the official script scores them by tokens
    path = _write(tmp_path / "MMAR-meta.json",
                  [_mmar_item("x", answer="second sound"), _mmar_item("y")])
    table = read_mmar(path, tmp_path)
    assert "answer 'second sound' is not among the choices" in table.loc[0, "problem"]
    assert "not among" not in table.loc[1, "problem"]
    with pytest.raises(ChoiceFormatError, match="item 'x': field 'answer'"):
        read_mmar(path, tmp_path, strict_answers=True)


# --------------------------------------------------------------------------- prompts, items


def test_prompts_and_rendering(tmp_path: Path) -> None:
    prompts = load_choice_prompts()
    assert prompts.name == "choice_demo" and len(prompts.sha256) == 64
    row = {"question": "Who is talking?", "choices": ["Man", "Woman"]}
    assert format_choices(row["choices"]) == "- Man\n- Woman"
    text = render_question(row, "Q: {question}\n{choices}")
    assert text == "Q: Who is talking?\n- Man\n- Woman"
    cascade = render_question(row, prompts.cascade_template, caption=" a woman speaks ")
    assert '"a woman speaks"' in cascade and "- Woman" in cascade
    with pytest.raises(ChoiceFormatError, match="caption"):
        render_question(row, "{caption} {question} {choices}")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: 1\nsource: me\naudio_template: '{question} {choices} "
                   "{label}'\ncascade_template: '{caption} {question} {choices}'\n")
    with pytest.raises(ChoiceFormatError, match="unknown placeholder"):
        load_choice_prompts(str(bad))


def test_audio_and_caption_work_items(mmau_file: Path, tmp_path: Path) -> None:
    table = read_mmau(mmau_file, tmp_path)
    table.loc[2, "audio_key"] = table.loc[0, "audio_key"]  # two questions, one audio file
    table.loc[2, "audio_path"] = table.loc[0, "audio_path"]
    items = audio_work_items(table, "{question}\n{choices}", "sys", prompt_id="p1")
    assert [it.item_id for it in items] == ["a1", "a2", "a3"]  # the problem item is kept
    first = items[0]
    assert (first.request, first.task, first.system, first.prompt_id) == (
        "generate", "mmau", "sys", "p1")
    assert first.prompt == "Who is talking?\n- Man\n- Woman\n- Child\n- Robot"
    assert first.clip_id == table.loc[0, "audio_key"]
    captions = caption_work_items(table)
    assert [c.item_id for c in captions] == [table.loc[0, "audio_key"], table.loc[1, "audio_key"]]
    assert all(c.request == "caption" and c.item_id == c.clip_id for c in captions)


def test_cascade_items_and_failed_captions(mmau_file: Path, tmp_path: Path) -> None:
    table = read_mmau(mmau_file, tmp_path)
    keys = list(table["audio_key"])
    captions = {keys[0]: "A woman says hello.", keys[1]: None}  # keys[2] has no caption
    items, failures = cascade_work_items(table, captions, "{caption}|{question}", "sys")
    assert [it.item_id for it in items] == ["a1"]
    assert items[0].audio_path is None and items[0].prompt == "A woman says hello.|Who is talking?"
    assert [(f.item_id, f.reason.split(" for ")[0]) for f in failures] == [
        ("a2", "captioning failed"), ("a3", "no caption")]
    _, blank = cascade_work_items(table, {k: "  " for k in keys}, "{caption}{question}")
    assert [f.reason for f in blank][0].endswith("is empty")
    # strict scoring counts the failed cascade items wrong, faithful skips them
    predictions = {"a1": "woman", **{f.item_id: None for f in failures}}
    strict = choice_accuracy(score_choice(table, predictions, "strict"))
    faithful = choice_accuracy(score_choice(table, predictions, "faithful"))
    assert strict.loc[0, "accuracy"] == pytest.approx(100 / 3)
    assert faithful.loc[0, "accuracy"] == 100.0 and faithful.loc[0, "n_skipped"] == 2


def test_write_official_predictions(mmau_file: Path, tmp_path: Path) -> None:
    table = read_mmau(mmau_file, tmp_path)
    records = [{"item_id": "a1", "output_text": "Woman", "error": None},
               {"item_id": "a2", "output_text": None, "error": "AudioError: not found"}]
    out = write_official_predictions(table, records, tmp_path / "o" / "mmau.json", "mmau")
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written[0] == {**_mmau_item("a1"), "model_output": "Woman"}
    assert "model_output" not in written[1] and "model_output" not in written[2]
    assert written[1]["category"] == ["Reasoning", "Information Extraction"]  # unchanged
    with pytest.raises(ValueError, match="unknown item"):
        write_official_predictions(table, {"zz": "x"}, tmp_path / "x.json", "mmau")
    with pytest.raises(ValueError, match="belongs to 'mmau'"):
        write_official_predictions(table, {}, tmp_path / "x.json", "mmar")
    _tone(tmp_path / "audio" / "m1.wav")
    mmar = read_mmar(_write(tmp_path / "MMAR-meta.json", [_mmar_item("m1")]), tmp_path)
    path = write_official_predictions(mmar, {"m1": "the second"}, tmp_path / "r.json", "mmar")
    assert json.loads(path.read_text())[0]["answer_prediction"] == "the second"


# --------------------------------------------------------------------------- demo builder


SPEECH = [  # (source_id, speaker, transcript): our own toy sentences
    ("ast_a", "asterisk", "Please listen carefully to the following options."),
    ("ast_b", "asterisk", "Your parcel arrives tomorrow morning before lunch."),
    ("ast_c", "asterisk", "The library closes early on public holidays."),
    ("tts_slt_1", "slt", "Bring two lemons and a bottle of sparkling water."),
    ("tts_slt_2", "slt", "Yesterday the garden looked greener than ever."),
    ("tts_rms_1", "rms", "The mechanic replaced both front tyres quickly."),
    ("tts_awb_1", "awb", "Seven violins played beneath the old bridge."),
    ("tts_kal16_1", "kal16", "Pancakes taste better with honey and berries."),
]
EVENTS = ["dog_bark", "door", "typing", "bus", "cough", "church_bell",
          "piano", "guitar", "drums", "violin"]
SCENES = {"cafe": ["crowd", "cough"], "home": ["typing", "door"], "park": ["dog bark", "bird"],
          "street": ["bus", "car horn"]}


def _fake_corpus(root: Path) -> Path:
    """A tiny corpus in the demo layout: tones for events and speech, 1.5-s scene clips."""
    rows = []
    for i, label in enumerate(EVENTS):
        rel = f"events/{label}_01.wav"
        _tone(root / "sources" / rel, 0.3 + 0.05 * i, 22050, 300.0 + 50 * i)
        rows.append({"event_id": f"{label}_01", "label": label, "path": rel,
                     "origin": "test", "licence": "CC0-1.0"})
    _csv(root / "sources" / "events.csv", rows)
    rows = []
    for i, (source_id, speaker, text) in enumerate(SPEECH):
        rel = f"speech/{source_id}.wav"
        _tone(root / "sources" / rel, 0.6, 8000, 150.0 + 20 * i)
        rows.append({"source_id": source_id, "path": rel, "start_s": "", "end_s": "",
                     "transcript": text, "speaker": speaker, "origin": "test",
                     "licence": "CC0-1.0"})
    _csv(root / "sources" / "speech.csv", rows)
    rows = []
    for i, (scene, labels) in enumerate(SCENES.items()):
        rel = f"clips/bg_{scene}.wav"
        _tone(root / "backgrounds" / rel, 1.5, 16000, 500.0 + 100 * i)
        events = [{"label": lab, "onset": 0.1 * k, "offset": 0.5} for k, lab in
                  enumerate(labels)]
        rows.append({"source_id": f"bg_{scene}", "path": rel, "start_s": "", "end_s": "",
                     "scene": scene, "events": json.dumps(events), "origin": "test",
                     "licence": "CC0-1.0"})
    _csv(root / "backgrounds" / "background.csv", rows)
    return root


def _csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def test_build_mmau_demo(tmp_path: Path) -> None:
    corpus = _fake_corpus(tmp_path / "corpus")
    path = build_mmau_demo(corpus, tmp_path / "a", seed=1)
    assert path == tmp_path / "a" / JSON_NAME
    items = json.loads(path.read_text(encoding="utf-8"))
    assert Counter(it["task"] for it in items) == {"sound": 12, "speech": 12, "music": 4}
    for it in items:
        assert list(it) == ["id", "audio_id", "question", "choices", "answer", "dataset",
                            "task", "split", "category", "sub-category", "difficulty"]
        assert len(it["choices"]) == 4 and len(set(it["choices"])) == 4
        assert it["answer"] in it["choices"]
    for task in ("sound", "speech", "music"):
        positions = Counter(it["choices"].index(it["answer"]) for it in items
                            if it["task"] == task)
        counts = [positions.get(p, 0) for p in range(4)]
        assert max(counts) - min(counts) <= 1, (task, counts)
    music = [it for it in items if it["task"] == "music"]
    assert {it["answer"] for it in music} == {"piano", "guitar", "drums", "violin"}
    voices = {it["answer"] for it in items if it["sub-category"] == "Speaker characteristics"}
    assert voices == {"a man", "a woman"}  # taken round robin over the answers
    sound_answers = {it["answer"] for it in items if it["task"] == "sound"}
    assert not sound_answers & {"piano", "guitar", "drums", "violin"}
    readme = (tmp_path / "a" / "README.md").read_text(encoding="utf-8")
    assert "music / event_identity: 4 of 12 questions" in readme

    table = read_mmau(path, tmp_path / "a")  # the reader takes the demo set as is
    assert set(table["problem"]) == {""} and len(table) == 28
    rate = sf.info(table.loc[0, "audio_path"]).samplerate
    assert rate == 16000

    again = build_mmau_demo(corpus, tmp_path / "b", seed=1)
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")
    other = build_mmau_demo(corpus, tmp_path / "c", seed=2)
    assert other.read_bytes() != again.read_bytes()


def test_build_mmau_demo_refuses_a_broken_corpus(tmp_path: Path) -> None:
    corpus = _fake_corpus(tmp_path / "corpus")
    (corpus / "sources" / "speech.csv").unlink()
    with pytest.raises(FileNotFoundError, match="speech.csv"):
        build_mmau_demo(corpus, tmp_path / "out", seed=0)
