"""Serving backends and external-package adapters.

``OpenAICompatibleModel`` is tested against a real HTTP server on 127.0.0.1 backed by a tiny
random-weight LLaMA that generates greedily. Adapters whose upstream packages cannot be
installed here (vLLM, Kimi-Audio, Step-Audio 2, SALMONN, LTU-AS, DeSTA2.5, msclap, MGA-CLAP)
are tested on their pure parts and through their documented seam with stand-in objects.
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from lalm_eval.models.base import ModelEntry, ModelError, Request
from lalm_eval.models.clap_external import MGAClapModel, MSClapModel, label_scores
from lalm_eval.models.decoding import Decoding, decoding_from, hf_generate_kwargs
from lalm_eval.models.desta import Desta25Model, desta_messages
from lalm_eval.models.external_common import check_repository_code, strip_answer_prefix
from lalm_eval.models.kimi_audio import KimiAudioModel, kimi_messages, kimi_sampling
from lalm_eval.models.ltu import LtuAsModel, ltu_clean_transcript, ltu_prompt, ltu_response
from lalm_eval.models.openai_http import OpenAICompatibleModel, chat_payload
from lalm_eval.models.salmonn import SalmonnModel, salmonn_generate_cfg, salmonn_prompt
from lalm_eval.models.step_audio import StepAudio2Model, step_audio2_messages
from lalm_eval.models.vllm_backend import VLLMModel, sampling_kwargs

RATE = 16000


def tone(seconds: float = 0.5, rate: int = RATE, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def entry(adapter: str, **kwargs: Any) -> ModelEntry:
    return ModelEntry(name=kwargs.pop("name", "m"), adapter=adapter,
                      source=kwargs.pop("source", "org/model"), **kwargs)


def loaded(model: Any, client: Any, attr: str = "_client") -> Any:
    """Inject a stand-in through the documented seam."""
    setattr(model, attr, client)
    model._loaded = True
    return model


# ============================================================================================
# a real chat-completions server backed by a tiny random-weight causal LM
# ============================================================================================


class TinyChatLM:
    """2-layer LLaMA with random weights and a word-level tokenizer trained in code."""

    def __init__(self) -> None:
        import torch
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
        from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

        corpus = ["the dog barks in the park", "a cat sleeps on the sofa", "what sound is this",
                  "describe the scene", "rain falls on the roof", "people talk in a cafe",
                  "cars pass on the street", "hello world one two three four five six seven"]
        specials = ["[PAD]", "[UNK]", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
        raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        raw.pre_tokenizer = pre_tokenizers.Whitespace()
        raw.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=specials))
        tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>",
                                      pad_token="[PAD]", unk_token="[UNK]")
        tok.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} "
                             "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
        config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                             max_position_embeddings=256, initializer_range=0.5,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
        torch.manual_seed(0)
        self.torch = torch
        self.tokenizer = tok
        self.model = LlamaForCausalLM(config).eval()
        self.lock = threading.Lock()

    def chat(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, int]:
        """Greedy answer and the number of generated tokens."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)
        ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with self.lock, self.torch.no_grad():
            out = self.model.generate(**ids, max_new_tokens=max_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new = out[0, ids["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True), int(new.shape[0])


def _flatten(messages: list[dict[str, Any]], audio_info: list[dict[str, Any]]) -> list[dict]:
    """Text-only messages for the LM; audio parts are decoded and checked (ValueError)."""
    flat = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            texts = []
            for part in content:
                if part["type"] == "text":
                    texts.append(part["text"])
                elif part["type"] == "input_audio":
                    if part["input_audio"].get("format") != "wav":
                        raise ValueError("format must be wav")
                    raw = base64.b64decode(part["input_audio"]["data"], validate=True)
                    info = sf.info(io.BytesIO(raw))
                    if info.format != "WAV" or info.subtype != "PCM_16" or info.channels != 1:
                        raise ValueError(f"not a mono 16-bit WAV: {info}")
                    samples, rate = sf.read(io.BytesIO(raw), dtype="float32")
                    audio_info.append({"rate": rate, "n": len(samples),
                                       "peak": float(np.abs(samples).max())})
                else:
                    raise ValueError(f"unexpected part {part['type']}")
            content = " ".join(texts)
        flat.append({"role": message["role"], "content": content})
    return flat


class ChatServer:
    """``/v1/chat/completions`` on 127.0.0.1; behaviour chosen by the request's model name."""

    def __init__(self, lm: TinyChatLM) -> None:
        self.lm = lm
        self.calls: list[dict[str, Any]] = []
        self.audio: list[dict[str, Any]] = []
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802  (http.server naming)
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": "not found"})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model = body["model"]
                key = json.dumps(body["messages"], sort_keys=True)[-200:]
                with server.lock:
                    server.calls.append({"body": body,
                                         "auth": self.headers.get("Authorization")})
                    server.seen[model + key] = server.seen.get(model + key, 0) + 1
                    count = server.seen[model + key]
                if model == "broken":
                    self._send(500, {"error": {"message": "boom: model crashed"}})
                    return
                if model == "flaky" and count == 1:
                    self._send(503, {"error": "warming up"})
                    return
                if model == "limited" and count == 1:
                    self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
                    return
                if model == "slow":
                    time.sleep(1.0)
                    self._send(504, {"error": "too late"})  # the client has given up
                    return
                if model == "rejects":
                    self._send(400, {"error": "bad request: unknown parameter"})
                    return
                prompt = str(body["messages"][-1]["content"])
                time.sleep(0.02 * (len(prompt) % 4))  # finish out of order under concurrency
                try:
                    messages = _flatten(body["messages"], server.audio)
                except ValueError as exc:
                    self._send(400, {"error": str(exc)})
                    return
                text, n = server.lm.chat(messages, int(body["max_tokens"]))
                self._send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": n, "total_tokens": n},
                })

        class Server(ThreadingHTTPServer):
            daemon_threads = False  # server_close() waits for in-flight handlers
            block_on_close = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is expected here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def tiny_lm() -> TinyChatLM:
    return TinyChatLM()


@pytest.fixture
def server(tiny_lm: TinyChatLM):
    srv = ChatServer(tiny_lm)
    yield srv
    srv.stop()


def http_model(server: ChatServer, model: str = "tiny", **options: Any) -> OpenAICompatibleModel:
    opts = {"base_url": server.base_url, "model": model, "timeout": 10, "max_retries": 2,
            "backoff_s": 0.01, "max_backoff_s": 0.05, **options}
    return OpenAICompatibleModel(entry("openai_http", options=opts,
                                       decoding={"max_new_tokens": 6}))


PROMPTS = ["the dog barks", "what sound is this", "rain falls", "a cat sleeps", "people talk"]


def test_http_batch_answers_in_order_with_usage(server: ChatServer, tiny_lm: TinyChatLM):
    model = http_model(server, concurrency=3)
    requests = [Request(item_id=f"i{k}", task="generate", prompt=p,
                        system="you describe sounds" if k == 0 else None)
                for k, p in enumerate(PROMPTS)]
    responses = model.predict(requests)
    model.close()
    expected = [tiny_lm.chat(([{"role": "system", "content": "you describe sounds"}]
                              if k == 0 else []) + [{"role": "user", "content": p}], 6)
                for k, p in enumerate(PROMPTS)]
    assert len({text for text, _ in expected}) > 1  # the LM really depends on its input
    assert [r.error for r in responses] == [None] * len(PROMPTS)
    assert [(r.text, r.n_output_tokens) for r in responses] == expected
    bodies = [c["body"] for c in server.calls]
    assert all(b["temperature"] == 0 and b["seed"] == 0 and b["max_tokens"] == 6
               for b in bodies)
    assert sum(b["messages"][0]["role"] == "system" for b in bodies) == 1
    assert all(c["auth"] is None for c in server.calls)


def test_http_retries_server_errors_then_succeeds(server: ChatServer, tiny_lm: TinyChatLM):
    for name in ("flaky", "limited"):
        model = http_model(server, model=name, concurrency=1)
        (response,) = model.predict([Request(item_id="a", task="generate", prompt="rain falls")])
        assert response.error is None
        assert (response.text, response.n_output_tokens) == tiny_lm.chat(
            [{"role": "user", "content": "rain falls"}], 6)
    assert sum(c["body"]["model"] == "flaky" for c in server.calls) == 2
    assert sum(c["body"]["model"] == "limited" for c in server.calls) == 2


def test_http_persistent_500_is_a_per_item_error(server: ChatServer):
    model = http_model(server, model="broken", max_retries=2)
    responses = model.predict([Request(item_id="a", task="generate", prompt="rain falls"),
                               Request(item_id="b", task="generate", prompt=None)])
    assert responses[0].text is None
    assert "HTTP 500" in responses[0].error and "boom: model crashed" in responses[0].error
    assert "3 attempt" in responses[0].error
    assert "no prompt" in responses[1].error  # the second item fails on its own
    assert sum(c["body"]["model"] == "broken" for c in server.calls) == 3
    model.close()


def test_http_client_error_is_not_retried(server: ChatServer):
    model = http_model(server, model="rejects")
    (response,) = model.predict([Request(item_id="a", task="generate", prompt="x")])
    assert "HTTP 400" in response.error and "unknown parameter" in response.error
    assert len(server.calls) == 1


def test_http_timeout_is_a_per_item_error(server: ChatServer):
    model = http_model(server, model="slow", timeout=0.3, max_retries=1)
    start = time.perf_counter()
    (response,) = model.predict([Request(item_id="a", task="generate", prompt="rain falls")])
    assert time.perf_counter() - start < 1.5
    assert response.text is None and "timeout after 0.3 s" in response.error
    assert "2 attempt" in response.error


def test_http_unreachable_server_is_a_per_item_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = OpenAICompatibleModel(entry("openai_http", options={
        "base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 0}))
    (response,) = model.predict([Request(item_id="a", task="generate", prompt="x")])
    assert "connection error" in response.error


def test_http_audio_part_is_a_valid_wav_at_the_model_rate(server: ChatServer,
                                                           tiny_lm: TinyChatLM):
    model = http_model(server, audio=True)
    audio = tone(0.25)
    responses = model.predict([
        Request(item_id="a", task="generate", audio=audio, prompt="what sound is this"),
        Request(item_id="b", task="generate", audio=audio[:0], prompt="empty audio"),
    ])
    assert responses[0].error is None
    assert responses[0].text == tiny_lm.chat([{"role": "user",
                                               "content": "what sound is this"}], 6)[0]
    assert server.audio == [{"rate": RATE, "n": len(audio), "peak": pytest.approx(0.3, abs=1e-3)}]
    part = server.calls[0]["body"]["messages"][0]["content"][0]
    assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"
    assert "ValueError" in responses[1].error  # empty audio fails alone


def test_http_audio_on_text_only_entry_fails_per_item(server: ChatServer):
    model = http_model(server)
    (response,) = model.predict([Request(item_id="a", task="generate", audio=tone(),
                                         prompt="x")])
    assert "options.audio is false" in response.error
    assert server.calls == []


def test_http_api_key_comes_from_the_named_env_var(server: ChatServer,
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LALM_TEST_KEY", "sk-test-123")
    model = http_model(server, api_key_env="LALM_TEST_KEY")
    (response,) = model.predict([Request(item_id="a", task="generate", prompt="rain falls")])
    assert response.error is None
    assert server.calls[0]["auth"] == "Bearer sk-test-123"
    assert "sk-test-123" not in json.dumps(model.entry.fingerprint())
    monkeypatch.delenv("LALM_TEST_KEY")
    with pytest.raises(ModelError, match="LALM_TEST_KEY"):
        http_model(server, api_key_env="LALM_TEST_KEY").load()
    with pytest.raises(ModelError, match="never put an API key"):
        http_model(server, api_key="sk-oops")


def test_chat_payload_maps_decoding():
    payload = chat_payload("m", [], decoding_from({"max_tokens": 9, "temperature": 0.7,
                                                   "top_p": 0.9, "seed": 4}))
    assert payload == {"model": "m", "messages": [], "max_tokens": 9, "temperature": 0.7,
                       "seed": 4, "top_p": 0.9}


# ============================================================================================
# shared helpers (decoding.py, external_common.py)
# ============================================================================================


def test_decoding_defaults_are_greedy_and_validated():
    d = decoding_from({})
    assert d == Decoding() and not d.sampling and d.max_new_tokens == 512
    assert hf_generate_kwargs(d) == {"max_new_tokens": 512, "do_sample": False, "num_beams": 1}
    s = decoding_from({"do_sample": True, "top_p": 0.8, "max_tokens": 20})
    assert s.sampling and s.temperature == 1.0 and s.max_new_tokens == 20
    assert hf_generate_kwargs(s)["top_p"] == 0.8
    assert decoding_from({"do_sample": False, "temperature": 0.9}).temperature == 0.0
    with pytest.raises(ModelError, match="unknown"):
        decoding_from({"beam": 3})
    with pytest.raises(ModelError, match="positive"):
        decoding_from({"max_new_tokens": 0})


DESTA_ANSWER_PREFIX = "The correct answer is:"


def test_answer_prefix_stripping():
    assert strip_answer_prefix("  The correct answer is: \"dog\" ", [DESTA_ANSWER_PREFIX]) \
        == "\"dog\""
    assert strip_answer_prefix("the correct answer is:cat", [DESTA_ANSWER_PREFIX]) == "cat"
    assert strip_answer_prefix("I think the correct answer is: cat",
                               [DESTA_ANSWER_PREFIX]) == "I think the correct answer is: cat"


def test_repository_code_needs_requires_or_trust(tmp_path: Path):
    with pytest.raises(ModelError, match="requires: {repo: MoonshotAI/Kimi-Audio"):
        check_repository_code(entry("kimi_audio"), "MoonshotAI/Kimi-Audio")
    with pytest.raises(ModelError, match="must pin"):
        check_repository_code(entry("kimi_audio", requires={"repo": "MoonshotAI/Kimi-Audio"}),
                              "MoonshotAI/Kimi-Audio")
    check_repository_code(entry("kimi_audio", trust_remote_code=True), "MoonshotAI/Kimi-Audio")
    # a git checkout at another commit than the pin is refused
    git = tmp_path / "ckpt" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    req = {"repo": "kehanlu/DeSTA2.5-Audio", "revision": "5503dfc", "path": str(git.parent)}
    with pytest.raises(ModelError, match="pins 5503dfc"):
        check_repository_code(entry("desta25", requires=req), "kehanlu/DeSTA2.5-Audio")
    check_repository_code(entry("desta25", requires={**req, "revision": "aaaaaaa"}),
                          "kehanlu/DeSTA2.5-Audio")


def test_missing_upstream_package_names_module_pin_and_install():
    e = entry("kimi_audio", trust_remote_code=True,
              requires={"repo": "MoonshotAI/Kimi-Audio", "revision": "9a82a84"})
    with pytest.raises(ModelError) as info:
        KimiAudioModel(e).load()
    message = str(info.value)
    assert "kimia_infer.api.kimia" in message and "MoonshotAI/Kimi-Audio@9a82a84" in message
    assert "https://github.com/MoonshotAI/Kimi-Audio" in message and "check out 9a82a84" in message
    # Kimi's package runs the checkpoint's remote code: the pin alone is not enough
    with pytest.raises(ModelError, match="trust_remote_code"):
        KimiAudioModel(entry("kimi_audio", requires=e.requires)).load()
    with pytest.raises(ModelError, match="requires"):
        SalmonnModel(entry("salmonn")).load()


# ============================================================================================
# external LALM adapters through the _client seam
# ============================================================================================


class FakeKimi:
    """Stand-in for kimia_infer KimiAudio: checks the WAV it is given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def generate(self, chats: list[dict], output_type: str = "both", **sampling: Any):
        audio = [m["content"] for m in chats if m["message_type"] == "audio"]
        info = [sf.info(p) for p in audio]
        self.calls.append({"chats": chats, "output_type": output_type, "sampling": sampling,
                           "audio": [(i.samplerate, i.subtype, i.frames) for i in info]})
        text = next((m["content"] for m in chats if m["message_type"] == "text"), "")
        if "explode" in text:
            raise RuntimeError("CUDA out of memory")
        return None, f" heard {len(audio)} clip(s) "


def test_kimi_messages_and_sampling():
    assert kimi_messages("Transcribe:", "Be brief.", "/a.wav") == [
        {"role": "user", "message_type": "text", "content": "Be brief.\nTranscribe:"},
        {"role": "user", "message_type": "audio", "content": "/a.wav"}]
    assert kimi_messages(None, None, "/a.wav") == [
        {"role": "user", "message_type": "audio", "content": "/a.wav"}]
    sampling = kimi_sampling(decoding_from({}))
    assert sampling["text_temperature"] == 0.0 and sampling["max_new_tokens"] == 512


def test_kimi_call_path_with_stand_in():
    fake = FakeKimi()
    model = loaded(KimiAudioModel(entry("kimi_audio")), fake)
    audio = tone(0.5)
    responses = model.predict([
        Request(item_id="a", task="transcribe", audio=audio),
        Request(item_id="b", task="transcribe", audio=audio, prompt="explode now"),
        Request(item_id="c", task="transcribe"),
    ])
    assert responses[0].text == "heard 1 clip(s)" and responses[0].error is None
    assert responses[1].error == "RuntimeError: CUDA out of memory"
    assert "needs audio" in responses[2].error
    first = fake.calls[0]
    assert first["chats"][0]["content"] == "Please transcribe the following audio:"
    assert first["output_type"] == "text" and first["sampling"]["text_temperature"] == 0.0
    assert first["audio"] == [(RATE, "PCM_16", len(audio))]
    assert not Path(first["chats"][1]["content"]).exists()  # temp WAV removed


def test_step_audio2_messages_and_call_path():
    msgs = step_audio2_messages("What is this?", "You are a helpful assistant.", "/a.wav")
    assert msgs == [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "human", "content": [{"type": "text", "text": "What is this?"},
                                                  {"type": "audio", "audio": "/a.wav"}]},
                    {"role": "assistant", "content": None}]
    calls = []

    def fake_step(messages: list[dict], **kwargs: Any):
        calls.append((messages, kwargs))
        return [11, 12, 13], "  hello there ", []

    model = loaded(StepAudio2Model(entry("step_audio2", decoding={"max_new_tokens": 64})),
                   fake_step)
    (response,) = model.predict([Request(item_id="a", task="transcribe", audio=tone())])
    assert (response.text, response.n_output_tokens) == ("hello there", 3)
    messages, kwargs = calls[0]
    assert messages[0] == {"role": "system", "content": "请记录下你所听到的语音内容。"}
    assert [p["type"] for p in messages[1]["content"]] == ["audio"]
    assert kwargs == {"max_new_tokens": 64, "do_sample": False, "num_beams": 1}


def test_salmonn_prompt_and_call_path():
    assert salmonn_prompt("Describe it.") == \
        "USER: <Speech><SpeechHere></Speech> Describe it.\nASSISTANT:"
    cfg = salmonn_generate_cfg(decoding_from({}))
    assert cfg["do_sample"] is False and cfg["num_beams"] == 1 and cfg["max_new_tokens"] == 512

    class FakeRunner:
        template = "USER: {}\nASSISTANT:"

        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def generate(self, wav_path: str, prompts: list[str], cfg: dict) -> list[str]:
            self.calls.append((sf.info(wav_path).samplerate, prompts, cfg))
            return ["<s>a dog barks</s>"]

    runner = FakeRunner()
    model = loaded(SalmonnModel(entry("salmonn")), runner)
    responses = model.predict([Request(item_id="a", task="caption", audio=tone()),
                               Request(item_id="b", task="caption")])
    assert responses[0].text == "a dog barks"
    assert runner.calls[0][0] == RATE
    assert runner.calls[0][1] == ["USER: <Speech><SpeechHere></Speech> Please describe the "
                                  "audio in detail.\nASSISTANT:"]
    assert responses[1].error is not None


def test_ltu_as_prompt_transcript_and_response():
    assert ltu_prompt("What is said?", "hello") == \
        "### Instruction:\nWhat is said?\n\n### Input:\nhello\n\n### Response:\n"
    assert ltu_prompt("What is heard?", "") == \
        "### Instruction:\nWhat is heard?\n\n### Response:\n"
    assert ltu_clean_transcript(" Hello there. Thanks for watching!") == "Hello there. "
    assert ltu_response("<s> ### Instruction:\nx\n\n### Response:\n a dog barks</s>") == \
        "a dog barks"

    class FakeRunner:
        def __init__(self) -> None:
            self.prompts: list[str] = []

        def transcribe(self, wav_path: str) -> str:
            return " good morning Thank you for watching."

        def generate(self, prompt: str, wav_path: str, generation: dict) -> str:
            self.prompts.append(prompt)
            assert generation["do_sample"] is False
            return f"<s> {prompt} speech about the morning</s>"

    runner = FakeRunner()
    model = loaded(LtuAsModel(entry("ltu_as")), runner)
    (response,) = model.predict([Request(item_id="a", task="generate", audio=tone(),
                                         prompt="What is the speaker saying?")])
    assert response.text == "speech about the morning"
    assert "### Input:\ngood morning \n\n" in runner.prompts[0]


def test_desta_messages_prefix_and_call_path():
    assert desta_messages("Which one?", "Focus.", "/a.wav") == [
        {"role": "system", "content": "Focus."},
        {"role": "user", "content": "<|AUDIO|>\n\nWhich one?",
         "audios": [{"audio": "/a.wav", "text": None}]}]
    assert desta_messages("Hi", None, None) == [{"role": "user", "content": "Hi"}]

    class FakeDesta:
        def __init__(self) -> None:
            self.calls: list[dict] = []

        def generate(self, messages: list[dict], **kwargs: Any):
            audios = [a["audio"] for m in messages for a in m.get("audios", [])]
            assert all(os.path.exists(a) for a in audios)
            self.calls.append({"messages": messages, **kwargs})
            return SimpleNamespace(text=['The correct answer is: "dog barking"'],
                                   generated_ids=[[1, 2, 3, 4]])

    fake = FakeDesta()
    model = loaded(Desta25Model(entry("desta25")), fake)
    (response,) = model.predict([Request(item_id="a", task="generate", audio=tone(),
                                         prompt="What is heard?")])
    assert (response.text, response.n_output_tokens) == ('"dog barking"', 4)
    call = fake.calls[0]
    assert call["max_new_tokens"] == 512 and call["do_sample"] is False
    assert call["messages"][0] == {"role": "system",
                                   "content": "Focus on the audio clips and instructions."}


# ============================================================================================
# CLAP adapters
# ============================================================================================


def test_label_scores_hand_computed():
    audio, texts = [1.0, 0.0], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]  # cos = 1, 0, 1/sqrt(2)
    # softmax([1, 0, 0.70711]) = [e, 1, 2.02811] / 5.74640
    assert label_scores(audio, texts, False) == pytest.approx([0.47304, 0.17402, 0.35294],
                                                              abs=1e-5)
    # softmax([2, 0, 1.41421]) = [7.38906, 1, 4.11325] / 12.50231
    assert label_scores(audio, texts, False, scale=2) == pytest.approx(
        [0.59102, 0.07999, 0.32900], abs=1e-5)
    # sigmoid(1) = 0.73106, sigmoid(0) = 0.5, sigmoid(0.70711) = 0.66976
    assert label_scores(audio, texts, True) == pytest.approx([0.73106, 0.5, 0.66976], abs=1e-5)
    with pytest.raises(ValueError, match="sizes differ"):
        label_scores([1, 0, 0], texts, False)
    with pytest.raises(ValueError, match="zero-length"):
        label_scores([0, 0], texts, False)


class FakeMSClap:
    """Stand-in for msclap.CLAP: embeddings from word counts and audio length."""

    def __init__(self) -> None:
        import torch

        self.clap = SimpleNamespace(logit_scale=torch.tensor(np.log(10.0)))
        self.text_calls: list[list[str]] = []
        self.audio_rates: list[int] = []
        self.torch = torch

    def get_text_embeddings(self, texts: list[str]):
        self.text_calls.append(list(texts))
        return self.torch.tensor([[1.0, float("dog" in t), float("rain" in t)] for t in texts])

    def get_audio_embeddings(self, files: list[str], resample: bool = True):
        rows = []
        for f in files:
            info = sf.info(f)
            self.audio_rates.append(info.samplerate)
            rows.append([0.5, 1.0, 0.0])  # "sounds like a dog"
        return self.torch.tensor(rows)


def test_msclap_classify_and_embed_with_stand_in():
    fake = FakeMSClap()
    model = loaded(MSClapModel(entry("ms_clap", source="microsoft/msclap")), fake)
    audio = tone(0.3, rate=44100)
    single = model.predict([
        Request(item_id="a", task="classify", audio=audio, labels=("dog", "rain")),
        Request(item_id="b", task="classify", audio=audio, labels=("dog", "rain")),
        Request(item_id="c", task="classify", audio=audio, labels=()),
    ])
    # text embeddings [1,1,0] and [1,0,1]; audio [0.5,1,0] -> cos 0.94868, 0.31623; scale 10
    expected = label_scores([0.5, 1, 0], [[1, 1, 0], [1, 0, 1]], False, scale=10.0)
    assert single[0].scores == pytest.approx({"dog": expected[0], "rain": expected[1]})
    assert single[0].scores["dog"] == pytest.approx(0.99821, abs=1e-5)
    assert single[1].scores == single[0].scores
    assert "candidate labels" in single[2].error
    assert fake.text_calls == [["this is the sound of dog", "this is the sound of rain"]]
    assert fake.audio_rates == [44100, 44100]
    (multi,) = model.predict([Request(item_id="d", task="classify", audio=audio,
                                      labels=("dog", "rain"), multi_label=True)])
    assert multi.scores["dog"] == pytest.approx(1 / (1 + np.exp(-0.94868)), abs=1e-5)
    emb_text, = model.predict([Request(item_id="e", task="embed_text", prompt="rain")])
    assert emb_text.embedding == [1.0, 0.0, 1.0]
    emb_audio, = model.predict([Request(item_id="f", task="embed_audio", audio=audio)])
    assert emb_audio.embedding == [0.5, 1.0, 0.0]


def test_msclap_options_are_checked():
    with pytest.raises(ModelError, match="version"):
        MSClapModel(entry("ms_clap", options={"version": "2024"}))
    with pytest.raises(ModelError, match="label_template"):
        MSClapModel(entry("ms_clap", options={"label_template": "a sound"}))


class FakeASE:
    """Stand-in for MGA-CLAP's ASE: encode_* then codebook aggregation (msc)."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.codebook = torch.eye(2)
        self.audio_lengths: list[int] = []

    def encode_text(self, texts: list[str]):
        words = self.torch.tensor([[[1.0, 0.0], [0.0, float("rain" in t)]] for t in texts])
        return None, words, self.torch.ones(len(texts), 2)

    def encode_audio(self, wave):
        self.audio_lengths.append(int(wave.shape[-1]))
        return None, self.torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])

    def msc(self, embeds, codebook, attn_mask=None):
        return embeds.mean(dim=1) @ codebook


def test_mga_clap_with_stand_in_and_requirements(tmp_path: Path):
    fake = FakeASE()
    model = loaded(MGAClapModel(entry("mga_clap", options={"label_template": "{label} can be "
                                                                            "heard"})), fake)
    (response,) = model.predict([Request(item_id="a", task="classify", audio=tone(2.0, 32000),
                                         labels=("dog", "rain"))])
    # text: dog -> [0.5, 0], rain -> [0.5, 0.5]; audio [0, 1] -> cos 0, 0.70711; softmax
    assert response.scores == pytest.approx({"dog": 0.33024, "rain": 0.66976}, abs=1e-5)
    assert fake.audio_lengths == [320000]  # zero-padded to 10 s at 32 kHz
    with pytest.raises(ModelError, match="Ming-er/MGA-CLAP"):
        MGAClapModel(entry("mga_clap")).load()
    with pytest.raises(ModelError, match="requires.checkpoint"):
        MGAClapModel(entry("mga_clap", requires={"repo": "Ming-er/MGA-CLAP",
                                                 "revision": "887b624"})).load()


# ============================================================================================
# vLLM backend through the _engine seam
# ============================================================================================


class FakeSamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class FakeLLM:
    """Stand-in for vllm.LLM.chat: one output per conversation, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, Any]] = []

    def chat(self, conversations: list, sampling_params: Any = None, use_tqdm: bool = True,
             **kwargs: Any) -> list[Any]:
        self.calls.append((conversations, sampling_params))
        outputs = []
        for conv in conversations:
            user = conv[-1]["content"]
            text = user if isinstance(user, str) else " ".join(
                p.get("text", p["type"]) for p in user)
            if "BAD" in text:
                raise ValueError("prompt too long for max_model_len")
            outputs.append(SimpleNamespace(outputs=[SimpleNamespace(
                text=f"echo: {text}", token_ids=list(range(len(text.split()))))]))
        return outputs


def test_vllm_sampling_params_and_batched_chat():
    assert sampling_kwargs(decoding_from({})) == {"temperature": 0.0, "max_tokens": 512,
                                                  "seed": 0}
    engine = FakeLLM()
    model = loaded(VLLMModel(entry("vllm", decoding={"max_new_tokens": 32, "seed": 7})),
                   engine, "_engine")
    model._sampling_cls = FakeSamplingParams
    responses = model.predict([
        Request(item_id="a", task="generate", prompt="one two", system="judge"),
        Request(item_id="b", task="generate", prompt=None),
        Request(item_id="c", task="generate", prompt="three"),
    ])
    assert [(r.text, r.n_output_tokens) for r in responses[::2]] == [("echo: one two", 2),
                                                                    ("echo: three", 1)]
    assert "no prompt" in responses[1].error
    (conversations, params), = engine.calls  # one batched call
    assert conversations[0] == [{"role": "system", "content": "judge"},
                                {"role": "user", "content": "one two"}]
    assert params.kwargs == {"temperature": 0.0, "max_tokens": 32, "seed": 7}


def test_vllm_isolates_an_item_that_breaks_the_batch():
    engine = FakeLLM()
    model = loaded(VLLMModel(entry("vllm")), engine, "_engine")
    model._sampling_cls = FakeSamplingParams
    responses = model.predict([Request(item_id=str(i), task="generate", prompt=p)
                               for i, p in enumerate(["ok one", "BAD item", "ok two"])])
    assert responses[0].text == "echo: ok one" and responses[2].text == "echo: ok two"
    assert responses[1].error == "ValueError: prompt too long for max_model_len"
    assert len(engine.calls) == 4  # the batch, then one call per item


def test_vllm_audio_content_part():
    engine = FakeLLM()
    model = loaded(VLLMModel(entry("vllm", options={"audio": True})), engine, "_engine")
    model._sampling_cls = FakeSamplingParams
    audio = tone(0.2)
    (response,) = model.predict([Request(item_id="a", task="generate", audio=audio,
                                         prompt="what is it")])
    assert response.text == "echo: audio_url what is it"
    part = engine.calls[0][0][0][-1]["content"][0]
    prefix = "data:audio/wav;base64,"
    assert part["audio_url"]["url"].startswith(prefix)
    samples, rate = sf.read(io.BytesIO(base64.b64decode(part["audio_url"]["url"][len(prefix):])))
    assert rate == RATE and len(samples) == len(audio)
    text_only = loaded(VLLMModel(entry("vllm")), FakeLLM(), "_engine")
    text_only._sampling_cls = FakeSamplingParams
    (bad,) = text_only.predict([Request(item_id="a", task="generate", audio=audio, prompt="x")])
    assert "options.audio is false" in bad.error


def test_vllm_config_errors_and_missing_package():
    with pytest.raises(ModelError, match="may not set"):
        VLLMModel(entry("vllm", options={"engine": {"trust_remote_code": True}}))
    with pytest.raises(ModelError, match="beam search"):
        VLLMModel(entry("vllm", decoding={"num_beams": 4}))
    with pytest.raises(ModelError, match="pip install vllm"):
        VLLMModel(entry("vllm")).load()
