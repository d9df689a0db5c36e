"""Linearity (Sundararajan et al. 2017, section 2): the attributions of ``alpha F1 + beta F2`` are
``alpha A(F1) + beta A(F2)``. Measured as the relative L2 distance
``||A(alpha F1 + beta F2) - (alpha A(F1) + beta A(F2))|| / (||alpha A(F1)|| + ||beta A(F2)||)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.axioms._report import CANNOT_RUN, AxiomReport, CaseResult, runner
from attribkit.axioms.cases import LinearCombination, combined_mlp, tanh_mlp
from attribkit.core.errors import InputError

__all__ = ["check_linearity"]

_MEASURE = "||A(aF1 + bF2) - (a A(F1) + b A(F2))|| / (||a A(F1)|| + ||b A(F2)||)"


def check_linearity(
    method: str,
    first: nn.Module | None = None,
    second: nn.Module | None = None,
    inputs: Tensor | None = None,
    *,
    alpha: float = 0.7,
    beta: float = -1.3,
    baseline: Tensor | None = None,
    target: Any = 0,
    tolerance: float = 1e-6,
    options: Mapping[str, Any] | None = None,
) -> AxiomReport:
    """Check that attributions are linear in the model.

    Parameters
    ----------
    method
        A registered method name.
    first, second
        Two models with the same input and output shapes (default two seeded tanh MLPs, whose
        combination is built as one Sequential network so that propagation methods run on it;
        yours are combined by :class:`~attribkit.axioms.cases.LinearCombination`).
    inputs
        ``(N, ...)`` inputs (default three seeded 4-feature rows for the built-in pair).
    alpha, beta
        The coefficients.
    baseline
        The baseline (default zeros).
    target
        The explained output column, the same for the three models (default 0); a predicted
        class would differ between them.
    tolerance
        The largest relative distance that passes.
    options
        Passed to the method (stochastic methods get the same seed for the three calls).
    """
    if (first is None) != (second is None):
        raise InputError("give both models (or neither, for the built-in pair).")
    if first is None or second is None:
        name = "two tanh MLPs 4-6-6-1"
        first, second = tanh_mlp(4, seed=10), tanh_mlp(4, seed=11)
        g = torch.Generator().manual_seed(5)
        x = torch.randn(3, 4, generator=g, dtype=torch.float64) if inputs is None else inputs
    else:
        name = "your models"
        if inputs is None:
            raise InputError("give inputs with the models.")
        x = inputs
    b = baseline if baseline is not None else torch.zeros_like(x)
    combined: nn.Module
    if name == "your models":
        combined = LinearCombination(first, second, alpha, beta)
    else:
        assert isinstance(first, nn.Sequential) and isinstance(second, nn.Sequential)
        combined = combined_mlp(first, second, alpha, beta)
    run = runner(method, options)
    try:
        a1 = run(first, x, b, target).values.to(torch.float64)
        a2 = run(second, x, b, target).values.to(torch.float64)
        ac = run(combined, x, b, target).values.to(torch.float64)
    except CANNOT_RUN as err:
        case = CaseResult(name, float("nan"), None, f"cannot run: {type(err).__name__}: {err}")
        return AxiomReport("linearity", method, _MEASURE, tolerance, (case,))
    expected = alpha * a1 + beta * a2
    den = float((alpha * a1).norm() + (beta * a2).norm())
    value = float((ac - expected).norm()) / max(den, 1e-300)
    case = CaseResult(name, value, value <= tolerance,
                      f"alpha = {alpha}, beta = {beta}, ||difference|| = "
                      f"{float((ac - expected).norm()):.3g}")
    return AxiomReport("linearity", method, _MEASURE, tolerance, (case,))
