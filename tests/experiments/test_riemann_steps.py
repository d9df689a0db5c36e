"""Equation 6 from one pass of gradients against attribkit's own right Riemann rule."""

from __future__ import annotations

import pytest
import torch

import attribkit
from attribkit.core.errors import InputError
from attribkit.experiments import riemann_steps


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3),
                               torch.nn.Softmax(dim=-1)).double().eval()


def test_every_step_count_equals_the_right_riemann_rule() -> None:
    model = _model()
    x = torch.randn(1, 5, dtype=torch.float64)
    b = torch.zeros_like(x)
    sweep = riemann_steps.right_riemann_sweep(lambda v: model(v)[:, 1], x, b, steps=(4, 6, 12),
                                              batch=5)
    for m in (4, 6, 12):
        ref = attribkit.integrated_gradients(model, x, target=1, baseline=b, steps=m,
                                             rule="riemann_right")
        torch.testing.assert_close(sweep.attributions[m], ref.values, atol=1e-12, rtol=1e-10)
        assert sweep.relative_gap(m) == pytest.approx(float(ref.relative_gap[0]), rel=1e-9)
    with torch.no_grad():
        assert sweep.f_x == pytest.approx(float(model(x)[0, 1]))
        assert sweep.f_baseline == pytest.approx(float(model(b)[0, 1]))


def test_first_within_and_the_table() -> None:
    s = riemann_steps.RiemannSweep(steps=(20, 50, 300), f_x=1.0, f_baseline=0.0, attributions={
        20: torch.tensor([[0.9]]), 50: torch.tensor([[0.97]]), 300: torch.tensor([[1.01]])})
    assert s.relative_gap(20) == pytest.approx(0.1) and s.first_within() == 50
    worse = riemann_steps.RiemannSweep(steps=(20, 300), f_x=1.0, f_baseline=0.0, attributions={
        20: torch.tensor([[1.0]]), 300: torch.tensor([[0.5]])})
    assert worse.first_within() is None
    text = riemann_steps.markdown({"a": s}, 1.0)
    assert "| a | 1.0000 | 0.0000 | 10.0 % | 3.0 % | 1.0 % | m = 50 |" in text
    assert "Within 5 %: 0 of 1 photos at m = 20, 1 of 1 at m = 300." in text
    with pytest.raises(InputError, match="divide"):
        riemann_steps.right_riemann_sweep(lambda v: v.sum(1), torch.ones(1, 2), torch.zeros(1, 2),
                                          steps=(7, 20))
