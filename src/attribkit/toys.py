"""Small functions with known attributions, used by the axioms, the theory and the tests.

* :func:`f_network` and :func:`g_network`: the two functionally equivalent ReLU networks of
  "Axiomatic Attribution for Deep Networks" (REFERENCE.md section 3),
  ``f(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2))`` and ``g(x1, x2) = ReLU(ReLU(x1 - 1) - ReLU(x2))``.
* :class:`OneMinusReLU`: ``F(x) = 1 - ReLU(1 - x)``, where gradients break Sensitivity(a).
* :class:`Polynomial`: ``F(x) = sum_t c_t prod_i x_i^{kappa_ti}``, whose Taylor terms and
  Harsanyi dividends are known exactly (``x1^2 x2`` is ``Polynomial([[2, 1]])``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["OneMinusReLU", "Polynomial", "f_network", "g_network"]


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
