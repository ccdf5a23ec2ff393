"""OpenAI-compatible chat-completions backend over HTTP (vLLM serve, SGLang, hosted APIs).

``POST {base_url}/chat/completions`` with ``model``, ``messages``, ``max_tokens``,
``temperature`` (0 by default: greedy) and ``seed``; the answer is
``choices[0].message.content`` and ``usage.completion_tokens`` the output token count.
With ``options.audio: true`` the request audio is sent as an ``input_audio`` content part
(base64 of a 16-bit PCM WAV at the entry's sample rate, ``format: "wav"``).

Options: ``base_url`` (required, e.g. ``http://127.0.0.1:8000/v1``), ``model`` (served model
name, default ``entry.source``), ``api_key_env`` (name of the environment variable holding
the key; keys never go into config), ``timeout`` (s per attempt, 60), ``max_retries``
(retries after the first attempt on 429, 5xx, timeouts and connection errors; 3),
``backoff_s`` (first retry delay, doubled per retry; 0.5), ``max_backoff_s`` (cap, also on
``Retry-After``; 8), ``concurrency`` (parallel requests, 4), ``audio`` (false),
``extra_body`` (extra top-level request fields).
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import requests

from lalm_eval.audio import load_audio
from lalm_eval.models.base import AudioModel, ModelEntry, ModelError, Request, Response, check_batch
from lalm_eval.models.decoding import Decoding, decoding_from, given_fields
from lalm_eval.models.external_common import wav_bytes

_RESERVED = {"model", "messages", "max_tokens", "temperature", "seed", "top_p"}


class HTTPRequestError(RuntimeError):
    """A chat-completions call that failed (status and body excerpt in the message)."""


def request_wav(request: Request, sample_rate: int) -> bytes:
    """The request's audio as WAV bytes at ``sample_rate`` (loaded from the path if needed)."""
    if request.audio is not None:
        return wav_bytes(request.audio, sample_rate)
    if request.audio_path:
        return wav_bytes(load_audio(request.audio_path, sample_rate).samples, sample_rate)
    raise ValueError("request has no audio")


def audio_content_part(wav: bytes, kind: str = "input_audio") -> dict[str, Any]:
    """An OpenAI-style audio content part: ``input_audio`` or ``audio_url`` (data URL)."""
    data = base64.b64encode(wav).decode("ascii")
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
    if kind == "audio_url":
        return {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{data}"}}
    raise ValueError(f"unknown audio part kind {kind!r} (input_audio or audio_url)")


def chat_messages(request: Request, sample_rate: int, send_audio: bool,
                  audio_kind: str = "input_audio") -> list[dict[str, Any]]:
    """Chat messages for one request: optional system turn, then the user turn.

    Text-only requests get a plain string content; with audio the user content is a list of
    parts (audio first, then the prompt text). Audio on a text-only entry is an error, not
    silently dropped.
    """
    has_audio = request.audio is not None or bool(request.audio_path)
    if has_audio and not send_audio:
        raise ValueError("request carries audio but options.audio is false (text-only model)")
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    if has_audio:
        parts: list[dict[str, Any]] = [audio_content_part(request_wav(request, sample_rate),
                                                          audio_kind)]
        if request.prompt:
            parts.append({"type": "text", "text": request.prompt})
        messages.append({"role": "user", "content": parts})
    elif request.prompt:
        messages.append({"role": "user", "content": request.prompt})
    else:
        raise ValueError("nothing to send: no prompt and no audio")
    return messages


def chat_payload(model: str, messages: list[dict[str, Any]], decoding: Decoding,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of a chat-completions call with our decoding settings."""
    payload: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": decoding.max_new_tokens,
        "temperature": decoding.temperature,
        "seed": decoding.seed if decoding.seed is not None else 0,
    }
    payload.update(given_fields(decoding, "top_p"))
    payload.update(extra or {})
    return payload


def parse_completion(body: Mapping[str, Any]) -> tuple[str, int | None]:
    """(text, completion_tokens) from a chat-completions response body."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise HTTPRequestError(f"malformed response: no choices[0].message.content "
                               f"({str(body)[:200]})") from exc
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    if content is None:
        raise HTTPRequestError("response has no text content")
    usage = body.get("usage") or {}
    tokens = usage.get("completion_tokens")
    return str(content), (int(tokens) if tokens is not None else None)


class OpenAICompatibleModel(AudioModel):
    """Any server speaking the OpenAI chat-completions protocol (see module docstring)."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"generate"})
    #: checked at config time; ``extra_body`` is free-form inside
    option_keys: ClassVar[frozenset[str] | None] = frozenset(
        {"base_url", "model", "api_key_env", "timeout", "max_retries", "backoff_s",
         "max_backoff_s", "concurrency", "audio", "extra_body"})

    def __init__(self, entry: ModelEntry, models: Mapping[str, dict[str, Any]] | None = None):
        super().__init__(entry, models)
        opts = entry.options
        if "api_key" in opts:
            raise ModelError(f"models.{entry.name}: never put an API key in config; store it "
                             "in an environment variable and name it in options.api_key_env")
        if not opts.get("base_url"):
            raise ModelError(f"models.{entry.name}: options.base_url is required")
        self.base_url = str(opts["base_url"]).rstrip("/")
        self.model_id = str(opts.get("model") or entry.source)
        self.timeout = float(opts.get("timeout", 60))
        self.max_retries = int(opts.get("max_retries", 3))
        self.backoff_s = float(opts.get("backoff_s", 0.5))
        self.max_backoff_s = float(opts.get("max_backoff_s", 8.0))
        self.concurrency = max(1, int(opts.get("concurrency", 4)))
        self.send_audio = bool(opts.get("audio", False))
        self.extra_body = dict(opts.get("extra_body") or {})
        clash = _RESERVED & set(self.extra_body)
        if clash:
            raise ModelError(f"models.{entry.name}: extra_body may not set {sorted(clash)}")
        if self.timeout <= 0 or self.max_retries < 0:
            raise ModelError(f"models.{entry.name}: timeout must be > 0, max_retries >= 0")
        self.decoding = decoding_from(entry.decoding)
        self._headers: dict[str, str] = {"Content-Type": "application/json"}
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _load(self) -> None:
        env = self.entry.options.get("api_key_env")
        if env:
            key = os.environ.get(str(env))
            if not key:
                raise ModelError(f"models.{self.entry.name}: environment variable {env} "
                                 "(options.api_key_env) is not set")
            self._headers["Authorization"] = f"Bearer {key}"

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff_s * (2 ** attempt)
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        return min(delay, self.max_backoff_s)

    def post(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with bounded retries on 429/5xx/timeouts; raises HTTPRequestError."""
        attempts = self.max_retries + 1
        last = ""
        for attempt in range(attempts):
            retry_after = None
            try:
                resp = self._session().post(self.url, json=payload, headers=self._headers,
                                            timeout=self.timeout)
            except requests.Timeout:
                last = f"timeout after {self.timeout:g} s"
            except requests.ConnectionError as exc:
                last = f"connection error ({exc})"
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError as exc:
                        raise HTTPRequestError(f"HTTP 200 with a non-JSON body: "
                                               f"{resp.text[:300]!r}") from exc
                last = f"HTTP {resp.status_code}: {resp.text[:300]!r}"
                if resp.status_code != 429 and resp.status_code < 500:
                    raise HTTPRequestError(last)
                retry_after = resp.headers.get("Retry-After")
            if attempt + 1 < attempts:
                time.sleep(self._delay(attempt, retry_after))
        raise HTTPRequestError(f"{last} (gave up after {attempts} attempt(s))")

    def _answer(self, request: Request) -> Response:
        try:
            messages = chat_messages(request, self.sample_rate or 16000, self.send_audio)
            body = self.post(chat_payload(self.model_id, messages, self.decoding,
                                          self.extra_body))
            text, tokens = parse_completion(body)
            return Response(text=text, n_output_tokens=tokens)
        except Exception as exc:  # one bad item must not fail the batch
            return Response.failed(f"{type(exc).__name__}: {exc}")

    def predict(self, requests: list[Request]) -> list[Response]:
        check_batch(requests, self.capabilities)
        self.load()
        if self.concurrency == 1 or len(requests) == 1:
            return [self._answer(r) for r in requests]
        if self._pool is None:  # kept for the model's lifetime so threads reuse connections
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency,
                                            thread_name_prefix=f"http-{self.entry.name}")
        return list(self._pool.map(self._answer, requests))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
