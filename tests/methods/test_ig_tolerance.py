"""The error estimate of ``tolerance=`` against exact Integrated Gradients (issue 20).

Oracles: a wide one-hidden-layer ReLU network, whose exact IG is the fraction of the path on
which each hidden unit is active (a closed form); ``exp(w . x)``, whose IG is
``x_i w_i (e^s - 1) / s`` (REFERENCE.md); and errors constructed with a known correlation.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

import attribkit
from attribkit.methods.integrated.tolerance import fit_correlation, panel_errors


def _relu_net(seed: int, d: int = 50, h: int = 400) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 1)).double()


def _relu_exact(net: nn.Sequential, x: Tensor, b: Tensor) -> Tensor:
    """Exact IG: each unit's pre-activation is linear along the path, active on an interval."""
    w1, b1, w2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach()[0]
    z0, z1 = b @ w1.T + b1, x @ w1.T + b1
    dz = z1 - z0
    cross = (-z0 / dz).clamp(0.0, 1.0)
    active = torch.where(dz > 0, 1 - cross, torch.where(dz < 0, cross, (z0 > 0).double()))
    return (x - b) * ((active * w2) @ w1)


class _Exp(nn.Module):
    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(x @ self.w)


def _rel(values: Tensor, exact: Tensor) -> Tensor:
    return (values - exact).norm(dim=1) / exact.norm(dim=1)


def test_relu_closed_form_is_exact() -> None:
    net = _relu_net(0)
    x = torch.randn(3, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fine = attribkit.integrated_gradients(net, x, steps=4000, rule="riemann_middle").values
    assert float(_rel(fine, _relu_exact(net, x, torch.zeros_like(x))).max()) < 2e-4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimate_on_relu_network(seed: int) -> None:
    net = _relu_net(seed)
    x = torch.randn(3, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    exact = _relu_exact(net, x, torch.zeros_like(x))
    for tol in (0.05, 0.02):  # measured 0.78-1.12 of the estimate over seeds 0-3
        a = attribkit.integrated_gradients(net, x, tolerance=tol)
        assert a.error_estimate is not None
        ratio = _rel(a.values, exact) / a.error_estimate
        assert ((ratio > 1 / 1.4) & (ratio < 1.4)).all(), (tol, ratio)
    for tol in (0.05, 0.02, 0.005):  # conservative: a bound (measured 0.41-0.88 of it)
        a = attribkit.integrated_gradients(net, x, tolerance=tol, conservative=True)
        assert a.error_estimate is not None
        actual = _rel(a.values, exact)
        assert (actual <= a.error_estimate).all() and (actual <= tol).all(), (tol, actual)


def test_estimate_on_smooth_closed_form() -> None:
    w = torch.tensor([0.7, -0.4, 1.1, 0.3, -0.9], dtype=torch.float64)
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1.5
    s = x @ w
    exact = x * w * ((torch.exp(s) - 1) / s)[:, None]
    fast = attribkit.integrated_gradients(_Exp(w), x, tolerance=1e-5)
    safe = attribkit.integrated_gradients(_Exp(w), x, tolerance=1e-5, conservative=True)
    assert fast.error_estimate is not None and safe.error_estimate is not None
    # smooth: the trapezoid errs on one side, the panels' errors add up, Richardson holds
    ratio = _rel(fast.values, exact) / fast.error_estimate
    assert ((ratio > 0.8) & (ratio < 1.2)).all(), ratio
    assert (_rel(safe.values, exact) <= safe.error_estimate).all()
    assert sum(safe.params["steps_used"]) > sum(fast.params["steps_used"])
    assert safe.params["conservative"] and not fast.params["conservative"]


@pytest.mark.parametrize(("rho", "r"), [(0.0, 2.0), (0.5, 2.0), (0.9, 3.0), (1.0, 4.0)])
def test_correlation_model_recovers_constructed_errors(rho: float, r: float) -> None:
    """Errors of three levels with norms r^2, r, 1 and neighbour correlation rho (20 000-D)."""
    g = torch.Generator().manual_seed(0)
    u = torch.randn(3, 20_000, dtype=torch.float64, generator=g)
    u = u / u.norm(dim=1, keepdim=True)
    e_l = u[0]
    e_m = r * (rho * u[0] + math.sqrt(1 - rho**2) * u[1])
    e_m_unit = e_m / e_m.norm()
    e_f = r * r * (rho * e_m_unit + math.sqrt(1 - rho**2) * u[2])
    c_l, c_m = e_l - e_m, e_m - e_f
    cos = (c_l @ c_m) / (c_l.norm() * c_m.norm())
    ratio = c_m.norm() / c_l.norm()
    fitted = fit_correlation(ratio.reshape(1), cos.reshape(1))
    assert float(fitted) == pytest.approx(rho, abs=0.05)
    err = panel_errors(c_l.norm().reshape(1, 1), c_m.norm().reshape(1, 1), cos.reshape(1, 1),
                       conservative=False)
    assert float(err) == pytest.approx(1.0, rel=0.06)


def test_several_examples_share_full_chunks() -> None:
    """Path points of different examples share chunks: every round's chunks are full but one."""
    net = _relu_net(0)
    x = torch.randn(5, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    seen: list[int] = []
    handle = net.register_forward_pre_hook(lambda _m, a: seen.append(int(a[0].shape[0])))
    a = attribkit.integrated_gradients(net, x, tolerance=0.01, batch_size=16)
    handle.remove()
    points = seen[3:]  # after the input, the baseline and the independence probe
    assert sum(points) == sum(a.params["steps_used"])
    # the first round (9 panel edges of 5 examples: 45 points) in 3 calls, not 5 or more
    assert points[:3] == [16, 16, 13], points
    assert max(points) == 16
