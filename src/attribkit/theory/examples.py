"""Small models of known structure that the unification audit and its own-frame sections share.

Each is built from a fixed seed in float64, so every page and test that uses one sees the same
function: random sparse polynomials (:func:`sparse_poly`), random ReLU networks whose last input
is a dummy (:func:`relu_net`), the saturated unit ``1 - ReLU(1 - x)`` (:func:`saturated_unit`) and
a tiny two-layer CNN (:func:`tiny_cnn`) and a
network that is the sum of two blocks of inputs (:func:`separable_net`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["relu_net", "saturated_unit", "separable_net", "sparse_poly", "tiny_cnn"]


def sparse_poly(seed: int, n: int = 5, terms: int = 6) -> tuple[list[list[int]], list[float]]:
    """Exponents and coefficients of a random sparse polynomial (for :class:`~attribkit.toys.
    Polynomial`).

    Parameters
    ----------
    seed
        Seed of the generator (same seed, same polynomial).
    n
        Number of features; feature ``n`` appears in no term (a dummy).
    terms
        Number of distinct terms, each of 1 to 3 features with degrees 1 or 2.

    Returns
    -------
    tuple of list
        ``(exponents, coefficients)``: ``terms`` degree vectors of length ``n`` and their
        coefficients (rounded to 3 decimals).
    """
    g = torch.Generator().manual_seed(seed)
    exps: list[list[int]] = []
    coefs: list[float] = []
    while len(exps) < terms:
        size = int(torch.randint(1, 4, (1,), generator=g))
        sup = torch.randperm(n - 1, generator=g)[:size].tolist()  # feature n stays a dummy
        kap = [0] * n
        for i in sup:
            kap[i] = int(torch.randint(1, 3, (1,), generator=g))
        if kap not in exps:
            exps.append(kap)
            coefs.append(round(float(torch.randn(1, generator=g)), 3))
    return exps, coefs


def relu_net(seed: int, n: int = 5, hidden: int = 8) -> nn.Sequential:
    """A random float64 ReLU network ``n -> hidden -> hidden -> 1`` with biases, in eval mode.

    Parameters
    ----------
    seed
        Seed of the weights (same seed, same network).
    n
        Number of inputs; the last one has zero weights (a dummy).
    hidden
        Width of both hidden layers.

    Returns
    -------
    torch.nn.Sequential
        Linear, ReLU, Linear, ReLU, Linear.
    """
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                        nn.Linear(hidden, 1)).double().eval()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g, dtype=torch.float64)
                               / m.weight.shape[1] ** 0.5)
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
        first = net[0]
        assert isinstance(first, nn.Linear)
        first.weight[:, n - 1] = 0.0  # the last feature is a dummy
    return net


def saturated_unit() -> nn.Sequential:
    """``F(x) = 1 - ReLU(1 - x)`` (Axiomatic Attribution for Deep Networks (Sundararajan, Taly & Yan
    2017)) as Linear / ReLU / Linear layers."""
    net = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1)).double().eval()
    with torch.no_grad():
        for m in (net[0], net[2]):
            assert isinstance(m, nn.Linear)
            m.weight.fill_(-1.0)
            m.bias.fill_(1.0)
    return net


def tiny_cnn() -> nn.Sequential:
    """A seeded float64 CNN on ``(1, 1, 4, 4)`` images: two 2x2 convolutions with ReLU, then a
    linear read-out to one output."""
    g = torch.Generator().manual_seed(7)
    net = nn.Sequential(nn.Conv2d(1, 3, 2), nn.ReLU(), nn.Conv2d(3, 4, 2), nn.ReLU(),
                        nn.Flatten(), nn.Linear(16, 1)).double().eval()
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g, dtype=torch.float64))
                assert m.bias is not None
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g, dtype=torch.float64))
    return net


def separable_net(seed: int) -> tuple[nn.Sequential, tuple[nn.Module, ...]]:
    """``F = F_1(x1, x2) + F_2(x3, x4)`` as one ReLU network (block-diagonal weights, no output
    bias), and each ``F_B`` alone (the other block's output weights set to zero).

    Parameters
    ----------
    seed
        Selects the weights (generator seed ``500 + seed``).

    Returns
    -------
    tuple
        ``(F, (F_1, F_2))``: three float64 networks on ``(N, 4)`` inputs.
    """
    g = torch.Generator().manual_seed(500 + seed)

    def make(keep: tuple[bool, bool]) -> nn.Sequential:
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(),
                            nn.Linear(6, 1)).double().eval()
        with torch.no_grad():
            for m, w, bias in zip((net[0], net[2], net[4]), weights, biases, strict=True):
                assert isinstance(m, nn.Linear)
                m.weight.copy_(w)
                m.bias.copy_(bias)
            last = net[4]
            assert isinstance(last, nn.Linear)
            for k, kept in enumerate(keep):
                if not kept:
                    last.weight[:, 3 * k:3 * k + 3] = 0.0
        return net

    def block(rows: int, cols: int) -> Tensor:
        w = torch.zeros(rows * 2, cols * 2, dtype=torch.float64)
        for k in range(2):
            w[k * rows:(k + 1) * rows, k * cols:(k + 1) * cols] = torch.randn(
                rows, cols, generator=g, dtype=torch.float64) / cols ** 0.5
        return w

    # block 1 pushes the output up and block 2 down (mixed signs at the last layer are where
    # sign-splitting rules let one block's effect move the other's attributions)
    out_w = torch.rand(1, 6, generator=g, dtype=torch.float64) + 0.5
    out_w[:, 3:] *= -0.4  # F(x) > 0 here (Deep Taylor explains positive outputs only)
    weights = [block(4, 2), block(3, 4), out_w]
    biases = [0.5 + 0.2 * torch.randn(8, generator=g, dtype=torch.float64),
              0.5 + 0.1 * torch.rand(6, generator=g, dtype=torch.float64),
              torch.zeros(1, dtype=torch.float64)]
    return make((True, True)), (make((True, False)), make((False, True)))
