"""The f/g networks of REFERENCE.md section 3: the same function, different implementations.

IG depends only on the function; DeepLIFT and LRP depend on the implementation. Expected values
are worked out by hand in the comments (x = (3, 1), baseline 0, F = 1).
"""

from __future__ import annotations

import torch

from attribkit import integrated_gradients, toys
from attribkit.methods.propagation import deeplift, lrp

X = torch.tensor([[3.0, 1.0]], dtype=torch.float64)


def test_same_function() -> None:
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(50, 2, generator=g, dtype=torch.float64) * 3
    torch.testing.assert_close(toys.f_network()(pts), toys.g_network()(pts))


def test_integrated_gradients_is_implementation_invariant() -> None:
    a_f = integrated_gradients(toys.f_network(), X, target=0, steps=64).values
    a_g = integrated_gradients(toys.g_network(), X, target=0, steps=64).values
    torch.testing.assert_close(a_f, a_g, atol=1e-3, rtol=0)


def test_deeplift_rescale_is_not() -> None:
    # f: relu(x1)=3 (m=1), relu(x2)=1 (m=1); pre-activation 3-1-1=1 vs reference -1, so the
    #    output unit's multiplier is (1-0)/(1-(-1)) = 1/2: a = (3/2, -1/2).
    # g: relu(x1-1)=2 vs 0, pre-activation delta 3, multiplier 2/3: a1 = 3*2/3 = 2; a2 = -1.
    a_f = deeplift(toys.f_network(), X, target=0).values
    a_g = deeplift(toys.g_network(), X, target=0).values
    torch.testing.assert_close(a_f, torch.tensor([[1.5, -0.5]], dtype=torch.float64))
    torch.testing.assert_close(a_g, torch.tensor([[2.0, -1.0]], dtype=torch.float64))
    for a in (a_f, a_g):  # both complete: sum = F(x) - F(0) = 1
        torch.testing.assert_close(a.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_lrp_is_not() -> None:
    # alpha=2, beta=1. f, output layer: positive part h1*1 = 3 (z+ = 3), negative parts
    # h2*(-1) = -1 and bias -1 (z- = -2): R_h1 = 2*3/3 = 2, R_h2 = -(-1/-2) = -1/2; identity
    # first layer doubles them: (4, -1). g, output layer: z+ = 2, z- = -1: R_h1 = 2, R_h2 = -1;
    # first layer: x1 contributes +3 against the bias -1: R_x1 = 2 * 3/3 * 2 = 4; R_x2 = -2.
    a_f = lrp(toys.f_network(), X, target=0, rule="alpha2_beta1").values
    a_g = lrp(toys.g_network(), X, target=0, rule="alpha2_beta1").values
    torch.testing.assert_close(a_f, torch.tensor([[4.0, -1.0]], dtype=torch.float64))
    torch.testing.assert_close(a_g, torch.tensor([[4.0, -2.0]], dtype=torch.float64))
    # epsilon with a large stabiliser differs as well
    e_f = lrp(toys.f_network(), X, target=0, rule="epsilon", epsilon=0.5).values
    e_g = lrp(toys.g_network(), X, target=0, rule="epsilon", epsilon=0.5).values
    assert (e_f - e_g).abs().max() > 0.1
