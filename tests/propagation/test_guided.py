"""Guided Backpropagation and DeconvNet against Captum (test-only oracle) and closed forms."""

from __future__ import annotations

import pytest
import torch
from captum.attr import Deconvolution, GuidedBackprop
from torch import nn

from attribkit.methods.propagation import deconvnet, guided_backprop
from attribkit.toys import OneMinusReLU

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum")


def cnn() -> nn.Sequential:
    torch.manual_seed(11)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(16, 5), nn.ReLU(), nn.Linear(5, 3)).double().eval()


@pytest.mark.parametrize(("ours", "oracle"), [(guided_backprop, GuidedBackprop),
                                              (deconvnet, Deconvolution)])
def test_equals_captum(ours: object, oracle: type) -> None:
    model = cnn()
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    got = ours(model, x, target=2).values  # type: ignore[operator]
    ref = oracle(model).attribute(x.clone().requires_grad_(True), target=2)
    torch.testing.assert_close(got, ref, atol=1e-10, rtol=1e-8)


def test_guided_differs_from_gradient_only_at_negative_signals() -> None:
    model = cnn()
    x = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    g = guided_backprop(model, x, target=0).values
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xg)[:, 0].sum(), xg)
    assert (g - grad).abs().max() > 1e-6


def test_guided_backprop_breaks_sensitivity_a() -> None:
    # F(x) = 1 - ReLU(1 - x): x = 2 vs x' = 0 changes F by 1, yet the signal is cut at the ReLU.
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Linear(1, 1)
            self.relu = nn.ReLU()
            self.outer = nn.Linear(1, 1)
            with torch.no_grad():
                self.inner.weight.fill_(-1.0)
                self.inner.bias.fill_(1.0)
                self.outer.weight.fill_(-1.0)
                self.outer.bias.fill_(1.0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.outer(self.relu(self.inner(x)))

    net = Net().double().eval()
    x = torch.tensor([[2.0]], dtype=torch.float64)
    torch.testing.assert_close(net(x)[:, 0], OneMinusReLU()(x))
    assert guided_backprop(net, x, target=0).values.abs().max() == 0
    assert deconvnet(net, x, target=0).values.abs().max() == 0  # the signal -1 < 0: ReLU(g) = 0
