"""Layer attribution: conductance, and IG / gradient x activation at a layer's input or output.

Oracles: Captum's LayerConductance, LayerIntegratedGradients, LayerGradientXActivation and
NeuronConductance (float64, same nodes), the completeness of conductance over a layer, and the
identity "conductances through every unit of a layer sum to Integrated Gradients".
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import (
    LayerConductance,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    NeuronConductance,
)
from torch import nn

import attribkit
from attribkit.core.errors import InputError

# Captum's name for each attribkit rule
CAPTUM = {"gauss_legendre": "gausslegendre", "riemann_trapezoid": "riemann_trapezoid",
          "riemann_left": "riemann_left", "riemann_middle": "riemann_middle"}


def _activation(model: nn.Module, layer: nn.Module, x: torch.Tensor, pre: bool) -> torch.Tensor:
    """The layer's output (or first input) at ``x``, read with a plain hook (the oracle side)."""
    seen: list[torch.Tensor] = []
    h = (layer.register_forward_pre_hook(lambda _m, a: seen.append(a[0])) if pre
         else layer.register_forward_hook(lambda _m, _a, o: seen.append(o)))
    with torch.no_grad():
        model(x)
    h.remove()
    return seen[0]


@pytest.mark.parametrize("rule", sorted(CAPTUM))
@pytest.mark.parametrize("pre", [False, True])
def test_layer_conductance_matches_captum_mlp(make_mlp, rng, rule, pre):
    model = make_mlp(seed=1)
    x = torch.randn(3, 6, generator=rng, dtype=torch.float64)
    b = 0.1 * torch.randn(3, 6, generator=rng, dtype=torch.float64)
    to = "layer_input" if pre else "layer_output"
    ours = attribkit.layer_conductance(model, x, layer=model[2], target=1, baseline=b, steps=20,
                                       rule=rule, gradient="left", attribute_to=to)
    theirs = LayerConductance(model, model[2]).attribute(
        x, baselines=b, target=1, n_steps=20, method=CAPTUM[rule], attribute_to_layer_input=pre)
    torch.testing.assert_close(ours.values, theirs, atol=1e-8, rtol=1e-6)


def test_layer_conductance_matches_captum_cnn_default(make_cnn, rng):
    """Captum's default (50 Gauss-Legendre nodes + 1, left gradients) on a conv layer, small
    batches so that the Stieltjes sum is carried across chunk boundaries."""
    model = make_cnn(seed=2)
    x = torch.rand(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    ours = attribkit.layer_conductance(model, x, layer=model[3], target=4, steps=50,
                                       rule="gauss_legendre", gradient="left", batch_size=7)
    theirs = LayerConductance(model, model[3]).attribute(x, baselines=torch.zeros_like(x),
                                                          target=4)
    assert ours.values.shape == (2, 8, 4, 4)
    torch.testing.assert_close(ours.values, theirs, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(ours.inputs, _activation(model, model[3], x, False))


def test_layer_conductance_completeness(make_mlp, make_cnn, rng):
    """Summed over the layer's units, conductance is F(x) - F(x'): to second order with the
    default rule (trapezoid nodes, averaged gradients), first order with Captum's left sum."""
    model = make_mlp(seed=5)
    x = torch.randn(4, 6, generator=rng, dtype=torch.float64)
    a = attribkit.layer_conductance(model, x, layer=model[1], target=0)
    with torch.no_grad():
        delta = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
    torch.testing.assert_close(a.total(), delta, atol=1e-4 * float(delta.abs().max()),
                               rtol=0)
    assert float(a.relative_gap.max()) < 1e-3
    fine = attribkit.layer_conductance(model, x, layer=model[1], target=0, steps=200)
    assert float(fine.gap.abs().max()) < float(a.gap.abs().max()) / 8  # second order: 16x
    left = attribkit.layer_conductance(model, x, layer=model[1], target=0, gradient="left")
    assert float(left.gap.abs().max()) > float(a.gap.abs().max())
    cnn = make_cnn(seed=6)
    xi = torch.rand(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    # the first ReLU: max pooling, a conv and a ReLU follow, so the integrand has kinks (first
    # order; 0.8 % measured at 64 steps)
    c = attribkit.layer_conductance(cnn, xi, layer=cnn[1], target=2, steps=64)
    assert float(c.relative_gap.max()) < 2e-2
    # after the last ReLU the model is linear in the layer: the sum is exact at any step count
    exact = attribkit.layer_conductance(cnn, xi, layer=cnn[4], target=2, steps=3)
    assert float(exact.relative_gap.max()) < 1e-12


@pytest.mark.parametrize("pre", [False, True])
def test_layer_ig_and_gradient_x_activation_match_captum(make_cnn, rng, pre):
    model = make_cnn(seed=3)
    x = torch.rand(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    b = 0.2 * torch.rand(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    layer, to = model[3], ("layer_input" if pre else "layer_output")
    ours = attribkit.integrated_gradients(model, x, layer=layer, attribute_to=to, target=7,
                                          baseline=_activation(model, layer, b, pre), steps=30)
    theirs = LayerIntegratedGradients(model, layer).attribute(
        x, baselines=b, target=7, n_steps=30, attribute_to_layer_input=pre)
    torch.testing.assert_close(ours.values, theirs, atol=1e-7, rtol=1e-6)
    gxa = attribkit.gradient_x_input(model, x, layer=layer, attribute_to=to, target=7)
    theirs = LayerGradientXActivation(model, layer).attribute(x, target=7,
                                                              attribute_to_layer_input=pre)
    torch.testing.assert_close(gxa.values, theirs, atol=1e-10, rtol=1e-8)
    sal = attribkit.saliency(model, x, layer=layer, attribute_to=to, target=7)
    torch.testing.assert_close(sal.values * _activation(model, layer, x, pre), gxa.values)


def test_neuron_conductance_matches_captum_and_sums_to_ig(make_mlp, make_cnn, rng):
    model = make_mlp(seed=7)
    x = torch.randn(3, 6, generator=rng, dtype=torch.float64)
    b = 0.1 * torch.randn(3, 6, generator=rng, dtype=torch.float64)
    ours = attribkit.neuron_conductance(model, x, neuron=attribkit.neuron(model[1], 3), target=2,
                                        baseline=b, steps=30)
    theirs = NeuronConductance(model, model[1]).attribute(
        x, neuron_selector=3, baselines=b, target=2, n_steps=30, method="gausslegendre")
    torch.testing.assert_close(ours.values, theirs, atol=1e-8, rtol=1e-6)
    # Captum's default (trapezoid, n = 50 nodes weighted 1/n, ends halved) sums its weights to
    # (n - 1) / n: its values are 49/50 of the trapezoid integral (documented in the docstring)
    default = NeuronConductance(model, model[1]).attribute(x, neuron_selector=3, baselines=b,
                                                           target=2)
    trap = attribkit.neuron_conductance(model, x, neuron=attribkit.neuron(model[1], 3), target=2,
                                        baseline=b, steps=50, rule="riemann_trapezoid")
    torch.testing.assert_close(default * 50 / 49, trap.values, atol=1e-10, rtol=1e-6)
    # through every unit of the layer together: exactly Integrated Gradients (same nodes)
    total = sum(attribkit.neuron_conductance(model, x, neuron=attribkit.neuron(model[1], j),
                                             target=2, baseline=b, steps=30).values
                for j in range(8))
    ig = attribkit.integrated_gradients(model, x, target=2, baseline=b, steps=30)
    torch.testing.assert_close(total, ig.values, atol=1e-12, rtol=1e-10)
    # a channel: the conductance through its units together (their sum); a tuple index
    cnn = make_cnn(seed=8)
    xi = torch.rand(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    chan = attribkit.neuron_conductance(cnn, xi, neuron=attribkit.neuron(cnn[3], 5, average=True),
                                        target=1, steps=8)
    units = sum(attribkit.neuron_conductance(cnn, xi, neuron=attribkit.neuron(cnn[3], (5, i, j)),
                                             target=1, steps=8).values
                for i in range(4) for j in range(4))
    torch.testing.assert_close(chan.values, units, atol=1e-12, rtol=1e-9)


def test_layer_options_refused_in_one_line(make_mlp):
    model = make_mlp()
    x = torch.zeros(1, 6, dtype=torch.float64)
    with pytest.raises(InputError, match="needs layer="):
        attribkit.layer_conductance(model, x, layer=None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="layer_output' or 'layer_input'"):
        attribkit.integrated_gradients(model, x, layer=model[2], attribute_to="input")
    with pytest.raises(InputError, match="needs layer="):
        attribkit.saliency(model, x, attribute_to="layer_input")
    with pytest.raises(InputError, match="not a sub-module"):
        attribkit.layer_conductance(model, x, layer=nn.Linear(6, 8).double())
    with pytest.raises(InputError, match="needs neuron="):
        attribkit.neuron_conductance(model, x, neuron=None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="'mean' or 'left'"):
        attribkit.layer_conductance(model, x, layer=model[2], gradient="right")
