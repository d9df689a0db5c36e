"""Integrated Hessians (Janizek, Sturmfels & Lee 2021): pairwise interactions of a
differentiable model along the straight path from a baseline.

With ``d = x - x'`` and the path ``z(a b) = x' + a b d``::

    G_ij = integral_0^1 integral_0^1 [ [i = j] d_i dF/dx_i(z) + a b d_i d_j d2F/dx_i dx_j(z) ] da db

which is the Integrated Gradients of the IG attribution ``IG_i`` itself, so each row sums to
``IG_i(x)`` and the whole matrix to ``F(x) - F(x')`` (completeness, up to the quadrature). Both
integrals use the same fixed rule of :mod:`attribkit.core.paths` (``steps`` nodes each, so
``steps^2`` points); each point costs one gradient and ``D`` double-backward passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core import paths
from attribkit.core.checks import count
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError

__all__ = ["MAX_HESSIAN_FEATURES", "IntegratedHessians", "integrated_hessians"]

#: The most features per example (the result is ``D x D`` per example).
MAX_HESSIAN_FEATURES = 4096


@dataclass(frozen=True)
class IntegratedHessians:
    """The Integrated Hessians of each example.

    Attributes
    ----------
    values
        ``(N, D, D)`` the matrix ``G`` over the flattened features (symmetric up to rounding).
    inputs
        ``(N, ...)`` the explained inputs.
    baselines
        ``(N, ...)`` their baselines.
    output
        ``F(x)`` ``(N,)``.
    baseline_output
        ``F(x')`` ``(N,)``.
    evaluations
        Gradient evaluations per example (each with ``D`` double-backward passes).
    """

    values: Tensor
    inputs: Tensor
    baselines: Tensor
    output: Tensor
    baseline_output: Tensor
    evaluations: int

    def attributions(self) -> Tensor:
        """Row sums ``(N, ...)``: the Integrated Gradients of each feature."""
        return self.values.sum(dim=-1).reshape(self.inputs.shape)

    def gap(self) -> Tensor:
        """Completeness gap ``sum(G) - (F(x) - F(x'))`` per example ``(N,)``."""
        return self.values.sum(dim=(-2, -1)) - (self.output - self.baseline_output)

    def top(self, k: int = 10, *, example: int = 0) -> list[tuple[tuple[int, int], float]]:
        """The ``k`` pairs ``(i, j)``, ``i < j``, with the largest ``|G_ij + G_ji|``."""
        m = self.values[example]
        pair = m + m.T
        i, j = torch.triu_indices(m.shape[0], m.shape[0], offset=1)
        vals = pair[i, j]
        best = torch.argsort(vals.abs(), descending=True)[:k]
        return [((int(i[b]), int(j[b])), float(vals[b])) for b in best]


def integrated_hessians(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    steps: int = 16,
    rule: str = "gauss_legendre",
    nodes: tuple[Sequence[float], Sequence[float]] | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> IntegratedHessians:
    """Integrated Hessians of a differentiable model (twice differentiable almost everywhere).

    Parameters
    ----------
    model
        A torch model (or differentiable callable) from ``(B, ...)`` to ``(B,)`` or ``(B, C)``.
    inputs
        ``(N, ...)`` examples, at most :data:`MAX_HESSIAN_FEATURES` features each.
    target
        ``None`` (predicted class), an int, one index per example or a callable.
    baseline
        ``None`` (zeros), a number, a name, a Baseline or a tensor.
    steps
        Nodes of the rule on each of the two integrals (``steps^2`` points per example).
    rule
        A fixed rule of :mod:`attribkit.core.paths` (``"gauss_legendre"``, ``"riemann_middle"``,
        ...).
    nodes
        Explicit ``(alphas, weights)`` on ``[0, 1]`` instead of ``rule`` and ``steps`` (e.g.
        ``linspace(0, 1, m)`` with weights ``1/m``: path-explain's grid).
    batch_size
        Points per model call; ``None`` chooses it from the model's memory use.
    progress
        Show a progress bar.
    forward_args
        Extra per-example tensors passed to the model after the inputs.

    Returns
    -------
    IntegratedHessians
        ``values`` ``(N, D, D)``, with ``attributions()`` (row sums: IG) and ``gap()``.
    """
    if nodes is None:
        steps = count(steps, "steps")
        alpha, weight = paths.nodes(rule, steps)
    else:
        alpha, weight = (np.asarray(a, dtype=np.float64) for a in nodes)
        if alpha.shape != weight.shape or alpha.ndim != 1 or alpha.size == 0:
            raise InputError("nodes= must be two equal-length 1-D sequences (alphas, weights).")
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args,
                 allow_multi_target=False) as p:
        assert p.baseline is not None and p.output is not None
        assert p.baseline_output is not None
        n_ex, shape = p.n, p.inputs.shape[1:]
        d = int(p.inputs[:1].numel())
        if d > MAX_HESSIAN_FEATURES:
            raise InputError(f"Integrated Hessians give a {d} x {d} matrix per example; at most "
                             f"{MAX_HESSIAN_FEATURES} features are supported: group features "
                             "or use attribkit.interactions(..., feature_mask=...).")
        dt = p.inputs.dtype
        a = torch.tensor(alpha, dtype=dt)
        w = torch.tensor(weight, dtype=dt)
        ab = (a[:, None] * a[None, :]).reshape(-1)  # product of the two path variables
        wab = (w[:, None] * w[None, :]).reshape(-1)
        q = int(ab.numel())
        delta = (p.inputs - p.baseline).reshape(n_ex, d)
        example = torch.arange(n_ex).repeat_interleave(q)
        point_ab = ab.repeat(n_ex)
        point_w = wab.repeat(n_ex)
        out = torch.zeros((n_ex, d, d), dtype=dt)
        base = p.baseline.reshape(n_ex, d)
        for sl in p.chunks(n_ex * q, "integrated hessians"):
            ex = example[sl]
            s, wt = point_ab[sl].to(p.inputs.device), point_w[sl].to(p.inputs.device)
            z = (base[ex] + s[:, None] * delta[ex]).detach().requires_grad_(True)
            with torch.enable_grad():
                score = p.target.select(p.call(z.reshape(-1, *shape), ex), ex)
                (grad,) = torch.autograd.grad(score.sum(), z, create_graph=True)
                rows = []
                for i in range(d):
                    if grad.requires_grad:
                        (h,) = torch.autograd.grad(grad[:, i].sum(), z, retain_graph=True,
                                                   allow_unused=True)
                    else:
                        h = None
                    rows.append(torch.zeros_like(z) if h is None else h)
            hess = torch.stack(rows, dim=1).detach()  # (B, D, D)
            dl = delta[ex]
            term = (wt * s)[:, None, None] * hess * dl[:, :, None] * dl[:, None, :]
            diag = (wt[:, None] * dl * grad.detach())
            term = term + torch.diag_embed(diag)
            out.index_add_(0, ex.cpu(), term.cpu())
        p.gradient_evaluations += n_ex * q
        if not torch.isfinite(out).all():
            raise InputError("the Hessians contain NaN or inf; check the model and inputs.")
        return IntegratedHessians(values=out.to(p.inputs.device), inputs=p.inputs.detach(),
                                  baselines=p.baseline.detach(), output=p.output,
                                  baseline_output=p.baseline_output, evaluations=q)
