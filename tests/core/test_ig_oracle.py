"""Integrated Gradients against Captum's IntegratedGradients (test-only oracle), float64."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from captum.attr import IntegratedGradients

import attribkit

CAPTUM_RULE = {
    "riemann_left": "riemann_left",
    "riemann_right": "riemann_right",
    "riemann_middle": "riemann_middle",
    "riemann_trapezoid": "riemann_trapezoid",
    "gauss_legendre": "gausslegendre",
}


@pytest.mark.parametrize("rule", sorted(CAPTUM_RULE))
@pytest.mark.parametrize("steps", [7, 32])
def test_same_rule_and_steps_as_captum_mlp(rule: str, steps: int,
                                           make_mlp: Callable[..., torch.nn.Module]) -> None:
    net = make_mlp(n_in=6, n_out=4, seed=steps, act=torch.nn.ReLU)
    g = torch.Generator().manual_seed(steps)
    x = torch.randn(5, 6, dtype=torch.float64, generator=g)
    b = torch.randn(5, 6, dtype=torch.float64, generator=g)
    target = torch.tensor([0, 1, 2, 3, 1])
    ours = attribkit.integrated_gradients(net, x, baseline=b, target=target, steps=steps,
                                          rule=rule)
    theirs = IntegratedGradients(net).attribute(x, baselines=b, target=target, n_steps=steps,
                                                method=CAPTUM_RULE[rule])
    if rule == "riemann_trapezoid":
        # Captum's trapezoid weights are 1/n with halved ends: they sum to (n - 1)/n, not 1.
        # attribkit uses the trapezoid rule proper (1/(n - 1)), so the two differ by n/(n - 1).
        theirs = theirs * steps / (steps - 1)
    torch.testing.assert_close(ours.values, theirs, rtol=0, atol=1e-6)


def test_same_as_captum_cnn(make_cnn: Callable[..., torch.nn.Module]) -> None:
    net = make_cnn(seed=1)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    ours = attribkit.integrated_gradients(net, x, target=4, steps=24, batch_size=10)
    theirs = IntegratedGradients(net).attribute(x, target=4, n_steps=24, method="gausslegendre")
    torch.testing.assert_close(ours.values, theirs, rtol=0, atol=1e-6)
