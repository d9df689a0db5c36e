"""The straight path of Integrated Gradients, built chunk by chunk for the engine.

Shared by :mod:`attribkit.methods.integrated.ig` (fixed and adaptive rules) and
:mod:`attribkit.methods.integrated.tolerance` (the nested rule run to a requested accuracy).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from attribkit.core import paths
from attribkit.core.engine import Problem

__all__ = ["adaptive_nodes", "grid", "integrate", "path", "scale", "scan"]


def expand(t: Tensor, like: Tensor) -> Tensor:
    """``t`` (one value per row) shaped to broadcast against rows like ``like``."""
    return t.reshape(-1, *([1] * (like.dim() - 1)))


def path(p: Problem, alpha: Tensor, example: Tensor) -> Callable[[slice], Tensor]:
    """Rows ``x'_e + alpha (x_e - x'_e)`` of the straight path, built chunk by chunk."""
    x, b = p.inputs, p.baseline
    assert b is not None
    diff = x - b

    def make(sl: slice) -> Tensor:
        a = expand(alpha[sl].to(x.dtype), x)
        if p.n == 1:  # one example: broadcast instead of gathering its row for every point
            return torch.addcmul(b, a, diff)
        ex = example[sl]
        return torch.addcmul(b[ex], a, diff[ex])

    return make


def grid(p: Problem, alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Flatten per-example nodes ``(N, m)`` into rows (example-major)."""
    n, m = alpha.shape
    example = torch.arange(n, device=alpha.device).repeat_interleave(m)
    return alpha.reshape(-1), example


def scan(p: Problem, cells: int) -> Tensor:
    """``F`` at ``cells + 1`` equally spaced points of each path, ``(N, cells + 1[, K])``."""
    t = torch.linspace(0.0, 1.0, cells + 1, dtype=p.inputs.dtype, device=p.inputs.device)
    alpha, example = grid(p, t[1:-1].expand(p.n, -1))
    inner = p.scores(path(p, alpha, example), example, desc="scan")
    assert p.output is not None and p.baseline_output is not None
    inner = inner.reshape(p.n, cells - 1, *inner.shape[1:])
    return torch.cat([p.baseline_output[:, None], inner, p.output[:, None]], dim=1)


def adaptive_nodes(p: Problem, steps: int) -> tuple[Tensor, Tensor, int]:
    """Nodes and weights ``(N, steps)`` of the adaptive rule, and the scan points it spent."""
    cells, q = paths.adaptive_plan(steps)
    density = paths.scan_density(scan(p, cells))
    orders = paths.split_steps(steps, q)
    edges = paths.panel_edges(density, len(orders))
    alphas, weights = [], []
    for order in sorted(set(orders)):
        idx = torch.tensor([i for i, o in enumerate(orders) if o == order])
        lo, hi = edges[:, idx], edges[:, idx + 1]
        a, w = paths.panel_nodes(lo, hi, paths.nodes("gauss_legendre", order))
        alphas.append(a)
        weights.append(w)
    return torch.cat(alphas, dim=1), torch.cat(weights, dim=1), cells - 1


def integrate(p: Problem, alpha: Tensor, weight: Tensor) -> Tensor:
    """``sum_k w_k grad F(path(alpha_k))`` per example, ``(N[, K], ...)``."""
    a, example = grid(p, alpha)
    _, sums = p.gradient_sum(path(p, a, example), example, weight.reshape(-1),
                             desc="integrated gradients")
    return sums


def scale(p: Problem, integral: Tensor) -> Tensor:
    """``(x - x') * integral``: the attribution from the integrated gradients."""
    assert p.baseline is not None
    diff = p.inputs - p.baseline
    return (diff.unsqueeze(1) if p.target.multi else diff) * integral
