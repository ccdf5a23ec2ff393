"""Stand-in for the LTU-AS fork of peft (YuanGongND/ltu@bd646a4 ``src/ltu_as/peft-main/src/peft``),
not its code: ``LoraConfig`` with the fields ``inference_gradio.py`` sets and
``get_peft_model(model, peft_config)`` returning a wrapper whose parameters are named
``base_model.model.*`` and that forwards ``generate``."""

from dataclasses import dataclass, field

from torch import nn


@dataclass
class LoraConfig:
    r: int = 8
    lora_alpha: int = 8
    target_modules: list = field(default_factory=list)
    lora_dropout: float = 0.0
    bias: str = "none"
    task_type: str = None


class PeftModelForCausalLM(nn.Module):
    def __init__(self, model, peft_config):
        super().__init__()
        self.base_model = nn.Module()
        self.base_model.model = model
        self.peft_config = peft_config

    @property
    def config(self):
        return self.base_model.model.config

    def generate(self, **kwargs):
        return self.base_model.model.generate(**kwargs)


def get_peft_model(model, peft_config):
    return PeftModelForCausalLM(model, peft_config)
