"""Small functions with known attributions, used by the axioms, the theory and the tests.

* :func:`f_network` and :func:`g_network`: the two functionally equivalent ReLU networks of
  "Axiomatic Attribution for Deep Networks" (Axiomatic Attribution for Deep Networks (Sundararajan,
  Taly & Yan 2017)), ``f(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2))`` and ``g(x1, x2) = ReLU(ReLU(x1 -
  1) - ReLU(x2))``.
* :func:`sum_network` and :func:`detour_network`: two ReLU networks computing
  ``ReLU(ReLU(x1) + ReLU(x2) - 1.5)`` (the second wherever ``ReLU(x2) - ReLU(x1) <= 40``), on which
  guided backprop and DeconvNet give the attributions of the Gradients of Counterfactuals paper's
  Figure 14 at ``x = (1, 1)``: ``(1, 1)`` against ``(1.25, 0.75)``, while Integrated Gradients gives
  ``(0.25, 0.25)`` on both.
* :func:`clip_network` and :func:`two_relu_network`: ``min(ReLU(x1 + x2), 6)`` as one ReLU6 unit
  and as ``ReLU(x1 + x2) - ReLU(x1 + x2 - 6)``. Where the sum passes 6, LRP-epsilon passes the
  relevance ``6`` through the saturated ReLU6 unit to the inputs but cancels it between the two
  ReLUs (``x1 + x2 - (x1 + x2) = 0``): an implementation-invariance counterexample for LRP that
  does not depend on its stabiliser.
* :class:`OneMinusReLU`: ``F(x) = 1 - ReLU(1 - x)``, where gradients break Sensitivity(a).
* :class:`Polynomial`: ``F(x) = sum_t c_t prod_i x_i^{kappa_ti}``, whose Taylor terms and
  Harsanyi dividends are known exactly (``x1^2 x2`` is ``Polynomial([[2, 1]])``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["OneMinusReLU", "Polynomial", "clip_network", "detour_network", "f_network",
           "g_network", "sum_network", "two_relu_network"]


def _relu_net(layers: Sequence[tuple[list[list[float]], list[float]]],
              dtype: torch.dtype) -> nn.Sequential:
    mods: list[nn.Module] = []
    for w, b in layers:
        lin = nn.Linear(len(w[0]), len(w), dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w, dtype=dtype))
            lin.bias.copy_(torch.tensor(b, dtype=dtype))
        mods += [lin, nn.ReLU()]
    return nn.Sequential(*mods)


def f_network(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """``f(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2))`` as Linear/ReLU layers; output ``(N, 1)``."""
    return _relu_net([([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), ([[1.0, -1.0]], [-1.0])], dtype)


def g_network(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """``g(x1, x2) = ReLU(ReLU(x1 - 1) - ReLU(x2))``, the same function as :func:`f_network`."""
    return _relu_net([([[1.0, 0.0], [0.0, 1.0]], [-1.0, 0.0]), ([[1.0, -1.0]], [0.0])], dtype)


def sum_network(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """``ReLU(ReLU(x1) + ReLU(x2) - 1.5)`` as Linear/ReLU layers; output ``(N, 1)``."""
    return _relu_net([([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), ([[1.0, 1.0]], [-1.5])], dtype)


def detour_network(dtype: torch.dtype = torch.float64, shift: float = 10.0) -> nn.Sequential:
    """The function of :func:`sum_network` by a detour through a unit that is always on.

    With ``u = (ReLU(x1), ReLU(x2))`` the network computes
    ``ReLU(1.25 u1 + 0.75 u2 - k - 1.5 + shift)`` with ``k = ReLU(0.25 u1 - 0.25 u2 + shift)``;
    while ``u2 - u1 <= 4 shift`` the unit ``k`` is active and the output equals
    ``ReLU(u1 + u2 - 1.5)``. The gradient is the same, but the backward signal into ``k`` is
    negative, so rules that clip negative signals at ReLUs (guided backprop, DeconvNet) keep only
    the direct weights ``(1.25, 0.75)``.
    """
    return _relu_net([([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]),
                      ([[1.0, 0.0], [0.0, 1.0], [0.25, -0.25]], [0.0, 0.0, shift]),
                      ([[1.25, 0.75, -1.0]], [-1.5 + shift])], dtype)


def clip_network(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """``min(ReLU(x1 + x2), 6)``: one Linear layer and a ``ReLU6``; output ``(N, 1)``."""
    lin = _relu_net([([[1.0, 1.0]], [0.0])], dtype)[0]
    return nn.Sequential(lin, nn.ReLU6())


def two_relu_network(dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The function of :func:`clip_network` as ``ReLU(x1 + x2) - ReLU(x1 + x2 - 6)``.

    At ``x1 + x2 = s > 6`` LRP-epsilon gives the two hidden units the relevances ``s`` and
    ``-(s - 6)`` (their contributions to the output ``6``), and each sends ``x_i / s`` and
    ``x_i / (s - 6)`` of its relevance to input ``i``: ``x_i - x_i = 0``, Gradient x Input. The
    ReLU6 form passes the relevance ``6`` through its saturated unit: ``6 x_i / s``.
    """
    hidden = _relu_net([([[1.0, 1.0], [1.0, 1.0]], [0.0, -6.0])], dtype)
    out = _relu_net([([[1.0, -1.0]], [0.0])], dtype)[0]
    return nn.Sequential(*hidden, out)


class OneMinusReLU(nn.Module):
    """``F(x) = 1 - ReLU(1 - x)`` for one feature; output ``(N,)``."""

    def forward(self, x: Tensor) -> Tensor:
        """Evaluate on ``(N, 1)`` inputs."""
        return 1.0 - torch.relu(1.0 - x[:, 0])


class Polynomial(nn.Module):
    """``F(x) = sum_t c_t prod_i x_i ** kappa[t, i]`` on ``(N, n)`` inputs; output ``(N,)``.

    Parameters
    ----------
    exponents
        ``(T, n)`` non-negative integer degree vectors ``kappa``, one row per term.
    coefficients
        ``(T,)`` coefficients ``c_t`` (default all ones).
    """

    kappa: Tensor
    coef: Tensor

    def __init__(self, exponents: Sequence[Sequence[int]] | Tensor,
                 coefficients: Sequence[float] | Tensor | None = None) -> None:
        super().__init__()
        kappa = torch.as_tensor(exponents, dtype=torch.long)
        if kappa.dim() != 2 or (kappa < 0).any():
            raise ValueError("exponents must be a (terms, features) array of non-negative ints")
        c = (torch.ones(kappa.shape[0], dtype=torch.float64) if coefficients is None
             else torch.as_tensor(coefficients, dtype=torch.float64))
        if c.shape != (kappa.shape[0],):
            raise ValueError("one coefficient per term is needed")
        self.register_buffer("kappa", kappa)
        self.register_buffer("coef", c)

    @property
    def n_features(self) -> int:
        """The number of input features ``n``."""
        return int(self.kappa.shape[1])

    def forward(self, x: Tensor) -> Tensor:
        """Evaluate on ``(N, n)`` inputs."""
        terms = (x[:, None, :] ** self.kappa.to(x.dtype)).prod(dim=2)
        return terms @ self.coef.to(x.dtype)
