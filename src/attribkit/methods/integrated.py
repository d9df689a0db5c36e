"""Integrated Gradients (Sundararajan, Taly & Yan 2017) and interior gradients (seed 003).

``IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + alpha (x - x')) / dx_i d alpha``, computed with a
quadrature rule from :mod:`attribkit.core.paths`, or to a requested accuracy (``tolerance=``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core import paths
from attribkit.core.attribution import Attribution
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import InputError
from attribkit.methods.registry import AXIOMS, register

__all__ = ["InteriorGradients", "integrated_gradients", "interior_gradients"]

#: Panels of the nested rule used with ``tolerance=``.
TOLERANCE_PANELS = 8


def _expand(t: Tensor, like: Tensor) -> Tensor:
    return t.reshape(-1, *([1] * (like.dim() - 1)))


def _path(p: Problem, alpha: Tensor, example: Tensor) -> Callable[[slice], Tensor]:
    """Rows ``x'_e + alpha (x_e - x'_e)`` of the straight path, built chunk by chunk."""
    x, b = p.inputs, p.baseline
    assert b is not None

    def make(sl: slice) -> Tensor:
        ex = example[sl]
        a = _expand(alpha[sl].to(x.dtype), x)
        return b[ex] + a * (x[ex] - b[ex])

    return make


def _grid(p: Problem, alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Flatten per-example nodes ``(N, m)`` into rows (example-major)."""
    n, m = alpha.shape
    example = torch.arange(n, device=alpha.device).repeat_interleave(m)
    return alpha.reshape(-1), example


def _scan(p: Problem, cells: int) -> Tensor:
    """``F`` at ``cells + 1`` equally spaced points of each path, ``(N, cells + 1[, K])``."""
    t = torch.linspace(0.0, 1.0, cells + 1, dtype=p.inputs.dtype, device=p.inputs.device)
    alpha, example = _grid(p, t[1:-1].expand(p.n, -1))
    inner = p.scores(_path(p, alpha, example), example, desc="scan")
    assert p.output is not None and p.baseline_output is not None
    inner = inner.reshape(p.n, cells - 1, *inner.shape[1:])
    return torch.cat([p.baseline_output[:, None], inner, p.output[:, None]], dim=1)


def _adaptive_nodes(p: Problem, steps: int) -> tuple[Tensor, Tensor, int]:
    cells, q = paths.adaptive_plan(steps)
    density = paths.scan_density(_scan(p, cells))
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


def _integrate(p: Problem, alpha: Tensor, weight: Tensor) -> Tensor:
    """``sum_k w_k grad F(path(alpha_k))`` per example, ``(N[, K], ...)``."""
    a, example = _grid(p, alpha)
    _, sums = p.gradient_sum(_path(p, a, example), example, weight.reshape(-1),
                             desc="integrated gradients")
    return sums


def _scale(p: Problem, integral: Tensor) -> Tensor:
    assert p.baseline is not None
    diff = p.inputs - p.baseline
    return (diff.unsqueeze(1) if p.target.multi else diff) * integral


def _rel_l2(a: Tensor, b: Tensor, multi: bool) -> Tensor:
    dims = tuple(range(2 if multi else 1, a.dim()))
    num = (a - b).pow(2).sum(dim=dims).sqrt()
    den = b.pow(2).sum(dim=dims).sqrt()
    err = torch.where(den > 0, num / den.clamp_min(1e-300), torch.where(num > 0, math.inf, 0.0))
    return err.amax(dim=1) if multi else err


def _with_tolerance(p: Problem, tolerance: float, gap_tolerance: float | None, adaptive: bool,
                    max_steps: int) -> tuple[Tensor, Tensor, Tensor, int]:
    """Nested composite trapezoid (panel halving) until the error is below ``tolerance``.

    Every refinement keeps all earlier nodes. With ``d_L`` the relative L2 distance between
    levels ``L`` and ``L - 1``, the error of level ``L`` is estimated as ``d_L / (2^q - 1)``
    (Richardson), where ``q = log2(d_{L-1} / d_L)`` is the convergence order observed on this
    example, kept within ``[1, 2]`` (first order for the kinked integrands of ReLU networks,
    second for smooth ones). An example stops when that estimate is at most ``tolerance`` (and,
    if ``gap_tolerance`` is given, its relative completeness gap at most ``gap_tolerance``).
    """
    n, dt, dev = p.n, p.inputs.dtype, p.inputs.device
    panels = TOLERANCE_PANELS
    scanned = 0
    if adaptive:
        cells = 2 * panels
        edges = paths.panel_edges(paths.scan_density(_scan(p, cells)), panels)
        scanned = cells - 1
    else:
        edges = torch.linspace(0.0, 1.0, panels + 1, dtype=dt, device=dev).expand(n, -1)
    width = edges[:, 1:] - edges[:, :-1]
    w0 = torch.zeros_like(edges)  # level 0: the trapezoid rule on the panel edges
    w0[:, :-1] += width / 2
    w0[:, 1:] += width / 2
    trap = _integrate(p, edges, w0)
    steps = torch.full((n,), panels + 1, dtype=torch.long)
    estimate = torch.full((n,), math.inf, dtype=dt)
    prev_diff = torch.full((n,), math.nan, dtype=dt)
    active = torch.ones(n, dtype=torch.bool)
    assert p.output is not None and p.baseline_output is not None
    delta = (p.output - p.baseline_output).to(dt)
    level = 0
    while active.any() and panels * (2 << level) + 1 <= max_steps:
        level += 1
        new_per_panel = 1 << (level - 1)
        j = torch.arange(new_per_panel, dtype=dt, device=dev)
        alpha = (edges[:, :-1, None] + width[:, :, None] * (2 * j + 1) / (1 << level)).flatten(1)
        weight = (width[:, :, None] / (1 << level)).expand(-1, -1, new_per_panel).flatten(1)
        idx = active.nonzero()[:, 0]
        new = torch.zeros_like(trap)
        new[idx] = _integrate_subset(p, alpha, weight, idx)
        refined = 0.5 * trap + new
        diff = _rel_l2(_scale(p, refined), _scale(p, trap), p.target.multi).to(dt)
        order = torch.log2(prev_diff / diff).nan_to_num(1.0, 1.0, 1.0).clamp(1.0, 2.0)
        est = diff / (2.0**order - 1.0)
        gap = _rel_gap(_scale(p, refined), delta, p.target.multi)
        trap[idx] = refined[idx]
        estimate[idx] = est[idx]
        prev_diff[idx] = diff[idx]
        steps[idx] = panels * (1 << level) + 1
        done = estimate <= tolerance
        if gap_tolerance is not None:
            done &= gap <= gap_tolerance
        active = active & ~done
    if active.any():
        warnings.warn(
            f"Integrated Gradients did not reach tolerance={tolerance} within max_steps="
            f"{max_steps} for {int(active.sum())} example(s); the error estimates are on the "
            "result (error_estimate). Raise max_steps or loosen the tolerance.",
            RuntimeWarning, stacklevel=3,
        )
    return trap, estimate, steps, scanned


def _rel_gap(values: Tensor, delta: Tensor, multi: bool) -> Tensor:
    """``|sum(a) - delta| / |delta|`` per example (max over targets); 0 where both vanish."""
    total = values.flatten(2 if multi else 1).sum(-1)
    gap = (total - delta).abs()
    rel = torch.where(delta.abs() > 0, gap / delta.abs().clamp_min(1e-300),
                      torch.where(gap > 0, math.inf, 0.0))
    return rel.amax(dim=1) if multi else rel


def _integrate_subset(p: Problem, alpha: Tensor, weight: Tensor, idx: Tensor) -> Tensor:
    a, w = alpha[idx], weight[idx]
    m = a.shape[1]
    example = idx.repeat_interleave(m)
    _, sums = p.gradient_sum(_path(p, a.reshape(-1), example), example, w.reshape(-1),
                             desc="integrated gradients")
    return sums[idx]


@register(
    "integrated_gradients",
    aliases=("ig", "integrated-gradients"),
    family="path",
    needs_baseline=True,
    complete=True,
    axioms=AXIOMS,
    summary="Integrated Gradients: gradients integrated along the straight path from a baseline.",
)
def integrated_gradients(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    steps: int = 50,
    rule: str = "gauss_legendre",
    tolerance: float | None = None,
    completeness_tolerance: float | None = None,
    max_steps: int = 1025,
    batch_size: int | None = None,
    memory_budget: int | None = None,
    progress: bool = False,
    layer: nn.Module | None = None,
    forward_args: Sequence[Tensor] | None = None,
    channels_last: bool = False,
) -> Attribution:
    """Integrated Gradients along the straight path from ``baseline`` to ``inputs``.

    Parameters
    ----------
    model
        A callable from a batch ``(B, ...)`` to outputs ``(B,)`` or ``(B, C)``.
    inputs
        ``(N, ...)`` examples (float32 or float64; integer ids only with ``layer``).
    target
        ``None`` (predicted class), an int, one index per example, a callable from the output to
        one scalar per example, or a MultiTarget (``attribkit.top_k(3)``, ``all_classes()``):
        several targets share the forward passes and the result gets a target axis.
    baseline
        ``None`` (zeros), a number, a name (``"black"``, ``"blur"``, ``"uniform"``), a Baseline
        object, or a tensor (per example or shared).
    steps
        Gradient evaluations per example (ignored with ``tolerance``).
    rule
        ``"riemann_left"``, ``"riemann_right"``, ``"riemann_middle"``, ``"riemann_trapezoid"``,
        ``"gauss_legendre"`` or ``"adaptive"`` (attribkit's rule: nodes placed by a forward-only
        scan of ``F`` along the path; see :mod:`attribkit.core.paths`).
    tolerance
        Ask for an accuracy instead of a step count: refine a nested rule (reusing all gradients)
        until the estimated relative L2 error of the attribution is at most ``tolerance``. With
        ``rule="adaptive"`` the panels follow the scan. The estimate and the steps used are on
        the result (``error_estimate``, ``params["steps_used"]``).
    completeness_tolerance
        With ``tolerance``: also refine until the relative completeness gap
        ``|sum(a) - (F(x) - F(x'))| / |F(x) - F(x')|`` is at most this. On images the gap is a
        poor proxy for accuracy (positive and negative attributions cancel in the sum, so the
        gap can be several times the L2 error), which is why it is a separate option.
    max_steps
        The most gradient evaluations per example in tolerance mode.
    batch_size
        Rows per model call; ``None`` picks it from ``memory_budget``.
    memory_budget
        Bytes of activations per model call when ``batch_size`` is ``None`` (default 1 GiB).
    progress
        Show a progress bar.
    layer
        Attribute at this sub-module's output (e.g. a word-embedding layer for token ids).
    forward_args
        Extra per-example tensors passed to the model after the inputs (e.g. an attention mask).
    channels_last
        Evaluate image batches in the channels-last memory layout (often faster for CNNs on
        CPUs; the model is restored on exit).

    Returns
    -------
    Attribution
        Values shaped like the inputs (``(N, K, ...)`` with several targets), ``F(x)``,
        ``F(x')`` and the completeness gap.
    """
    rule = paths.canonical_rule(rule)
    if tolerance is None and (not isinstance(steps, int) or steps < 1):
        raise InputError(f"steps must be a positive int, got {steps!r}.")
    for name, tol in (("tolerance", tolerance), ("completeness_tolerance",
                                                 completeness_tolerance)):
        if tol is not None and not (0 < tol < 1):
            raise InputError(f"{name} is a relative error in (0, 1), got {tol!r}.")
    if completeness_tolerance is not None and tolerance is None:
        raise InputError("completeness_tolerance refines a tolerance run: give tolerance= too.")
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 memory_budget=memory_budget, progress=progress, layer=layer,
                 forward_args=forward_args, channels_last=channels_last) as p:
        params: dict[str, Any] = {"rule": rule}
        estimate = None
        if tolerance is not None:
            integral, estimate, used, scanned = _with_tolerance(
                p, tolerance, completeness_tolerance, rule == "adaptive", max_steps)
            params.update(tolerance=tolerance, completeness_tolerance=completeness_tolerance,
                          scheme="nested composite trapezoid",
                          steps_used=used.tolist(), scan_points=scanned)
        elif rule == "adaptive":
            alpha, weight, scanned = _adaptive_nodes(p, steps)
            integral = _integrate(p, alpha, weight)
            params.update(steps=steps, scan_points=scanned)
        else:
            a, w = paths.nodes(rule, steps)
            alpha = torch.as_tensor(a, dtype=p.inputs.dtype).expand(p.n, -1)
            weight = torch.as_tensor(w, dtype=p.inputs.dtype).expand(p.n, -1)
            integral = _integrate(p, alpha, weight)
            params.update(steps=steps)
        params.update(gradient_evaluations=p.gradient_evaluations,
                      forward_evaluations=p.forward_evaluations)
        return p.result(_scale(p, integral), "integrated_gradients", params,
                        error_estimate=estimate)


@dataclass(frozen=True)
class InteriorGradients:
    """Gradients at the counterfactuals ``x' + alpha (x - x')`` (seed 003, eq. 3).

    Attributes
    ----------
    alphas
        ``(A,)`` the scaling parameters.
    gradients
        ``(N, A, ...)`` the gradient of the target score at each counterfactual.
    scores
        ``(N, A)`` the curve ``F(alpha)`` (saturation curve, Figure 2).
    inputs, baselines
        ``(N, ...)`` the path's ends.
    """

    alphas: Tensor
    gradients: Tensor
    scores: Tensor
    inputs: Tensor
    baselines: Tensor

    def pixel_importance(self, channel_dim: int = 1) -> Tensor:
        """Interior pixel importance (eq. 4): ``sum_c |grad|`` per alpha, ``(N, A, H, W)``."""
        return self.gradients.abs().sum(dim=channel_dim + 1)

    def mean_magnitude(self) -> Tensor:
        """The mean absolute gradient per alpha ``(N, A)``: the trend plotted in Figure 3."""
        return self.gradients.abs().flatten(2).mean(dim=2)

    def cumulative(self) -> Tensor:
        """Integrated gradients cumulated up to each alpha (right Riemann sums), ``(N, A, ...)``."""
        da = torch.diff(self.alphas, prepend=self.alphas.new_zeros(1))
        g = self.gradients * da.reshape(1, -1, *([1] * (self.gradients.dim() - 2)))
        return (self.inputs - self.baselines).unsqueeze(1) * g.cumsum(dim=1)


def interior_gradients(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    alphas: Sequence[float] | Tensor | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    layer: nn.Module | None = None,
    forward_args: Sequence[Tensor] | None = None,
) -> InteriorGradients:
    """Gradients of the target score at scaled inputs ``x' + alpha (x - x')``.

    Parameters
    ----------
    model, inputs, target, baseline, batch_size, progress, layer, forward_args
        As for :func:`integrated_gradients` (the seed's scaled inputs ``alpha x`` are the default
        zero baseline).
    alphas
        The scaling parameters; default 50 values from 0.02 to 1.

    Returns
    -------
    InteriorGradients
        The gradients, the curve ``F(alpha)`` and helpers for pixel importance.
    """
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, layer=layer, forward_args=forward_args,
                 allow_multi_target=False) as p:
        a = (torch.linspace(0.02, 1.0, 50, dtype=p.inputs.dtype) if alphas is None
             else torch.as_tensor(alphas, dtype=p.inputs.dtype))
        if a.dim() != 1 or a.numel() == 0:
            raise InputError("alphas must be a non-empty 1-D sequence of scaling parameters.")
        flat, example = _grid(p, a.expand(p.n, -1))
        scores, grads = p.gradients(_path(p, flat, example), example, desc="interior gradients")
        assert p.baseline is not None
        return InteriorGradients(alphas=a, gradients=grads.reshape(p.n, a.numel(),
                                                                   *p.inputs.shape[1:]),
                                 scores=scores.reshape(p.n, a.numel()), inputs=p.inputs,
                                 baselines=p.baseline)
