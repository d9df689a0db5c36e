"""Completeness (Sundararajan et al. 2017, Proposition 1): ``sum_i a_i = F(x) - F(x')``.

Measured as the relative gap ``|sum(a) - (F(x) - F(x'))| / |F(x) - F(x')|``, a continuous number
compared with a tolerance (never an exact float equality). Methods without a baseline are held to
the zero baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from attribkit.axioms._report import CANNOT_RUN, AxiomReport, CaseResult, evaluate_ends, runner
from attribkit.axioms.cases import tanh_mlp
from attribkit.toys import Polynomial

__all__ = ["check_completeness", "completeness_cases"]

Case = tuple[str, Callable[..., Tensor], Tensor, Tensor]


def completeness_cases() -> list[Case]:
    """Smooth nonlinear models with inputs and zero baselines: a polynomial and two networks.

    (On piecewise-linear ReLU networks the quadrature error of path methods is ``O(1/steps)``
    at the kinks; check those with your own model and enough steps.)
    """
    g = torch.Generator().manual_seed(3)
    x4 = torch.randn(3, 4, generator=g, dtype=torch.float64) + 0.5
    poly = Polynomial([[2, 1, 0], [1, 0, 1]], [1.0, 0.5])
    xp = torch.tensor([[1.5, -0.8, 2.0], [0.7, 1.1, -0.4]], dtype=torch.float64)
    return [
        ("polynomial x1^2 x2 + 0.5 x1 x3", poly, xp, torch.zeros_like(xp)),
        ("tanh MLP 4-6-6-1", tanh_mlp(4, seed=0), x4, torch.zeros_like(x4)),
        ("softplus MLP 4-6-6-1", tanh_mlp(4, seed=5, act=torch.nn.Softplus), x4,
         torch.zeros_like(x4)),
    ]


def _gap(run: Callable[..., Any], name: str, model: Callable[..., Tensor], x: Tensor,
         b: Tensor | None, target: Any, tolerance: float) -> CaseResult:
    try:
        fx, fb, fixed = evaluate_ends(model, x, b, target)
        attr = run(model, x, b, fixed)
    except CANNOT_RUN as err:
        return CaseResult(name, float("nan"), None, f"cannot run: {type(err).__name__}: {err}")
    total = attr.total().to(torch.float64)
    delta = fx - fb
    gap = (total - delta).abs()
    rel = gap / delta.abs().clamp_min(1e-12)
    worst = float(rel.max())
    return CaseResult(name, worst, worst <= tolerance,
                      f"max |gap| {float(gap.max()):.3g}, F(x)-F(x') "
                      f"{[round(float(d), 4) for d in delta]}")


def check_completeness(
    method: str,
    model: Callable[..., Tensor] | None = None,
    inputs: Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    target: Any = None,
    tolerance: float = 0.01,
    constructed: bool | None = None,
    options: Mapping[str, Any] | None = None,
) -> AxiomReport:
    """Check ``sum(a) = F(x) - F(x')`` for a registered method.

    Parameters
    ----------
    method
        A registered method name.
    model
        Your model (optional); checked at ``inputs`` against ``baseline``.
    inputs
        ``(N, ...)`` your inputs.
    baseline
        Your baseline (default zeros).
    target
        The explained class of your model (default predicted).
    tolerance
        The largest relative gap that passes.
    constructed
        Also run the built-in cases (default: only when no model is given).
    options
        Passed to the method (``steps``, ...).

    Returns
    -------
    AxiomReport
        One case per model; ``value`` is the largest relative gap over its inputs.
    """
    run = runner(method, options)
    cases: list[CaseResult] = []
    if model is not None:
        if inputs is None:
            raise ValueError("give inputs with the model.")
        b = baseline if baseline is not None else torch.zeros_like(inputs)
        cases.append(_gap(run, "your model", model, inputs, b, target, tolerance))
    if constructed or (constructed is None and model is None):
        for name, m, x, b in completeness_cases():
            cases.append(_gap(run, name, m, x, b, None, tolerance))
    return AxiomReport("completeness", method, "max relative gap |sum a - dF| / |dF|",
                       tolerance, tuple(cases))
