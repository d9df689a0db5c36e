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

__all__ = ["IdgiSum", "example_groups", "straight_walk"]


def example_groups(n: int, rows_per_example: int, batch_size: int) -> list[slice]:
    """Consecutive groups of examples whose rows (``rows_per_example`` each) fill about one
    batch; every group has at least one example (its rows are held in memory together)."""
    size = max(1, batch_size // max(1, rows_per_example))
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]


class IdgiSum:
    """IDGI's attribution of a batch of paths, fed one step at a time (in path order).

    Step ``k`` with gradient ``g_k`` and rise ``F(z_{k+1}) - F(z_k)`` adds
    ``rise * g_k^2 / ||g_k||^2``. Where a gradient vanishes but ``F`` still rises (the step
    starts on the flat side of a ReLU kink, or at a point where all first derivatives vanish),
    the rise is carried to the next step with a nonzero gradient (or, at the end, to the last
    one); a feature whose gradient is zero all along the path therefore gets nothing (the dummy
    axiom). Only if no gradient on the path is nonzero while ``F`` changes (a piecewise constant
    model) is the rise shared in proportion to the steps' ``|dz|``. Every rise is shared out, so
    the attributions add up to ``F(x) - F(x')``. Sums are kept in float64.
    """

    def __init__(self, n: int, d: int) -> None:
        f64 = torch.float64
        self.total = torch.zeros(n, d, dtype=f64)
        self.pending = torch.zeros(n, dtype=f64)
        self.last = torch.zeros(n, d, dtype=f64)
        self.seen = torch.zeros(n, dtype=torch.bool)
        self.moved = torch.zeros(n, d, dtype=f64)

    def add(self, grads: Tensor, rises: Tensor, moves: Tensor) -> None:
        """Add one step of every path: ``grads`` ``(n, D)``, ``rises`` ``(n,)``, ``moves``
        ``(n, D)`` (or broadcastable) the step's displacement."""
        g = grads.to(torch.float64)
        sq = g * g
        norm = sq.sum(dim=1, keepdim=True)
        ok = norm[:, 0] > 0
        share = sq / norm.clamp_min(torch.finfo(torch.float64).tiny)
        rise = rises.to(torch.float64) + self.pending
        self.total += torch.where(ok[:, None], rise[:, None] * share, 0.0)
        self.pending = torch.where(ok, 0.0, rise)
        self.last = torch.where(ok[:, None], share, self.last)
        self.seen |= ok
        self.moved += torch.where(ok[:, None], 0.0, moves.to(torch.float64).abs())

    def result(self) -> Tensor:
        """``(n, D)`` the attributions, with any rise still carried shared out."""
        alt = self.moved / self.moved.sum(dim=1, keepdim=True).clamp_min(1e-300)
        share = torch.where(self.seen[:, None], self.last, alt)
        return self.total + self.pending[:, None] * share


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
            acc = IdgiSum(ids.numel(), d)
            for k in range(steps):
                acc.add(g[:, k], f[:, k + 1] - f[:, k], step[:, 0])
            out[grp] = acc.result()
    return base, out, scores
