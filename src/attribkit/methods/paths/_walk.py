"""What the path methods share: example groups, the IDGI step rule and the straight path.

A *discrete path* from the baseline ``z_0 = x'`` to the input ``z_m = x`` has ``m`` steps. Step
``k`` carries a gradient ``g_k`` (taken at its start ``z_k``, or where the path method takes it)
and the displacement ``dz_k`` the method integrates it over; the path method's attribution is
``sum_k g_k * dz_k``. IDGI (Yang et al. 2023) keeps only the gradient direction: step ``k``
gives ``(F(z_{k+1}) - F(z_k)) * g_k^2 / ||g_k||^2``, whose sum over features is exactly the rise
of ``F`` on the step, so the attributions add up to ``F(x) - F(x')`` for any discrete path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attribkit.core.engine import Problem

__all__ = ["example_groups", "idgi_shares", "straight_walk"]


def example_groups(n: int, rows_per_example: int, batch_size: int) -> list[slice]:
    """Consecutive groups of examples whose rows (``rows_per_example`` each) fill about one
    batch; every group has at least one example (its rows are held in memory together)."""
    size = max(1, batch_size // max(1, rows_per_example))
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]


def idgi_shares(grads: Tensor, rises: Tensor, moves: Tensor) -> Tensor:
    """IDGI's attribution of each step, in float64.

    Parameters
    ----------
    grads
        ``(R, D)`` the gradient of each step (flattened features).
    rises
        ``(R,)`` ``F(z_{k+1}) - F(z_k)`` of each step.
    moves
        ``(R, D)`` (or broadcastable) the step's displacement: where a gradient vanishes but
        ``F`` still changes (a flat stretch of a piecewise-constant model), the rise is shared
        in proportion to ``|dz_k|`` instead, so that completeness still holds.

    Returns
    -------
    Tensor
        ``(R, D)`` ``rise * g^2 / ||g||^2`` per step.
    """
    g = grads.to(torch.float64)
    sq = g * g
    norm = sq.sum(dim=1, keepdim=True)
    alt = moves.to(torch.float64).abs().expand_as(sq)
    alt_norm = alt.sum(dim=1, keepdim=True)
    share = torch.where(norm > 0, sq / norm.clamp_min(torch.finfo(torch.float64).tiny),
                        torch.where(alt_norm > 0, alt / alt_norm.clamp_min(1e-300),
                                    torch.zeros_like(sq)))
    return rises.to(torch.float64)[:, None] * share


def straight_walk(p: Problem, steps: int, *, idgi: bool) -> tuple[Tensor, Tensor | None, Tensor]:
    """The straight path ``x' + (k / m)(x - x')`` with gradients at the start of each step.

    Returns
    -------
    attribution
        The left Riemann sum of Integrated Gradients, ``sum_k g_k * (x - x') / m``.
    idgi_attribution
        IDGI's attribution on the same steps (``None`` unless ``idgi``).
    scores
        ``(N, m + 1)`` ``F(z_k)`` along the path (the last column is ``F(x)``).
    """
    x, b = p.inputs, p.baseline
    assert b is not None and p.output is not None
    diff = x - b
    n, d = p.n, diff[0].numel()
    alpha = torch.arange(steps, dtype=x.dtype, device=x.device) / steps
    base = torch.zeros(n, d, dtype=torch.float64)
    out = torch.zeros(n, d, dtype=torch.float64) if idgi else None
    scores = torch.zeros(n, steps + 1, dtype=torch.float64)
    for grp in example_groups(n, steps, p.batch_size):
        ids = torch.arange(grp.start, grp.stop, device=x.device)
        ex = ids.repeat_interleave(steps)
        a = alpha.repeat(ids.numel())

        def make(sl: slice, ex: Tensor = ex, a: Tensor = a) -> Tensor:
            shape = (-1, *([1] * (x.dim() - 1)))
            return torch.addcmul(b[ex[sl]], a[sl].reshape(shape), diff[ex[sl]])

        sc, g = p.gradients(make, ex, desc="path gradients")
        g = g.reshape(ids.numel(), steps, d)
        step = (diff[grp].reshape(-1, 1, d) / steps).to(torch.float64)
        base[grp] = (g.to(torch.float64) * step).sum(dim=1)
        f = torch.cat([sc.reshape(ids.numel(), steps), p.output[grp, None]], dim=1)
        scores[grp] = f.to(torch.float64)
        if out is not None:
            rises = (f[:, 1:] - f[:, :-1]).reshape(-1)
            moves = step.expand(-1, steps, -1).reshape(-1, d)
            out[grp] = idgi_shares(g.reshape(-1, d), rises, moves).reshape(
                ids.numel(), steps, d).sum(dim=1)
    return base, out, scores
