"""Validation of what a user passes, before an attribution starts (used by ``prepare``).

* :func:`validate_inputs`: a tensor or NumPy array with a batch axis, finite, float (or ids
  with ``layer=``); token ids inside the embedding's range;
* :func:`check_model`: the model's device and dtype match the inputs (``meta`` refused);
* :func:`first_call`: the first forward pass, whose raw errors become a :class:`ModelCallError`
  that names the shape and the likely fix (a missing batch axis, ids out of range);
* :func:`check_independent_rows`: a 2-row probe that a row's output does not change with its
  batch-mates (``y - y.mean(0)``, batch statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from attribkit.core.checks import as_tensor
from attribkit.core.errors import AttribkitError, InputError, ModelCallError, NonFiniteError

if TYPE_CHECKING:
    from attribkit.core.engine import Problem

__all__ = ["check_ids", "check_independent_rows", "check_model", "first_call",
           "model_float_dtype", "validate_inputs"]


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


def check_independent_rows(problem: Problem, out: Tensor) -> None:
    """Raise when row 0's output changes with its batch-mates (one 2-row forward pass).

    Row 0 is evaluated next to another point (its baseline, or half of itself) and compared
    with its output in the full batch: a model that mixes rows (``y - y.mean(0)``, batch
    statistics) gives a different value, and attributions of it would mix examples silently.
    """
    x0 = problem.inputs[:1]
    if problem.baseline is not None and not torch.equal(problem.baseline[:1], x0):
        other = problem.baseline[:1]
    else:
        other = 0.5 * x0 if bool((x0 != 0).any()) else x0 + 1.0
    ex = torch.zeros(2, dtype=torch.long, device=x0.device)
    try:
        with torch.no_grad():
            probe = problem.call(torch.cat([x0, other.to(x0.dtype)]), ex)
    except AttribkitError:
        raise
    except Exception:  # the probe point is outside what the model accepts: no verdict
        return
    a, b = out[0].detach(), probe[0].detach()
    if a.shape != b.shape or not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return
    scale = float(torch.maximum(a.abs().max(), b.abs().max())) if a.numel() else 0.0
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    if diff > 1e-3 * scale + 1e-6:
        raise InputError(
            f"the model's output for one example changes with the other rows of its batch (row "
            f"0 differs by {diff:.3g} between two batches): attributions evaluate many points "
            "per batch and would mix them silently. Make the model treat rows independently "
            "(no mean or normalisation over the batch axis, no BatchNorm in training mode, no "
            "randomness).")
