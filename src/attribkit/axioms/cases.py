"""The constructed models and inputs on which the axioms are checked (all float64, seeded).

Where the models are ``nn.Sequential`` of Linear / activation layers, propagation methods (LRP,
DeepLIFT) can run on them too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LinearCombination", "combined_mlp", "dummy_mlp", "one_minus_relu_net",
           "symmetric_mlp", "tanh_mlp"]


def tanh_mlp(n_in: int = 4, hidden: int = 6, seed: int = 0, act: type[nn.Module] = nn.Tanh,
             ) -> nn.Sequential:
    """A seeded ``n_in -> hidden -> hidden -> 1`` network in float64 (output ``(N, 1)``)."""
    g = torch.Generator().manual_seed(seed)
    layers = [nn.Linear(n_in, hidden), act(), nn.Linear(hidden, hidden), act(),
              nn.Linear(hidden, 1)]
    net = nn.Sequential(*layers).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.8)
    return net


def dummy_mlp(n_in: int = 4, used: int = 2, seed: int = 1) -> nn.Sequential:
    """A :func:`tanh_mlp` whose first layer ignores every feature from ``used`` on."""
    net = tanh_mlp(n_in, seed=seed)
    with torch.no_grad():
        first = net[0]
        assert isinstance(first, nn.Linear)
        first.weight[:, used:] = 0.0
    return net


def symmetric_mlp(n_in: int = 3, seed: int = 2) -> nn.Sequential:
    """A :func:`tanh_mlp` symmetric in features 0 and 1 (equal first-layer columns)."""
    net = tanh_mlp(n_in, seed=seed)
    with torch.no_grad():
        first = net[0]
        assert isinstance(first, nn.Linear)
        first.weight[:, 1] = first.weight[:, 0]
    return net


def one_minus_relu_net() -> nn.Sequential:
    """``1 - ReLU(1 - x)`` as Linear / ReLU / Linear layers (output ``(N, 1)``)."""
    first, last = nn.Linear(1, 1).double(), nn.Linear(1, 1).double()
    with torch.no_grad():
        for lin in (first, last):
            lin.weight.fill_(-1.0)
            lin.bias.fill_(1.0)
    return nn.Sequential(first, nn.ReLU(), last).eval()


def combined_mlp(first: nn.Sequential, second: nn.Sequential, alpha: float,
                 beta: float) -> nn.Sequential:
    """``alpha * first + beta * second`` for two :func:`tanh_mlp` networks of the same shape, as
    one Sequential network (stacked hidden units, block-diagonal middle layer), so that
    propagation methods can run on it."""
    l1a, l2a, l3a = (m for m in first if isinstance(m, nn.Linear))
    l1b, l2b, l3b = (m for m in second if isinstance(m, nn.Linear))
    h = l1a.out_features
    act = type(first[1])
    l1 = nn.Linear(l1a.in_features, 2 * h).double()
    l2 = nn.Linear(2 * h, 2 * h).double()
    l3 = nn.Linear(2 * h, 1).double()
    with torch.no_grad():
        l1.weight.copy_(torch.cat([l1a.weight, l1b.weight]))
        l1.bias.copy_(torch.cat([l1a.bias, l1b.bias]))
        l2.weight.zero_()
        l2.weight[:h, :h] = l2a.weight
        l2.weight[h:, h:] = l2b.weight
        l2.bias.copy_(torch.cat([l2a.bias, l2b.bias]))
        l3.weight.copy_(torch.cat([alpha * l3a.weight, beta * l3b.weight], dim=1))
        l3.bias.copy_(alpha * l3a.bias + beta * l3b.bias)
    return nn.Sequential(l1, act(), l2, act(), l3).eval()


class LinearCombination(nn.Module):
    """``alpha * F1(x) + beta * F2(x)`` as one module.

    Parameters
    ----------
    first, second
        The two models (same output shape).
    alpha, beta
        The coefficients.
    """

    def __init__(self, first: nn.Module, second: nn.Module, alpha: float, beta: float) -> None:
        super().__init__()
        self.first = first
        self.second = second
        self.alpha = alpha
        self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        """``alpha * first(x) + beta * second(x)``."""
        out: Tensor = self.alpha * self.first(x) + self.beta * self.second(x)
        return out
