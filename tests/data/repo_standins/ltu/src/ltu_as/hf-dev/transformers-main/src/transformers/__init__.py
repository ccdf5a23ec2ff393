"""Stand-in for the LTU-AS fork of transformers (YuanGongND/ltu@bd646a4
``src/ltu_as/hf-dev/transformers-main/src/transformers``), not its code: the three names
``inference_gradio.py:13`` imports (``GenerationConfig, LlamaForCausalLM, LlamaTokenizer``)."""

from .generation import GenerationConfig
from .models.llama.modeling_llama import LlamaForCausalLM
from .tokenization import LlamaTokenizer

__version__ = "4.28.0.dev0"
__all__ = ["GenerationConfig", "LlamaForCausalLM", "LlamaTokenizer"]
