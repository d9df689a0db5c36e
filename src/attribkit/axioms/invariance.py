"""Implementation invariance (Sundararajan et al. 2017, section 2.2): two networks that compute
the same function get identical attributions.

Built-in pairs (:mod:`attribkit.toys`): ``f(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2))`` and
``g(x1, x2) = ReLU(ReLU(x1 - 1) - ReLU(x2))``; the sum / detour networks that reproduce the
guided-backprop and DeConvNet numbers of the Gradients of Counterfactuals paper's Figure 14; and
``min(ReLU(x1 + x2), 6)`` as a ReLU6 unit and as ``ReLU(x1 + x2) - ReLU(x1 + x2 - 6)``. Measured as
``max |A_a - A_b| / max(|F(x) - F(x')|, max |A|)``, the worst over the pairs. Gradients and
Integrated Gradients pass; DeepLIFT and LRP-alpha-beta fail on the first pair (discrete gradients
have no chain rule), guided backprop and DeConvNet on the second (they clip negative signals at
ReLUs), LRP-epsilon and guided backprop on the third (LRP-epsilon is Gradient x Input on ReLU
networks, whatever their biases, but passes relevance through a saturated ReLU6 unchanged).

The tolerance, :data:`TOLERANCE` = 1e-4 of the attribution scale, separates numerical noise from
implementation dependence: rounding is ~1e-16, and LRP's stabiliser ``epsilon = 1e-6`` changes
each layer's relevance by about ``epsilon / |z|`` (1.3e-6 on these pairs, whose pre-activations
``z`` are of order one), while the counterexamples differ by 0.1 to 0.6 of the scale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from attribkit.axioms._report import CANNOT_RUN, AxiomReport, CaseResult, evaluate_ends, runner
from attribkit.core.errors import InputError
from attribkit.toys import (
    clip_network,
    detour_network,
    f_network,
    g_network,
    sum_network,
    two_relu_network,
)

__all__ = ["TOLERANCE", "check_implementation_invariance", "clip_inputs", "fg_inputs",
           "figure14_inputs"]

#: Default threshold on ``max |A_a - A_b| / max(|F(x) - F(x')|, max |A|)`` (see module docstring).
TOLERANCE = 1e-4


def fg_inputs() -> Tensor:
    """Inputs for the ``f``, ``g`` pair on both sides of their kinks (``x1 = 3, x2 = 1`` first)."""
    return torch.tensor([[3.0, 1.0], [2.0, 0.5], [1.5, -1.0], [4.0, 2.0]], dtype=torch.float64)


def _equivalence(model_a: Callable[..., Tensor], model_b: Callable[..., Tensor], x: Tensor,
                 target: Any) -> float:
    g = torch.Generator().manual_seed(0)
    probe = torch.cat([x, x + 0.5 * torch.randn(x.shape, generator=g, dtype=x.dtype)])
    with torch.no_grad():
        oa, ob = model_a(probe), model_b(probe)
    if oa.shape != ob.shape:
        raise InputError(f"the two models' outputs differ in shape: {tuple(oa.shape)} vs "
                         f"{tuple(ob.shape)}.")
    return float((oa - ob).abs().max())


def check_implementation_invariance(
    method: str,
    model_a: Callable[..., Tensor] | None = None,
    model_b: Callable[..., Tensor] | None = None,
    inputs: Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    target: Any = None,
    tolerance: float = TOLERANCE,
    equivalence_tolerance: float = 1e-9,
    options: Mapping[str, Any] | None = None,
) -> AxiomReport:
    """Check that two functionally equivalent models get the same attributions.

    Parameters
    ----------
    method
        A registered method name.
    model_a, model_b
        Two models computing the same function (default the three built-in pairs).
    inputs
        ``(N, ...)`` inputs (default :func:`fg_inputs`, :func:`figure14_inputs` and
        :func:`clip_inputs` for the built-in pairs).
    baseline
        The baseline (default zeros).
    target
        The explained class (default the predicted class of ``model_a``, used for both).
    tolerance
        The largest ``max |A_a - A_b| / max(|F(x) - F(x')|, max |A|)`` that passes (default
        1e-4: above rounding and LRP's ``epsilon = 1e-6``, far below a real difference).
    equivalence_tolerance
        How far the outputs may differ (at the inputs and near them) for the models to count
        as equivalent; beyond it an :class:`~attribkit.core.errors.InputError` is raised.
    options
        Passed to the method.
    """
    if (model_a is None) != (model_b is None):
        raise InputError("give both models (or neither, for the built-in pairs).")
    run = runner(method, options)
    pairs: list[tuple[str, Callable[..., Tensor], Callable[..., Tensor], Tensor]]
    if model_a is None or model_b is None:
        pairs = [("f, g networks", f_network(), g_network(),
                  fg_inputs() if inputs is None else inputs),
                 ("Figure 14 pair (sum, detour)", sum_network(), detour_network(),
                  figure14_inputs() if inputs is None else inputs),
                 ("ReLU6 pair (clip, two ReLUs)", clip_network(), two_relu_network(),
                  clip_inputs() if inputs is None else inputs)]
    else:
        if inputs is None:
            raise InputError("give inputs with the models.")
        pairs = [("your models", model_a, model_b, inputs)]
    cases = tuple(_case(run, name, a, b, x, baseline, target, tolerance, equivalence_tolerance)
                  for name, a, b, x in pairs)
    return AxiomReport("implementation_invariance", method, _MEASURE, tolerance, cases)


def figure14_inputs() -> Tensor:
    """Inputs for the sum / detour pair (``x = (1, 1)`` of the Gradients of Counterfactuals paper's
    Figure 14 first)."""
    return torch.tensor([[1.0, 1.0], [2.0, 0.5], [0.5, 1.5], [3.0, 2.0]], dtype=torch.float64)


def clip_inputs() -> Tensor:
    """Inputs for the ReLU6 pair: sums above 6 (saturated, ``x = (4.5, 3.1)`` first) and below.

    No input puts a kink of the path from 0 on a quadrature node of the usual rules."""
    return torch.tensor([[4.5, 3.1], [5.0, 3.7], [2.0, 1.3], [1.1, -0.4]], dtype=torch.float64)


def _case(run: Callable[..., Any], name: str, model_a: Callable[..., Tensor],
          model_b: Callable[..., Tensor], x: Tensor, baseline: Tensor | None, target: Any,
          tolerance: float, equivalence_tolerance: float) -> CaseResult:
    b = baseline if baseline is not None else torch.zeros_like(x)
    diff = _equivalence(model_a, model_b, x, target)
    if diff > equivalence_tolerance:
        raise InputError(f"the models are not functionally equivalent: outputs differ by "
                         f"{diff:.3g} at or near the inputs.")
    try:
        fx, fb, fixed = evaluate_ends(model_a, x, b, target)
        aa = run(model_a, x, b, fixed).values.to(torch.float64)
        ab = run(model_b, x, b, fixed).values.to(torch.float64)
    except CANNOT_RUN as err:
        return CaseResult(name, float("nan"), None, f"cannot run: {type(err).__name__}: {err}")
    per = (aa - ab).reshape(x.shape[0], -1).abs().amax(dim=1)
    scale = torch.maximum((fx - fb).abs(), torch.maximum(aa.reshape(x.shape[0], -1).abs().amax(1),
                                                          ab.reshape(x.shape[0], -1).abs().amax(1)))
    rel = per / scale.clamp_min(1e-300)
    worst = int(rel.argmax())
    value = float(rel[worst])
    detail = (f"worst at x = {x[worst].flatten().tolist()}: A_a = "
              f"{[round(v, 4) for v in aa[worst].flatten().tolist()[:6]]}, A_b = "
              f"{[round(v, 4) for v in ab[worst].flatten().tolist()[:6]]}; outputs agree to "
              f"{diff:.1g}")
    return CaseResult(name, value, value <= tolerance, detail)


_MEASURE = "max |A_a - A_b| / max(|F(x) - F(x')|, max |A|)"
