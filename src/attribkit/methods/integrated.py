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
from attribkit.core.checks import count
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import InputError
from attribkit.core.layer_space import layer_side
from attribkit.core.summary import summary_repr
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
    diff = x - b

    def make(sl: slice) -> Tensor:
        a = _expand(alpha[sl].to(x.dtype), x)
        if p.n == 1:  # one example: broadcast instead of gathering its row for every point
            return torch.addcmul(b, a, diff)
        ex = example[sl]
        return torch.addcmul(b[ex], a, diff[ex])

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


def _with_tolerance(p: Problem, tolerance: float, gap_tolerance: float | None, adaptive: bool,
                    max_steps: int) -> tuple[Tensor, Tensor, Tensor, int]:
    """Adaptive nested trapezoid on panels until the estimated error is below ``tolerance``.

    Each panel carries the trapezoid rule and is refined by halving its spacing, which keeps all
    its earlier nodes. A panel's error is estimated from the change at its last refinement,
    ``d / (2^q - 1)`` (Richardson), with ``q`` the convergence order it showed, kept within
    ``[1, 2]`` (first order for the kinked integrands of ReLU networks, second for smooth ones).
    The example's estimate is the root sum of squares of its panels' errors relative to the
    attribution's norm. While it is above ``tolerance`` (or, with ``gap_tolerance``, the relative
    completeness gap is above that), the panels that carry the largest errors (half of the
    squared error at least) are refined, so nodes go where the integrand is rough and large.
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
    estimate = torch.full((n,), math.inf, dtype=dt)
    diff = p.inputs - p.baseline
    while True:
        total = trap.sum(dim=1)
        norm = _norm(_scale(p, total), p.target.multi).to(dt)
        order = torch.log2(prev_change / change).nan_to_num(1.0, 1.0, 1.0).clamp(1.0, 2.0)
        err = (change / (2.0**order - 1.0)).nan_to_num(math.inf)
        estimate = err.pow(2).sum(dim=1).sqrt() / norm.clamp_min(1e-300)
        estimate = torch.where(norm > 0, estimate, torch.where(err.sum(1) > 0, math.inf, 0.0))
        done = estimate <= tolerance
        if gap_tolerance is not None:
            done &= _rel_gap(_scale(p, total), delta, p.target.multi) <= gap_tolerance
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
        moved = _norm(d_rows * (refined - trap[ex, pan]), p.target.multi)
        prev_change[ex, pan] = change[ex, pan]
        change[ex, pan] = moved.to(dt)
        trap[ex, pan] = refined
        level[ex, pan] = lev
    steps = panels + 1 + ((1 << level) - 1).sum(dim=1)
    if (estimate > tolerance).any():
        warnings.warn(
            f"Integrated Gradients did not reach tolerance={tolerance} within max_steps="
            f"{max_steps} for {int((estimate > tolerance).sum())} example(s); the error "
            "estimates are on the result (error_estimate). Raise max_steps or loosen the "
            "tolerance.", RuntimeWarning, stacklevel=3,
        )
    return trap.sum(dim=1), estimate, steps, scanned


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
    _, sums = p.gradient_sum(_path(p, a, example), example, weight.reshape(-1),
                             desc="integrated gradients", bucket=bucket, n_buckets=n_buckets)
    return sums


def _rel_gap(values: Tensor, delta: Tensor, multi: bool) -> Tensor:
    """``|sum(a) - delta| / |delta|`` per example (max over targets); 0 where both vanish."""
    total = values.flatten(2 if multi else 1).sum(-1)
    gap = (total - delta).abs()
    rel = torch.where(delta.abs() > 0, gap / delta.abs().clamp_min(1e-300),
                      torch.where(gap > 0, math.inf, 0.0))
    return rel.amax(dim=1) if multi else rel


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
    attribute_to: str = "layer_output",
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
    attribute_to
        With ``layer``: ``"layer_output"`` (default) or ``"layer_input"`` (the layer's first
        positional input; a float baseline is then given in that space, default zeros).
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
    if tolerance is None:
        steps = count(steps, "steps", minimum=2 if rule == "riemann_trapezoid" else 1)
    else:
        max_steps = count(max_steps, "max_steps", minimum=TOLERANCE_PANELS + 1)
    for name, tol in (("tolerance", tolerance), ("completeness_tolerance",
                                                 completeness_tolerance)):
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                                or not (0 < tol < 1)):
            raise InputError(f"{name} is a relative error in (0, 1), got {tol!r}.")
    if completeness_tolerance is not None and tolerance is None:
        raise InputError("completeness_tolerance refines a tolerance run: give tolerance= too.")
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 memory_budget=memory_budget, progress=progress, layer=layer,
                 layer_input=layer_side(attribute_to, layer),
                 forward_args=forward_args, channels_last=channels_last) as p:
        params: dict[str, Any] = {"rule": rule}
        estimate = None
        if tolerance is not None:
            integral, estimate, used, scanned = _with_tolerance(
                p, tolerance, completeness_tolerance, rule == "adaptive", max_steps)
            params.update(tolerance=tolerance, completeness_tolerance=completeness_tolerance,
                          scheme="adaptive nested trapezoid",
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

    __repr__ = summary_repr

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
    attribute_to: str = "layer_output",
    forward_args: Sequence[Tensor] | None = None,
) -> InteriorGradients:
    """Gradients of the target score at scaled inputs ``x' + alpha (x - x')``.

    Parameters
    ----------
    model, inputs, target, baseline, batch_size, progress, layer, attribute_to, forward_args
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
                 progress=progress, layer=layer,
                 layer_input=layer_side(attribute_to, layer), forward_args=forward_args,
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
