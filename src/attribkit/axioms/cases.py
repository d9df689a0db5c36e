"""The constructed models and inputs on which the axioms are checked (all float64, seeded).

Where the models are ``nn.Sequential`` of Linear / activation layers, propagation methods (LRP,
DeepLIFT) can run on them too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LinearCombination", "dummy_mlp", "symmetric_mlp", "tanh_mlp"]


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
