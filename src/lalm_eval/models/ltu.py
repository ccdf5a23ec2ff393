"""LTU-AS through its own repository code (YuanGongND/ltu, ``src/ltu_as``).

Entry example::

    ltu_as:
      adapter: ltu_as
      source: YuanGongND/ltu
      sample_rate: 16000
      decoding: {max_new_tokens: 256}
      requires: {repo: YuanGongND/ltu, revision: <commit>, path: <checkout>}
      options: {base_model: <vicuna_ltuas folder>, checkpoint: <LTU-AS .bin>,
                whisper_feature_checkpoint: <whisper large-v1 .pt>,
                whisper_text_model: large-v2, device: auto, dtype: auto}

Joint audio + transcript mode: the Whisper transcript fills the input field of LTU's
alpaca_short prompt and the answer is the text after ``### Response:``. LTU-AS needs its own
forks of transformers and peft: they are imported from the checkout
(``src/ltu_as/hf-dev/transformers-main/src``, ``src/ltu_as/peft-main/src``, put first on
``sys.path``) in the ``envs/ltu_as.yaml`` environment. Shared rules are those of
:mod:`lalm_eval.models.external_common`.

Checked against YuanGongND/ltu ``src/ltu_as/inference_gradio.py`` (and ``inference_batch.py``
at bd646a4, which does the same):

* LLaMA is loaded in fp16 on CUDA and the audio encoder's LayerNorm parameters are cast back
  to fp32 (``convert_params_to_float32``, ``inference_gradio.py:27-32``, called at ``:60``
  before the LoRA wrap), because the fork's ``LayerNorm.forward`` computes in fp32
  (``modeling_llama.py``: ``super().forward(x.float())``). :func:`convert_params_to_float32`
  does the same; without it every item fails with a dtype error.
* the audio features are cast to the model's dtype (``.half()`` on CUDA upstream) and must be
  ``[1, 32, 25, 1280]`` (the fork's ``LlamaModel.forward`` asserts 25 frames: the feature
  Whisper pads or trims the mel to 10 s, so LTU-AS hears the first 10 s of a clip).
* decoding: upstream samples (temperature 0.1, top_p 0.95, top_k 500, repetition penalty
  1.1, 500 new tokens in the demo, 400 in ``inference_batch.py``). The SSEU-Bench systems are
  run greedily with 256 new tokens (config/config.yaml) so that every system is decoded the
  same way and repeated runs agree; ``decoding: {do_sample: true, temperature: 0.1, top_p:
  0.95, top_k: 500, repetition_penalty: 1.1, max_new_tokens: 500}`` reproduces upstream's
  demo (docs/models.md).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import numpy as np

from lalm_eval.answers.families import clean_answer
from lalm_eval.models.base import ModelEntry, ModelError, Request
from lalm_eval.models.decoding import hf_generate_kwargs
from lalm_eval.models.external_common import (
    ExternalLALM,
    add_checkout_paths,
    check_origin,
    default_device,
    import_package,
    import_upstream,
    join_nonempty,
    requirement_label,
    torch_dtype,
)

#: LTU's "alpaca_short" template (src/ltu/templates/alpaca_short.json)
LTU_PROMPT_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
LTU_PROMPT_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:\n"
LTU_RESPONSE_SPLIT = "### Response:"
_WATCHING = re.compile(r"thank(?:s| you) for watching[.!]?", re.IGNORECASE)
#: the checkout folders holding LTU-AS's forks (imported instead of an installed copy)
LTU_FORK_PATHS = ("src/ltu_as/hf-dev/transformers-main/src", "src/ltu_as/peft-main/src")
#: the checkout folder holding its modified Whisper (feature extractor)
LTU_WHISPER_PATH = "src/ltu_as/whisper"


def ltu_prompt(instruction: str, transcript: str | None) -> str:
    """LTU-AS prompt: the instruction plus the Whisper transcript as the input field."""
    if transcript:
        return LTU_PROMPT_INPUT.format(instruction=instruction, input=transcript)
    return LTU_PROMPT_NO_INPUT.format(instruction=instruction)


def ltu_clean_transcript(text: str) -> str:
    """Remove Whisper's 'thanks for watching' hallucination, as LTU-AS's demo does."""
    return _WATCHING.sub("", text.lstrip())


def ltu_response(decoded: str) -> str:
    """The answer after the response marker (the whole text when the marker is missing),
    cleaned up as the ``ltu_as`` answer family says (LLaMA sentence markers removed)."""
    _, marker, answer = decoded.partition(LTU_RESPONSE_SPLIT)
    return clean_answer(answer if marker else decoded, "ltu_as")


def convert_params_to_float32(model: Any, torch: Any) -> list[str]:
    """Cast the audio encoder's fp16 LayerNorm parameters to fp32, as LTU-AS's
    ``convert_params_to_float32`` does (``inference_gradio.py:27-32``: names containing
    ``audio_encoder`` and ``ln``); returns the names converted."""
    converted = []
    for name, param in model.named_parameters():
        if "audio_encoder" in name and "ln" in name and param.dtype == torch.float16:
            param.data = param.data.float()
            converted.append(name)
    return converted


class _LtuAsRunner:
    """LTU-AS following its ``inference_gradio.py``: whisper-at transcript, Whisper-large-v1
    encoder features (block-averaged by 20 frames, first layer dropped), Vicuna with LoRA and
    the fork of transformers whose LLaMA takes ``audio_input``."""

    def __init__(self, entry: ModelEntry, repo: str) -> None:
        options = entry.options
        missing = [k for k in ("base_model", "checkpoint", "whisper_feature_checkpoint")
                   if not options.get(k)]
        if missing:
            raise ModelError(f"models.{entry.name}: LTU-AS needs options {missing} "
                             "(vicuna_ltuas folder, LTU-AS .bin, whisper large-v1 .pt)")
        self.torch = torch = import_package("torch", entry, "pip install torch")
        add_checkout_paths(entry, LTU_FORK_PATHS)  # the forks shadow any installed copy
        transformers = import_package("transformers", entry,
                                      "the LTU-AS fork in src/ltu_as/hf-dev/transformers-main")
        llama = transformers.LlamaForCausalLM
        if "audio_input" not in inspect.signature(llama.forward).parameters:
            raise ModelError(
                f"models.{entry.name}: LTU-AS needs its fork of transformers (LLaMA with "
                "audio_input) from src/ltu_as/hf-dev/transformers-main of "
                f"{requirement_label(entry)}: set requires.path to that checkout and run in "
                "envs/ltu_as.yaml (another transformers was imported first)")
        check_origin(transformers, entry, repo)
        peft = import_package("peft", entry, "the LTU-AS fork in src/ltu_as/peft-main")
        check_origin(peft, entry, repo)
        whisper_at = import_package("whisper_at", entry, "pip install whisper-at")
        whisper_model = import_upstream("whisper.model", entry, repo,
                                        extra_paths=(LTU_WHISPER_PATH,))
        self.skimage = import_package("skimage.measure", entry, "pip install scikit-image")
        self.device = default_device(entry)
        self.dtype = torch_dtype(entry, torch, self.device)
        self.text_model = whisper_at.load_model(options.get("whisper_text_model", "large-v2"),
                                                device=self.device)
        checkpoint = torch.load(options["whisper_feature_checkpoint"], map_location="cpu")
        dims = whisper_model.ModelDimensions(**checkpoint["dims"])
        self.feature_model = whisper_model.Whisper(dims)
        self.feature_model.load_state_dict(checkpoint["model_state_dict"], strict=False)
        self.feature_model.to(self.device)
        self.tokenizer = transformers.LlamaTokenizer.from_pretrained(options["base_model"])
        model = llama.from_pretrained(options["base_model"], torch_dtype=self.dtype)
        self.converted = convert_params_to_float32(model, torch)  # inference_gradio.py:60
        lora = peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                               lora_dropout=0.05, bias="none", task_type="CAUSAL_LM")
        model = peft.get_peft_model(model, lora)
        model.load_state_dict(torch.load(options["checkpoint"], map_location="cpu"),
                              strict=False)
        model.config.pad_token_id = self.tokenizer.pad_token_id = 0
        model.config.bos_token_id = 1
        model.config.eos_token_id = 2
        self.model = model.to(self.device).eval()
        self.generation_config_cls = transformers.GenerationConfig

    def transcribe(self, wav_path: str) -> str:
        return str(self.text_model.transcribe(wav_path)["text"])

    def generate(self, prompt: str, wav_path: str, generation: dict[str, Any]) -> str:
        torch = self.torch
        _, feats = self.feature_model.transcribe_audio(wav_path)
        feats = torch.permute(feats[0], (2, 0, 1)).detach().cpu().numpy()
        feats = self.skimage.block_reduce(feats, (1, 20, 1), np.mean)[1:]
        audio_input = torch.FloatTensor(feats).unsqueeze(0).to(self.device, self.dtype)
        input_ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"].to(self.device)
        config = self.generation_config_cls(**generation, bos_token_id=1, eos_token_id=2,
                                            pad_token_id=0, num_return_sequences=1)
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, audio_input=audio_input,
                                      generation_config=config, return_dict_in_generate=True)
        return self.tokenizer.decode(out.sequences[0])


class LtuAsModel(ExternalLALM):
    """LTU-AS from YuanGongND/ltu (``src/ltu_as``), joint audio + transcript mode.

    The Whisper transcript fills the prompt's input field (alpaca_short template) and the
    answer is the text after ``### Response:``. Needs LTU-AS's own transformers/peft forks
    (from the checkout, in ``envs/ltu_as.yaml``). Options: ``base_model``, ``checkpoint``,
    ``whisper_feature_checkpoint``, ``whisper_text_model``, ``device``, ``dtype`` (auto:
    fp16 on CUDA as upstream, fp32 on CPU).
    """

    upstream_repo = "YuanGongND/ltu"
    default_prompts = {"transcribe": "Closed-ended question: Can you identify the spoken text?",
                       "caption": "Close-ended question: Write an audio caption describing "
                                  "the sound."}

    def _load(self) -> None:
        self._check_allowed()
        self._client = _LtuAsRunner(self.entry, self.upstream_repo)

    def _run(self, request: Request, audio_path: str | None) -> tuple[str, int | None]:
        if not audio_path:
            raise ValueError("LTU-AS needs audio")
        instruction = join_nonempty(self.system_for(request), self.prompt_for(request))
        if not instruction:
            raise ValueError("LTU-AS needs an instruction")
        transcript = ltu_clean_transcript(self._client.transcribe(audio_path))
        generation = hf_generate_kwargs(self.decoding)
        decoded = self._client.generate(ltu_prompt(instruction, transcript), audio_path,
                                        generation)
        return ltu_response(decoded), None
