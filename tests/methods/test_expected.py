"""Expected Gradients."""

from __future__ import annotations

import pytest
import torch

import attribkit
from attribkit.core.errors import BaselineError, InputError
from attribkit.methods.expected import expected_gradients


def test_linear_model_closed_form(rng):
    model = torch.nn.Linear(5, 2).double()
    x = torch.randn(3, 5, generator=rng, dtype=torch.float64)
    bg = torch.randn(4, 5, generator=rng, dtype=torch.float64)
    a = expected_gradients(model, x, background=bg, target=1, n_samples=8)
    w = model.weight[1].detach()
    torch.testing.assert_close(a.values, w * (x - bg.mean(0)), rtol=0, atol=1e-12)
    # completeness in expectation: sum = F(x) - E_b F(b), exact for a linear model
    torch.testing.assert_close(a.gap, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12)


def test_stderr_covers_the_truth(make_mlp, rng):
    model = make_mlp(n_in=4, hidden=6, seed=1)
    x = torch.randn(2, 4, generator=rng, dtype=torch.float64)
    bg = torch.randn(16, 4, generator=rng, dtype=torch.float64)
    truth = expected_gradients(model, x, background=bg, target=0, n_samples=40000, seed=99)
    est = expected_gradients(model, x, background=bg, target=0, n_samples=200, seed=1)
    assert bool(((est.values - truth.values).abs() <= 4 * est.extras["stderr"]).all())
    # and the completeness gap in expectation is small relative to the stderr of the total
    assert bool((truth.gap.abs() <= 4 * truth.extras["stderr"].sum(1)).all())
    # stderr falls like 1 / sqrt(samples)
    more = expected_gradients(model, x, background=bg, target=0, n_samples=800, seed=2)
    ratio = float(more.extras["stderr"].mean() / est.extras["stderr"].mean())
    assert 0.35 < ratio < 0.7


def test_captum_gradient_shap_in_expectation(make_mlp, rng):
    captum = pytest.importorskip("captum.attr")
    model = make_mlp(n_in=4, hidden=6, seed=2)
    x = torch.randn(1, 4, generator=rng, dtype=torch.float64)
    bg = torch.randn(8, 4, generator=rng, dtype=torch.float64)
    ours = expected_gradients(model, x, background=bg, target=2, n_samples=4000, seed=3)
    torch.manual_seed(0)
    ref = captum.GradientShap(model).attribute(x, baselines=bg, target=2, n_samples=4000,
                                               stdevs=0.0)
    tol = 5 * ours.extras["stderr"] * 2 ** 0.5 + 1e-9
    assert bool(((ours.values - ref.detach()).abs() <= tol).all())


def test_seeded_budget_and_several_targets(make_mlp, rng):
    model = make_mlp(seed=3)
    x = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    bg = torch.randn(5, 6, generator=rng, dtype=torch.float64)
    state = torch.get_rng_state()
    a = expected_gradients(model, x, background=bg, n_samples=10, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.params["gradient_evaluations"] == 20
    assert torch.equal(a.values, expected_gradients(model, x, background=bg, n_samples=10,
                                                    seed=4).values)
    multi = expected_gradients(model, x, baseline=bg, target=attribkit.all_classes(),
                               n_samples=10, seed=4)
    assert multi.values.shape == (2, 3, 6) and multi.extras["stderr"].shape == (2, 3, 6)


def test_errors(make_mlp):
    model = make_mlp()
    x = torch.zeros(2, 6, dtype=torch.float64)
    with pytest.raises(BaselineError, match="does not fit"):
        expected_gradients(model, x, background=torch.zeros(4, 5, dtype=torch.float64))
    with pytest.raises(BaselineError, match="dtype"):
        expected_gradients(model, x, background=torch.zeros(4, 6))
    with pytest.raises(InputError, match="needs background"):
        expected_gradients(model, x)
    with pytest.raises(InputError, match="not both"):
        expected_gradients(model, x, background=x, baseline=x)
    with pytest.raises(InputError, match="n_samples"):
        expected_gradients(model, x, background=x, n_samples=0)
