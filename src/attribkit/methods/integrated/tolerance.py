"""Integrated Gradients to a requested accuracy: a nested rule refined where its error is.

Each of ``TOLERANCE_PANELS`` panels of the path carries the trapezoid rule and is refined by
halving its spacing, which keeps all its earlier gradients. The change ``c_L`` of a panel's
contribution to the attribution at its last refinement measures its error ``e_L``:

* ``conservative=True`` (the first version of the estimate): Richardson, ``|c_L| / (2^q - 1)`` with
  the convergence order ``q`` seen between the last two changes, kept within ``[1, 2]``. It assumes
  the errors of successive levels point the same way; on ReLU networks they do not (every kink
  moves the error elsewhere), and the actual error was 0.55-0.69 of this estimate on ReLU6 CNNs and
  on EfficientNet-Lite0's benchmark photos, so it is an upper bound there, not an estimate.
* the default, a *calibrated* estimate: the errors of levels ``L - 1`` and ``L`` are modelled
  as vectors with norm ratio ``r`` and correlation ``rho``; then
  ``|c_L|^2 = e^2 (r^2 + 1 - 2 rho r)``, and the ratio and the angle between the last two
  change vectors of the panel give ``r`` and ``rho`` (:func:`fit_correlation`). Coherent
  errors (a smooth integrand: ``rho = 1``) give Richardson back; uncorrelated ones (many kinks)
  give an estimate up to ``sqrt(r^2 + 1) / (r - 1)`` times smaller. Before a panel has been
  refined twice, ``r = 2`` and ``rho = PRIOR_CORRELATION``, chosen on synthetic ReLU6 CNNs (see
  docs/benchmarks.md for the check on photos and models that were not used to choose it).

An example's estimate is the root sum of squares of its panels' errors relative to the
attribution's norm. While it is above ``tolerance`` the panels that carry half of the squared
error at least are refined, so gradients go where the integrand is rough and large. The path
points of all examples of a round are evaluated together, in the engine's chunks.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from attribkit.core import paths
from attribkit.core.engine import Problem
from attribkit.methods.integrated._path import path, scale, scan

__all__ = ["PRIOR_CORRELATION", "TOLERANCE_PANELS", "fit_correlation", "panel_errors",
           "with_tolerance"]

#: Panels of the nested rule used with ``tolerance=``.
TOLERANCE_PANELS = 8
#: Correlation assumed between successive levels' errors of a panel refined only once.
PRIOR_CORRELATION = 0.5
_RHO = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)


def fit_correlation(ratio: Tensor, cosine: Tensor) -> Tensor:
    """The correlation ``rho`` of successive errors that explains the angle of two changes.

    With errors ``e_{L-2}, e_{L-1}, e_L`` of norms ``r^2 e, r e, e``, neighbours correlated by
    ``rho`` and ``e_L, e_{L-2}`` by ``rho^2``, the changes ``c_L = e_L - e_{L-1}`` and
    ``c_{L-1}`` have the cosine
    ``(rho r - rho^2 r^2 - r^2 + rho r^3) / (r (r^2 + 1 - 2 rho r))``: 1 at ``rho = 1``,
    ``-r / (r^2 + 1)`` at ``rho = 0``. The ``rho`` in ``[0, 1]`` whose cosine is nearest the
    measured one is returned (element-wise).
    """
    r = ratio.to(torch.float64).unsqueeze(-1)
    rho = _RHO.to(r.device)
    model = (rho * r - rho**2 * r**2 - r**2 + rho * r**3) / (r * (r**2 + 1 - 2 * rho * r))
    best = (model - cosine.to(torch.float64).unsqueeze(-1)).abs().argmin(dim=-1)
    return rho[best].to(ratio.dtype)


def panel_errors(change: Tensor, prev_change: Tensor, cosine: Tensor,
                 conservative: bool) -> Tensor:
    """Estimated error norm of each panel's current level (``inf`` before any refinement).

    Parameters
    ----------
    change, prev_change
        Norms of the last two changes of each panel (``nan`` where there was none).
    cosine
        Cosine of the angle between those two change vectors (``nan`` where undefined).
    conservative
        Richardson with the observed order in ``[1, 2]`` instead of the calibrated estimate.
    """
    if conservative:  # the error is taken to be as large as the last change
        return change.nan_to_num(math.inf)
    seen = (prev_change > 0) & (change > 0) & torch.isfinite(prev_change / change)
    seen &= torch.isfinite(cosine)
    r = torch.where(seen, (prev_change / change).nan_to_num(2.0), 2.0).clamp(1.0 + 1e-6, 4.0)
    rho = torch.where(seen, fit_correlation(r, cosine.nan_to_num(1.0)), PRIOR_CORRELATION)
    err = change / (r**2 + 1 - 2 * rho * r).sqrt()
    return torch.where(change == 0, 0.0, err).nan_to_num(math.inf)


def with_tolerance(p: Problem, tolerance: float, gap_tolerance: float | None, adaptive: bool,
                   max_steps: int, conservative: bool = False
                   ) -> tuple[Tensor, Tensor, Tensor, int]:
    """Refine the nested rule until each example's estimated relative error is ``tolerance``.

    Returns the integrated gradients ``(N[, K], ...)``, the estimates ``(N,)``, the gradient
    evaluations per example and the forward-only scan points per example.
    """
    n, dt, dev = p.n, p.inputs.dtype, p.inputs.device
    panels = TOLERANCE_PANELS
    scanned = 0
    if adaptive:
        cells = 2 * panels
        edges = paths.panel_edges(paths.scan_density(scan(p, cells)), panels)
        scanned = cells - 1
    else:
        edges = torch.linspace(0.0, 1.0, panels + 1, dtype=dt, device=dev).expand(n, -1)
    width = edges[:, 1:] - edges[:, :-1]
    assert p.output is not None and p.baseline_output is not None and p.baseline is not None
    delta = (p.output - p.baseline_output).to(dt)
    # the gradient at every panel edge, once; each panel's trapezoid sum from its two edges
    g_edges = _panel_sums(p, edges.reshape(n, -1, 1), torch.ones(n, panels + 1, 1, dtype=dt),
                          torch.arange(n).repeat_interleave(panels + 1),
                          torch.arange(n * (panels + 1)), n * (panels + 1))
    g_edges = g_edges.reshape(n, panels + 1, *g_edges.shape[1:])
    wshape = (n, panels, *([1] * (g_edges.dim() - 2)))
    trap = 0.5 * width.reshape(wshape) * (g_edges[:, :-1] + g_edges[:, 1:])
    level = torch.zeros(n, panels, dtype=torch.long)
    change = torch.full((n, panels), math.nan, dtype=dt)
    prev_change = torch.full((n, panels), math.nan, dtype=dt)
    cosine = torch.full((n, panels), math.nan, dtype=dt)
    last = torch.zeros_like(trap)  # the last change vector of each panel
    estimate = torch.full((n,), math.inf, dtype=dt)
    diff = p.inputs - p.baseline
    while True:
        total = trap.sum(dim=1)
        norm = _norm(scale(p, total), p.target.multi).to(dt)
        err = panel_errors(change, prev_change, cosine, conservative)
        estimate = _combine(err, change, last, p.target.multi) / norm.clamp_min(1e-300)
        estimate = torch.where(norm > 0, estimate, torch.where(err.sum(1) > 0, math.inf, 0.0))
        done = estimate <= tolerance
        if gap_tolerance is not None:
            done &= _rel_gap(scale(p, total), delta, p.target.multi) <= gap_tolerance
        steps = panels + 1 + ((1 << level) - 1).sum(dim=1)
        refine = _choose_panels(err, done, level, steps, max_steps)
        if not refine.any():
            break
        ex, pan = refine.nonzero(as_tuple=True)
        lev = level[ex, pan] + 1
        count = (1 << (lev - 1)).tolist()
        rows_ex = torch.repeat_interleave(ex, torch.tensor(count))
        rows_pan = torch.repeat_interleave(pan, torch.tensor(count))
        bucket = torch.repeat_interleave(torch.arange(ex.numel()), torch.tensor(count))
        j = torch.cat([torch.arange(c, dtype=dt) for c in count])
        h = width[rows_ex, rows_pan] / (1 << torch.repeat_interleave(lev, torch.tensor(count)))
        alpha = edges[rows_ex, rows_pan] + h * (2 * j + 1)
        new = _panel_sums(p, alpha[:, None, None], h[:, None, None], rows_ex, bucket, ex.numel())
        refined = 0.5 * trap[ex, pan] + new
        d_rows = diff[ex].unsqueeze(1) if p.target.multi else diff[ex]
        vec = d_rows * (refined - trap[ex, pan])
        prev_change[ex, pan] = change[ex, pan]
        change[ex, pan] = _norm(vec, p.target.multi).to(dt)
        a, b = vec.flatten(1), last[ex, pan].flatten(1)
        cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
        cosine[ex, pan] = cos.to(dt)  # nan after the first refinement (no earlier change)
        last[ex, pan] = vec
        trap[ex, pan] = refined
        level[ex, pan] = lev
    steps = panels + 1 + ((1 << level) - 1).sum(dim=1)
    if (estimate > tolerance).any():
        warnings.warn(
            f"Integrated Gradients did not reach tolerance={tolerance} within max_steps="
            f"{max_steps} for {int((estimate > tolerance).sum())} example(s); the error "
            "estimates are on the result (error_estimate). Raise max_steps or loosen the "
            "tolerance; on small ReLU networks at tight tolerances the estimate can fall short "
            "of the real error, and conservative=True bounds it.", RuntimeWarning, stacklevel=3,
        )
    return trap.sum(dim=1), estimate, steps, scanned


def _combine(err: Tensor, change: Tensor, last: Tensor, multi: bool) -> Tensor:
    """The norm of the example's error from its panels' error norms, ``(N,)``.

    Each panel's error is taken along its last change vector, scaled to its estimated norm, and
    the panels' errors are added as vectors: errors that point the same way (a smooth
    integrand, the trapezoid rule erring on the same side everywhere) add up linearly, errors
    in unrelated directions (kinks) in quadrature. At least the root sum of squares is kept.
    """
    rss = err.pow(2).sum(dim=1).sqrt()
    k = torch.where(change > 0, err / change.nan_to_num(1.0).clamp_min(1e-300), 0.0)
    k = k.nan_to_num(0.0, 0.0, 0.0).to(last.dtype)
    along = _norm((k.reshape(*k.shape, *([1] * (last.dim() - 2))) * last).sum(dim=1), multi)
    return torch.where(torch.isfinite(rss), torch.maximum(rss, along.to(rss.dtype)), rss)


def _choose_panels(err: Tensor, done: Tensor, level: Tensor, steps: Tensor,
                   max_steps: int) -> Tensor:
    """Panels to refine: per unfinished example, the largest errors making half the total."""
    refine = torch.zeros_like(level, dtype=torch.bool)
    for e in (~done).nonzero()[:, 0].tolist():
        cost = 1 << level[e]  # nodes a refinement of each panel adds
        order = torch.argsort(err[e], descending=True)
        sq = err[e, order].pow(2)
        share = sq.cumsum(0) / sq.sum() if torch.isfinite(sq.sum()) and sq.sum() > 0 else None
        budget = max_steps - int(steps[e])
        for k, j in enumerate(order.tolist()):
            if int(cost[j]) > budget:
                continue
            refine[e, j] = True
            budget -= int(cost[j])
            if share is not None and bool(share[k] >= 0.5):
                break
    return refine


def _norm(values: Tensor, multi: bool) -> Tensor:
    """L2 norm per row (max over targets)."""
    norm = values.flatten(2 if multi else 1).pow(2).sum(-1).sqrt()
    return norm.amax(dim=1) if multi else norm


def _panel_sums(p: Problem, alpha: Tensor, weight: Tensor, example: Tensor, bucket: Tensor,
                n_buckets: int) -> Tensor:
    """Weighted gradient sums of path points gathered into buckets."""
    a = alpha.reshape(-1)
    _, sums = p.gradient_sum(path(p, a, example), example, weight.reshape(-1),
                             desc="integrated gradients", bucket=bucket, n_buckets=n_buckets)
    return sums


def _rel_gap(values: Tensor, delta: Tensor, multi: bool) -> Tensor:
    """``|sum(a) - delta| / |delta|`` per example (max over targets); 0 where both vanish."""
    total = values.flatten(2 if multi else 1).sum(-1)
    gap = (total - delta).abs()
    rel = torch.where(delta.abs() > 0, gap / delta.abs().clamp_min(1e-300),
                      torch.where(gap > 0, math.inf, 0.0))
    return rel.amax(dim=1) if multi else rel
