"""KernelSHAP: Shapley values as a kernel-weighted regression (Lundberg & Lee 2017).

The game is the one of :func:`attribkit.shapley_values`, ``v(S) = F(x_S, b_rest)`` over players
(features or groups). The Shapley values solve the weighted least-squares problem

    min_phi  sum_S  k(S) (v(S) - v(0) - sum_{i in S} phi_i)^2   s.t.  sum_i phi_i = v(N) - v(0)

with the Shapley kernel ``k(S) = (n - 1) / (C(n, |S|) |S| (n - |S|))`` over the coalitions
``0 < |S| < n``. attribkit solves it with the efficiency constraint imposed exactly (a Lagrange
multiplier), so the values always sum to ``F(x) - F(x')``. With every coalition (a budget of
``2^n - 2``) the solution *is* the Shapley value.

Coalitions under a budget: whole coalition sizes are enumerated, smallest and largest first, while
the budget's share of the kernel's mass at that size covers all its coalitions (the rule of
SHAP's KernelExplainer); the rest are drawn by size from the remaining kernel mass, in antithetic
pairs (a coalition and its complement, Covert & Lee 2021), and weighted equally. The standard
error of each value is the spread of the solution over bootstrap resamples of the drawn pairs
(the enumerated part has no sampling error), so it is 0 when everything was enumerated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.background import background_rows, mean_over, split_background
from attribkit.core.cost import announce, check_memory, photo_players
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError
from attribkit.core.masks import pick_mask, resolve_mask
from attribkit.methods.agnostic._common import forward_rows, sample_values
from attribkit.methods.registry import register
from attribkit.methods.shapley import spread_to_features

__all__ = ["kernel_coalitions", "kernel_shap", "solve_kernel_regression"]

_BOOTSTRAP = 64


def kernel_coalitions(n: int, budget: int, generator: torch.Generator
                      ) -> tuple[Tensor, Tensor, int, Tensor]:
    """Coalitions ``(M, n)`` (``0 < |S| < n``) and their regression weights ``(M,)``.

    Returns the coalitions, the weights (summing to 1), how many leading rows were enumerated,
    and for every draw behind the rest the index of its pair among the drawn pairs (``(D,)``;
    pair ``j`` is rows ``n_fixed + 2 j`` and ``n_fixed + 2 j + 1``, a coalition and its
    complement). A pair drawn again costs no model evaluation: it adds to its weight (as SHAP
    does), so the budget buys distinct coalitions.
    """
    sizes = list(range(1, n))
    mass = {s: (n - 1) / (s * (n - s)) for s in sizes}
    total = sum(mass.values())
    none = torch.zeros(0, dtype=torch.long)
    if budget >= (1 << n) - 2:
        rows = [[(c >> i) & 1 for i in range(n)] for c in range(1, (1 << n) - 1)]
        z = torch.tensor(rows, dtype=torch.bool)
        size = z.sum(1)
        w = torch.tensor([mass[int(s)] / math.comb(n, int(s)) for s in size], dtype=torch.float64)
        return z, w / total, int(z.shape[0]), none
    blocks, weights = [], []
    left, remaining = budget, dict(mass)
    lo, hi = 1, n - 1
    while lo <= hi:
        pair = [lo] if lo == hi else [lo, hi]
        count = sum(math.comb(n, s) for s in pair)
        share = sum(remaining[s] for s in pair) / sum(remaining.values())
        if left * share < count - 1e-8:
            break
        for s in pair:
            for combo in itertools.combinations(range(n), s):
                row = torch.zeros(n, dtype=torch.bool)
                row[list(combo)] = True
                blocks.append(row)
                weights.append(mass[s] / math.comb(n, s))
            del remaining[s]
        left -= count
        lo, hi = lo + 1, hi - 1
    n_fixed = len(blocks)
    z_fixed = torch.stack(blocks) if blocks else torch.zeros((0, n), dtype=torch.bool)
    w_fixed = torch.tensor(weights, dtype=torch.float64)
    pairs = left // 2
    if pairs < 1 or not remaining:
        return z_fixed, w_fixed / w_fixed.sum(), n_fixed, none
    kept, draws = _draw_pairs(n, pairs, remaining, generator)
    counts = torch.bincount(draws, minlength=kept.shape[0]).to(torch.float64)
    drawn = torch.stack([kept, ~kept], dim=1).reshape(-1, n)
    w_drawn = counts.repeat_interleave(2) * (sum(remaining.values()) / (2 * counts.sum()))
    z = torch.cat([z_fixed, drawn])
    w = torch.cat([w_fixed, w_drawn])
    return z, w / total, n_fixed, draws


def _draw_pairs(n: int, pairs: int, remaining: dict[int, float],
                generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Up to ``pairs`` distinct complementary pairs drawn by size from the remaining kernel
    mass: ``(P, n)`` one member of each, and the pair index of every draw up to the last new
    one."""
    rest = sorted(remaining)
    p = torch.tensor([remaining[s] for s in rest], dtype=torch.float64)
    n_draw = 4 * pairs
    size = torch.tensor(rest)[torch.multinomial(p / p.sum(), n_draw, replacement=True,
                                                generator=generator)]
    rank = torch.argsort(torch.rand((n_draw, n), generator=generator), dim=1)
    first = rank < size[:, None]
    canon = torch.where(first[:, :1], first, ~first)  # the member that holds player 0
    uniq, inverse = torch.unique(canon, dim=0, return_inverse=True)
    pos = torch.full((uniq.shape[0],), n_draw, dtype=torch.long)
    pos.scatter_reduce_(0, inverse, torch.arange(n_draw), reduce="amin")
    order = torch.argsort(pos)[:pairs]  # the first `pairs` distinct pairs, in drawing order
    cutoff = int(pos[order[-1]]) + 1
    new_id = torch.full((uniq.shape[0],), -1, dtype=torch.long)
    new_id[order] = torch.arange(order.shape[0])
    draws = new_id[inverse[:cutoff]]
    # keep the drawn member (not the canonical one) for the first draw of each pair
    kept = first[pos[order]]
    return kept, draws


def solve_kernel_regression(z: Tensor, w: Tensor, y: Tensor, v0: Tensor, v1: Tensor) -> Tensor:
    """The constrained weighted least-squares solution ``phi`` ``(..., n)``.

    Parameters
    ----------
    z
        ``(M, n)`` coalitions (0/1); ``w`` ``(M,)`` or ``(B, M)`` weights.
    y
        ``(E, M)`` values ``v(S)`` of ``E`` games; ``v0``, ``v1`` ``(E,)`` ``v(0)`` and ``v(N)``.

    Returns
    -------
    Tensor
        ``(E, n)``, or ``(B, E, n)`` for ``B`` weight vectors; ``sum phi = v1 - v0`` exactly.
    """
    zf = z.to(torch.float64)
    m, n = zf.shape
    e = y.shape[0]
    # the weighted normal equations as two matrix products over the coalitions, so that many
    # weight vectors (bootstrap resamples) cost one GEMM each: A = W (z z^T), b = W (y z)
    outer = (zf[:, :, None] * zf[:, None, :]).reshape(m, n * n)
    yz = ((y - v0[:, None]).T[:, :, None] * zf[:, None, :]).reshape(m, e * n)
    w2 = w.reshape(-1, m)
    a = (w2 @ outer).reshape(-1, n, n)
    rhs = (w2 @ yz).reshape(-1, e, n)
    if w.dim() == 1:
        a, rhs = a[0], rhs[0]
    kkt = torch.zeros((*a.shape[:-2], n + 1, n + 1), dtype=torch.float64)
    kkt[..., :n, :n] = a
    kkt[..., :n, n] = 1.0
    kkt[..., n, :n] = 1.0
    full = torch.cat([rhs, (v1 - v0).expand(rhs.shape[:-1])[..., None]], -1)
    sol: Tensor = torch.linalg.lstsq(kkt, full.transpose(-1, -2), driver="gelsd").solution
    sol = sol.transpose(-1, -2)[..., :n]
    return sol + ((v1 - v0) - sol.sum(-1))[..., None] / n


@register(
    "kernel_shap",
    aliases=("kernelshap",),
    family="perturbation",
    needs_baseline=True,
    complete=True,
    # exact with every coalition; under a budget completeness and linearity stay exact, dummy
    # and symmetry hold up to the sampling error reported in extras["stderr"]
    axioms={"completeness", "sensitivity_a", "sensitivity_b", "implementation_invariance",
            "linearity", "symmetry"},
    stochastic=True,
    summary="KernelSHAP: Shapley values from a Shapley-kernel weighted regression with paired "
            "sampling, efficiency exact, bootstrap standard errors (black-box models welcome).",
)
@shared_parameters("model:black_box", "inputs:black_box", "target", "baseline:absent", "groups",
                   "seed", "progress", "forward_args")
def kernel_shap(
    model: Callable[..., Any],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    feature_mask: Tensor | None = None,
    groups: Tensor | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """KernelSHAP estimates of the Shapley values of ``v(S) = F(x_S, b_rest)``.

    Parameters
    ----------
    feature_mask
        Integer player id of each feature, shaped like one example, like the inputs, or
        broadcasting to them (:mod:`attribkit.masks`); ids need not be contiguous; negative ids
        always keep the input's value. ``None``: every feature is a player.
    n_samples
        Coalitions evaluated per example besides the empty and the full one (default
        ``2 n + 2048``, as SHAP); ``2^n - 2`` or more enumerates them all (exact).
    batch_size
        Rows per model call; ``None`` chooses it.

    Returns
    -------
    Attribution
        ``values`` shaped like the inputs (each player's value split equally over its features,
        so they sum to ``F(x) - F(x')``); ``extras``: ``players`` ``(N, [K,] n)``, ``stderr``
        (bootstrap over the drawn pairs; 0 when all coalitions were enumerated), ``coalitions``
        and ``weights``; ``params["exact"]`` whether every coalition was used.
    """
    mask = pick_mask(feature_mask, groups)
    baseline, background = split_background(baseline, inputs)
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, black_box=True) as p:
        bg = None if background is None else background_rows(background, p.inputs)
        mask = photo_players(p.inputs, mask, "kernel_shap")
        ids, n, labels = resolve_mask(mask, p.inputs)
        budget = 2 * n + 2048 if n_samples is None else n_samples
        if not isinstance(budget, int) or budget < 1:
            raise InputError(f"n_samples must be a positive int, got {n_samples!r}.")
        m = min(budget, (1 << min(n, 62)) - 2) + 2
        # the weighted normal equations hold an (M, n, n) outer product in float64
        check_memory(8.0 * m * n * (n + 2), f"kernel_shap with {n:,} players and {m:,} "
                     "coalitions", "give fewer players with feature_mask= (attribkit.masks."
                     "superpixels or attribkit.masks.grid), or fewer n_samples=.")
        announce("kernel_shap", p.n * m, progress, "or fewer n_samples=")
        gen = torch.Generator().manual_seed(seed)
        if n == 1:
            z = torch.zeros((0, 1), dtype=torch.bool)
            w = torch.zeros(0, dtype=torch.float64)
            n_fixed, draws = 0, torch.zeros(0, dtype=torch.long)
        else:
            z, w, n_fixed, draws = kernel_coalitions(n, budget, gen)
        ends = torch.stack([torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)])
        coal = torch.cat([ends, z]).to(ids.device)
        rows = forward_rows(p, batch_size)
        if bg is None:
            v = sample_values(p, ids, n, coal, rows, "kernel shap")
        else:  # v(S) = E_b F(x_S, b_rest), as SHAP's KernelExplainer with a background
            v = mean_over(p, bg, lambda: sample_values(p, ids, n, coal, rows, "kernel shap"))
        v = v.to(torch.float64).cpu()
        lead = v.shape[:-1]
        flat = v.reshape(-1, v.shape[-1])
        v0, v1, y = flat[:, 0], flat[:, 1], flat[:, 2:]
        if n == 1:
            phi = (v1 - v0)[:, None]
            stderr = torch.zeros_like(phi)
        else:
            phi = solve_kernel_regression(z, w, y, v0, v1)
            stderr = _bootstrap_stderr(z, w, y, v0, v1, n_fixed, draws, gen)
        phi, stderr = phi.reshape(*lead, n), stderr.reshape(*lead, n)
        dev = p.inputs.device
        values = spread_to_features(phi.to(dev), ids, tuple(p.inputs.shape)).to(p.inputs.dtype)
        exact = n == 1 or n_fixed == (1 << n) - 2
        params = {"players": n, "feature_mask": mask is not None, "n_samples": int(z.shape[0]),
                  "exact": exact, "seed": seed,
                  "enumerated": n_fixed, "forward_evaluations": p.forward_evaluations}
        if bg is not None:
            params["background_size"] = int(bg.shape[0])
        extras = {"players": phi, "stderr": stderr, "coalitions": z, "weights": w,
                  "group_ids": ids.reshape(p.inputs.shape),
                  "group_labels": labels}
        if bool((ids < 0).any()):  # the empty coalition keeps the non-players' input values
            assert p.baseline is not None
            p.baseline = torch.where(ids.reshape(p.inputs.shape) < 0, p.inputs, p.baseline)
            p.baseline_output = v[..., 0].to(p.inputs.dtype).to(dev)
        return p.result(values, "kernel_shap", params, extras=extras)


def _bootstrap_stderr(z: Tensor, w: Tensor, y: Tensor, v0: Tensor, v1: Tensor, n_fixed: int,
                      draws: Tensor, gen: torch.Generator) -> Tensor:
    """Standard deviation of the solution over bootstrap resamples of the draws (each draw is a
    pair; a resample reweights the pairs by how often it picked them)."""
    m, d = z.shape[0], int(draws.shape[0])
    pairs = (m - n_fixed) // 2
    if pairs < 2 or d < 2:
        return torch.zeros((y.shape[0], z.shape[1]), dtype=torch.float64)
    pick = draws[torch.randint(0, d, (_BOOTSTRAP, d), generator=gen)]
    counts = torch.zeros((_BOOTSTRAP, pairs), dtype=torch.float64)
    counts.scatter_add_(1, pick, torch.ones_like(pick, dtype=torch.float64))
    drawn_mass = float(w[n_fixed:].sum())
    wb = w.expand(_BOOTSTRAP, m).clone()
    wb[:, n_fixed:] = counts.repeat_interleave(2, dim=1) * (drawn_mass / (2 * d))
    phis = solve_kernel_regression(z, wb, y, v0, v1)  # (B, E, n)
    return phis.std(dim=0, unbiased=True)
