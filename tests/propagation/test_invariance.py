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


def test_figure_14_guided_backprop_and_deconvnet_are_not() -> None:
    """Seed 003, Figure 14: at x = (1, 1), baseline 0, two networks of one function get IG
    (0.25, 0.25) on both, guided backprop and DeConvNet (1, 1) on one and (1.25, 0.75) on the
    other. Worked by hand: the output unit is on (0.5), its signal 1 reaches u1, u2 with the
    direct weights and the always-on unit k with -1, which both rules clip at k's ReLU."""
    from attribkit.methods.propagation import deconvnet, guided_backprop

    x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    plain, detour = toys.sum_network(), toys.detour_network()
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(200, 2, generator=g, dtype=torch.float64) * 8 - 2
    torch.testing.assert_close(plain(pts), detour(pts), rtol=0, atol=1e-12)
    quarter = torch.tensor([[0.25, 0.25]], dtype=torch.float64)
    for net in (plain, detour):
        ig = integrated_gradients(net, x, target=0, steps=64, rule="riemann_middle").values
        torch.testing.assert_close(ig, quarter, rtol=0, atol=1e-12)
    for method in (guided_backprop, deconvnet):
        torch.testing.assert_close(method(plain, x, target=0).values,
                                   torch.tensor([[1.0, 1.0]], dtype=torch.float64))
        torch.testing.assert_close(method(detour, x, target=0).values,
                                   torch.tensor([[1.25, 0.75]], dtype=torch.float64))
    # DeepLIFT-Rescale agrees on this pair: k does not change between baseline and input.
    for net in (plain, detour):
        torch.testing.assert_close(deeplift(net, x, target=0).values, quarter)


def test_relu6_pair_lrp_epsilon_is_not() -> None:
    """min(ReLU(x1 + x2), 6) as one ReLU6 unit and as ReLU(s) - ReLU(s - 6), at x = (4.5, 3.1),
    s = 7.6, F = 6. Worked by hand (epsilon -> 0):
    ReLU6 form: relevance 6 passes the saturated unit, z = 7.6: R_i = x_i * 6 / 7.6.
    Two-ReLU form: hidden relevances 7.6 and -1.6 (their terms of 6); R_i = x_i * 7.6 / 7.6 +
    x_i * (-1.6) / 1.6 = 0, Gradient x Input (the gradient is 0 beyond the clip)."""
    x = torch.tensor([[4.5, 3.1]], dtype=torch.float64)
    clip, two = toys.clip_network(), toys.two_relu_network()
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(300, 2, generator=g, dtype=torch.float64) * 12 - 3
    torch.testing.assert_close(clip(pts), two(pts), rtol=0, atol=1e-12)
    a_clip = lrp(clip, x, target=0).values
    a_two = lrp(two, x, target=0).values
    # epsilon = 1e-6 moves each layer's relevance by about epsilon / |z| (z = 7.6, 1.6)
    torch.testing.assert_close(a_clip, x * 6 / 7.6, rtol=0, atol=1e-5)
    torch.testing.assert_close(a_two, torch.zeros_like(x), rtol=0, atol=1e-5)
    # the two-ReLU form is Gradient x Input; the ReLU6 form equals DeepLIFT-Rescale there
    from attribkit import gradient_x_input
    torch.testing.assert_close(a_two, gradient_x_input(two, x, target=0).values, rtol=0,
                               atol=1e-5)
    torch.testing.assert_close(a_clip, deeplift(clip, x, target=0).values, rtol=0, atol=1e-5)
    # guided backprop: zero through the saturated ReLU6; through the two ReLUs the -1 signal
    # into ReLU(s - 6) is clipped, leaving the +1 of ReLU(s): (1, 1)
    from attribkit.methods.propagation import guided_backprop
    torch.testing.assert_close(guided_backprop(clip, x, target=0).values, torch.zeros_like(x))
    torch.testing.assert_close(guided_backprop(two, x, target=0).values, torch.ones_like(x))
