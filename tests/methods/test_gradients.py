"""Saliency and Gradient x Input."""

from __future__ import annotations

import pytest
import torch

import attribkit
from attribkit.core.errors import InputError
from attribkit.methods.gradients import gradient_x_input, saliency
from attribkit.toys import OneMinusReLU, Polynomial


def test_closed_form_x1_squared_x2():
    x = torch.tensor([[1.0, 1.0], [2.0, 3.0]], dtype=torch.float64)
    gxi = gradient_x_input(Polynomial([[2, 1]]), x)
    # d/dx1 = 2 x1 x2, d/dx2 = x1^2
    torch.testing.assert_close(gxi.values, torch.tensor([[2.0, 1.0], [24.0, 12.0]],
                                                        dtype=torch.float64))
    g = saliency(Polynomial([[2, 1]]), x)
    torch.testing.assert_close(g.values, torch.tensor([[2.0, 1.0], [12.0, 4.0]],
                                                      dtype=torch.float64))


def test_saliency_fails_sensitivity_a():
    a = saliency(OneMinusReLU(), torch.tensor([[2.0]], dtype=torch.float64))
    assert float(a.values) == 0.0
    assert not {"sensitivity_a", "completeness"} & attribkit.methods()["saliency"].axioms
    assert not attribkit.methods()["gradient_x_input"].complete


def test_linear_model_matrix_form(rng):
    w = torch.randn(3, 4, generator=rng, dtype=torch.float64)
    model = torch.nn.Linear(4, 3, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(w)
    x = torch.randn(5, 4, generator=rng, dtype=torch.float64)
    t = torch.tensor([0, 1, 2, 1, 0])
    torch.testing.assert_close(saliency(model, x, target=t).values, w[t])
    torch.testing.assert_close(gradient_x_input(model, x, target=t).values, x * w[t])
    torch.testing.assert_close(saliency(model, x, target=t, absolute=True).values, w[t].abs())


# Captum warns that it switched requires_grad on for the oracle's inputs: expected, not ours
@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_captum_oracles(make_cnn, rng):
    captum = pytest.importorskip("captum.attr")
    model = make_cnn(seed=2)
    x = torch.randn(3, 3, 8, 8, generator=rng, dtype=torch.float64)
    t = torch.tensor([1, 5, 9])
    for absolute in (False, True):
        ref = captum.Saliency(model).attribute(x, target=t, abs=absolute)
        torch.testing.assert_close(saliency(model, x, target=t, absolute=absolute).values, ref,
                                   rtol=0, atol=1e-12)
    ref = captum.InputXGradient(model).attribute(x, target=t)
    torch.testing.assert_close(gradient_x_input(model, x, target=t).values, ref.detach(),
                               rtol=0, atol=1e-12)


def test_several_targets(make_mlp, rng):
    model = make_mlp(seed=3)
    x = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    both = gradient_x_input(model, x, target=attribkit.all_classes())
    assert both.values.shape == (2, 3, 6)
    for k in range(3):
        torch.testing.assert_close(both.values[:, k], gradient_x_input(model, x, target=k).values)


def test_layer_gradients(make_cnn, rng):
    model = make_cnn(seed=4)
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    a = gradient_x_input(model, x, target=0, layer=model[3])
    assert a.values.shape == (1, 8, 4, 4)


def test_errors_and_model_restored(make_mlp):
    model = make_mlp()
    with pytest.raises(InputError, match="no baseline"):
        saliency(model, torch.zeros(1, 6, dtype=torch.float64), baseline=0.0)
    assert all(p.requires_grad for p in model.parameters())
