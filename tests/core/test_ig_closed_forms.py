"""Integrated Gradients against closed forms (REFERENCE.md sections 1 and 3)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

import attribkit
from attribkit.core.paths import RULES
from attribkit.toys import OneMinusReLU, Polynomial, f_network, g_network


@pytest.mark.parametrize("rule", RULES)
def test_linear_model_gives_weight_times_difference(rule: str) -> None:
    torch.manual_seed(0)
    lin = nn.Linear(7, 3).double()
    x = torch.randn(4, 7, dtype=torch.float64)
    b = torch.randn(4, 7, dtype=torch.float64)
    a = attribkit.integrated_gradients(lin, x, baseline=b, target=2, steps=5, rule=rule)
    expected = lin.weight[2].detach() * (x - b)
    torch.testing.assert_close(a.values, expected, rtol=0, atol=1e-12)


def test_x1_squared_x2_gives_two_thirds_one_third() -> None:
    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    a = attribkit.integrated_gradients(Polynomial([[2, 1]]), x, steps=4)
    torch.testing.assert_close(a.values, torch.tensor([[2 / 3, 1 / 3]], dtype=torch.float64))


def test_one_minus_relu_ig_is_one_where_gradient_is_zero() -> None:
    x = torch.tensor([[2.0]], dtype=torch.float64)
    model = OneMinusReLU()
    a = attribkit.integrated_gradients(model, x, steps=200, rule="riemann_middle")
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    assert float(grad) == 0.0
    assert abs(float(a.values) - 1.0) < 1e-12


def test_functionally_equivalent_networks_get_identical_ig() -> None:
    x = torch.tensor([[3.0, 1.0], [0.5, 2.0], [2.5, -1.0]], dtype=torch.float64)
    f, g = f_network(), g_network()
    pts = torch.randn(500, 2, dtype=torch.float64) * 3
    torch.testing.assert_close(f(pts), g(pts))  # the two networks compute the same function
    af = attribkit.integrated_gradients(f, x, steps=1000, rule="riemann_middle")
    ag = attribkit.integrated_gradients(g, x, steps=1000, rule="riemann_middle")
    torch.testing.assert_close(af.values, ag.values, rtol=0, atol=1e-12)
    # at (3, 1): f = ReLU(3 - 1 - 1) = 1; the gradient field is (1, -1) wherever f > 0
    torch.testing.assert_close(af.values[0], torch.tensor([1.5, -0.5], dtype=torch.float64),
                               rtol=0, atol=2e-3)


def _exp_model(w: torch.Tensor) -> nn.Module:
    class Exp(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.exp(x @ w)

    return Exp()


def _exp_ig(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    s = x @ w
    return x * w * ((torch.exp(s) - 1) / s)[:, None]


@pytest.mark.parametrize(
    ("rule", "order"),
    [("riemann_left", 1), ("riemann_right", 1), ("riemann_middle", 2), ("riemann_trapezoid", 2)],
)
def test_convergence_order_of_riemann_rules(rule: str, order: int) -> None:
    w = torch.tensor([0.7, -0.4, 1.1], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.5, 1.5]], dtype=torch.float64)
    exact = _exp_ig(w, x)
    errs = []
    for m in (16, 32, 64):
        a = attribkit.integrated_gradients(_exp_model(w), x, steps=m, rule=rule)
        errs.append(float((a.values - exact).norm()))
    for coarse, fine in itertools.pairwise(errs):
        assert math.log2(coarse / fine) == pytest.approx(order, abs=0.15)


def test_gauss_legendre_converges_spectrally() -> None:
    w = torch.tensor([0.7, -0.4, 1.1], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.5, 1.5]], dtype=torch.float64)
    exact = _exp_ig(w, x)
    err4 = (attribkit.integrated_gradients(_exp_model(w), x, steps=4).values - exact).norm()
    err8 = (attribkit.integrated_gradients(_exp_model(w), x, steps=8).values - exact).norm()
    assert float(err4) < 1e-5
    assert float(err8) < 1e-12


def test_adaptive_rule_converges_on_smooth_model() -> None:
    w = torch.tensor([0.7, -0.4, 1.1], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.5, 1.5], [2.0, -1.0, 0.3]], dtype=torch.float64)
    exact = _exp_ig(w, x)
    errs = [float((attribkit.integrated_gradients(_exp_model(w), x, steps=m,
                                                  rule="adaptive").values - exact).norm())
            for m in (8, 16, 32, 64)]
    assert errs[3] < errs[2] < errs[1] < errs[0]
    assert errs[3] < 1e-10


def test_tolerance_mode_meets_its_tolerance_and_reports_estimate() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                        nn.Linear(32, 1)).double()
    x = torch.randn(3, 10, dtype=torch.float64) * 2
    ref = attribkit.integrated_gradients(net, x, steps=256).values
    for rule in ("gauss_legendre", "adaptive"):
        for tol in (1e-2, 1e-4):
            a = attribkit.integrated_gradients(net, x, tolerance=tol, rule=rule)
            assert a.error_estimate is not None
            assert (a.error_estimate <= tol).all()
            actual = (a.values - ref).norm(dim=1) / ref.norm(dim=1)
            assert (actual <= tol).all(), (rule, tol, actual, a.error_estimate)
            assert len(a.params["steps_used"]) == 3
    loose = attribkit.integrated_gradients(net, x, tolerance=1e-2)
    tight = attribkit.integrated_gradients(net, x, tolerance=1e-4)
    assert max(tight.params["steps_used"]) > max(loose.params["steps_used"])


def test_completeness_tolerance_bounds_the_gap() -> None:
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1)).double()
    x = torch.randn(4, 6, dtype=torch.float64) * 3
    loose = attribkit.integrated_gradients(net, x, tolerance=0.05)
    strict = attribkit.integrated_gradients(net, x, tolerance=0.05, completeness_tolerance=1e-3)
    assert strict.relative_gap is not None and (strict.relative_gap <= 1e-3).all()
    assert sum(strict.params["steps_used"]) >= sum(loose.params["steps_used"])
    with pytest.raises(attribkit.InputError, match="give tolerance"):
        attribkit.integrated_gradients(net, x, completeness_tolerance=0.1)


def test_tolerance_not_reached_warns() -> None:
    x = torch.tensor([[2.0]], dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="did not reach"):
        a = attribkit.integrated_gradients(OneMinusReLU(), x + 0.123, tolerance=1e-9,
                                           max_steps=40)
    assert a.error_estimate is not None and float(a.error_estimate[0]) > 1e-9
