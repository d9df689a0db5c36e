"""Neuron targets: ``target=attribkit.neuron(layer, index)`` explains one unit of an inner layer.

Oracles: Captum's NeuronGradient and NeuronIntegratedGradients (float64); and, for every gradient
and path method, the same method on the model truncated after the neuron's layer with a callable
target that picks the unit (an independent construction of the same scalar function).
"""

from __future__ import annotations

import inspect

import pytest
import torch
from captum.attr import NeuronGradient, NeuronIntegratedGradients
from torch import nn

import attribkit
from attribkit.core.errors import TargetError
from attribkit.core.guard import hook_state
from attribkit.methods.propagation.hooks import neuron_methods

INDICES = [(11, False), ((2, 1, 3), False), (5, True)]


def _pick(index, average):
    """The unit as a callable target on the truncated model's output (the oracle side)."""
    if average:
        return lambda out: out[:, index].flatten(1).mean(1)
    if isinstance(index, tuple):
        return lambda out: out[(slice(None), *index)]
    return lambda out: out.flatten(1)[:, index]


@pytest.mark.parametrize(("index", "average"), INDICES)
def test_neuron_gradient_and_ig_match_captum(make_cnn, rng, index, average):
    model = make_cnn(seed=11)
    x = torch.rand(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    b = 0.3 * torch.rand(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    target = attribkit.neuron(model[3], index, average=average)
    # Captum reads an int as an index into axis 1; attribkit's int is flat: give Captum the tuple
    selector = (_pick(index, average) if average else
                index if isinstance(index, tuple) else (index // 16, index % 16 // 4, index % 4))
    sal = attribkit.saliency(model, x, target=target)
    theirs = NeuronGradient(model, model[3]).attribute(x, neuron_selector=selector)
    torch.testing.assert_close(sal.values, theirs, atol=1e-12, rtol=1e-10)
    ig = attribkit.integrated_gradients(model, x, target=target, baseline=b, steps=24)
    theirs = NeuronIntegratedGradients(model, model[3]).attribute(
        x, neuron_selector=selector, baselines=b, n_steps=24, method="gausslegendre")
    torch.testing.assert_close(ig.values, theirs, atol=1e-8, rtol=1e-6)
    # completeness now reads the neuron: n(x) - n(x')
    with torch.no_grad():
        n_x, n_b = (_pick(index, average)(model[:4](t)) for t in (x, b))
    torch.testing.assert_close(ig.delta, n_x - n_b)
    assert ig.target_label.startswith("neuron")


METHODS = {
    "saliency": {},
    "gradient_x_input": {},
    "integrated_gradients": {"steps": 8},
    "smoothgrad": {"n_samples": 4, "seed": 3},
    "vargrad": {"n_samples": 4, "seed": 3},
    "expected_gradients": {"n_samples": 6, "seed": 3},
    "guided_ig": {"steps": 8},
    "blur_ig": {"steps": 6, "max_sigma": 3.0},
    "idgi": {"steps": 8},
    "occlusion": {},
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_gradient_and_path_method_explains_the_unit(make_cnn, rng, name):
    """The neuron of the full model equals the output unit of the model cut after its layer."""
    model = make_cnn(seed=12)
    x = torch.rand(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    opts = dict(METHODS[name])
    if name == "expected_gradients":
        opts["background"] = torch.rand(3, 3, 8, 8, generator=rng, dtype=torch.float64)
    target = attribkit.neuron(model[4], (3, 0, 1))
    ours = attribkit.explain(model, x, name, target=target, **opts)
    cut = attribkit.explain(model[:5], x, name, target=_pick((3, 0, 1), False), **opts)
    torch.testing.assert_close(ours.values, cut.values, atol=1e-12, rtol=1e-9)
    assert float(ours.values.abs().sum()) > 0


def test_every_method_takes_a_neuron_or_refuses_in_one_line(make_cnn, rng):
    """Each registered method either explains the neuron or refuses with the list of those that
    can (before any propagation work); the list names exactly the ones that work."""
    model = make_cnn(seed=13)
    x = torch.rand(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    target = attribkit.neuron(model[3], 2, average=True)
    cheap = {"steps": 4, "n_samples": 32, "max_sigma": 2.0}
    can = neuron_methods()
    for name, info in attribkit.methods().items():
        fn_args = inspect.signature(info.fn).parameters
        opts = {k: v for k, v in cheap.items() if k in fn_args}
        if "layer" in fn_args:
            opts["layer"] = model[3]
        if "background" in fn_args:
            opts["background"] = torch.zeros(2, 3, 8, 8, dtype=torch.float64)
        if name == "neuron_conductance":
            opts.update(neuron=target)
            tgt = 0
        else:
            tgt = target
        before = hook_state(model)
        if name in can:
            a = attribkit.explain(model, x, name, target=tgt, **opts)
            assert torch.isfinite(a.values).all(), name
        else:
            with pytest.raises(TargetError, match=r"cannot explain a neuron target.*use one of "
                                                  r".*integrated_gradients.*saliency"):
                attribkit.explain(model, x, name, target=tgt, **opts)
        assert hook_state(model) == before, name
    assert {"lrp", "deeplift", "guided_backprop"}.isdisjoint(can)


def test_neuron_index_errors(make_cnn, make_mlp):
    model = make_cnn()
    x = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(TargetError, match=r"out of range.*128 units"):
        attribkit.saliency(model, x, target=attribkit.neuron(model[3], 128))
    with pytest.raises(TargetError, match="one position per axis"):
        attribkit.saliency(model, x, target=attribkit.neuron(model[3], (1, 2)))
    with pytest.raises(TargetError, match="has 8 channels"):
        attribkit.saliency(model, x, target=attribkit.neuron(model[3], 8, average=True))
    with pytest.raises(TargetError, match="not a sub-module"):
        attribkit.saliency(model, x, target=attribkit.neuron(make_mlp()[0], 0))
    with pytest.raises(TargetError, match="int or a non-empty tuple"):
        attribkit.neuron(model[3], 1.5)  # type: ignore[arg-type]
    with pytest.raises(TargetError, match="one channel index"):
        attribkit.neuron(model[3], (1, 2), average=True)
    with pytest.raises(TargetError, match=r"nn\.Module model"):
        attribkit.saliency(lambda t: model(t), x, target=attribkit.neuron(model[3], 0))
    lin = nn.Linear(4, 4).double()
    twice = nn.Sequential(lin, nn.Tanh(), lin).eval()  # a layer that runs twice
    with pytest.raises(TargetError, match="ran 2 times"):
        attribkit.saliency(twice, torch.ones(1, 4, dtype=torch.float64),
                           target=attribkit.neuron(lin, 0))
