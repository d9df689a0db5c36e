"""Validation of what a user passes, before an attribution starts (used by ``prepare``).

* :func:`validate_inputs`: a tensor or NumPy array with a batch axis, finite, float (or ids
  with ``layer=``); token ids inside the embedding's range;
* :func:`check_model`: the model's device and dtype match the inputs (``meta`` refused);
* :func:`first_call`: the first forward pass, whose raw errors become a :class:`ModelCallError`
  that names the shape and the likely fix (a missing batch axis, ids out of range).

The probes that run the model on the prepared problem are in :mod:`attribkit.core.probes`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.checks import as_tensor
from attribkit.core.errors import AttribkitError, InputError, ModelCallError, NonFiniteError

__all__ = ["check_ids", "check_model", "first_call", "model_float_dtype", "validate_inputs"]


def model_float_dtype(model: object) -> torch.dtype | None:
    if not isinstance(model, nn.Module):
        return None
    p = next((p for p in model.parameters() if p.is_floating_point()), None)
    return None if p is None else p.dtype


def validate_inputs(inputs: object, layer: nn.Module | None, model: object) -> Tensor:
    # NumPy arrays are converted once here (floats to the model's dtype: NumPy's float64 would
    # otherwise meet a float32 model)
    inputs = as_tensor(inputs, "inputs", dtype=model_float_dtype(model))
    if not isinstance(inputs, Tensor):
        raise InputError(f"inputs must be a torch.Tensor or a NumPy array of shape (N, ...), got "
                         f"{type(inputs).__name__}; use torch.as_tensor(...).")
    if inputs.is_meta:
        raise InputError("inputs are on the 'meta' device (shapes without data); create them "
                         "on a real device.")
    if inputs.dim() == 0 or inputs.shape[0] == 0:
        raise InputError(f"inputs must have a batch axis with at least one example; got shape "
                         f"{tuple(inputs.shape)}. Use inputs.unsqueeze(0) for one example.")
    if not inputs.is_floating_point() and layer is None:
        raise InputError(
            f"inputs are {inputs.dtype} (token ids?): gradients cannot flow into integers. "
            "Attribute at the embedding instead: pass layer=<the embedding module> (for a Hugging "
            "Face model, layer=model.embeddings.word_embeddings), and a baseline of token ids or "
            "of embeddings."
        )
    if inputs.is_floating_point() and not torch.isfinite(inputs).all():
        raise NonFiniteError("the inputs contain NaN or inf values.")
    if isinstance(layer, nn.Embedding) and not inputs.is_floating_point():
        check_ids(inputs, layer, "inputs")
    return inputs.detach()


def check_ids(ids: Tensor, layer: nn.Embedding, what: str) -> None:
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= layer.num_embeddings:
        bad = lo if lo < 0 else hi
        raise InputError(f"{what} hold token id {bad}, outside the embedding's range 0.."
                         f"{layer.num_embeddings - 1} ({layer.num_embeddings} rows): a tokenizer "
                         "that does not match the model?")


def check_model(model: object, inputs: Tensor) -> None:
    if not isinstance(model, nn.Module):
        return
    p = next((p for p in model.parameters() if p.is_floating_point()), None)
    if p is None:
        return
    if p.device != inputs.device and not p.is_meta:
        raise InputError(f"the model's parameters are on {p.device} but the inputs are on "
                         f"{inputs.device}; move one of them (inputs.to('{p.device}')).")
    if p.is_meta:
        raise InputError("the model's parameters are on the 'meta' device (no weights loaded); "
                         "load them first (model.to_empty(...) and load_state_dict).")
    if inputs.is_floating_point() and p.dtype != inputs.dtype:
        dtype = inputs.dtype
        raise InputError(
            f"the model's parameters are {p.dtype} but the points are {dtype}; convert one of "
            f"them (model.to({dtype}) or inputs.to({p.dtype}))."
        )


def first_call(model: Callable[..., Tensor], raw: Tensor, fargs: tuple[Tensor, ...]) -> Any:
    """The model on the inputs; a raw error from inside it becomes one that says what to check."""
    try:
        return model(raw, *fargs)
    except AttribkitError:
        raise
    except (RuntimeError, IndexError, ValueError, TypeError) as e:
        first = (str(e).strip().splitlines() or [""])[0]
        hint = ""
        if isinstance(e, IndexError) and not raw.is_floating_point():
            hint = (" Integer inputs out of range: are the token ids from this model's "
                    "tokenizer (an embedding has ids 0..V-1)?")
        elif any(k in first for k in ("shapes cannot be multiplied", "size mismatch", "Expected",
                                      "must match the size", "expected input", "unbatched")):
            hint = (" Inputs must be (N, ...) with the batch axis first; for one example use "
                    "inputs.unsqueeze(0).")
        raise ModelCallError(f"the model failed on inputs of shape {tuple(raw.shape)} "
                             f"({raw.dtype}): {type(e).__name__}: {first}.{hint}") from e
