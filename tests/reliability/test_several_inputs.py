"""Models with several inputs given careless tuples: one-line errors, the model left as given."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import same, snapshot
from torch import Tensor, nn

import attribkit
from attribkit.core.multi import SEVERAL_INPUTS
from attribkit.methods import methods


class Two(nn.Module):
    """``model(x (N, 3), m (N, 2, 2))``, float64."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 4)
        self.act = nn.ReLU()
        self.head = nn.Linear(8, 2)

    def forward(self, x: Tensor, m: Tensor) -> Tensor:
        return self.head(self.act(torch.cat([self.a(x), self.b(m.flatten(1))], dim=1)))


def _net() -> nn.Module:
    return Two().double().eval()


def _inputs(n: int = 3) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    return (torch.randn(n, 3, generator=g, dtype=torch.float64),
            torch.randn(n, 2, 2, generator=g, dtype=torch.float64))


@case("errors", "a tuple of baselines whose length differs from the tuple of inputs",
      "InputError: 'baseline is a tuple of 3 but there are 2 inputs; give one per input'")
def test_baseline_tuple_length() -> None:
    x = _inputs()
    with pytest.raises(attribkit.InputError, match=r"tuple of 3 but there are 2 inputs"):
        attribkit.integrated_gradients(_net(), x, baseline=(0.0, 0.0, 0.0), target=0)


@case("errors", "one baseline tensor for a model with two inputs",
      "InputError asking for a tuple of 2 baselines, one per input (no broadcasting guess)")
def test_one_baseline_tensor_for_two_inputs() -> None:
    x = _inputs()
    with pytest.raises(attribkit.InputError, match=r"tuple of 2 baselines"):
        attribkit.occlusion(_net(), x, baseline=torch.zeros(3, 3, dtype=torch.float64))


@case("errors", "a baseline of the wrong shape for the second of two inputs",
      "BaselineError naming 'baseline of input 1 of 2' and the shapes")
def test_baseline_shape_of_one_input() -> None:
    x = _inputs()
    bad = (torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(attribkit.BaselineError, match=r"baseline of input 1 of 2"):
        attribkit.integrated_gradients(_net(), x, baseline=bad, target=0)


@case("errors", "inputs of a tuple with different numbers of examples (3 and 2 rows)",
      "InputError: 'input 1 of 2 has 2 examples but input 0 has 3'")
def test_examples_differ() -> None:
    x, m = _inputs()
    with pytest.raises(attribkit.InputError, match=r"input 1 of 2 has 2 examples"):
        attribkit.saliency(_net(), (x, m[:2]), target=0)


@case("errors", "token ids or an integer mask inside a tuple of inputs",
      "InputError saying the integer input cannot be attributed and to pass it in "
      "forward_args= (or attribute at the embedding)")
def test_integer_part() -> None:
    x, _ = _inputs()
    with pytest.raises(attribkit.InputError, match=r"input 1 of 2 is torch.int64.*forward_args"):
        attribkit.gradient_x_input(_net(), (x, torch.ones(3, 4, dtype=torch.long)), target=0)


@case("errors", "a tuple of group masks of the wrong length, and a mask of the wrong shape",
      "InputError naming the mask keyword, the input and the shapes")
def test_masks() -> None:
    x = _inputs()
    with pytest.raises(attribkit.InputError, match=r"groups is a tuple of 1 but there are 2"):
        attribkit.shapley_values(_net(), x, groups=(torch.zeros(3, dtype=torch.long),))
    with pytest.raises(attribkit.InputError, match=r"groups of input 1 of 2 has shape \(3,\)"):
        attribkit.shapley_values(_net(), x, groups=(None, torch.zeros(3, dtype=torch.long)))


@case("errors", "window= (a sliding window over one tensor) with a tuple of inputs",
      "InputError: not supported with several inputs; use feature_mask= (a tuple of masks)")
def test_window_refused() -> None:
    with pytest.raises(attribkit.InputError, match=r"window=.*feature_mask"):
        attribkit.occlusion(_net(), _inputs(), window=2)


_SINGLE = sorted(set(methods()) - set(SEVERAL_INPUTS))


@pytest.mark.parametrize("name", _SINGLE)
@case("errors", "a tuple of inputs given to a method without several inputs (Grad-CAM, LRP, "
      "LIME, the smoothing family...)",
      "InputError listing the methods that take several inputs; nothing is stacked silently",
      verdict="held")
def test_single_input_methods_refuse_tuples(name: str) -> None:
    net = _net()
    needs: dict[str, dict[str, object]] = {
        "deepshap": {"background": torch.zeros(2, 3, dtype=torch.float64)},
        "grad_cam": {"layer": net.a}, "guided_grad_cam": {"layer": net.a},
        "layer_conductance": {"layer": net.a},
        "neuron_conductance": {"neuron": attribkit.neuron(net.a, 0)}}
    with pytest.raises(attribkit.InputError,
                       match=r"takes one input tensor.*integrated_gradients|got tuple"):
        attribkit.explain(net, _inputs(), method=name, **needs.get(name, {}))


@case("model state", "a model with two inputs, a forward hook and a frozen parameter explained, "
      "then a failing call (target out of range)",
      "flags, requires_grad, hooks and weights are as given after both", verdict="held")
def test_model_left_as_given() -> None:
    net = _net()
    net.a.weight.requires_grad_(False)
    net.head.register_forward_hook(lambda *_: None)
    before = snapshot(net)
    attribkit.integrated_gradients(net, _inputs(), target=1, steps=4)
    assert same(before, snapshot(net))
    with pytest.raises(attribkit.TargetError):
        attribkit.occlusion(net, _inputs(), target=7)
    assert same(before, snapshot(net))


@case("errors", "NumPy float64 arrays in a tuple of inputs of a float64 model",
      "converted like a single NumPy input; the result equals the tensors'", verdict="held")
def test_numpy_parts() -> None:
    x = _inputs()
    a = attribkit.saliency(_net(), tuple(t.numpy() for t in x), target=0)
    b = attribkit.saliency(_net(), x, target=0)
    for u, v in zip(a.values, b.values, strict=True):
        np.testing.assert_array_equal(u.numpy(), v.numpy())
