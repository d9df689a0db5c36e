"""Deng et al. put Integrated Gradients and DeepLIFT-Rescale in one row of Table 1 (the same
allocation). Where that holds exactly and where it does not (issue 21).

Along the straight path ``x' + alpha (x - x')`` the pre-activation of a first-layer unit is
linear in alpha, so IG's average of ``ReLU'`` over the path equals DeepLIFT's multiplier
``delta h / delta z``: with one hidden ReLU layer and a linear read-out the two agree exactly.
From the second hidden layer on, a unit's input is only piecewise linear along the path and the
two differ; ``benchmarks/ig_vs_deeplift.py`` measures by how much.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attribkit import deeplift, integrated_gradients


def _relu_mlp(depth: int, seed: int, width: int = 12, n_in: int = 5) -> nn.Sequential:
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    d = n_in
    for _ in range(depth):
        mods += [nn.Linear(d, width), nn.ReLU()]
        d = width
    mods.append(nn.Linear(d, 1))
    return nn.Sequential(*mods).double().eval()


def _exact_ig_one_hidden_layer(model: nn.Sequential, x: torch.Tensor,
                               b: torch.Tensor) -> torch.Tensor:
    """IG of ``w2 . ReLU(W1 x + c1) + c2`` in closed form: the path crosses each unit's kink once.

    For unit j with ``z_j(alpha) = z_j(b) + alpha dz_j``, ``int_0^1 ReLU'(z_j(alpha)) dalpha`` is
    the fraction of [0, 1] where ``z_j > 0``; IG is ``(x - b) * sum_j w2_j W1_jk * fraction_j``.
    """
    lin1, lin2 = model[0], model[2]
    z0 = b @ lin1.weight.T + lin1.bias
    dz = (x - b) @ lin1.weight.T
    cross = torch.where(dz != 0, -z0 / dz, torch.full_like(dz, float("inf")))
    on_at_start = z0 > 0
    frac = torch.where(dz > 0, 1 - cross.clamp(0, 1), cross.clamp(0, 1))
    frac = torch.where(dz == 0, on_at_start.double(), frac)
    mult = (frac * lin2.weight[0]) @ lin1.weight
    return (x - b) * mult


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_hidden_layer_ig_equals_deeplift_rescale(seed: int) -> None:
    model = _relu_mlp(1, seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64)
    b = torch.randn(6, 5, generator=g, dtype=torch.float64)
    exact = _exact_ig_one_hidden_layer(model, x, b).detach()
    dl = deeplift(model, x, baseline=b, target=0).values
    torch.testing.assert_close(dl, exact, rtol=1e-10, atol=1e-12)
    ig = integrated_gradients(model, x, baseline=b, target=0, steps=4000,
                              rule="riemann_middle").values
    torch.testing.assert_close(ig, exact, rtol=0, atol=2e-3)


def test_two_hidden_layers_they_differ() -> None:
    """A second ReLU layer breaks the equality (both stay complete)."""
    model = _relu_mlp(2, 0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64) * 2
    b = torch.zeros_like(x)
    dl = deeplift(model, x, baseline=b, target=0)
    ig = integrated_gradients(model, x, baseline=b, target=0, steps=2000, rule="riemann_middle")
    assert float(dl.gap.abs().max()) < 1e-10 and float(ig.gap.abs().max()) < 2e-4
    # IG moves by about 1e-5 between 2000 and 8000 steps; the two differ by more than 1e-2.
    assert float((dl.values - ig.values).abs().max()) > 1e-2
