"""The Attribution helpers, baselines and coalition transforms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import attribkit
from attribkit.core import coalitions
from attribkit.core.baselines import resolve_baseline
from attribkit.core.paths import nodes


def test_pixel_importance_and_channel_sums() -> None:
    v = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    a = attribkit.Attribution(values=v, inputs=torch.zeros_like(v), method="x")
    torch.testing.assert_close(a.pixel_importance(), v.abs().sum(1))
    torch.testing.assert_close(a.sum_channels(), v.sum(1))
    assert isinstance(a.numpy(), np.ndarray) and a.numpy().shape == (2, 3, 4, 5)
    assert a.gap is None and "method='x'" in repr(a)


def test_gap_and_relative_gap() -> None:
    v = torch.tensor([[1.0, 2.0], [0.5, 0.5]], dtype=torch.float64)
    a = attribkit.Attribution(values=v, inputs=v, method="x",
                              output=torch.tensor([4.0, 1.0], dtype=torch.float64),
                              baseline_output=torch.tensor([0.0, 0.5], dtype=torch.float64))
    assert a.gap is not None and a.relative_gap is not None
    torch.testing.assert_close(a.gap, torch.tensor([-1.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(a.relative_gap, torch.tensor([0.25, 1.0], dtype=torch.float64))


def test_named_and_object_baselines() -> None:
    x = torch.rand(2, 3, 9, 9, dtype=torch.float64)
    black = resolve_baseline(attribkit.Black((-1.0, 0.0, 2.0)), x)
    assert torch.equal(black[:, 2], torch.full((2, 9, 9), 2.0, dtype=torch.float64))
    blur = resolve_baseline(attribkit.Blurred(sigma=1.0), x)
    assert blur.shape == x.shape and blur.std() < x.std()
    torch.testing.assert_close(blur.mean(), x.mean(), rtol=0.05, atol=0)
    const = torch.full_like(x, 0.7)
    torch.testing.assert_close(resolve_baseline(attribkit.Blurred(2.0), const), const)
    u1 = resolve_baseline(attribkit.UniformNoise(-1, 1, seed=3), x)
    u2 = resolve_baseline(attribkit.UniformNoise(-1, 1, seed=3), x)
    assert torch.equal(u1, u2) and u1.min() >= -1 and u1.max() <= 1
    assert torch.equal(resolve_baseline(2.5, x), torch.full_like(x, 2.5))
    assert torch.equal(resolve_baseline("zeros", x), torch.zeros_like(x))


def test_quadrature_weights_and_nesting() -> None:
    for rule in ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
                 "gauss_legendre"):
        a, w = nodes(rule, 9)
        assert math.isclose(w.sum(), 1.0, rel_tol=1e-12)
        assert (a >= 0).all() and (a <= 1).all()


def test_moebius_zeta_shapley_banzhaf_against_definitions() -> None:
    n = 4
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, 1 << n, dtype=torch.float64, generator=g)
    d = coalitions.moebius(v)
    torch.testing.assert_close(coalitions.zeta(d), v)
    # definition: I(S) = sum_{T in S} (-1)^{|S|-|T|} v(T)
    for s in range(1 << n):
        ref = sum((-1) ** (bin(s).count("1") - bin(t).count("1")) * v[:, t]
                  for t in range(1 << n) if t & s == t)
        torch.testing.assert_close(d[:, s], ref)
    # Shapley by the permutation definition
    phi = torch.zeros(2, n, dtype=torch.float64)
    perms = list(itertools.permutations(range(n)))
    for p in perms:
        mask = 0
        for i in p:
            phi[:, i] += v[:, mask | 1 << i] - v[:, mask]
            mask |= 1 << i
    torch.testing.assert_close(coalitions.shapley_from_dividends(d), phi / len(perms))
    # Banzhaf: average marginal contribution over all coalitions without i
    ban = torch.stack([sum(v[:, s | 1 << i] - v[:, s] for s in range(1 << n)
                           if not s >> i & 1) / 2 ** (n - 1) for i in range(n)], dim=1)
    torch.testing.assert_close(coalitions.banzhaf_from_dividends(d), ban)
    assert coalitions.coalition_sizes(3).tolist() == [0, 1, 1, 2, 1, 2, 2, 3]
    assert coalitions.coalition_masks(5, 7, 3).tolist() == [[True, False, True],
                                                            [False, True, True]]


def test_one_column_output_takes_per_example_zero_targets() -> None:
    """A model with outputs (N, 1) and a target tensor of zeros (one per example) explains that
    column; any other per-example index is refused with the one-line reason."""
    import attribkit

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 1)).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    a = attribkit.saliency(net, x, target=torch.zeros(4, dtype=torch.long))
    b = attribkit.saliency(net, x, target=None)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    torch.testing.assert_close(a.values, net[0].weight.detach().expand(4, 3), rtol=0, atol=0)
    with pytest.raises(attribkit.TargetError, match="out of range"):
        attribkit.saliency(net, x, target=torch.tensor([0, 1, 0, 0]))
