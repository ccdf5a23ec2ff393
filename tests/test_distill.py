"""The audio-grounded arm's stage 1: the distillation clips built from a tiny demo-shaped
corpus, the stage-1 requests (text only, seeded instructions), stage-1 records cached and
resumed through the inference engine, and the trainer rows with failures recorded; the
question-only baseline's requests carry no audio and no caption; DeSTA's answer prefix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
from test_xares_demo import make_corpus

from lalm_eval.corpora.distill_demo import build_distill_demo, read_distill_table, seed_line
from lalm_eval.inference import run_job
from lalm_eval.models.base import AudioModel, ModelEntry, Request, Response
from lalm_eval.suites.knowledge import distill
from lalm_eval.suites.knowledge import jobs as knowledge
from lalm_eval.suites.knowledge.mmau import (
    ChoiceFormatError,
    load_choice_prompts,
    question_work_items,
    strip_answer_prefix,
)
from lalm_eval.training.data import read_training_set

LINE = re.compile(r"^\[\d\d:\d\d-\d\d:\d\d\]( [^()]+)?( \(\w[\w ]*: [^()]+\))?$")
SMALL = {"counts": {"speech_scene": 6, "speech": 3, "scene": 4, "event": 5},
         "heldout_share": 0.3}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "demo")


def _build(corpus: Path, out: Path, seed: int = 5, **kwargs) -> Path:
    return build_distill_demo(corpus / "sources", corpus / "backgrounds" / "background.csv",
                              out, seed, kwargs.pop("settings", SMALL), **kwargs)


def test_clips_meet_the_contract(corpus: Path, tmp_path: Path) -> None:
    records = read_distill_table(_build(corpus, tmp_path / "d"))
    kinds = {(r["kind"], r["split"]) for r in records}
    assert ("speech_scene", "train") in kinds and ("speech_scene", "heldout") in kinds
    assert len(records) == sum(SMALL["counts"].values())
    sides: dict[str, set[str]] = {"train": set(), "heldout": set()}
    for r in records:
        assert Path(r["audio"]).is_file() and r["duration_s"] > 0
        for line in r["seed_description"].splitlines():
            assert LINE.match(line), line
        sides[r["split"]].update(r["sources"])
        if r["kind"] in ("speech", "speech_scene"):
            assert r["transcript"] and r["transcript"] in r["seed_description"]
            assert "Gender: " in r["seed_description"]
        else:
            assert r["transcript"] == ""
        if r["kind"] == "speech_scene":
            assert "Scene: " in r["seed_description"] and " dB" in r["seed_description"]
    assert not sides["train"] & sides["heldout"], "a recording on both sides"
    readme = (tmp_path / "d" / "README.md").read_text()
    assert "| speech_scene |" in readme and "Share-alike" in readme


def test_exclusions_and_determinism(corpus: Path, tmp_path: Path) -> None:
    first = _build(corpus, tmp_path / "a")
    again = _build(corpus, tmp_path / "b")
    assert first.read_text().replace(str(tmp_path / "a"), "") == \
        again.read_text().replace(str(tmp_path / "b"), "")
    used = {s for r in read_distill_table(first) for s in r["sources"]}
    banned = sorted(used)[:4]
    excluded = read_distill_table(_build(corpus, tmp_path / "c", exclude=[*banned, "nope"]))
    assert not {s for r in excluded for s in r["sources"]} & set(banned)
    readme = (tmp_path / "c" / "README.md").read_text()
    assert "nope" in readme and "not in the corpus" in readme


def test_bad_settings_are_named(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown setting 'clip_len'"):
        _build(corpus, tmp_path / "x", settings={"clip_len": 3})
    with pytest.raises(ValueError, match="unknown kind"):
        _build(corpus, tmp_path / "x", settings={"counts": {"music": 3}})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "audio": "a.wav", "seed_description": "x",
                               "split": "valid"}) + "\n")
    with pytest.raises(ValueError, match="split must be train or heldout"):
        read_distill_table(bad)


def test_seed_line_shape() -> None:
    assert seed_line(0.1, 3.4, "Hello there.", {"Gender": "Female", "Duration": "3s"}) == \
        "[00:00-00:03] Hello there. (Gender: Female, Duration: 3s)"
    assert seed_line(61, 75, "", {"Sound": "door"}) == "[01:01-01:15] (Sound: door)"


# --------------------------------------------------------------------------- stage 1


def test_stage1_requests_are_text_only_and_seeded(corpus: Path, tmp_path: Path) -> None:
    prompts = distill.load_distill_prompts()
    records = read_distill_table(_build(corpus, tmp_path / "d"))
    items = distill.distill_work_items(records, prompts, seed=1)
    assert [i.item_id for i in items] == [r["id"] for r in records]
    for item, record in zip(items, records, strict=True):
        assert item.audio_path is None and item.request == "generate"
        assert record["seed_description"] in item.prompt
        assert distill.instruction_for(record, prompts, 1) in item.prompt
        assert item.system == prompts.system
    again = distill.distill_work_items(records, prompts, seed=1)
    assert [i.prompt for i in again] == [i.prompt for i in items]
    picked = {distill.instruction_for(r, prompts, 1) for r in records}
    assert len(picked) > 1, "one instruction for every clip"
    own = {**records[0], "prompt": "Count the speakers."}
    assert distill.instruction_for(own, prompts, 1) == "Count the speakers."


def test_distill_prompt_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nversion: '1'\nsource: test\ntemplate: '{seed_description}'\n"
                    "instructions: [Describe it.]\n")
    with pytest.raises(distill.DistillError, match="must use exactly"):
        distill.load_distill_prompts(str(path))
    path.write_text("name: p\nversion: '1'\nsource: test\n"
                    "template: '{seed_description} {instruction}'\ninstructions: [1, '']\n")
    with pytest.raises(distill.DistillError, match="non-empty strings"):
        distill.load_distill_prompts(str(path))


class _Scripted(AudioModel):
    """A text model that answers from its prompt and remembers every request."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"generate"})
    default_sample_rate = None

    def __init__(self) -> None:
        super().__init__(ModelEntry.from_config("scripted", {"adapter": "hf_causal_lm",
                                                             "source": "-"}))
        self.requests: list[Request] = []

    def _load(self) -> None:
        pass

    def predict(self, requests: list[Request]) -> list[Response]:
        self.requests += requests
        out = []
        for r in requests:
            if "Sound event: dog bark" in (r.prompt or ""):
                out.append(Response.failed("RuntimeError: scripted failure"))
            elif "Sound event: bird" in (r.prompt or ""):
                out.append(Response(text="   "))
            else:
                out.append(Response(text=f"I hear {len(r.prompt or '')} characters."))
        return out


def _stage1(model: _Scripted, items, tmp_path: Path):
    return run_job(lambda: model, "scripted-v1", items, tmp_path / "cache.jsonl",
                   tmp_path / "predictions.jsonl", model_name="scripted", model_revision=None,
                   mode="distill", run=0, seed=1, sample_rate=None, batch_size=3)


def test_stage1_records_are_cached_and_resumed(corpus: Path, tmp_path: Path) -> None:
    prompts = distill.load_distill_prompts()
    records = read_distill_table(_build(corpus, tmp_path / "d"))
    items = distill.distill_work_items(records, prompts, seed=1)
    model = _Scripted()
    first = _stage1(model, items[:7], tmp_path)          # a job stopped after 7 clips
    assert first.n_items == 7 and first.n_cached == 0
    resumed = _stage1(model, items, tmp_path)
    assert resumed.n_cached >= 7 - first.n_errors and resumed.n_items == len(items)
    asked = len(model.requests)
    done = _stage1(model, items, tmp_path)
    assert done.n_retried == 1                     # the model failure is asked again
    assert done.n_cached == len(items) - done.n_retried
    assert len(model.requests) - asked == done.n_retried
    assert all(r.audio is None for r in model.requests)

    responses = [json.loads(line) for line in
                 (tmp_path / "predictions.jsonl").read_text().splitlines()]
    rows, left_out = distill.training_rows(records, responses, prompts, seed=1)
    reasons = {r["reason"].split(":")[0] for r in left_out}
    assert reasons <= {"stage 1 failed", "empty stage-1 response"} and left_out
    assert len(rows) + len(left_out) == len(records)
    out, summary = tmp_path / "set" / "train.jsonl", tmp_path / "set" / "summary.json"
    distill.write_training_set(rows, left_out, out, summary, {"backbone": "scripted"})
    trainer_rows = read_training_set(out)
    assert {r.split for r in trainer_rows} == {"train", "heldout"}
    speech = [r for r in trainer_rows if r.transcript]
    assert speech and all(r.transcript in r.prompt or r.transcript for r in speech)
    written = json.loads(summary.read_text())
    assert written["left_out"] == left_out and written["rows"]["train"] > 0


def test_no_usable_response_is_an_error(corpus: Path, tmp_path: Path) -> None:
    prompts = distill.load_distill_prompts()
    records = read_distill_table(_build(corpus, tmp_path / "d"))
    failed = [{"item_id": r["id"], "output_text": None, "error": "boom"} for r in records]
    rows, left_out = distill.training_rows(records, failed, prompts, seed=1)
    assert not rows and len(left_out) == len(records)
    with pytest.raises(distill.DistillError, match="no training clip has a usable"):
        distill.write_training_set(rows, left_out, tmp_path / "t.jsonl", tmp_path / "s.json",
                                   {})


def test_desta_manifest_reader(tmp_path: Path) -> None:
    lines = [{"id": f"a/{i}.wav", "dataset": "VCTK", "seed_description": f"[00:00-00:02] hi {i}",
              "prompt": "What is said?", "response": "ignored",
              "messages": [{"role": "user", "content": "<|AUDIO|>",
                            "audios": [{"audio": f"a/{i}.wav", "text": f"hi {i}"}]}]}
             for i in range(10)]
    path = tmp_path / "speech.0.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    records = distill.read_desta_manifest([path], tmp_path / "audio", heldout_fraction=0.2,
                                          seed=3)
    assert len(records) == 10 and sum(r["split"] == "heldout" for r in records) == 2
    assert records[0]["audio"] == str(tmp_path / "audio" / "a/0.wav")
    assert records[0]["transcript"] == "hi 0" and records[0]["prompt"] == "What is said?"
    assert "response" not in records[0]
    two = {**lines[0], "messages": [{"audios": [{"audio": "x"}, {"audio": "y"}]}]}
    path.write_text(json.dumps(two) + "\n")
    with pytest.raises(distill.DistillError, match="2 audios"):
        distill.read_desta_manifest([path], tmp_path)


# --------------------------------------------------------------------------- baselines


def _bench(tmp_path: Path) -> Path:
    items = [{"id": "q1", "audio_id": "./a.wav", "question": "What is heard?",
              "choices": ["a dog", "rain"], "answer": "rain", "task": "sound",
              "difficulty": "easy", "category": "c", "sub-category": "s"}]
    (tmp_path / "a.wav").write_bytes(b"")
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(items))
    table = knowledge.prepare_benchmark("mmau_demo", path, tmp_path)
    out = tmp_path / "bench.csv"
    knowledge.write_benchmark_table(table, out)
    return out


def test_question_only_requests_carry_no_audio_and_no_caption(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    prompts = load_choice_prompts("choice_desta_demo")
    items, failures, task = knowledge.build_work(
        "question", {"benchmark": str(bench)}, mcq_prompts="mcq_demo",
        choice_prompts="choice_desta_demo")
    assert not failures and task == "mmau"
    model = _Scripted()
    run_job(lambda: model, "scripted-v1", items, tmp_path / "c.jsonl", tmp_path / "p.jsonl",
            model_name="scripted", model_revision=None, mode="question", run=0, seed=0,
            sample_rate=None, batch_size=4)
    assert len(model.requests) == 1
    request = model.requests[0]
    assert request.audio is None and request.audio_path is None
    assert "What is heard?" in request.prompt and "rain" in request.prompt
    assert "{caption}" not in prompts.question_template and "description" not in request.prompt
    with pytest.raises(ChoiceFormatError, match="only"):
        question_work_items(knowledge.read_benchmark_table(bench), "{question} {caption}")


@pytest.mark.parametrize(("output", "expected"), [
    ('The correct answer is: "rain"', '"rain"'),
    ("rain", "rain"),
    ("The correct answer is: The correct answer is: rain", "rain"),
    ("the correct answer is: rain", "the correct answer is: rain"),   # case-sensitive
    ("The correct answer is:rain", "The correct answer is:rain"),     # the space is part of it
    ("  The correct answer is: a dog  ", "a dog"),
])
def test_desta_answer_prefix(output: str, expected: str) -> None:
    prompts = load_choice_prompts("choice_desta_demo")
    assert prompts.answer_prefix == "The correct answer is: "
    assert prompts.strip_answer(output) == expected
    assert strip_answer_prefix(output, None) == output


# --------------------------------------------------------------------------- transcripts


class _Fixed(AudioModel):
    """A helper model with scripted responses (a VAD or a transcriber)."""

    default_sample_rate = 16000

    def __init__(self, task: str, answers: dict[str, Response]) -> None:
        super().__init__(ModelEntry.from_config(task, {"adapter": "hf_causal_lm",
                                                       "source": "-"}))
        self.capabilities = frozenset({task})
        self.answers = answers
        self.asked: list[str] = []

    def _load(self) -> None:
        pass

    def predict(self, requests: list[Request]) -> list[Response]:
        self.asked += [r.item_id for r in requests]
        return [self.answers[r.item_id] for r in requests]


def test_trained_lalm_transcribes_only_where_the_vad_hears_speech() -> None:
    from types import SimpleNamespace

    import numpy as np

    from lalm_eval.models.trained_lalm import TrainedLALM
    from lalm_eval.training.lalm import DESTA_TEMPLATE, XARES_LLM_TEMPLATE

    lalm = TrainedLALM(ModelEntry.from_config("desta", {"adapter": "trained_lalm",
                                                        "source": "-"}))
    speech = Response(scores={"speech": 1.0, "speech_s": 1.2, "max_prob": 0.9}, text="[[0, 1]]")
    silence = Response(scores={"speech": 0.0, "speech_s": 0.0, "max_prob": 0.1}, text="[]")
    vad = _Fixed("detect_speech", {"a": speech, "b": silence})
    asr = _Fixed("transcribe", {"a": Response(text=" hello there ")})
    lalm.__dict__["_helpers"] = {"vad": vad, "transcriber": asr}
    lalm.model = SimpleNamespace(template=DESTA_TEMPLATE)
    audio = np.zeros(16000, dtype=np.float32)
    requests = [Request("a", "generate", audio=audio, prompt="q"),
                Request("b", "generate", audio=audio, prompt="q")]
    assert lalm._transcripts(requests) == ["hello there", ""]
    assert vad.asked == ["a", "b"] and asr.asked == ["a"]        # DeSTA: " " without speech
    lalm.__dict__["_helpers"] = {"vad": None, "transcriber": asr}
    assert lalm._transcripts(requests[:1]) == ["hello there"]    # no VAD: always transcribed
    lalm.model = SimpleNamespace(template=XARES_LLM_TEMPLATE)
    assert lalm._transcripts(requests) == [None, None]           # no {transcript} slot
    lalm.model = SimpleNamespace(template=DESTA_TEMPLATE)
    lalm.__dict__["_helpers"] = {"vad": vad,
                                 "transcriber": _Fixed("transcribe",
                                                       {"a": Response.failed("boom")})}
    with pytest.raises(Exception, match="transcriber failed on a: boom"):
        lalm._transcripts(requests)


# --------------------------------------------------------------------------- planning


def _grounded_config(data_suite: str = "knowledge") -> dict:
    return {
        "run_name": "x",
        "corpora": {"demo": {"kind": "demo"},
                    "mmau_demo": {"kind": "mmau_demo", "events_from": "demo"},
                    "desta_demo": {"kind": "distill_demo", "events_from": "demo",
                                   "exclude_from": "mmau_demo"}},
        "encoders": {"logmel": {"kind": "logmel"}},
        "models": {
            "llm": {"adapter": "hf_causal_lm", "source": "x"},
            "vad": {"adapter": "silero_vad", "source": "pkg:silero_vad/data"},
            "lalm": {"adapter": "trained_lalm", "options": {"vad": "vad"},
                     "training": {"recipe": "desta", "encoder": "logmel", "llm": "llm",
                                  "data": {"suite": data_suite}}}},
        "suites": {"knowledge": {
            "kind": "knowledge", "text_llms": ["llm"], "benchmarks": ["mmau_demo"],
            "grounded": {"models": {"llm": "lalm"}, "corpus": "desta_demo",
                         "choice_prompts": "choice_desta_demo"}}},
    }


def test_grounded_arm_plans_stage1_training_and_baselines() -> None:
    from lalm_eval.config import selected_suites, validate_config
    from lalm_eval.suites import Plan, build_suite

    config = validate_config(_grounded_config())
    suite = build_suite("knowledge", selected_suites(config)["knowledge"],
                        Plan(config, "res", "out"))
    jobs = {(j.model, j.mode, j.split) for j in suite.prediction_jobs()}
    assert {("llm", "distill", "desta_demo"), ("lalm", "grounded", "mmau_demo"),
            ("lalm", "grounded-untrained", "mmau_demo"),
            ("llm", "question", "mmau_demo")} <= jobs
    assert suite.training_set_file("lalm") == "out/knowledge/distill/llm.jsonl"
    assert suite.distill_source() == {"table": "res/corpora/desta_demo/distill.jsonl"}
    assert suite.inference_inputs("distill", "desta_demo")["clips"] == \
        "out/knowledge/distill/clips.jsonl"
    assert suite.choice_prompts("question").endswith("choice_desta_demo")
    assert suite.choice_prompts("cascade-x") == "choice_demo"
    assert "out/knowledge/distill/llm.jsonl" in suite.intermediate_files()


def test_a_grounded_lalm_must_train_on_its_suite() -> None:
    from lalm_eval.config import ConfigError, validate_config

    with pytest.raises((ConfigError, ValueError), match="must be trained on this suite"):
        validate_config(_grounded_config(data_suite="xares"))
    config = _grounded_config()
    config["suites"]["knowledge"]["grounded"]["corpus"] = None
    with pytest.raises((ConfigError, ValueError), match="distillation clips"):
        validate_config(config)


def test_training_rows_point_at_the_audio_from_anywhere(corpus: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A clip table under a relative path (as the workflow writes it) gives a training set,
    in another folder, whose audio paths still resolve."""
    monkeypatch.chdir(tmp_path)
    _build(corpus, Path("res/corpora/d"))
    records = read_distill_table(Path("res/corpora/d/distill.jsonl"))
    prompts = distill.load_distill_prompts()
    responses = [{"item_id": r["id"], "output_text": "It sounds busy.", "error": None}
                 for r in records]
    rows, _ = distill.training_rows(records, responses, prompts, seed=0)
    out = Path("out/suite/distill/llm.jsonl")
    distill.write_training_set(rows, [], out, out.with_suffix(".summary.json"), {})
    assert len(read_training_set(out)) == len(records)


# --------------------------------------------------------------- three settings, scatter


def _grounded_accuracies() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hand-made accuracy rows: backbones a, b with LALMs la, lb; one cascade (cap); MMAU
    tasks sound and speech defined, music without questions."""
    from lalm_eval.suites.knowledge import GROUNDED, QUESTION, UNTRAINED

    mcq = pd.DataFrame([
        {"model": m, "run": 0, "level": "overall", "group": "all", "accuracy": acc, "n": 72}
        for m, acc in (("a", 40.0), ("b", 62.5))])
    rows = []
    cells = {  # (model, mode): (overall, sound, speech)
        ("a", "cascade-cap"): (50.0, 60.0, 40.0), ("b", "cascade-cap"): (70.0, 80.0, 60.0),
        ("la", GROUNDED): (30.0, 20.0, 40.0), ("lb", GROUNDED): (55.0, 50.0, 60.0),
        ("la", UNTRAINED): (25.0, 25.0, 25.0), ("lb", UNTRAINED): (20.0, 20.0, 20.0),
        ("a", QUESTION): (35.0, 30.0, 40.0), ("b", QUESTION): (45.0, 50.0, 40.0)}
    for (model, mode), (overall, sound, speech) in cells.items():
        for matcher, shift in (("faithful", 0.0), ("strict", -5.0)):
            for breakdown, value, acc, n in (("overall", "all", overall, 20),
                                             ("task", "sound", sound, 10),
                                             ("task", "speech", speech, 10)):
                rows.append({"benchmark": "mmau_demo", "model": model, "mode": mode,
                             "run": 0, "matcher": matcher, "breakdown": breakdown,
                             "value": value, "accuracy": acc + shift, "n": n})
    return mcq, pd.DataFrame(rows)


def test_three_settings_table_puts_each_backbone_beside_its_baselines() -> None:
    from lalm_eval.suites.knowledge.report import three_settings_table

    mcq, choice = _grounded_accuracies()
    training = {"la": {"heldout_loss_untrained": 2.5, "heldout_loss": 1.25, "steps_done": 36},
                "lb": {}}
    table = three_settings_table(mcq, choice, {"la": "a", "lb": "b"}, training)
    assert list(table.index) == [("a", "la"), ("b", "lb")]
    a, b = table.loc[("a", "la")], table.loc[("b", "lb")]
    assert a["MCQ overall"].startswith("40.0")
    # faithful matcher, overall rows, each with its n
    assert a["mmau_demo via cap"] == "50.0 (n=20)"
    assert a["mmau_demo audio-grounded"] == "30.0 (n=20)"
    assert a["mmau_demo untrained"] == "25.0 (n=20)"
    assert b["mmau_demo question only"] == "45.0 (n=20)"   # the backbone's own row
    assert a["held-out loss"] == "2.500 -> 1.250" and a["steps"] == 36
    assert b["held-out loss"] == "n/a" and b["steps"] == "n/a"


def test_domain_scatter_writes_its_points_and_marks_empty_domains(tmp_path: Path) -> None:
    from lalm_eval.suites.knowledge.report import domain_scatter

    _, choice = _grounded_accuracies()
    png = domain_scatter(choice, {"la": "a", "lb": "b"}, tmp_path / "scatter.png")
    assert png.is_file() and png.stat().st_size > 0
    points = pd.read_csv(png.with_suffix(".csv"))
    sound = points[points["domain"] == "sound"].set_index("backbone")
    assert sound.loc["a", "cascade_accuracy"] == 60.0
    assert sound.loc["a", "grounded_accuracy"] == 20.0
    assert sound.loc["b", "grounded_n"] == 10
    music = points[points["domain"] == "music"]
    assert len(music) == 2 and music["grounded_accuracy"].isna().all()
    assert (music["grounded_n"] == 0).all()


# --------------------------------------------------------------------------- LLM judge


def _judge_bench(tmp_path: Path) -> Path:
    items = [{"id": f"q{i}", "audio_id": "./a.wav", "question": f"What is heard {i}?",
              "choices": ["a dog", "rain", "a bell"], "answer": "rain", "task": task,
              "difficulty": "easy", "category": "c", "sub-category": "s"}
             for i, task in enumerate(("sound", "sound", "speech", "speech", "sound"))]
    (tmp_path / "a.wav").write_bytes(b"")
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(items))
    out = tmp_path / "bench.csv"
    knowledge.write_benchmark_table(knowledge.prepare_benchmark("mmau_demo", path, tmp_path),
                                    out)
    return out


@pytest.mark.parametrize(("output", "expected"), [
    ("yes", True), ("No.", False), ("Yes, it does.", True), ("  NO  ", False),
    ("The answer is no, not yes", False),          # the first verdict word counts
    ("yesterday", None), ("maybe", None), ("", None), (None, None),
])
def test_judge_verdicts(output: str | None, expected: bool | None) -> None:
    from lalm_eval.suites.knowledge.judge import parse_judgement

    assert parse_judgement(output) is expected


class _Judge(_Scripted):
    """A text judge: "yes" when the judged answer names the reference, "no" otherwise,
    gibberish for one item."""

    def predict(self, requests: list[Request]) -> list[Response]:
        self.requests += requests
        out = []
        for r in requests:
            given = re.search(r'Answer given: "(.*)"', r.prompt or "").group(1)
            out.append(Response(text="hmm" if given == "a bell" else
                                "Yes." if "rain" in given else "No."))
        return out


def test_judge_job_judges_each_answer_and_records_what_it_cannot(tmp_path: Path) -> None:
    """The judge sees question, options, reference and the answer without its prefix, never
    audio; unanswered items are failed records; judged accuracy counts parsed verdicts."""
    from lalm_eval.suites.knowledge.judge import judge_matcher

    bench = _judge_bench(tmp_path)
    answers = tmp_path / "answers.jsonl"
    records = [{"item_id": "q0", "output_text": 'The correct answer is: "rain"', "error": None},
               {"item_id": "q1", "output_text": "The correct answer is: a dog", "error": None},
               {"item_id": "q2", "output_text": None, "error": "RuntimeError: boom"},
               {"item_id": "q3", "output_text": "rain", "error": None},
               {"item_id": "q4", "output_text": "a bell", "error": None}]
    answers.write_text("".join(json.dumps(r) + "\n" for r in records))
    items, failures, task = knowledge.build_work(
        "judge-lalm", {"benchmark": str(bench), "answers": str(answers)},
        mcq_prompts="mcq_demo", choice_prompts="choice_desta_demo")
    assert [f.item_id for f in failures] == ["q2"] and failures[0].kind == "no answer"
    judge = _Judge()
    out = tmp_path / "judge.jsonl"
    run_job(lambda: judge, "judge-v1", items, tmp_path / "c.jsonl", out, model_name="judge",
            model_revision=None, mode="judge-lalm", run=0, seed=0, sample_rate=None,
            batch_size=4)
    first = judge.requests[0]
    assert first.audio is None and first.audio_path is None
    assert "Correct option: rain" in first.prompt and 'Answer given: ""rain""' in first.prompt
    assert "The correct answer is" not in first.prompt          # the prefix is removed
    records = [json.loads(line) for line in out.read_text().splitlines()]
    records.append(knowledge._failure_record(failures[0], "judge", None, "judge-lalm", 0,
                                             task))
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    tables = {"bench": knowledge.read_benchmark_table(bench)}
    per_item, accuracy = knowledge.score_judge_runs(tables, {("bench", "lalm", "judge", 0):
                                                             out})
    status = dict(zip(per_item["item_id"], per_item["status"], strict=True))
    assert status == {"q0": "answered", "q1": "answered", "q2": "failed", "q3": "answered",
                      "q4": "unparsed"}
    overall = accuracy[accuracy["breakdown"] == "overall"].iloc[0]
    assert (overall["n"], overall["n_correct"], overall["n_failed"]) == (3, 2, 1)
    assert overall["matcher"] == judge_matcher("judge") and overall["mode"] == "grounded"
    assert overall["model"] == "lalm"
    speech = accuracy[(accuracy["breakdown"] == "task") & (accuracy["value"] == "speech")]
    assert speech["accuracy"].iloc[0] == 100.0                  # q3 right, q2 not counted


def test_judges_are_planned_per_lalm_and_run() -> None:
    from lalm_eval.config import ConfigError, selected_suites, validate_config
    from lalm_eval.suites import Plan, build_suite

    config = _grounded_config()
    config["models"]["judge"] = {"adapter": "hf_causal_lm", "source": "y"}
    config["suites"]["knowledge"]["grounded"]["judges"] = ["judge"]
    config["suites"]["knowledge"]["runs"] = 2
    config = validate_config(config)
    suite = build_suite("knowledge", selected_suites(config)["knowledge"],
                        Plan(config, "res", "out"))
    judged = sorted((j.model, j.mode, j.split, j.run) for j in suite.prediction_jobs()
                    if j.role == "judge")
    assert judged == [("judge", "judge-lalm", "mmau_demo", 0),
                      ("judge", "judge-lalm", "mmau_demo", 1)]
    inputs = suite.inference_inputs("judge-lalm", "mmau_demo")
    assert inputs["answers_run1"] == "out/knowledge/predictions/lalm/grounded/mmau_demo/run1.jsonl"
    assert suite.choice_prompts("judge-lalm").endswith("choice_desta_demo")
    assert "judge" in suite.settings["systems"]
    bad = _grounded_config()
    bad["suites"]["knowledge"]["grounded"]["judges"] = ["nobody"]
    with pytest.raises((ConfigError, ValueError), match="nobody"):
        validate_config(bad)


def test_judge_agreement_counts_both_kinds_of_disagreement() -> None:
    from lalm_eval.suites.knowledge.report import judge_agreement_table

    keys = {"benchmark": "b", "model": "la", "run": 0}
    matcher = pd.DataFrame([{**keys, "item_id": f"q{i}", "mode": "grounded",
                             "matcher": "faithful", "counted": True, "correct": right}
                            for i, right in enumerate([True, True, False, False, False])])
    judged = pd.DataFrame([{**keys, "item_id": f"q{i}", "mode": "grounded",
                            "matcher": "judge:j", "counted": said is not None,
                            "correct": said}
                           for i, said in enumerate([True, False, True, False, None])])
    table = judge_agreement_table(matcher, judged)
    row = table.loc[("b", "la", "j")]
    assert row["n"] == "4" and row["agreement (%)"] == "50.0"
    assert row["judge yes, matcher wrong"] == "1" and row["judge no, matcher right"] == "1"


def test_audio_grounded_table_keeps_each_mode_of_a_lalm_apart() -> None:
    """One LALM's grounded and untrained answers are two rows (they once shared one)."""
    from lalm_eval.suites.knowledge import GROUNDED, QUESTION, UNTRAINED
    from lalm_eval.suites.knowledge.report import _choice_rows

    _, choice = _grounded_accuracies()
    table = _choice_rows(choice, ["audio", GROUNDED, UNTRAINED, QUESTION])
    assert table.loc[("la", GROUNDED), "mmau_demo all"].startswith("30.0")
    assert table.loc[("la", UNTRAINED), "mmau_demo all"].startswith("25.0")
    assert table.loc[("b", QUESTION), "mmau_demo all"].startswith("45.0")
    assert len(table) == 6
