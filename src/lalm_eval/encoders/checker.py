"""The encoder checker behind :func:`lalm_eval.encoders.check_encoder`.

Upstream's checker (xares-llm audio_encoder_checker.py) tests the module type, ``output_dim``,
the positional arity of ``forward`` and the shapes of one unmasked call. This one adds the
mask contract (the returned mask is ``[B, T']`` and follows the input lengths), finite
outputs, determinism in eval mode and ``forward_layers``; it raises on the first failure
with one message, and reports an exception raised by ``forward`` instead of swallowing it.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor, nn

from lalm_eval.encoders import EncoderCheckError

#: the probe upstream uses: 3 items of 50000 samples (3.125 s at 16 kHz)
PROBE_SHAPE = (3, 50000)
#: valid samples per item in the masked probe: full, half, a fifth
PROBE_LENGTHS = (50000, 25000, 10000)
#: determinism tolerance (two calls of an eval-mode encoder)
ATOL = 1e-5
RTOL = 1e-4


class _Failure(Exception):
    pass


def _positional_count(forward: Any) -> tuple[int, bool]:
    try:
        signature = inspect.signature(forward)
    except (TypeError, ValueError):
        return 2, True  # builtins / C extensions: cannot tell, do not fail on it
    count, var = 0, False
    for param in signature.parameters.values():
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
        elif param.kind == param.VAR_POSITIONAL:
            var = True
    return count, var


def _call(encoder: nn.Module, audio: Tensor, mask: Tensor | None, what: str) -> Any:
    try:
        return encoder(audio, mask)
    except Exception as exc:  # noqa: BLE001 - reported, not swallowed
        raise _Failure(f"forward({what}) raised {type(exc).__name__}: {exc}") from exc


def _check_output(output: Any, output_dim: int, what: str) -> tuple[Tensor, Tensor | None]:
    if not isinstance(output, tuple | list) or len(output) != 2:
        kind = type(output).__name__
        size = f" of length {len(output)}" if isinstance(output, tuple | list) else ""
        raise _Failure(f"forward({what}) must return a 2-tuple (feats, mask), got {kind}{size}")
    feats, out_mask = output
    if not isinstance(feats, Tensor):
        raise _Failure(f"forward({what}) returned feats of type {type(feats).__name__}, "
                       "expected a torch.Tensor")
    if feats.ndim != 3:
        raise _Failure(f"forward({what}) returned feats of shape {tuple(feats.shape)}, "
                       "expected 3-D [B, T', D]")
    if feats.shape[0] != PROBE_SHAPE[0]:
        raise _Failure(f"forward({what}) returned batch size {feats.shape[0]}, "
                       f"expected {PROBE_SHAPE[0]}")
    if feats.shape[-1] != output_dim:
        raise _Failure(f"forward({what}) returned feature dim {feats.shape[-1]} but "
                       f"output_dim is {output_dim}")
    if feats.shape[1] < 1:
        raise _Failure(f"forward({what}) returned no frames (T' = 0)")
    if out_mask is not None:
        if not isinstance(out_mask, Tensor):
            raise _Failure(f"forward({what}) returned a mask of type "
                           f"{type(out_mask).__name__}, expected a torch.Tensor or None")
        if out_mask.ndim != 2:
            raise _Failure(f"forward({what}) returned a mask of shape {tuple(out_mask.shape)}, "
                           "expected 2-D [B, T']")
        if tuple(out_mask.shape) != tuple(feats.shape[:2]):
            raise _Failure(f"forward({what}) returned a mask of shape {tuple(out_mask.shape)} "
                           f"for feats of shape {tuple(feats.shape)}: the mask must be "
                           f"[B, T'] = {tuple(feats.shape[:2])} (a sample-level mask returned "
                           "as is is the usual cause)")
        values = torch.unique(out_mask.detach().to("cpu", torch.float64))
        if not bool(((values == 0) | (values == 1)).all()):
            raise _Failure(f"forward({what}) returned mask values {values.tolist()[:6]}; "
                           "expected 0/1 (1 = keep)")
    if not bool(torch.isfinite(feats.detach().float()).all()):
        raise _Failure(f"forward({what}) returned NaN or infinite features")
    return feats, out_mask


def _check_layers(encoder: nn.Module, audio: Tensor, mask: Tensor, feats: Tensor,
                  output_dim: int) -> None:
    n_layers = getattr(encoder, "n_layers", 1)
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise _Failure(f"n_layers must be an int >= 1, got {n_layers!r}")
    forward_layers = getattr(encoder, "forward_layers", None)
    if forward_layers is None:
        if n_layers != 1:
            raise _Failure(f"n_layers is {n_layers} but the encoder has no forward_layers")
        return
    try:
        output = forward_layers(audio, mask)
    except Exception as exc:  # noqa: BLE001 - reported
        raise _Failure(f"forward_layers(masked audio) raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(output, tuple | list) or len(output) != 2:
        raise _Failure("forward_layers must return a 2-tuple (list of feats, mask)")
    layers, _ = output
    if not isinstance(layers, list | tuple) or len(layers) != n_layers:
        found = len(layers) if isinstance(layers, list | tuple) else type(layers).__name__
        raise _Failure(f"forward_layers returned {found} layer(s), n_layers is {n_layers}")
    for index, layer in enumerate(layers):
        if not isinstance(layer, Tensor) or tuple(layer.shape) != tuple(feats.shape):
            shape = tuple(layer.shape) if isinstance(layer, Tensor) else type(layer).__name__
            raise _Failure(f"forward_layers layer {index} has shape {shape}, expected "
                           f"{tuple(feats.shape)} like forward's feats (D = {output_dim})")
        if not bool(torch.isfinite(layer.detach().float()).all()):
            raise _Failure(f"forward_layers layer {index} has NaN or infinite values")


def _checks(encoder: Any) -> None:
    if not isinstance(encoder, nn.Module):
        raise _Failure(f"it is a {type(encoder).__name__}, not a torch.nn.Module")
    output_dim = getattr(encoder, "output_dim", None)
    if output_dim is None:
        raise _Failure("it has no attribute output_dim")
    if isinstance(output_dim, bool) or not isinstance(output_dim, int) or output_dim < 1:
        raise _Failure(f"output_dim must be a positive int, got {output_dim!r}")
    count, var = _positional_count(encoder.forward)
    if count < 2 and not var:
        raise _Failure(f"forward takes {count} positional argument(s); it must take "
                       "(audio, mask)")

    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(*PROBE_SHAPE, generator=generator) * 0.1
    # upstream's probe: no mask
    feats, _ = _check_output(_call(encoder, audio, None, "randn(3, 50000), mask=None"),
                             output_dim, "randn(3, 50000), mask=None")
    # a real mask: item 1 half length, item 2 a fifth
    positions = torch.arange(PROBE_SHAPE[1])[None, :]
    mask = (positions < torch.tensor(PROBE_LENGTHS)[:, None]).long()
    padded = audio * mask
    what = "randn(3, 50000), mask with lengths 50000/25000/10000"
    feats, out_mask = _check_output(_call(encoder, padded, mask, what), output_dim, what)
    if out_mask is None:
        raise _Failure(f"forward({what}) returned mask None: with padded input it must "
                       "return a [B, T'] mask marking the valid frames")
    valid = (out_mask != 0).sum(-1).tolist()
    if valid[0] < 1:
        raise _Failure(f"forward({what}) marked no valid frame for the full-length item")
    if not valid[0] >= valid[1] >= valid[2]:
        raise _Failure(f"forward({what}) returned valid frame counts {valid}: shorter items "
                       "must not have more valid frames than longer ones")
    # determinism in eval mode
    again, again_mask = _check_output(_call(encoder, padded, mask, what), output_dim, what)
    if tuple(again.shape) != tuple(feats.shape) or not torch.allclose(
            again.detach().float(), feats.detach().float(), atol=ATOL, rtol=RTOL):
        raise _Failure("two calls in eval mode on the same input gave different features "
                       "(it must be deterministic: no dropout or randomness at inference)")
    if again_mask is None or not torch.equal((again_mask != 0), (out_mask != 0)):
        raise _Failure("two calls in eval mode on the same input gave different masks")
    _check_layers(encoder, padded, mask, feats, output_dim)


def run_checks(encoder: Any, name: str) -> None:
    """Run every check; raise EncoderCheckError("encoder <name> failed the API check: ...")."""
    was_training = bool(getattr(encoder, "training", False))
    try:
        if isinstance(encoder, nn.Module):
            encoder.eval()
        with torch.no_grad():
            _checks(encoder)
    except _Failure as failure:
        raise EncoderCheckError(f"encoder {name!r} failed the API check: {failure}") from (
            failure.__cause__)
    finally:
        if isinstance(encoder, nn.Module) and was_training:
            encoder.train(True)
