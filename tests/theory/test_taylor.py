"""Taylor terms: exact polynomial expansion against autograd, closed forms, the residual."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from attribkit.theory.taylor import polynomial_terms, taylor_terms
from attribkit.toys import Polynomial


def test_polynomial_terms_match_autograd_terms_and_sum_to_the_output_change() -> None:
    model = Polynomial([[2, 1, 0], [0, 1, 3], [1, 0, 0]], [1.0, 2.0, -1.0])
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([[0.5, -1.0, 1.0]], dtype=torch.float64)
    exact = polynomial_terms(model, x, b)
    auto = taylor_terms(model, x, b, order=4)
    assert exact.residual == pytest.approx(0.0, abs=1e-10)
    assert auto.residual == pytest.approx(0.0, abs=1e-10)
    assert {t.kappa: t.value for t in exact.terms} == pytest.approx(
        {t.kappa: t.value for t in auto.terms})
    # one term by hand: 2 x2 x3^3 around (-1, 1) gives kappa (0,1,2): 2 * C(3,2) * 1 * 3 * 2^2
    assert {t.kappa: t.value for t in exact.terms}[(0, 1, 2)] == pytest.approx(2 * 3 * 3 * 4)


def test_autograd_terms_of_an_exponential_have_the_closed_form() -> None:
    class Exp(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.exp(z[:, 0] + 2 * z[:, 1])

    x = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    dec = taylor_terms(Exp(), x, order=3)
    for t in dec.terms:
        k1, k2 = t.kappa
        expect = 2.0 ** k2 * 0.3 ** k1 * (-0.2) ** k2 / (math.factorial(k1) * math.factorial(k2))
        assert t.value == pytest.approx(expect, rel=1e-10)
    assert len(dec.terms) == 9  # all degree vectors with 1 <= |kappa| <= 3
    rest = sum((0.3 - 0.4) ** k / math.factorial(k) for k in range(4, 40))
    assert dec.residual == pytest.approx(rest, rel=1e-6)


def test_residual_shrinks_with_order(make_mlp: Callable[..., nn.Sequential]) -> None:
    model = make_mlp(n_in=3, n_out=2, seed=0)
    x = torch.tensor([[0.2, -0.1, 0.15]], dtype=torch.float64)
    res = [abs(taylor_terms(model, x, order=k, target=1).residual) for k in (1, 2, 3)]
    assert res[0] > res[1] > res[2]
    dec = taylor_terms(model, x, order=2, target=1)
    assert dec.independent() and dec.interactions()
    assert sum(dec.effects().values()) + dec.residual == pytest.approx(
        dec.output - dec.baseline_output)
