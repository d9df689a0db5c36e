"""Symmetry preservation (Sundararajan et al. 2017, section 4): if swapping ``x_i`` and ``x_j``
never changes ``F``, and ``x_i = x_j``, ``x'_i = x'_j``, then ``a_i = a_j``. Measured as
``max |a_i - a_j| / max(|F(x) - F(x')|, max |a|)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.axioms._report import CANNOT_RUN, AxiomReport, CaseResult, evaluate_ends, runner
from attribkit.axioms.cases import symmetric_mlp
from attribkit.core.errors import InputError
from attribkit.toys import Polynomial

__all__ = ["check_symmetry"]

_MEASURE = "max |a_i - a_j| / max(|F(x) - F(x')|, max |a|)"


def _case(run: Callable[..., Any], name: str, model: Callable[..., Tensor], x: Tensor,
          b: Tensor, pairs: Sequence[tuple[int, int]], target: Any,
          tolerance: float) -> CaseResult:
    try:
        fx, fb, fixed = evaluate_ends(model, x, b, target)
        a = run(model, x, b, fixed).values.reshape(x.shape[0], -1).to(torch.float64)
    except CANNOT_RUN as err:
        return CaseResult(name, float("nan"), None, f"cannot run: {type(err).__name__}: {err}")
    scale = max(float((fx - fb).abs().max()), float(a.abs().max()), 1e-300)
    diffs = torch.stack([(a[:, i] - a[:, j]).abs() for i, j in pairs])
    value = float(diffs.max()) / scale
    return CaseResult(name, value, value <= tolerance,
                      f"a_i, a_j = {float(a[0, pairs[0][0]]):.4g}, {float(a[0, pairs[0][1]]):.4g}")


def _swap(x: Tensor, i: int, j: int) -> Tensor:
    flat = x.reshape(x.shape[0], -1).clone()
    flat[:, [i, j]] = flat[:, [j, i]]
    return flat.reshape(x.shape)


def check_symmetry(
    method: str,
    model: Callable[..., Tensor] | None = None,
    inputs: Tensor | None = None,
    *,
    pairs: Sequence[tuple[int, int]] | None = None,
    baseline: Tensor | None = None,
    target: Any = None,
    tolerance: float = 1e-6,
    constructed: bool | None = None,
    options: Mapping[str, Any] | None = None,
) -> AxiomReport:
    """Check that symmetric features with equal values get equal attributions.

    Parameters
    ----------
    method
        A registered method name.
    model
        Your model (optional), symmetric in each pair of ``pairs``.
    inputs
        ``(N, ...)`` inputs with equal values (and equal baseline values) in each pair.
    pairs
        Flat feature index pairs ``(i, j)``. The check confirms that swapping them leaves ``F``
        unchanged near the inputs and that the values are equal.
    baseline
        The baseline (default zeros).
    target
        The explained class of your model (default predicted).
    tolerance
        The largest ``max |a_i - a_j| / max(|F(x) - F(x')|, max |a|)`` that passes.
    constructed
        Also run the built-in cases (default: only when no model is given).
    options
        Passed to the method.
    """
    run = runner(method, options)
    cases: list[CaseResult] = []
    if model is not None:
        if inputs is None or not pairs:
            raise InputError("give inputs and pairs= (the symmetric features).")
        b = baseline if baseline is not None else torch.zeros_like(inputs)
        flat, fb = inputs.reshape(inputs.shape[0], -1), b.reshape(inputs.shape[0], -1)
        g = torch.Generator().manual_seed(0)
        probe = inputs + 0.3 * torch.randn(inputs.shape, generator=g, dtype=inputs.dtype)
        for i, j in pairs:
            if not (torch.equal(flat[:, i], flat[:, j]) and torch.equal(fb[:, i], fb[:, j])):
                raise InputError(f"features {i} and {j} must have equal values in the inputs "
                                 "and in the baseline for the axiom to apply.")
            with torch.no_grad():
                change = float((model(probe) - model(_swap(probe, i, j))).abs().max())
            if change > 1e-9:
                raise InputError(f"swapping features {i} and {j} changes the output by "
                                 f"{change:.3g}: the model is not symmetric in them.")
        cases.append(_case(run, "your model", model, inputs, b, pairs, target, tolerance))
    if constructed or (constructed is None and model is None):
        x = torch.tensor([[0.9, 0.9, -0.4], [-1.1, -1.1, 0.7]], dtype=torch.float64)
        cases.append(_case(run, "tanh MLP symmetric in x1, x2", symmetric_mlp(3), x,
                           torch.zeros_like(x), [(0, 1)], None, tolerance))
        xp = torch.tensor([[1.2, 1.2, 0.5]], dtype=torch.float64)
        cases.append(_case(run, "polynomial x1 x2 + x1 + x2 + x3^2",
                           Polynomial([[1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 2]]), xp,
                           torch.zeros_like(xp), [(0, 1)], None, tolerance))
    return AxiomReport("symmetry", method, _MEASURE, tolerance, tuple(cases))
