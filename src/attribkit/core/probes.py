"""Probes of the model run once per model and input shape by :func:`~attribkit.core.engine.prepare`.

* :func:`check_independent_rows`: a 2-row probe that a row's output does not change with its
  batch-mates (``y - y.mean(0)``, batch statistics);
* :func:`estimate_rows`: how many rows fit a memory budget, from a one-row probe that measures
  the activations.

Both outcomes depend on the model and the shapes only, so ``prepare`` remembers them per model
(:mod:`attribkit.core.memo`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.errors import AttribkitError, InputError
from attribkit.core.guard import this_thread
from attribkit.core.problem import Problem

__all__ = ["FALLBACK_ROWS", "MAX_ROWS", "check_independent_rows", "estimate_rows"]

#: Rows per chunk where nothing can be measured (a model that is no ``nn.Module``).
FALLBACK_ROWS = 64
#: The most rows per chunk :func:`estimate_rows` chooses.
MAX_ROWS = 1024


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


def estimate_rows(problem: Problem, budget: int) -> int:
    """How many rows fit ``budget`` bytes of activations, measured on a one-row probe."""
    model = problem.model
    if not isinstance(model, nn.Module):
        return FALLBACK_ROWS
    total = [0]

    def count(_m: nn.Module, _a: Any, out: Any) -> None:
        if isinstance(out, Tensor):
            total[0] += out.numel() * out.element_size()

    handles = [m.register_forward_hook(this_thread(count)) for m in model.modules()
               if len(list(m.children())) == 0]
    try:
        with torch.no_grad():
            problem.call(problem.inputs[:1], problem.examples[:1])
    finally:
        for h in handles:
            h.remove()
    per_row = max(1, 2 * total[0])  # saved activations plus their gradients
    return int(max(1, min(MAX_ROWS, budget // per_row)))
