"""SmoothGrad, SmoothGrad-squared and VarGrad."""

from __future__ import annotations

import pytest
import torch

import attribkit
from attribkit.core.errors import InputError, TargetError
from attribkit.methods.gradients import gradient_x_input, saliency
from attribkit.methods.smoothing import smooth, smoothgrad, smoothgrad_squared, vargrad


def _grads(model, pts, target):
    pts = pts.clone().requires_grad_(True)
    out = model(pts)
    (g,) = torch.autograd.grad(out[torch.arange(len(pts)), target].sum(), pts)
    return g


def test_zero_noise_is_the_gradient(make_mlp, rng):
    model = make_mlp(seed=1)
    x = torch.randn(3, 6, generator=rng, dtype=torch.float64)
    grad = saliency(model, x, target=1).values
    torch.testing.assert_close(smoothgrad(model, x, target=1, noise_level=0.0, n_samples=3).values,
                               grad, rtol=0, atol=1e-14)
    torch.testing.assert_close(
        smoothgrad_squared(model, x, target=1, noise_level=0.0, n_samples=3).values, grad ** 2,
        rtol=0, atol=1e-14)
    torch.testing.assert_close(vargrad(model, x, target=1, noise_level=0.0, n_samples=3).values,
                               torch.zeros_like(grad), rtol=0, atol=1e-14)


def test_matches_independent_reimplementation(make_mlp, rng):
    """The same draws (documented order) through plain autograd."""
    model = make_mlp(seed=2)
    x = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    s, level, seed = 7, 0.2, 11
    sigma = level * (x.amax(dim=1) - x.amin(dim=1))
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((2, s, 6), generator=g, dtype=torch.float64) * sigma[:, None, None]
    noisy = (x[:, None] + eps).reshape(-1, 6)
    grads = _grads(model, noisy, torch.full((2 * s,), 2)).reshape(2, s, 6)
    kinds = {"smoothgrad": grads.mean(1), "smoothgrad_sq": (grads ** 2).mean(1),
             "vargrad": (grads ** 2).mean(1) - grads.mean(1) ** 2}
    for kind, ref in kinds.items():
        a = smooth("saliency", model, x, target=2, kind=kind, noise_level=level, n_samples=s,
                   seed=seed)
        torch.testing.assert_close(a.values, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(a.extras["sigma"], sigma)
    gxi = smooth(gradient_x_input, model, x, target=2, noise_level=level, n_samples=s, seed=seed)
    torch.testing.assert_close(gxi.values, (noisy.reshape(2, s, 6) * grads).mean(1), rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("kind", ["smoothgrad", "vargrad"])
def test_captum_noise_tunnel_in_expectation(make_mlp, rng, kind):
    captum = pytest.importorskip("captum.attr")
    model = make_mlp(n_in=4, hidden=6, seed=3)
    x = torch.randn(1, 4, generator=rng, dtype=torch.float64)
    ours = smooth("saliency", model, x, target=0, kind=kind, stdev=0.5, n_samples=2000, seed=5)
    torch.manual_seed(0)
    ref = captum.NoiseTunnel(captum.Saliency(model)).attribute(
        x, nt_type=kind, nt_samples=2000, stdevs=0.5, target=0, abs=False)
    tol = 5 * ours.extras["stderr"] * 2 ** 0.5 + 1e-9
    assert bool(((ours.values - ref.detach()).abs() <= tol).all())


def test_seeded_and_target_from_clean_inputs(make_mlp, rng):
    model = make_mlp(seed=4)
    x = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    state = torch.get_rng_state()
    a = smoothgrad(model, x, n_samples=5, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.values, smoothgrad(model, x, n_samples=5, seed=1).values)
    assert not torch.equal(a.values, smoothgrad(model, x, n_samples=5, seed=2).values)
    predicted = model(x).argmax(1)
    torch.testing.assert_close(a.values, smoothgrad(model, x, target=predicted, n_samples=5,
                                                    seed=1).values)


def test_wraps_integrated_gradients_and_several_targets(make_mlp, rng):
    model = make_mlp(seed=5)
    x = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    b = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    a = smooth("integrated_gradients", model, x, target=0, baseline=b, noise_level=0.0,
               n_samples=2, options={"steps": 16})
    ref = attribkit.integrated_gradients(model, x, target=0, baseline=b, steps=16)
    torch.testing.assert_close(a.values, ref.values, rtol=0, atol=1e-12)
    multi = smoothgrad(model, x, target=attribkit.classes([0, 2]), n_samples=3)
    assert multi.values.shape == (2, 2, 6)
    with pytest.raises(TargetError, match="top_k"):
        smoothgrad(model, x, target=attribkit.top_k(2), n_samples=3)


def test_errors_and_registry(make_mlp):
    model = make_mlp()
    x = torch.zeros(1, 6, dtype=torch.float64)
    with pytest.raises(InputError, match="kind"):
        smooth("saliency", model, x, kind="median")
    with pytest.raises(InputError, match="n_samples"):
        smoothgrad(model, x, n_samples=0)
    with pytest.raises(InputError, match="noise_level"):
        smoothgrad(model, x, noise_level=-1.0)
    info = attribkit.methods()["smoothgrad"]
    assert info.stochastic and info.family == "gradient" and "sensitivity_a" not in info.axioms
    assert attribkit.explain(model, x, method="vargrad", n_samples=2).method == "vargrad[saliency]"
