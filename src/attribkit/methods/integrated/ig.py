"""Integrated Gradients (Sundararajan, Taly & Yan 2017) and interior gradients (Sundararajan,
Taly & Yan 2016, "Gradients of Counterfactuals").

``IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + alpha (x - x')) / dx_i d alpha``, computed with a
quadrature rule from :mod:`attribkit.core.paths`, or to a requested accuracy (``tolerance=``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core import paths
from attribkit.core.attribution import Attribution
from attribkit.core.checks import count
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError
from attribkit.core.layer_space import layer_side
from attribkit.core.multi import several_inputs
from attribkit.core.summary import summary_repr
from attribkit.methods.integrated._path import adaptive_nodes, grid, integrate, path, scale
from attribkit.methods.integrated.tolerance import TOLERANCE_PANELS, with_tolerance
from attribkit.methods.registry import AXIOMS, register

__all__ = ["InteriorGradients", "integrated_gradients", "interior_gradients"]

@register(
    "integrated_gradients",
    aliases=("ig", "integrated-gradients"),
    family="path",
    needs_baseline=True,
    complete=True,
    axioms=AXIOMS,
    summary="Integrated Gradients: gradients integrated along the straight path from a baseline.",
)
@several_inputs()
@shared_parameters("model", "progress", "attribute_to")
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
    conservative: bool = False,
    batch_size: int | None = None,
    memory_budget: int | None = None,
    progress: bool = False,
    layer: nn.Module | None = None,
    attribute_to: str = "layer_output",
    forward_args: Sequence[Tensor] | None = None,
    channels_last: bool = False,
    compile: bool = False,
) -> Attribution:
    """Integrated Gradients along the straight path from ``baseline`` to ``inputs``.

    Parameters
    ----------
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
    conservative
        With ``tolerance``: stop by an upper bound of the error (Richardson extrapolation,
        which on ReLU networks over-states the error by about 1.5x) instead of the calibrated
        estimate (by default the actual error is within about 1.2x of the estimate either way,
        see :mod:`attribkit.methods.integrated.tolerance`). Costs more gradients.
    batch_size
        Rows per model call; ``None`` picks it from ``memory_budget``.
    memory_budget
        Bytes of activations per model call when ``batch_size`` is ``None`` (default 1 GiB).
    layer
        Attribute at this sub-module's output (e.g. a word-embedding layer for token ids).
    forward_args
        Extra per-example tensors passed to the model after the inputs (e.g. an attention mask).
    channels_last
        Evaluate image batches in the channels-last memory layout (often faster for CNNs on
        CPUs; the model is restored on exit). Float32 images of at least 64 x 64 pixels on a CPU
        use it whatever this says (:func:`~attribkit.core.probes.channels_last_helps`).
    compile
        Evaluate the path batches with ``torch.compile`` of the model: the compilation (tens
        of seconds to minutes) is paid once per model and chunk shape and kept across calls;
        where it fails, one warning and the model runs as given. Worth it only when many
        gradients follow (many photos, tight tolerances): see docs/benchmarks.md.

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
                 forward_args=forward_args, channels_last=channels_last,
                 compile=compile, fast=True) as p:
        params: dict[str, Any] = {"rule": rule}
        estimate = None
        if tolerance is not None:
            integral, estimate, used, scanned = with_tolerance(
                p, tolerance, completeness_tolerance, rule == "adaptive", max_steps,
                conservative)
            params.update(tolerance=tolerance, completeness_tolerance=completeness_tolerance,
                          scheme="adaptive nested trapezoid", conservative=conservative,
                          steps_used=used.tolist(), scan_points=scanned)
        elif rule == "adaptive":
            alpha, weight, scanned = adaptive_nodes(p, steps)
            integral = integrate(p, alpha, weight)
            params.update(steps=steps, scan_points=scanned)
        else:
            a, w = paths.nodes(rule, steps)
            alpha = torch.as_tensor(a, dtype=p.inputs.dtype).expand(p.n, -1)
            weight = torch.as_tensor(w, dtype=p.inputs.dtype).expand(p.n, -1)
            integral = integrate(p, alpha, weight)
            params.update(steps=steps)
        params.update(gradient_evaluations=p.gradient_evaluations,
                      forward_evaluations=p.forward_evaluations)
        return p.result(scale(p, integral), "integrated_gradients", params,
                        error_estimate=estimate)


@dataclass(frozen=True)
class InteriorGradients:
    """Gradients at the counterfactuals ``x' + alpha (x - x')`` (Gradients of
    Counterfactuals, eq. 3).

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
                 allow_multi_target=False, fast=True) as p:
        a = (torch.linspace(0.02, 1.0, 50, dtype=p.inputs.dtype) if alphas is None
             else torch.as_tensor(alphas, dtype=p.inputs.dtype))
        if a.dim() != 1 or a.numel() == 0:
            raise InputError("alphas must be a non-empty 1-D sequence of scaling parameters.")
        flat, example = grid(p, a.expand(p.n, -1))
        scores, grads = p.gradients(path(p, flat, example), example, desc="interior gradients")
        assert p.baseline is not None
        return InteriorGradients(alphas=a, gradients=grads.reshape(p.n, a.numel(),
                                                                   *p.inputs.shape[1:]),
                                 scores=scores.reshape(p.n, a.numel()), inputs=p.inputs,
                                 baselines=p.baseline)
