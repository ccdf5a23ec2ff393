"""Stand-in for ``sentence_transformers.util.cos_sim``."""

import torch


def cos_sim(a, b):
    a = torch.nn.functional.normalize(torch.as_tensor(a), dim=-1)
    b = torch.nn.functional.normalize(torch.as_tensor(b), dim=-1)
    return a @ b.t()
