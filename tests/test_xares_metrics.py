"""XARES metrics on hand-computed cases: upstream's normalisation, accuracy, mAP with its
absent-class behaviour and our corrected variant, iWER, iCER on Chinese text, the score."""

from __future__ import annotations

import pytest

from lalm_eval.metrics import xares as X
from lalm_eval.suites.xares.tasks import (
    TaskDef,
    TaskSetError,
    check_against_upstream,
    load_task_set,
)


def test_normalisation_follows_upstream():
    assert X.normalise_text("  Dog-Bark!  ") == "dog bark"
    assert X.normalise_text("ｄｏｇ") == "dog"  # NFKC folds full-width letters
    assert X.normalise_text("Dog; Cat", remove_punctuation=False) == "dog; cat"
    # NFKC turns the full-width comma into an ASCII one (then cut); 。 and 、 stay
    assert X.normalise_text("你好，世界、再见。") == "你好世界、再见。"


def test_accuracy_is_exact_match_after_normalisation():
    assert X.accuracy(["Dog.", "cat", "a cat"], ["dog", "Cat!", "cat"]) == pytest.approx(2 / 3)


def test_map_counts_absent_classes_as_zero_and_ours_does_not():
    refs = ["dog", "cat", "dog", "cat"]
    perfect = list(refs)
    # 4 classes declared, 2 present in the references: the absent columns score AP 0
    assert X.map_faithful(perfect, refs, num_classes=4) == pytest.approx(0.5)
    assert X.map_present(perfect, refs) == pytest.approx(1.0)
    # answer labels no reference has are ignored; ';' separates labels
    assert X.map_faithful(["dog;bird", "cat", "dog", "cat"], refs, 2) == pytest.approx(1.0)
    # one miss on "cat": AP(dog) = 1, AP(cat) = (precision 1 at recall 0.5) = 0.5... by sklearn
    half = X.map_present(["dog", "", "dog", "cat"], refs)
    assert half == pytest.approx((1.0 + 0.75) / 2)
    with pytest.raises(ValueError, match="3 distinct labels but the task has num_classes 2"):
        X.map_faithful(["a", "b", "c"], ["a", "b", "c"], 2)


def test_iwer_and_icer():
    assert X.iwer(["the cat sat", "hello"], ["The cat sat.", "hello world"]) == \
        pytest.approx(1 - 1 / 5)
    assert X.iwer(["completely wrong words here"], ["hi"]) == 0.0  # clipped at 0
    # 5 characters incl. the ideographic full stop: one substitution -> CER 1/5
    assert X.icer(["你好世见。"], ["你好世界。"]) == pytest.approx(0.8)
    # it counts as a character: leaving it out is a deletion
    assert X.icer(["你好世界"], ["你好世界。"]) == pytest.approx(0.8)
    # ASCII punctuation (and the full-width comma, ASCII after NFKC) is cut before scoring
    assert X.icer(["你好,世界"], ["你好，世界"]) == pytest.approx(1.0)


def test_normalised_scores_and_tracks():
    assert X.normalised(0.75, 0.0, 1.0) == 0.75
    assert X.normalised(0.75, 0.0, 1.0, chance=0.5) == pytest.approx(0.5)
    assert X.normalised(0.25, 0.0, 1.0, chance=0.5) == 0.0
    tasks = {"a": TaskDef("a", "A", "x", "accuracy", num_classes=2),
             "b": TaskDef("b", "A", "x", "accuracy", num_classes=2),
             "c": TaskDef("c", "B", "x", "iwer")}
    values = {"a": 0.5, "b": 1.0, "c": 0.2}
    assert X.track_scores(values, tasks) == {"A": 0.75, "B": 0.2}
    assert X.track_scores(values, tasks, {"a": 3, "b": 1, "c": 1})["A"] == pytest.approx(0.625)
    assert X.combine(0.6, 0.4) == pytest.approx(0.5)
    assert X.combine(0.6, None) == 0.6


def test_the_challenge_task_set_is_the_upstream_one():
    tasks = load_task_set("challenge").tasks
    assert len(tasks) == 20
    assert sum(t.track == "A" for t in tasks.values()) == 15
    assert tasks["esc50"].instruction == "Classify the environmental sound."
    assert (tasks["fsd50k"].metric, tasks["fsd50k"].num_classes) == ("map", 200)
    assert tasks["aishell1"].metric == "icer" and tasks["mecat"].metric == "date"
    assert tasks["mecat"].weight == 3.0


def test_task_set_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: {t: {track: A, instruction: x, metric: acuracy, num_classes: 2}}")
    with pytest.raises(TaskSetError, match="tasks.t.metric: 'acuracy'"):
        load_task_set(str(bad))
    bad.write_text("tasks: {t: {track: A, instruction: x, metric: accuracy, nclasses: 2}}")
    with pytest.raises(TaskSetError, match="unknown key 'nclasses'"):
        load_task_set(str(bad))


def test_a_changed_upstream_task_file_is_reported():
    from lalm_eval.hashing import bytes_sha256

    task_set = load_task_set("challenge")
    good = {path: b"" for path in task_set.source["files"]}

    def fetch(path: str) -> bytes:
        return good.get(path, b"")

    problems = check_against_upstream(task_set, fetch)
    assert any("sha256" in p for p in problems)  # the empty stand-ins do not match
    # a file holding every instruction, pinned by its own hash, passes the instruction check
    text = "\n".join(t.instruction for t in task_set.tasks.values()).encode()
    pinned = type(task_set)(task_set.name, {"files": {"f.yaml": bytes_sha256(text)}},
                            task_set.rules, task_set.score,
                            {k: v for k, v in task_set.tasks.items()})
    assert [p for p in check_against_upstream(pinned, lambda p: text)
            if "sha256" in p] == []
    changed = text.replace(b"Classify the environmental sound.", b"Name the sound.")
    assert any("esc50" in p for p in check_against_upstream(pinned, lambda p: changed))
