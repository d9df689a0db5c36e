"""Quadrature rules on ``[0, 1]`` for path integrals, and attribkit's adaptive node placement.

Fixed rules (``nodes(rule, m)``): ``riemann_left``, ``riemann_right``, ``riemann_middle``,
``riemann_trapezoid`` (the four of Captum's naming) and ``gauss_legendre``.

``adaptive`` (attribkit's own rule) places the nodes where the model's output changes along the
path. A forward-only scan (no gradients: about a third of the cost of a gradient) measures
``F`` at ``S + 1`` equally spaced points; the density of nodes on each scan cell is a mix of a
uniform part and a part proportional to ``sqrt(|dF/d alpha|)`` (placing by ``|dF|`` itself
over-concentrates: the integrand's *error* is not proportional to its size). The path is then cut
into panels of equal mass under that density and each panel is integrated with a low-order
Gauss-Legendre rule, so smooth stretches keep high-order convergence and steep ones get more nodes.

Nested rules for error control (``tolerance=``): each panel carries the trapezoid rule, halved at
every level, so refinement reuses all the gradients already computed; the difference between
two levels, scaled by the convergence order observed, estimates the error.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

from attribkit.core.checks import count
from attribkit.core.errors import InputError
from attribkit.core.legendre import gauss_legendre

__all__ = [
    "FIXED_RULES",
    "RULES",
    "nodes",
    "panel_edges",
    "panel_nodes",
    "scan_density",
]

FIXED_RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
               "gauss_legendre")
RULES = (*FIXED_RULES, "adaptive")


def canonical_rule(rule: str) -> str:
    """Normalise a rule name (``"gauss-legendre"`` -> ``"gauss_legendre"``); refuse unknown ones."""
    key = rule.lower().replace("-", "_")
    key = {"left": "riemann_left", "right": "riemann_right", "middle": "riemann_middle",
           "trapezoid": "riemann_trapezoid", "gl": "gauss_legendre"}.get(key, key)
    if key not in RULES:
        raise InputError(f"unknown integration rule {rule!r}; use one of {', '.join(RULES)}.")
    return key


def nodes(rule: str, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``alpha_k`` and weights ``w_k`` (summing to 1) of a fixed rule with ``m`` nodes."""
    rule = canonical_rule(rule)
    m = count(m, f"steps (for {rule})", minimum=2 if rule == "riemann_trapezoid" else 1)
    if rule == "gauss_legendre":
        x, w = _gauss_legendre(m)
        return x.copy(), w.copy()
    if rule == "riemann_trapezoid":
        w = np.full(m, 1.0 / (m - 1))
        w[[0, -1]] *= 0.5
        return np.linspace(0.0, 1.0, m), w
    k = np.arange(m, dtype=np.float64)
    shift = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    if rule == "adaptive":
        raise InputError("the adaptive rule needs a scan of the model; use integrated_gradients.")
    return (k + shift) / m, np.full(m, 1.0 / m)


@functools.lru_cache(maxsize=64)
def _gauss_legendre(m: int) -> tuple[np.ndarray, np.ndarray]:
    # linear time and memory (attribkit.core.legendre); each order computed once
    x, w = gauss_legendre(m)
    return 0.5 * (x + 1.0), 0.5 * w


def scan_density(f_scan: Tensor, mix: float = 0.5) -> Tensor:
    """Node density per scan cell from ``F`` at ``S + 1`` equally spaced points.

    Parameters
    ----------
    f_scan
        ``(N, S + 1)`` (or ``(N, S + 1, K)`` for several targets) values of ``F`` on the path.
    mix
        Weight of the ``sqrt(|dF|)`` part; ``1 - mix`` is uniform.

    Returns
    -------
    Tensor
        ``(N, S)`` densities; each row averages to 1 over the cells.
    """
    d = (f_scan[:, 1:] - f_scan[:, :-1]).abs()
    if d.dim() == 3:  # several targets: each normalised to its own total change
        d = (d / d.sum(dim=1, keepdim=True).clamp_min(1e-30)).sum(dim=2)
    r = d.sqrt()
    r = r / r.mean(dim=1, keepdim=True).clamp_min(1e-30)
    r = torch.where(torch.isfinite(r), r, torch.ones_like(r))
    return (1.0 - mix) + mix * r


def panel_edges(density: Tensor, panels: int) -> Tensor:
    """Edges ``(N, panels + 1)`` of panels with equal mass under a per-cell density.

    ``density`` is ``(N, S)`` on ``S`` equal cells of ``[0, 1]``; the inverse of its piecewise
    linear cumulative distribution gives the edges.
    """
    n, s = density.shape
    cdf = torch.cat([density.new_zeros(n, 1), density.cumsum(dim=1)], dim=1)
    cdf = cdf / cdf[:, -1:]
    t = torch.linspace(0.0, 1.0, panels + 1, dtype=density.dtype, device=density.device)
    t = t.expand(n, -1).contiguous()
    j = torch.searchsorted(cdf, t, right=True).clamp(1, s) - 1
    lo, hi = cdf.gather(1, j), cdf.gather(1, j + 1)
    frac = ((t - lo) / (hi - lo).clamp_min(1e-30)).clamp(0.0, 1.0)
    edges = (j.to(density.dtype) + frac) / s
    edges[:, 0], edges[:, -1] = 0.0, 1.0
    return edges


def panel_nodes(lo: Tensor, hi: Tensor,
                base: tuple[np.ndarray, np.ndarray]) -> tuple[Tensor, Tensor]:
    """Map a rule on ``[0, 1]`` into panels ``[lo, hi]`` (each ``(N, P)``): ``(N, P * q)``."""
    x = torch.as_tensor(base[0], dtype=lo.dtype, device=lo.device)
    w = torch.as_tensor(base[1], dtype=lo.dtype, device=lo.device)
    a, b = lo[:, :, None], hi[:, :, None]
    alphas = a + (b - a) * x
    weights = (b - a) * w
    return alphas.flatten(1), weights.flatten(1)


def adaptive_plan(steps: int) -> tuple[int, int]:
    """Scan cells ``S`` and Gauss-Legendre order ``q`` per panel used by the adaptive rule."""
    q = max(1, min(6, round(math.sqrt(steps) / 2)))
    scan = max(4, min(32, steps // 2))
    return scan, q


def split_steps(steps: int, q: int) -> list[int]:
    """Orders of ``ceil(steps / q)`` panels whose sum is ``steps`` (differing by at most one)."""
    panels = max(1, math.ceil(steps / q))
    base, extra = divmod(steps, panels)
    return [base + (1 if i < extra else 0) for i in range(panels)]
