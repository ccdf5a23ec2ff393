"""Repository-code adapters loaded end to end against stand-ins laid out like upstream (issue 17).

Each test copies a folder of ``tests/data/repo_standins/`` (see its README) into ``tmp_path``
as the model entry's ``requires.path`` (with a ``.git/HEAD`` at the pinned commit), so the
adapter's real ``_load`` runs: the import paths, the checkout checks, the config handling and
the dtype casts. The stand-ins mirror upstream's call surfaces (signatures, assertions, side
effects) and name the upstream file and line they mirror; they hold no upstream code.

One test (or more) per finding of the issue: LTU-AS's fp16 LayerNorm (1), SALMONN's branch,
``prompt_path`` and decoding (2), DeSTA2.5's ignored revision (3), Step-Audio 2's checkout (4),
MS-CLAP on the GPU and its environment (5), MGA-CLAP's checkpoint, device and imports (6),
Kimi-Audio's decoding, log file and pin (7); then the per-family environments.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from lalm_eval.models.base import ModelEntry, ModelError, Request
from lalm_eval.models.clap_external import (
    MGA_UNUSED_IMPORTS,
    MGAClapModel,
    MSClapModel,
    compatible_state_dict,
    stand_in_unused_imports,
)
from lalm_eval.models.decoding import decoding_from, hf_generate_kwargs
from lalm_eval.models.desta import Desta25Model
from lalm_eval.models.environments import (
    DEFAULT_ENV,
    FAMILY_ENVS,
    INFERENCE_RUNTIME,
    conda_env,
    rule_conda_env,
)
from lalm_eval.models.kimi_audio import KimiAudioModel
from lalm_eval.models.ltu import LTU_FORK_PATHS, LtuAsModel, convert_params_to_float32
from lalm_eval.models.registry import ADAPTERS
from lalm_eval.models.salmonn import SalmonnModel
from lalm_eval.models.step_audio import StepAudio2Model

REPO = Path(__file__).resolve().parents[1]
STANDINS = Path(__file__).resolve().parent / "data" / "repo_standins"
RATE = 16000
#: the pins the stand-ins stand for (full ids as in config/config.yaml, or the documented one)
PINS = {
    "kimi_audio": ("MoonshotAI/Kimi-Audio", "faedaac1a45aa5eacd0f466e02fb4ea1e4f56060"),
    "step_audio2": ("stepfun-ai/Step-Audio2", "c22bfade1579c55aa6cffbce40094fd5770b5331"),
    "salmonn": ("bytedance/SALMONN", "a58bba7"),
    "ltu": ("YuanGongND/ltu", "bd646a4ff924417dcc9fd16c53a806db4760c885"),
    "desta": ("kehanlu/DeSTA2.5-Audio", "74ef72e"),
    "mga_clap": ("Ming-er/MGA-CLAP", "887b624"),
}


def tone(seconds: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def entry(adapter: str, **kwargs: Any) -> ModelEntry:
    return ModelEntry(name=kwargs.pop("name", "m"), adapter=adapter,
                      source=kwargs.pop("source", "org/model"), **kwargs)


@pytest.fixture
def imports(tmp_path: Path):
    """Undo the test's imports: ``sys.path`` restored, modules imported from ``tmp_path`` (the
    stand-ins) dropped, and modules hidden with ``hide(*top_level_names)`` put back."""
    saved_path = list(sys.path)
    saved = dict(sys.modules)
    hidden: set[str] = set()

    def hide(*names: str) -> None:
        hidden.update(names)
        for key in list(sys.modules):
            if key.split(".")[0] in names:
                del sys.modules[key]

    yield hide
    sys.path[:] = saved_path
    root = str(tmp_path.resolve())
    for key, module in list(sys.modules.items()):
        file = str(getattr(module, "__file__", "") or "")
        if key not in saved and (file.startswith(root) or key.split(".")[0] in hidden
                                 or key.split(".")[0] in MGA_UNUSED_IMPORTS):
            del sys.modules[key]
    for key, module in saved.items():
        if key.split(".")[0] in hidden:
            sys.modules[key] = module


def checkout(tmp_path: Path, name: str) -> Path:
    """A copy of stand-in ``name`` as a git checkout at its pin (``.git/HEAD`` only)."""
    target = tmp_path / "code" / name
    shutil.copytree(STANDINS / name, target)
    (target / ".git").mkdir()
    revision = PINS[name][1]
    (target / ".git" / "HEAD").write_text(revision.ljust(40, "0") + "\n")
    return target


def requires(name: str, path: Path | None, **extra: Any) -> dict[str, Any]:
    repo, revision = PINS[name]
    out: dict[str, Any] = {"repo": repo, "revision": revision, **extra}
    if path is not None:
        out["path"] = str(path)
    return out


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The stand-in PyPI packages (msclap, whisper_at, skimage, loguru, sentence_transformers)
    first on ``sys.path``."""
    target = tmp_path / "site"
    shutil.copytree(STANDINS / "site", target)
    sys.path.insert(0, str(target))
    return target


def full_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


# ============================================================================================
# 1. LTU-AS: fp16 LLaMA with the audio encoder's LayerNorms back in fp32
# ============================================================================================


def ltu_weights(tmp_path: Path) -> dict[str, str]:
    """Files LTU-AS's options name: the vicuna folder, the LoRA .bin, the Whisper .pt."""
    import torch

    base = tmp_path / "pretrained_mdls" / "vicuna_ltuas"
    base.mkdir(parents=True)
    (base / "config.json").write_text(json.dumps(
        {"hidden_size": 8, "vocab_size": 256, "audio_rep_dim": 16}))
    lora = tmp_path / "pretrained_mdls" / "ltuas_long_noqa_a6.bin"
    torch.save({}, lora)
    whisper = tmp_path / "pretrained_mdls" / "large-v1.pt"
    dims = {"n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 16, "n_audio_head": 2,
            "n_audio_layer": 32, "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 16,
            "n_text_head": 2, "n_text_layer": 1}
    torch.save({"dims": dims, "model_state_dict": {}}, whisper)
    return {"base_model": str(base), "checkpoint": str(lora),
            "whisper_feature_checkpoint": str(whisper)}


def test_ltu_fork_layernorm_fails_in_fp16_unless_cast_back(tmp_path: Path, imports):
    import torch

    code = checkout(tmp_path, "ltu")
    imports("transformers", "peft")
    for sub in LTU_FORK_PATHS:
        sys.path.insert(0, str(code / sub))
    transformers = importlib.import_module("transformers")
    weights = ltu_weights(tmp_path)
    model = transformers.LlamaForCausalLM.from_pretrained(weights["base_model"],
                                                          torch_dtype=torch.float16)
    audio = torch.ones(1, 32, 25, 16, dtype=torch.float16)
    ids = torch.tensor([[1, 50, 60]])
    with pytest.raises(RuntimeError, match="mixed dtype|expected"):
        model(input_ids=ids, audio_input=audio)  # what every LTU-AS item hit before
    converted = convert_params_to_float32(model, torch)
    assert converted == ["model.audio_encoder.attn_ln.weight", "model.audio_encoder.attn_ln.bias",
                         "model.audio_encoder.mlp_ln.weight", "model.audio_encoder.mlp_ln.bias"]
    assert model(input_ids=ids, audio_input=audio).logits.dtype == torch.float16


def test_ltu_as_loads_its_checkout_in_fp16_and_answers(tmp_path: Path, imports, site):
    import torch

    code = checkout(tmp_path, "ltu")
    imports("transformers", "peft", "whisper", "whisper_at", "skimage")
    model = LtuAsModel(entry(
        "ltu_as", requires=requires("ltu", code),
        decoding={"max_new_tokens": 256, "do_sample": False},
        options={**ltu_weights(tmp_path), "device": "cpu", "dtype": "float16"}))
    (response,) = model.predict([Request(item_id="a", task="generate", audio=tone(12.0),
                                         prompt="What can be heard?")])
    assert response.error is None and response.text == "a dog barks"
    runner = model._client
    llama = runner.model.base_model.model
    # imported from the checkout: the forks and the modified Whisper
    assert Path(sys.modules["transformers"].__file__).is_relative_to(code)
    assert Path(sys.modules["whisper.model"].__file__).is_relative_to(code)
    dtypes = {name: p.dtype for name, p in llama.named_parameters()}
    assert {n for n, d in dtypes.items() if d == torch.float32} == set(runner.converted)
    assert dtypes["model.embed_tokens.weight"] == torch.float16
    settings = llama.last_generation_config.settings
    assert settings["do_sample"] is False and settings["max_new_tokens"] == 256
    assert (settings["bos_token_id"], settings["eos_token_id"], settings["pad_token_id"]) == \
        (1, 2, 0)


def test_ltu_as_decoding_choice_is_documented_and_upstream_is_one_entry_away():
    ltu = full_config()["models"]["ltu_as"]
    assert ltu["decoding"] == {"max_new_tokens": 256, "do_sample": False}
    assert len(ltu["requires"]["revision"]) == 40 and ltu["requires"]["path"]
    # upstream's demo (inference_gradio.py): sampled, temperature 0.1, top_p 0.95, top_k 500,
    # repetition penalty 1.1, 500 new tokens: docs/models.md gives this entry
    upstream = {"do_sample": True, "temperature": 0.1, "top_p": 0.95, "top_k": 500,
                "repetition_penalty": 1.1, "max_new_tokens": 500}
    assert hf_generate_kwargs(decoding_from(upstream)) == {
        "max_new_tokens": 500, "do_sample": True, "num_beams": 1, "temperature": 0.1,
        "top_p": 0.95, "top_k": 500, "repetition_penalty": 1.1}
    docs = (REPO / "docs" / "models.md").read_text()
    assert "temperature: 0.1, top_p: 0.95, top_k: 500, repetition_penalty: 1.1" in docs


# ============================================================================================
# 2. SALMONN: branch salmonn, prompt_path against the checkout, upstream's beam search
# ============================================================================================


def salmonn_files(tmp_path: Path) -> dict[str, str]:
    import torch

    whisper = tmp_path / "whisper-large-v2"
    whisper.mkdir()
    (whisper / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 80,
        "sampling_rate": 16000, "hop_length": 160, "chunk_length": 30, "n_fft": 400,
        "padding_value": 0.0, "return_attention_mask": False}))
    ckpt = tmp_path / "salmonn_7b_v0.pth"
    torch.save({"model": {}}, ckpt)
    return {"whisper_path": str(whisper), "llama_path": str(tmp_path / "vicuna"),
            "ckpt": str(ckpt)}


def test_salmonn_loads_branch_checkout_from_another_working_directory(
        tmp_path: Path, imports, monkeypatch):
    code = checkout(tmp_path, "salmonn")
    imports("models", "utils")
    work = tmp_path / "run"
    work.mkdir()
    monkeypatch.chdir(work)  # prompt_path is relative; the run's cwd is not the checkout
    model = SalmonnModel(entry("salmonn", requires=requires("salmonn", code),
                               options={**salmonn_files(tmp_path), "device": "cpu"}))
    (response,) = model.predict([Request(item_id="a", task="caption", audio=tone())])
    assert response.error is None and response.text == "a dog barks"
    upstream = model._client.model
    assert Path(sys.modules["models.salmonn"].__file__).is_relative_to(code)
    assert upstream.prompt_dict["asr"][0].startswith("USER: <Speech><SpeechHere></Speech>")
    (call,) = upstream.calls
    assert call["spectrogram"] == (1, 80, 3000)
    # upstream's decoding: the decode config's generate section (num_beams 4, 200 tokens)
    assert (call["num_beams"], call["max_new_tokens"], call["do_sample"]) == (4, 200, False)
    assert call["prompts"] == ["USER: <Speech><SpeechHere></Speech> Please describe the audio "
                               "in detail.\nASSISTANT:"]


def test_salmonn_entry_decoding_overrides_only_the_keys_it_sets(tmp_path: Path, imports):
    code = checkout(tmp_path, "salmonn")
    imports("models", "utils")
    model = SalmonnModel(entry("salmonn", requires=requires("salmonn", code),
                               decoding={"num_beams": 1, "max_new_tokens": 32},
                               options={**salmonn_files(tmp_path), "device": "cpu"}))
    model.predict([Request(item_id="a", task="transcribe", audio=tone())])
    (call,) = model._client.model.calls
    assert (call["num_beams"], call["max_new_tokens"], call["top_p"]) == (1, 32, 0.9)


def test_salmonn_emptied_main_is_refused_with_the_branch_to_fetch(tmp_path: Path):
    code = tmp_path / "SALMONN"
    (code / ".git").mkdir(parents=True)
    (code / ".git" / "HEAD").write_text("b50bcd1".ljust(40, "0") + "\n")
    (code / "README.md").write_text("cleaned\n")
    e = entry("salmonn", requires={"repo": "bytedance/SALMONN", "revision": "b50bcd1",
                                   "path": str(code)})
    with pytest.raises(ModelError) as info:
        SalmonnModel(e).load()
    message = str(info.value)
    assert "b50bcd1" in message and "branch salmonn" in message and "a58bba7" in message
    assert f"git -C {code} fetch origin" in message


# ============================================================================================
# 3. DeSTA2.5: the pinned snapshot, not the latest weights
# ============================================================================================


def test_desta_loads_the_pinned_snapshot_folder(tmp_path: Path, imports, monkeypatch):
    import huggingface_hub

    code = checkout(tmp_path, "desta")
    imports("desta")
    pinned, latest = tmp_path / "snapshots" / "pinned", tmp_path / "snapshots" / "latest"
    for folder in (pinned, latest):
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_text(folder.name)
    downloads: list[tuple] = []

    def snapshot_download(repo_id: str, revision: str | None = None, **kwargs: Any) -> str:
        downloads.append(("snapshot", repo_id, revision))
        return str(pinned if revision == "0123abcd" else latest)

    def hf_hub_download(repo_id: str, filename: str, revision: str | None = None,
                        **kwargs: Any) -> str:
        downloads.append(("file", repo_id, revision))
        return str((pinned if revision == "0123abcd" else latest) / filename)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    model = Desta25Model(entry("desta25", source="DeSTA-ntu/DeSTA2.5-Audio-Llama-3.1-8B",
                               revision="0123abcd", trust_remote_code=True,
                               requires=requires("desta", code), options={"device": "cpu"}))
    (response,) = model.predict([Request(item_id="a", task="generate", audio=tone(),
                                         prompt="What is heard?")])
    assert response.error is None and response.text == '"dog" (pinned)'
    assert downloads == [("snapshot", "DeSTA-ntu/DeSTA2.5-Audio-Llama-3.1-8B", "0123abcd")]
    (call,) = model._client.calls
    assert (call["do_sample"], call["max_new_tokens"]) == (False, 512)


# ============================================================================================
# 4. Step-Audio 2: the checkout is required, and the error says how to make it
# ============================================================================================


def test_step_audio2_without_checkout_gives_the_commands(tmp_path: Path):
    e = entry("step_audio2", trust_remote_code=True, requires=requires("step_audio2", None))
    with pytest.raises(ModelError) as info:
        StepAudio2Model(e).load()
    message = str(info.value)
    rev = PINS["step_audio2"][1]
    assert "git clone https://github.com/stepfun-ai/Step-Audio2 resources/code/Step-Audio2" \
        in message
    assert f"checkout {rev}" in message and "models.m.requires.path" in message
    assert "utils and device_utils" in message
    missing = entry("step_audio2", trust_remote_code=True,
                    requires=requires("step_audio2", tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="git clone https://github.com/stepfun-ai/Step-Audio2"):
        StepAudio2Model(missing).load()


def test_config_step_audio2_entry_is_complete():
    step = full_config()["models"]["step_audio2_mini"]
    assert step["requires"]["path"] and len(step["requires"]["revision"]) == 40
    assert step["requires"]["revision"].startswith("c22bfad")


def test_step_audio2_imports_its_checkout_top_level_modules(tmp_path: Path, imports):
    code = checkout(tmp_path, "step_audio2")
    imports("utils", "device_utils", "stepaudio2")
    weights = tmp_path / "Step-Audio-2-mini"
    weights.mkdir()
    model = StepAudio2Model(entry("step_audio2", source=str(weights), trust_remote_code=True,
                                  decoding={"max_new_tokens": 256},
                                  requires=requires("step_audio2", code)))
    (response,) = model.predict([Request(item_id="a", task="transcribe", audio=tone())])
    assert (response.text, response.n_output_tokens, response.error) == ("a dog barks", 3, None)
    assert Path(sys.modules["utils"].__file__).is_relative_to(code)
    (call,) = model._client.calls
    assert call["n_audio"] == 1
    assert call["generation_config"] == {"max_new_tokens": 256, "do_sample": False,
                                         "num_beams": 1}


def test_a_shadowed_upstream_module_is_refused(tmp_path: Path, imports):
    code = checkout(tmp_path, "step_audio2")
    imports("utils", "device_utils", "stepaudio2")
    sys.modules["utils"] = types.ModuleType("utils")  # another "utils" imported first
    sys.modules["utils"].__file__ = str(tmp_path / "elsewhere" / "utils.py")
    sys.modules["utils"].load_audio = None
    weights = tmp_path / "weights"
    weights.mkdir()
    model = StepAudio2Model(entry("step_audio2", source=str(weights), trust_remote_code=True,
                                  requires=requires("step_audio2", code)))
    with pytest.raises(ModelError, match="'utils' was imported from .*elsewhere.*shadows"):
        model.load()


# ============================================================================================
# 5. MS-CLAP: on the GPU when there is one; its own environment
# ============================================================================================


def test_msclap_uses_cuda_when_available(tmp_path: Path, imports, site, monkeypatch):
    import torch

    imports("msclap")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    weights = tmp_path / "CLAP_weights_2023.pth"
    weights.write_bytes(b"")

    def wrapper(**options: Any) -> Any:
        model = MSClapModel(entry("ms_clap", options={"weights": str(weights), **options}))
        model.load()
        return model._client

    assert wrapper().use_cuda is True  # was False: the model ran on the CPU of a GPU node
    assert wrapper(device="auto").use_cuda is True
    assert wrapper(device="cpu").use_cuda is False
    assert wrapper(use_cuda=False).use_cuda is False
    assert full_config()["models"]["ms_clap"]["options"]["device"] == "auto"


def test_msclap_environment_has_numpy_below_2_and_transformers_below_5():
    pins = env_pins("ms_clap")
    assert pins["msclap"] == "1.3.4"
    assert int(pins["numpy"].split(".")[0]) < 2 and int(pins["transformers"].split(".")[0]) < 5
    assert conda_env(full_config()["models"]["ms_clap"]) == "envs/ms_clap.yaml"


# ============================================================================================
# 6. MGA-CLAP: BERT position_ids in the checkpoint, Sparsemax on CUDA, unused imports
# ============================================================================================


def mga_checkpoint(tmp_path: Path, code: Path, extra: dict[str, Any]) -> Path:
    """A checkpoint of the stand-in ASE as MGA-CLAP's was saved: with BERT's position_ids."""
    import torch

    sys.path.insert(0, str(code))
    ase = importlib.import_module("models.ase_model")
    config = yaml.safe_load((code / "settings" / "inference_example.yaml").read_text())
    state = dict(ase.ASE(config).state_dict())
    assert "text_encoder.text_encoder.embeddings.position_ids" not in state  # non-persistent
    state.update(extra)
    path = tmp_path / "model.pt"
    torch.save({"model": state}, path)
    return path


def test_mga_clap_loads_upstream_checkpoint_and_runs_on_cpu(tmp_path: Path, imports, site):
    import torch

    code = checkout(tmp_path, "mga_clap")
    imports("models", "tools", "loguru", "sentence_transformers")
    assert stand_in_unused_imports(MGA_UNUSED_IMPORTS) == \
        ["wandb", "sed_scores_eval", "sed_scores_eval.utils", "sed_scores_eval.utils.scores"]
    position_ids = {"text_encoder.text_encoder.embeddings.position_ids":
                    torch.arange(32).expand((1, -1))}
    ckpt = mga_checkpoint(tmp_path, code, position_ids)
    model = MGAClapModel(entry("mga_clap", options={"device": "cpu"},
                               requires=requires("mga_clap", code, checkpoint=str(ckpt))))
    (response,) = model.predict([Request(item_id="a", task="classify", audio=tone(2.0, 32000),
                                         labels=("dog barking", "rain"))])
    assert response.error is None  # Sparsemax's arange no longer goes to 'cuda'
    assert sum(response.scores.values()) == pytest.approx(1.0)
    with pytest.raises(ModelError, match="wandb.log was called, but wandb is not installed"):
        sys.modules["tools.utils"].log_results({"r1": 1.0})


def test_mga_clap_strict_load_still_rejects_other_keys(tmp_path: Path, imports, site):
    import torch

    code = checkout(tmp_path, "mga_clap")
    imports("models", "tools", "loguru", "sentence_transformers")
    stand_in_unused_imports(MGA_UNUSED_IMPORTS)
    ckpt = mga_checkpoint(tmp_path, code, {"frame_proj.extra": torch.zeros(1)})
    model = MGAClapModel(entry("mga_clap", options={"device": "cpu"},
                               requires=requires("mga_clap", code, checkpoint=str(ckpt))))
    with pytest.raises(RuntimeError, match="frame_proj.extra"):
        model.load()
    weights, dropped = compatible_state_dict(torch.nn.Linear(1, 1), {
        "weight": 1, "bias": 2, "bert.embeddings.position_ids": 3, "other": 4})
    assert dropped == ["bert.embeddings.position_ids"] and set(weights) == {"weight", "bias",
                                                                           "other"}


# ============================================================================================
# 7. Kimi-Audio: no silent top_p / beams, the log file, the pin
# ============================================================================================


def test_kimi_refuses_decoding_its_generate_cannot_take():
    for decoding, named in [({"top_p": 0.9}, "top_p"), ({"num_beams": 4}, "num_beams")]:
        with pytest.raises(ModelError, match=f"no {named}.*decoding.{named}"):
            KimiAudioModel(entry("kimi_audio", decoding=decoding))
    KimiAudioModel(entry("kimi_audio", decoding={"top_k": 3, "temperature": 0.5}))


def test_kimi_imports_out_of_the_working_directory(tmp_path: Path, imports, monkeypatch):
    code = checkout(tmp_path, "kimi_audio")
    imports("kimia_infer")
    work = tmp_path / "run"
    work.mkdir()
    monkeypatch.setenv("LALM_EVAL_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "Kimi-Audio-7B-Instruct"
    weights.mkdir()
    monkeypatch.chdir(tmp_path)  # a relative requires.path is taken against the cwd at build
    model = KimiAudioModel(entry("kimi_audio", name="kimi", source=str(weights),
                                 trust_remote_code=True, decoding={"max_new_tokens": 256},
                                 requires=requires("kimi_audio", Path("code/kimi_audio"))))
    monkeypatch.chdir(work)
    (response,) = model.predict([Request(item_id="a", task="transcribe", audio=tone())])
    assert response.error is None and response.text == "heard 1 clip(s)"
    assert not (tmp_path / "kimia_audio.log").exists() and not (work / "kimia_audio.log").exists()
    assert (tmp_path / "cache" / "scratch" / "kimi" / "kimia_audio.log").is_file()
    assert Path(sys.modules["kimia_infer.api.kimia"].__file__).is_relative_to(code)
    (call,) = model._client.calls
    assert (call["output_type"], call["text_temperature"], call["max_new_tokens"]) == \
        ("text", 0.0, 256)


def test_config_kimi_pin_is_a_full_commit_with_fetch_instructions():
    kimi = full_config()["models"]["kimi_audio_7b_instruct"]["requires"]
    assert kimi["revision"] == PINS["kimi_audio"][1] and kimi["path"]
    assert f"fetch origin {kimi['revision']}" in kimi["note"]


# ============================================================================================
# per-family environments
# ============================================================================================


def env_pins(family: str) -> dict[str, str]:
    data = yaml.safe_load((REPO / "envs" / f"{family}.yaml").read_text())
    (pip,) = [d["pip"] for d in data["dependencies"] if isinstance(d, dict)]
    return {re.sub(r"[-_.]+", "-", r.split("==")[0]).lower(): r.split("==")[1] for r in pip}


def test_every_family_environment_exists_and_carries_the_inference_runtime():
    project = __import__("tomllib").loads((REPO / "pyproject.toml").read_text())["project"]
    main_pins = {re.sub(r"[-_.]+", "-", r.split("==")[0]).lower(): r.split("==")[1]
                 for r in project["dependencies"]}
    assert set(FAMILY_ENVS) <= set(ADAPTERS)
    for env in FAMILY_ENVS.values():
        path = REPO / env
        family = path.stem
        data = yaml.safe_load(path.read_text())
        assert "python=3.11" in data["dependencies"], env
        pins = env_pins(family)
        for dist in INFERENCE_RUNTIME:
            key = re.sub(r"[-_.]+", "-", dist).lower()
            assert key in pins, (env, dist)
            if key != "numpy":  # numpy follows the family (1.x for torch < 2.3 builds)
                assert pins[key] == main_pins[key], (env, dist)
        script = path.with_name(f"{family}.post-deploy.sh")
        assert 'pip install --no-deps -e "$root"' in script.read_text(), script
        assert script.stat().st_mode & 0o111, script
    assert env_pins("step_audio2")["transformers"] == "4.49.0"
    assert env_pins("salmonn")["transformers"] == "4.28.0"
    assert "transformers" not in env_pins("ltu_as")  # its fork comes from the checkout
    assert "flash-attn==2.7.4.post1" in (REPO / "envs" / "kimi_audio.post-deploy.sh").read_text()


def test_conda_env_comes_from_the_entry_or_the_family():
    assert conda_env({"adapter": "ltu_as"}) == "envs/ltu_as.yaml"
    assert conda_env({"adapter": "qwen2_audio"}) == DEFAULT_ENV
    assert conda_env({"adapter": "ltu_as", "conda": "envs/mine.yaml"}) == "envs/mine.yaml"
    assert rule_conda_env({"adapter": "ltu_as"}) == "../../envs/ltu_as.yaml"
    assert rule_conda_env({"adapter": "x", "conda": "/opt/env.yaml"}) == "/opt/env.yaml"
    models = full_config()["models"]
    assert conda_env(models["step_audio2_mini"]) == "envs/step_audio2.yaml"
    assert conda_env(models["qwen2_audio_7b_instruct"]) == DEFAULT_ENV
    for name, model in models.items():
        assert (REPO / conda_env(model)).is_file(), name


def test_model_entry_takes_conda_outside_the_fingerprint():
    plain = ModelEntry.from_config("m", {"adapter": "ltu_as", "source": "s"})
    with_env = ModelEntry.from_config("m", {"adapter": "ltu_as", "source": "s",
                                            "conda": "envs/ltu_as.yaml"})
    assert with_env.conda == "envs/ltu_as.yaml" and plain.conda is None
    assert with_env.fingerprint() == plain.fingerprint()
    # the schema default (conda: null) is accepted too
    assert ModelEntry.from_config("m", {"adapter": "ltu_as", "source": "s", "conda": None})


def test_inference_runtime_covers_what_the_inference_path_imports():
    """The modules a family environment's inference job imports besides torch and the model's
    own code: the suites, the engine and the adapter modules (they import nothing heavy)."""
    script = textwrap.dedent("""
        import json, sys
        before = set(sys.modules)
        import lalm_eval.inference, lalm_eval.logs, lalm_eval.parallel
        from lalm_eval.models.registry import adapter_class
        from lalm_eval.suites import BUILTIN_KINDS, get_kind
        for kind in BUILTIN_KINDS:
            get_kind(kind)
        for adapter in %r:
            adapter_class(adapter)
        tops = {m.split(".")[0] for m in sys.modules if m not in before}
        print(json.dumps(sorted(t for t in tops if t not in sys.stdlib_module_names
                                and not t.startswith("_") and t != "lalm_eval")))
    """) % (sorted(FAMILY_ENVS),)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    dists = importlib.metadata.packages_distributions()
    allowed = {re.sub(r"[-_.]+", "-", d).lower() for d in INFERENCE_RUNTIME}
    for dist in INFERENCE_RUNTIME:  # and what they declare
        for req in importlib.metadata.requires(dist) or []:
            if "extra ==" not in req:
                allowed.add(re.sub(r"[-_.]+", "-", re.split(r"[ ;<>=!~\[(]", req)[0]).lower())
    used = {re.sub(r"[-_.]+", "-", d).lower() for m in modules for d in dists.get(m, [m])}
    assert used - {"cython-runtime"} <= allowed, used - allowed
