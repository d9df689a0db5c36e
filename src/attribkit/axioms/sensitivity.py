"""Sensitivity(a) and Sensitivity(b) / Dummy (Sundararajan et al. 2017, section 2).

* Sensitivity(a): if ``x`` and ``x'`` differ in one feature and ``F(x) != F(x')``, that feature
  gets a non-zero attribution. Measured as ``|a_i| / |F(x) - F(x')|``, which must be at least the
  tolerance (plain gradients give exactly 0 on ``1 - ReLU(1 - x)`` at ``x = 2``).
* Sensitivity(b) / Dummy: if ``F`` does not depend on ``x_i``, then ``a_i = 0``. Measured as
  ``max |a_dummy| / max(|F(x) - F(x')|, max |a|)``, which must be at most the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.axioms._report import CANNOT_RUN, AxiomReport, CaseResult, evaluate_ends, runner
from attribkit.axioms.cases import dummy_mlp, one_minus_relu_net
from attribkit.core.errors import InputError
from attribkit.toys import OneMinusReLU, Polynomial

__all__ = ["check_dummy", "check_sensitivity_a", "check_sensitivity_b"]


class _SaturatedSigmoid(nn.Module):
    """``sigmoid(10 x1) + 0.5 x2``: a feature whose gradient at ``x1 = 3`` is about 1e-12."""

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = torch.sigmoid(10.0 * x[:, 0]) + 0.5 * x[:, 1]
        return out


def _sens_a_cases() -> list[tuple[str, Callable[..., Tensor], Tensor, Tensor, int]]:
    x1 = torch.tensor([[2.0]], dtype=torch.float64)
    x2 = torch.tensor([[3.0, 0.4]], dtype=torch.float64)
    b2 = torch.tensor([[0.0, 0.4]], dtype=torch.float64)
    return [
        ("1 - ReLU(1 - x), x = 2, x' = 0", OneMinusReLU(), x1, torch.zeros_like(x1), 0),
        ("1 - ReLU(1 - x) as Linear/ReLU layers, x = 2, x' = 0", one_minus_relu_net(), x1,
         torch.zeros_like(x1), 0),
        ("sigmoid(10 x1) + 0.5 x2, x = (3, 0.4), x' = (0, 0.4)", _SaturatedSigmoid(), x2, b2, 0),
    ]


def _one_feature(run: Callable[..., Any], name: str, model: Callable[..., Tensor], x: Tensor,
                 b: Tensor, feature: int, target: Any, tolerance: float) -> CaseResult:
    try:
        fx, fb, fixed = evaluate_ends(model, x, b, target)
        attr = run(model, x, b, fixed)
    except CANNOT_RUN as err:
        return CaseResult(name, float("nan"), None, f"cannot run: {type(err).__name__}: {err}")
    delta = float((fx - fb).abs().max())
    a = attr.values.reshape(x.shape[0], -1)[:, feature].to(torch.float64)
    value = float(a.abs().min()) / max(delta, 1e-300)
    return CaseResult(name, value, value >= tolerance,
                      f"a_i = {float(a[0]):.3g}, F(x) - F(x') = {float((fx - fb)[0]):.3g}")


def check_sensitivity_a(
    method: str,
    model: Callable[..., Tensor] | None = None,
    inputs: Tensor | None = None,
    *,
    baseline: Tensor | None = None,
    features: Sequence[int] | None = None,
    target: Any = None,
    tolerance: float = 1e-3,
    min_change: float = 1e-6,
    constructed: bool | None = None,
    options: Mapping[str, Any] | None = None,
) -> AxiomReport:
    """Check Sensitivity(a) for a registered method.

    With your model, for each chosen feature ``i`` of each input, the baseline is the input with
    feature ``i`` set to its value in ``baseline``; where this changes ``F`` by more than
    ``min_change``, feature ``i`` must get ``|a_i| >= tolerance * |F(x) - F(x')|``.

    Parameters
    ----------
    method
        A registered method name.
    model
        Your model (optional).
    inputs
        ``(N, ...)`` your inputs.
    baseline
        The values features are set to (default zeros).
    features
        Flat feature indices to test (default the 3 with the largest ``|x_i - x'_i|`` per input).
    target
        The explained class of your model (default predicted).
    tolerance
        The smallest share ``|a_i| / |F(x) - F(x')|`` that passes.
    min_change
        Pairs whose outputs differ by less are not tested (the axiom does not apply).
    constructed
        Also run the built-in cases (default: only when no model is given).
    options
        Passed to the method.
    """
    run = runner(method, options)
    cases: list[CaseResult] = []
    if model is not None:
        if inputs is None:
            raise InputError("give inputs with the model.")
        base = baseline if baseline is not None else torch.zeros_like(inputs)
        flat_x, flat_b = inputs.reshape(inputs.shape[0], -1), base.reshape(inputs.shape[0], -1)
        for e in range(inputs.shape[0]):
            chosen = (list(features) if features is not None else
                      (flat_x[e] - flat_b[e]).abs().argsort(descending=True)[:3].tolist())
            for i in chosen:
                b_i = flat_x[e].clone()
                b_i[i] = flat_b[e, i]
                x_e, b_e = inputs[e:e + 1], b_i.reshape(inputs[e:e + 1].shape)
                fx, fb, _ = evaluate_ends(model, x_e, b_e, target)
                if float((fx - fb).abs().max()) <= min_change:
                    continue
                cases.append(_one_feature(run, f"your model, input {e}, feature {i}", model,
                                          x_e, b_e, i, target, tolerance))
    if constructed or (constructed is None and model is None):
        for name, m, x, b, i in _sens_a_cases():
            cases.append(_one_feature(run, name, m, x, b, i, None, tolerance))
    return AxiomReport("sensitivity_a", method, "min |a_i| / |F(x) - F(x')|", tolerance,
                       tuple(cases))


def _dummy_case(run: Callable[..., Any], name: str, model: Callable[..., Tensor], x: Tensor,
                b: Tensor, dummy: Tensor, target: Any, tolerance: float) -> CaseResult:
    try:
        fx, fb, fixed = evaluate_ends(model, x, b, target)
        attr = run(model, x, b, fixed)
    except CANNOT_RUN as err:
        return CaseResult(name, float("nan"), None, f"cannot run: {type(err).__name__}: {err}")
    a = attr.values.reshape(x.shape[0], -1).to(torch.float64)
    scale = max(float((fx - fb).abs().max()), float(a.abs().max()), 1e-300)
    value = float(a[:, dummy].abs().max()) / scale
    return CaseResult(name, value, value <= tolerance,
                      f"max |a_dummy| = {float(a[:, dummy].abs().max()):.3g}")


def check_sensitivity_b(
    method: str,
    model: Callable[..., Tensor] | None = None,
    inputs: Tensor | None = None,
    *,
    dummy: Sequence[int] | Tensor | None = None,
    baseline: Tensor | None = None,
    target: Any = None,
    tolerance: float = 1e-6,
    constructed: bool | None = None,
    options: Mapping[str, Any] | None = None,
) -> AxiomReport:
    """Check Sensitivity(b) / Dummy: features the model ignores get zero attribution.

    Parameters
    ----------
    method
        A registered method name.
    model
        Your model (optional), with ``dummy`` naming the features it ignores.
    inputs
        ``(N, ...)`` your inputs.
    dummy
        Flat indices (or a boolean mask over the flattened features) of ignored features. The
        check first confirms that changing them leaves ``F`` unchanged.
    baseline
        Your baseline (default zeros).
    target
        The explained class of your model (default predicted).
    tolerance
        The largest ``max |a_dummy| / max(|F(x) - F(x')|, max |a|)`` that passes.
    constructed
        Also run the built-in cases (default: only when no model is given).
    options
        Passed to the method.
    """
    run = runner(method, options)
    cases: list[CaseResult] = []
    if model is not None:
        if inputs is None or dummy is None:
            raise InputError("give inputs and dummy= (the features the model ignores).")
        idx = torch.as_tensor(dummy)
        idx = idx.nonzero()[:, 0] if idx.dtype == torch.bool else idx.to(torch.long)
        base = baseline if baseline is not None else torch.zeros_like(inputs)
        g = torch.Generator().manual_seed(0)
        moved = inputs.reshape(inputs.shape[0], -1).clone()
        moved[:, idx] += torch.randn(moved[:, idx].shape, generator=g, dtype=moved.dtype)
        f0, f1, _ = evaluate_ends(model, inputs, moved.reshape(inputs.shape), target)
        change = float((f0 - f1).abs().max())
        if change > 1e-9 * max(1.0, float(f0.abs().max())):
            raise InputError(f"changing the dummy features changes the output by {change:.3g}: "
                             "the model does depend on them, so the axiom does not apply.")
        cases.append(_dummy_case(run, "your model", model, inputs, base, idx, target, tolerance))
    if constructed or (constructed is None and model is None):
        g = torch.Generator().manual_seed(4)
        x = torch.randn(3, 4, generator=g, dtype=torch.float64)
        xp = torch.tensor([[1.2, -0.7, 0.9]], dtype=torch.float64)
        cases.append(_dummy_case(run, "tanh MLP ignoring x3, x4", dummy_mlp(4, 2), x,
                                 torch.zeros_like(x), torch.tensor([2, 3]), None, tolerance))
        cases.append(_dummy_case(run, "polynomial x1 x2 + x1^2 ignoring x3",
                                 Polynomial([[1, 1, 0], [2, 0, 0]]), xp, torch.zeros_like(xp),
                                 torch.tensor([2]), None, tolerance))
    return AxiomReport("sensitivity_b", method,
                       "max |a_dummy| / max(|F(x) - F(x')|, max |a|)", tolerance, tuple(cases))


#: The Dummy axiom is Sensitivity(b).
check_dummy = check_sensitivity_b
