"""XARES metrics on hand-computed cases: upstream's normalisation, accuracy, mAP with its
absent-class behaviour and our corrected variant, iWER, iCER on Chinese text, the score, and
the task sets (loader errors, the check against the upstream task files)."""

from __future__ import annotations

import pytest
import yaml

from lalm_eval.hashing import bytes_sha256
from lalm_eval.metrics import xares as X
from lalm_eval.suites.xares.tasks import (
    TaskDef,
    TaskSet,
    TaskSetError,
    check_against_upstream,
    load_task_set,
)

# ----------------------------------------------------------------------------- metrics


def test_normalisation_follows_upstream():
    assert X.normalise_text("  Dog-Bark!  ") == "dog bark"
    assert X.normalise_text("ｄｏｇ") == "dog"  # NFKC folds full-width letters
    assert X.normalise_text("Dog; Cat", remove_punctuation=False) == "dog; cat"
    assert X.normalise_text("a\t\n b") == "a b"
    # NFKC turns the full-width comma into an ASCII one (then cut); 。 and 、 stay
    assert X.normalise_text("你好，世界、再见。") == "你好世界、再见。"


def test_accuracy_is_exact_match_after_normalisation():
    assert X.accuracy(["Dog.", "cat", "a cat"], ["dog", "Cat!", "cat"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        X.accuracy(["a", "b"], ["a"])


def test_map_counts_absent_classes_as_zero_and_ours_does_not():
    refs = ["dog", "cat", "dog", "cat"]
    # 4 classes declared, 2 present in the references: the absent columns score AP 0
    assert X.map_faithful(list(refs), refs, num_classes=4) == pytest.approx(0.5)
    assert X.map_present(list(refs), refs) == pytest.approx(1.0)
    # with every class present the two agree
    assert X.map_faithful(list(refs), refs, num_classes=2) == pytest.approx(1.0)
    # answer labels no reference has are ignored; ';' separates labels
    assert X.map_faithful(["dog;bird", "cat", "dog", "cat"], refs, 2) == pytest.approx(1.0)
    # one "cat" missed: AP(dog) = 1; AP(cat): at score 1 recall 1/2 precision 1, at score 0
    # recall 1 precision 2/4, so 1/2 * 1 + 1/2 * 1/2 = 0.75
    assert X.map_present(["dog", "", "dog", "cat"], refs) == pytest.approx((1.0 + 0.75) / 2)
    assert X.map_faithful(["dog", "", "dog", "cat"], refs, 4) == pytest.approx(1.75 / 4)


def test_map_with_more_labels_than_classes_fails_clearly():
    with pytest.raises(ValueError, match="3 distinct labels but the task has num_classes 2"):
        X.map_faithful(["a", "b", "c"], ["a", "b", "c"], 2)


def test_iwer_on_a_tiny_corpus():
    # 5 reference words, one deleted ("world"): corpus WER 1/5
    assert X.iwer(["the cat sat", "hello"], ["The cat sat.", "hello world"]) == \
        pytest.approx(1 - 1 / 5)
    assert X.iwer(["completely wrong words here"], ["hi"]) == 0.0  # clipped at 0
    # empty references are passed on as upstream does: 1 insertion over 2 words
    assert X.iwer(["x", "a b"], ["", "a b"]) == pytest.approx(0.5)


def test_icer_keeps_chinese_punctuation():
    # 5 characters incl. the ideographic full stop: one substitution -> CER 1/5
    assert X.icer(["你好世见。"], ["你好世界。"]) == pytest.approx(0.8)
    # the full stop counts as a character: leaving it out is a deletion
    assert X.icer(["你好世界"], ["你好世界。"]) == pytest.approx(0.8)
    # ASCII punctuation (and the full-width comma, ASCII after NFKC) is cut before scoring
    assert X.icer(["你好,世界"], ["你好，世界"]) == pytest.approx(1.0)


def test_caption_similarity_runs_offline_and_fense_needs_mecat():
    from lalm_eval.metrics.embedding import HashingTextEmbedder

    embedder = HashingTextEmbedder()
    same = X.caption_similarity(["a dog barks"], ["A dog barks."], embedder=embedder)
    other = X.caption_similarity(["rain on a roof"], ["a dog barks"], embedder=embedder)
    assert same == pytest.approx(1.0, abs=1e-5) and other < same
    try:
        import mecat  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="mecat package, which is not installed"):
            X.task_score("fense", ["a"], ["a"], None)


def test_normalised_with_and_without_chance_floor():
    assert X.normalised(0.75, 0.0, 1.0) == 0.75
    assert X.normalised(30.0, 0.0, 100.0) == pytest.approx(0.3)
    assert X.normalised(0.75, 0.0, 1.0, chance=0.5) == pytest.approx(0.5)
    assert X.normalised(0.25, 0.0, 1.0, chance=0.5) == 0.0  # below chance clips to 0
    with pytest.raises(ValueError, match="equals the lower bound"):
        X.normalised(0.5, 1.0, 1.0)


def test_track_scores_and_combination():
    tasks = {"a": TaskDef("a", "A", "x", "accuracy", num_classes=2),
             "b": TaskDef("b", "A", "x", "accuracy", num_classes=2),
             "c": TaskDef("c", "B", "x", "iwer")}
    values = {"a": 0.5, "b": 1.0, "c": 0.2}
    assert X.track_scores(values, tasks) == {"A": 0.75, "B": 0.2}
    # the superseded formula: (3 * 0.5 + 1 * 1.0) / 4
    assert X.track_scores(values, tasks, {"a": 3, "b": 1, "c": 1})["A"] == pytest.approx(0.625)
    with pytest.raises(ValueError, match="no weight for task 'c'"):
        X.track_scores(values, tasks, {"a": 1, "b": 1})
    assert X.track_scores({**values, "b": float("nan")}, tasks)["A"] == 0.5
    assert X.combine(0.6, 0.4) == pytest.approx(0.5)
    assert X.combine(0.6, 0.4, {"public": 3, "hidden": 1}) == pytest.approx(0.55)
    assert X.combine(0.6, None) == 0.6


# ----------------------------------------------------------------------------- task sets


def test_the_challenge_task_set_is_the_upstream_one():
    task_set = load_task_set("challenge")
    tasks = task_set.tasks
    assert len(tasks) == 20
    assert sum(t.track == "A" for t in tasks.values()) == 15
    assert tasks["esc50"].instruction == "Classify the environmental sound."
    assert (tasks["fsd50k"].metric, tasks["fsd50k"].num_classes) == ("map", 200)
    assert (tasks["fsdkaggle2018"].metric, tasks["fsdkaggle2018"].num_classes) == ("map", 41)
    assert tasks["aishell1"].metric == "icer" and tasks["mecat"].metric == "date"
    assert {t: tasks[t].weight for t in ("aishell1", "songdescriber", "clotho", "librispeech",
                                         "mecat")} == {"aishell1": 2.0, "songdescriber": 1.0,
                                                       "clotho": 1.0, "librispeech": 2.0,
                                                       "mecat": 3.0}
    assert task_set.baselines["whisper_base"]["track_A"] == 0.652
    assert "tacos" in task_set.hidden["B"]


def test_the_superseded_task_set():
    task_set = load_task_set("superseded")
    assert "voxlingua107" in task_set.tasks and "voxlingua33" not in task_set.tasks
    assert set(task_set.unavailable) == {"librispeech_gender", "nsynth_pitch"}
    assert task_set.score["track_weights"] == "equal"


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "set.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "message"), [
    ("tasks: {t: {track: A, instruction: x, metric: acuracy, num_classes: 2}}",
     "tasks.t.metric: 'acuracy' is not one of"),
    ("tasks: {t: {track: A, instruction: x, metric: accuracy, nclasses: 2}}",
     "tasks.t: unknown key 'nclasses'; did you mean 'num_classes'?"),
    ("tasks: {t: {track: A, metric: iwer}}", "tasks.t: 'instruction' is required"),
    ("tasks: {t: {track: A, instruction: x, metric: accuracy}}",
     "tasks.t: a accuracy task needs 'num_classes'"),
    ("tasks: {t: {track: C, instruction: x, metric: iwer}}", "tasks.t.track: 'C' is not A or B"),
    ("tasks: {t: {track: B, instruction: x, metric: iwer, weight: -1}}",
     "tasks.t.weight: -1 is below 0"),
    ("taks: {}", "needs a 'tasks' mapping"),
    ("tasks: {t: {track: B, instruction: x, metric: iwer}}\nscore: {track_weights: {u: 1}}",
     "score.track_weights.u: not a task of this set"),
    ("tasks: {t: {track: B, instruction: x, metric: iwer}}\nscore: {normalize: identity}",
     "score: unknown key 'normalize'; did you mean 'normalise'?"),
])
def test_task_set_errors_name_the_key(tmp_path, text, message):
    with pytest.raises(TaskSetError, match=message.replace("?", r"\?")) as caught:
        load_task_set(_write(tmp_path, text))
    assert "\n" not in str(caught.value)


def test_unknown_task_set_name():
    with pytest.raises(TaskSetError, match="unknown task set 'nope'"):
        load_task_set("nope")


def test_a_changed_upstream_task_file_is_reported():
    upstream = {
        "eval_esc-50": {"data": {"prompt": "Classify the environmental sound.",
                                 "key": "label", "data": ["ESC-50/test/a.tar.gz"]},
                        "metric": "Accuracy"},
        "eval_fsd50k": {"data": {"prompt": "Multi-label classification for FSD50k",
                                 "key": "label;labels"},
                        "metric": "mAP", "metric_args": {"num_classes": 200}},
    }
    train = {"train_data": {"ESC-50": {"prompt": "Classify the environmental sound.",
                                       "key": "label", "prob": 0.5}}}
    files = {"eval.yaml": yaml.safe_dump(upstream).encode(),
             "train.yaml": yaml.safe_dump(train).encode()}
    tasks = {
        "esc50": TaskDef("esc50", "A", "Classify the environmental sound.", "accuracy",
                         dataset="ESC-50", label_key="label", num_classes=50, weight=0.5,
                         upstream_file="eval.yaml",
                         shards={"test": ["ESC-50/test/a.tar.gz"]}),
        "fsd50k": TaskDef("fsd50k", "A", "Multi-label classification for FSD50k", "map",
                          dataset="FSD50k", label_key="label;labels", num_classes=200,
                          upstream_file="eval.yaml"),
    }

    def task_set(pins: dict[str, str], **changed: TaskDef) -> TaskSet:
        return TaskSet("t", {"files": pins}, {}, {}, {**tasks, **changed})

    pins = {path: bytes_sha256(data) for path, data in files.items()}
    assert check_against_upstream(task_set(pins), files.__getitem__) == []

    # our instruction differs from upstream's: reported against both its entries
    edited = TaskDef(**{**tasks["esc50"].__dict__, "instruction": "Name the sound."})
    problems = check_against_upstream(task_set(pins, esc50=edited), files.__getitem__)
    assert len(problems) == 2 and all("task esc50: instruction 'Name the sound.'" in p
                                      for p in problems)

    # upstream changed a file: the hash and the changed fields are reported
    moved = {**upstream, "eval_fsd50k": {**upstream["eval_fsd50k"],
                                         "metric_args": {"num_classes": 199}}}
    changed_files = {**files, "eval.yaml": yaml.safe_dump(moved).encode()}
    problems = check_against_upstream(task_set(pins), changed_files.__getitem__)
    assert any(p.startswith("eval.yaml: sha256") for p in problems)
    assert any("task fsd50k: num_classes 200 but upstream eval.yaml:eval_fsd50k has 199" in p
               for p in problems)

    # a task whose entry upstream no longer has
    gone = {k: v for k, v in upstream.items() if k != "eval_fsd50k"}
    unpinned = {path: None for path in files}  # no hash pinned: fields compared only
    problems = check_against_upstream(task_set(unpinned), {**files, "eval.yaml":
                                                           yaml.safe_dump(gone).encode()
                                                           }.__getitem__)
    assert problems == ["task fsd50k: no entry eval_fsd50k in the upstream files"]
