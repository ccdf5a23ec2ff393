"""JASCO judging end to end: judge jobs through the real HTTP backend against a local
server that fails, times out or recovers on chosen items; verdict scoring in both modes;
Table II, dependence and health outputs."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lalm_eval.suites.jasco import judging as J
from lalm_eval.suites.jasco.data import (
    expand_items,
    fill_judge_template,
    judge_work_items,
    read_records,
    run_judge_job,
)
from lalm_eval.suites.jasco.report import build_jasco_report, table2

TEMPLATE = ("Sound: {audio_sound}\nSpeech: {spoken_text}\nQ: {question}\nA-only: "
            "{audio_only_target}\nS-only: {speech_only_target}\nRef: {reference}\n"
            "Keys: {keywords}\nAnswer: {prediction}\nReply with Rating and Orientation.")
INSTRUCTIONS = [f"instruction {k}?" for k in range(1, 9)]


# --------------------------------------------------------------------------- scripted judge


class JudgeServer:
    """An OpenAI-compatible judge on 127.0.0.1 whose verdict depends on a marker word in
    the rated answer: GOOD, HALF, AUDIO, NORATING, TWICE (two contradictory ratings), EMPTY,
    FAIL (always HTTP 500), SLOW (sleeps past the client timeout), FLAKY (503 once)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                answer = prompt.split("Answer: ")[-1].split("\n")[0]
                marker = answer.split()[0] if answer.split() else ""
                with server.lock:
                    server.calls[answer] = server.calls.get(answer, 0) + 1
                    count = server.calls[answer]
                if marker == "FAIL":
                    self._send(500, {"error": "judge crashed"})
                    return
                if marker == "SLOW":
                    time.sleep(0.6)
                    self._send(504, {"error": "late"})
                    return
                if marker == "FLAKY" and count == 1:
                    self._send(503, {"error": "warming up"})
                    return
                text = {
                    "GOOD": "Rating: 2\nOrientation: Both",
                    "FLAKY": "Rating: 2\nOrientation: Both",
                    "HALF": "Rating: 1\nOrientation: Both",
                    "AUDIO": "Rating: 1\nOrientation: Audio-Oriented",
                    "NORATING": "Orientation: Both",
                    "TWICE": "Rating: 2\nRating: 0\nOrientation: Both",
                    "EMPTY": " ",
                }.get(marker, "Rating: 0\nOrientation: Neither")
                self._send(200, {"choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant",
                                                          "content": text}}],
                                 "usage": {"completion_tokens": 5}})

        class Server(ThreadingHTTPServer):
            daemon_threads = False
            block_on_close = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def judge_server():
    server = JudgeServer()
    yield server
    server.stop()


def _judge_models(base_url: str) -> dict[str, dict]:
    return {"http_judge": {
        "adapter": "openai_http", "source": "scripted-judge", "revision": "v1",
        "batch_size": 4, "decoding": {"max_new_tokens": 16},
        "options": {"base_url": base_url, "timeout": 0.3, "max_retries": 0,
                    "backoff_s": 0.01, "max_backoff_s": 0.02, "concurrency": 2},
    }}


def _release(tmp_path: Path, n_clips: int = 2) -> tuple[Path, Path, pd.DataFrame]:
    v0 = pd.DataFrame([{
        "audio_id": str(c), "Audio": f"sound {c}", "Speech": f"speech {c}",
        "Audio-Only Answer": "audio guess", "Speech-Only Answer": "speech guess",
        "Correct Answer": "joint answer", "Correct Answer Keyword": "joint",
    } for c in range(1, n_clips + 1)])
    items = expand_items(v0, INSTRUCTIONS, tmp_path / "audio")
    items_path = tmp_path / "items.csv"
    items.to_csv(items_path, index=False)
    protocol_path = tmp_path / "protocol.json"
    protocol_path.write_text(json.dumps({
        "judge_template": TEMPLATE, "judge_template_sha256": "t" * 64,
        "instructions_sha256": "i" * 64, "source": "test"}))
    return items_path, protocol_path, items


def _answers(path: Path, items: pd.DataFrame, texts: list[str | None]) -> None:
    """Answer records in the engine's format; None = the system failed on that item."""
    rows = []
    k = items.groupby("id", sort=False).cumcount() + 1
    for (row, index), text in zip(zip(items.to_dict("records"), k, strict=True), texts,
                                  strict=True):
        rows.append({"item_id": f"jasco-{row['id']}-{index}", "clip_id": row["id"],
                     "prompt_id": f"jasco-{index}", "model": "sys", "run": 0,
                     "output_text": text, "error": None if text else "RuntimeError: oom"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


# clip 1: GOOD on prompt 3 (best 2); FAIL/SLOW on two prompts (lost); FLAKY recovers (2)
# clip 2: HALF, AUDIO, NORATING after HALF (carried 1 in faithful), TWICE, EMPTY, failed answer
CLIP1 = ["AUDIO a", "FAIL b", "GOOD c", "SLOW d", "FLAKY e", "other f", "HALF g", "AUDIO h"]
CLIP2 = ["HALF a", "AUDIO b", "NORATING c", "TWICE d", "EMPTY e", None, "other g", "AUDIO h"]


def test_judge_job_marks_lost_items_and_scores_the_rest(tmp_path: Path, judge_server):
    items_path, protocol_path, items = _release(tmp_path)
    answers = tmp_path / "answers.jsonl"
    _answers(answers, items, CLIP1 + CLIP2)
    out = tmp_path / "judgements.jsonl"
    summary = run_judge_job(
        items_path=items_path, protocol_path=protocol_path, answers_path=answers,
        judge_name="http_judge", models=_judge_models(judge_server.base_url), run=0, seed=1,
        cache_dir=tmp_path / "cache", out_path=out, system="grade", retries=1,
        orientation_call=True, progress=False)
    records = read_records(out)
    status = {r["item_id"]: r["status"] for r in records}
    assert summary["statuses"] == {"judged": 13, "judge_failed": 2, "no_answer": 1}
    assert status["jasco-1-2"] == status["jasco-1-4"] == "judge_failed"
    assert status["jasco-2-6"] == "no_answer"
    flaky = next(r for r in records if r["item_id"] == "jasco-1-5")
    assert flaky["status"] == "judged" and flaky["judge_attempts"] == 2
    lost = next(r for r in records if r["item_id"] == "jasco-1-4")
    assert lost["judge_output"] is None and "timeout" in lost["judge_error"]
    # FAIL was tried 1 + retries times, never more
    assert judge_server.calls["FAIL b"] == 2

    verdicts = J.score_judgements(records)
    by_item = verdicts.set_index("item_id")
    # lost rows have no score in either mode and do not feed the carry-over
    assert by_item.loc["jasco-1-2", "faithful_score"] is None or math.isnan(
        by_item.loc["jasco-1-2", "faithful_score"])
    # NORATING after HALF: faithful carries rating 1 over (flagged), strict leaves it out
    assert by_item.loc["jasco-2-3", "faithful_score"] == 1.0
    assert bool(by_item.loc["jasco-2-3", "carried_over"])
    assert pd.isna(by_item.loc["jasco-2-3", "strict_score"])
    # TWICE: faithful takes the last rating line (0), strict calls it contradictory
    assert by_item.loc["jasco-2-4", "faithful_score"] == 0.0
    assert pd.isna(by_item.loc["jasco-2-4", "strict_score"])
    # failed answer scores 0 in both modes
    assert by_item.loc["jasco-2-6", "faithful_score"] == 0.0
    assert by_item.loc["jasco-2-6", "strict_score"] == 0.0

    best = J.best_mean_table(verdicts).set_index("mode")
    # faithful: clip 1 best = 2 (GOOD/FLAKY), clip 2 best = 1 (HALF, carried) -> 1.5
    assert best.loc["faithful", "best_mean"] == pytest.approx(1.5)
    # strict: clip 1 best 2, clip 2 best 1 (HALF) -> 1.5
    assert best.loc["strict", "best_mean"] == pytest.approx(1.5)
    assert best.loc["faithful", "n_lost"] == 2 and best.loc["strict", "n_no_answer"] == 1
    # NORATING and EMPTY have no rating line: both carried over in faithful mode
    assert best.loc["faithful", "n_carried_over"] == 2
    assert best.loc["strict", "n_unparsed"] == 3  # NORATING, TWICE, EMPTY

    health = J.judge_health_table(verdicts).iloc[0]
    assert health["n_lost"] == 2 and health["n_judged"] == 13
    assert health["parse_failure_rate_strict"] == pytest.approx(3 / 13)


def test_judge_calls_are_cached_by_judge_template_item_and_answer(tmp_path: Path,
                                                                  judge_server):
    items_path, protocol_path, items = _release(tmp_path, n_clips=1)
    answers = tmp_path / "answers.jsonl"
    texts = ["GOOD a", "HALF b", "AUDIO c", "other d", "GOOD e", "HALF f", "AUDIO g", "x h"]
    _answers(answers, items, texts)
    kwargs = dict(items_path=items_path, protocol_path=protocol_path, answers_path=answers,
                  judge_name="http_judge", models=_judge_models(judge_server.base_url), run=0,
                  seed=1, cache_dir=tmp_path / "cache", system="grade", retries=0,
                  orientation_call=False, progress=False)
    first = run_judge_job(out_path=tmp_path / "a.jsonl", **kwargs)
    assert first["calls_computed"] == 8
    again = run_judge_job(out_path=tmp_path / "b.jsonl", **kwargs)
    assert again["calls_computed"] == 0 and again["calls_cached"] == 8
    # one changed answer -> exactly one new call
    _answers(answers, items, ["HALF z"] + texts[1:])
    changed = run_judge_job(out_path=tmp_path / "c.jsonl", **kwargs)
    assert changed["calls_computed"] == 1
    # another judge revision -> every call again
    models = _judge_models(judge_server.base_url)
    models["http_judge"]["revision"] = "v2"
    moved = run_judge_job(out_path=tmp_path / "d.jsonl", **{**kwargs, "models": models})
    assert moved["calls_computed"] == 8


def test_failed_answers_get_no_judge_call():
    items = expand_items(pd.DataFrame([{
        "audio_id": "7", "Audio": "s", "Speech": "p", "Audio-Only Answer": "a",
        "Speech-Only Answer": "b", "Correct Answer": "c", "Correct Answer Keyword": "k",
    }]), INSTRUCTIONS, Path("/nowhere"))
    answers = [{"item_id": f"jasco-7-{k}", "output_text": "ans", "error": None}
               for k in range(1, 9)]
    answers[3] = {"item_id": "jasco-7-4", "output_text": None, "error": "AudioError: x"}
    work = judge_work_items(items, answers, TEMPLATE, "sys")
    assert [w.item_id for w in work] == [f"jasco-7-{k}" for k in (1, 2, 3, 5, 6, 7, 8)]
    assert "Answer: ans" in work[0].prompt and "Ref: c" in work[0].prompt


def test_template_fill_leaves_other_braces():
    fields = {f: f.upper() for f in
              ("audio_sound", "spoken_text", "question", "audio_only_target",
               "speech_only_target", "reference", "keywords", "prediction")}
    text = fill_judge_template(TEMPLATE + ' JSON like {"a": 1}', fields)
    assert "Answer: PREDICTION" in text and '{"a": 1}' in text


def _verdict_records() -> list[dict]:
    """Two judges x one system x 2 clips x 2 prompts, hand-built."""
    outputs = {
        "j1": ["Rating: 2\nOrientation: Both", "Rating: 0\nOrientation: Audio-Oriented",
               "Rating: 1\nOrientation: Both", "Rating: 1\nOrientation: Speech-Oriented"],
        "j2": ["Rating: 2\nOrientation: Both", "Rating: 1\nOrientation: Both",
               "Rating: 0\nOrientation: Speech-Oriented",
               "Rating: 1\nOrientation: Speech-Oriented"],
    }
    records = []
    for judge, texts in outputs.items():
        for n, text in enumerate(texts):
            clip, prompt = str(n // 2 + 1), n % 2 + 1
            records.append({"judge": judge, "model": "sys", "run": 0,
                            "item_id": f"jasco-{clip}-{prompt}", "clip_id": clip,
                            "prompt_id": f"jasco-{prompt}", "status": "judged",
                            "judge_output": text, "orientation_output": None})
    return records


def test_panel_tables_on_hand_computed_values(tmp_path: Path):
    verdicts = J.score_judgements(_verdict_records())
    best = J.best_mean_table(verdicts)
    faithful = best[best["mode"] == "faithful"].set_index("judge")["best_mean"]
    # j1: clip1 max(2, 0) = 2, clip2 max(1, 0) = 1 -> 1.5; j2: clip1 2, clip2 0 -> 1.0
    assert faithful["j1"] == pytest.approx(1.5) and faithful["j2"] == pytest.approx(1.0)
    t2 = table2(best, "faithful")
    assert t2.loc["sys", "j1"] == "1.500" and t2.loc["sys", "Avg."] == "1.250"

    dep = J.dependence_table(verdicts)
    row = dep[(dep["mode"] == "faithful") & (dep["judge"] == "j1")].iloc[0]
    # j1 orientations: both, audio, both, speech -> 0.5 / 0.25 / 0.25
    assert (row["both"], row["audio"], row["speech"]) == pytest.approx((0.5, 0.25, 0.25))

    agreement = J.agreement_table(verdicts)
    kappa = agreement[(agreement["scope"] == "all") & (agreement["parsing"] == "strict")
                      & (agreement["statistic"] == "cohen_kappa")].iloc[0]
    # ratings j1 = [2, 0, 1, 1], j2 = [2, 1, 0, 1]: p_o = 2/4; marginals j1 (1/4, 2/4, 1/4),
    # j2 (1/4, 2/4, 1/4) -> p_e = 1/16 + 4/16 + 1/16 = 6/16; kappa = (0.5 - 0.375) / 0.625
    assert kappa["value"] == pytest.approx(0.2) and kappa["n"] == 4
    faithful = agreement[(agreement["scope"] == "all") & (agreement["parsing"] == "faithful")
                         & (agreement["statistic"] == "cohen_kappa")].iloc[0]
    assert faithful["value"] == pytest.approx(0.2)  # every verdict well formed: same items
    alpha = agreement[agreement["statistic"] == "krippendorff_alpha_ordinal"]
    assert alpha.iloc[0]["n"] == 4 and math.isfinite(alpha.iloc[0]["value"])

    paths = build_jasco_report(verdicts, tmp_path / "report", config_slice={"suite": {}},
                               seeds={"global": 1},
                               protocol={"instructions_sha256": "i", "judge_template_sha256": "t",
                                         "source": "test"})
    assert "1.500" in paths["table2_faithful"].read_text()
    assert (tmp_path / "report/figures/modality_dependence_faithful.png").stat().st_size > 1000
    results = json.loads(paths["results"].read_text())
    assert results["prompt_hashes"] == {"instructions": "i", "judge_template": "t"}


def test_one_judge_panel_has_no_agreement_numbers():
    records = [r for r in _verdict_records() if r["judge"] == "j1"]
    agreement = J.agreement_table(J.score_judgements(records))
    assert agreement.empty
