"""Tiny random-weight parts for training tests: a word-level LLaMA and a toy audio task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

#: the toy task: is the tone low or high? (a log-mel encoder separates them easily)
TONES = {"low": 300.0, "high": 2400.0}
PROMPT = "is the tone low or high ?"
WORDS = ["is", "the", "tone", "low", "or", "high", "?", "a", "sound", "what"]


def save_tiny_llm(folder: Path, seed: int = 0) -> Path:
    """A 2-layer LLaMA (hidden 32) with a word-level tokenizer, saved as a transformers
    folder (what a hub snapshot looks like); eos is ``</s>``. The wide initialisation lets
    the frozen output layer reach confident logits (with 0.02 a hidden-32 model's logits
    stay within about +-0.6, which caps how far the loss can fall)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "<s>", "</s>", "<|user|>", "<|assistant|>"]
    vocab = {token: i for i, token in enumerate(specials + WORDS)}
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>",
                                        pad_token="[PAD]", unk_token="[UNK]")
    tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} "
                               "{% endfor %}{% if add_generation_prompt %}<|assistant|>"
                               "{% endif %}")
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=512, initializer_range=0.3,
                         bos_token_id=vocab["<s>"],
                         eos_token_id=vocab["</s>"], pad_token_id=vocab["[PAD]"])
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tone(frequency: float, seconds: float, seed: int, rate: int = 16000) -> np.ndarray:
    """A tone with a little noise and a random phase, so no two clips are equal."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * frequency * (1 + 0.02 * rng.standard_normal()) * t
                     + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def write_tone_set(folder: Path, n_train: int = 16, n_heldout: int = 4,
                   seconds: float = 0.5) -> Path:
    """A training set (docs/training.md) of tone clips: target "low" or "high"."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_train + n_heldout):
        label = "low" if i % 2 == 0 else "high"
        path = folder / f"tone{i:03d}.wav"
        sf.write(path, tone(TONES[label], seconds, seed=i), 16000, subtype="PCM_16")
        rows.append({"item_id": f"tone{i:03d}", "audio": path.name, "prompt": PROMPT,
                     "target": label, "split": "train" if i < n_train else "heldout"})
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data
