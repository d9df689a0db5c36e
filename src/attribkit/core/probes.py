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

__all__ = ["BLACK_BOX_CHUNK_BYTES", "CPU_CHUNK_BYTES", "FALLBACK_ROWS", "MAX_FORWARD_ROWS",
           "MAX_ROWS", "channels_last_helps", "check_independent_rows", "estimate_rows",
           "forward_rows"]

#: Rows per chunk where nothing can be measured (a model that is no ``nn.Module``).
FALLBACK_ROWS = 64
#: The most rows per chunk :func:`estimate_rows` chooses.
MAX_ROWS = 1024
#: The most rows per forward-only chunk :func:`forward_rows` chooses.
MAX_FORWARD_ROWS = 16384
#: Bytes of inputs per forward-only chunk on a CPU: larger chunks were measured slower per row
#: (EfficientNet-Lite0, one thread, channels-last, 196 occlusion windows: 5.1-5.7 s of CPU at
#: 1-4 rows per call, 8.2-8.6 s at 13 rows; 37 ms per row at 10 rows, 52-58 ms at 64-128 rows
#: in the contiguous layout; the activations of a small chunk stay in the caches).
CPU_CHUNK_BYTES = 2 << 20
#: Bytes of inputs per call of a black-box model (no ``nn.Module``).
BLACK_BOX_CHUNK_BYTES = 8 << 20
#: The smallest image (height x width) for which forward-only batches go channels-last.
_CHANNELS_LAST_PIXELS = 64 * 64


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


def forward_rows(problem: Problem, batch_size: int | None) -> int:
    """Rows per forward-only model call (perturbation methods, evaluations).

    The user's ``batch_size`` when given. Otherwise a forward pass keeps no activations for a
    backward pass, so a chunk may hold 8x the rows of the engine's gradient chunk (which the
    memory budget sized); on a CPU it is further capped to about 2 MiB of inputs
    (:data:`CPU_CHUNK_BYTES`, 3 rows of 224 x 224 RGB float32), which keeps the activations in
    the caches; on a GPU the budget alone decides. A model that is no ``nn.Module`` (a black
    box) has no activations to size: each call then gets 8 MiB of inputs
    (:data:`BLACK_BOX_CHUNK_BYTES`: its calls have a fixed cost each).
    """
    if batch_size is not None:
        return batch_size
    x = problem.inputs
    per_row = max(1, x[:1].numel() * x.element_size())
    if not isinstance(problem.model, nn.Module):
        return max(1, min(MAX_FORWARD_ROWS, BLACK_BOX_CHUNK_BYTES // per_row))
    cap = MAX_FORWARD_ROWS
    if x.device.type == "cpu":
        cap = min(cap, CPU_CHUNK_BYTES // per_row)
    return max(1, min(cap, 8 * problem.batch_size))


def channels_last_helps(model: object, inputs: Tensor, layer: object) -> bool:
    """Whether forward-only (and ``fast=True``) batches of ``inputs`` run channels-last by default.

    True for an ``nn.Module`` with 2-D convolutions explained at its inputs, float32 images
    ``(N, C, H, W)`` of at least 64 x 64 pixels on a CPU: there the layout was measured 1.3-1.4x
    cheaper per row for EfficientNet-Lite0 at the chunks :func:`forward_rows` chooses. The values
    are the same up to floating-point rounding (the summation order of the convolutions).
    """
    if not isinstance(model, nn.Module) or layer is not None or inputs.dim() != 4:
        return False
    if inputs.dtype != torch.float32 or inputs.device.type != "cpu":
        return False
    if int(inputs.shape[-1]) * int(inputs.shape[-2]) < _CHANNELS_LAST_PIXELS:
        return False
    return any(isinstance(m, nn.Conv2d) for m in model.modules())
