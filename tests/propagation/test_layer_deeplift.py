"""DeepLIFT attributed to a layer (``deeplift(..., layer=...)``) against Captum's LayerDeepLift."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerDeepLift
from torch import nn

import attribkit


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 4), nn.ReLU(),
                         nn.Linear(4, 3)).double().eval()


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return (torch.randn(3, 5, generator=g, dtype=torch.float64),
            0.1 * torch.randn(3, 5, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("index", [1, 2, 3])
def test_layer_output_matches_captum(index: int) -> None:
    net, (x, b) = _net(), _data()
    ours = attribkit.deeplift(net, x, target=1, baseline=b, layer=net[index])
    theirs = LayerDeepLift(net, net[index]).attribute(x, baselines=b, target=1)
    torch.testing.assert_close(ours.values, theirs, rtol=1e-10, atol=1e-12)
    delta = (net(x)[:, 1] - net(b)[:, 1]).detach()
    torch.testing.assert_close(ours.values.sum(1), delta, rtol=0, atol=1e-12)


def test_linear_layer_input_matches_captum() -> None:
    net, (x, b) = _net(), _data()
    ours = attribkit.deeplift(net, x, target=1, baseline=b, layer=net[2],
                              attribute_to="layer_input")
    theirs = LayerDeepLift(net, net[2]).attribute(x, baselines=b, target=1,
                                                 attribute_to_layer_input=True)
    torch.testing.assert_close(ours.values, theirs, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.inputs, net[1](net[0](x)).detach(), rtol=0, atol=0)


@pytest.mark.parametrize("index", [1, 3])
def test_nonlinearity_input_keeps_the_rescale_rule(index: int) -> None:
    """At a ReLU's input the Rescale multiplier is m_out * dy/dx, so each unit's attribution
    equals its attribution at the output and the sum stays F(x) - F(x'). (Captum's
    LayerDeepLift reads the plain gradient there and loses completeness, by 0.01-0.03 here.)"""
    net, (x, b) = _net(), _data()
    out = attribkit.deeplift(net, x, target=1, baseline=b, layer=net[index])
    inp = attribkit.deeplift(net, x, target=1, baseline=b, layer=net[index],
                             attribute_to="layer_input")
    torch.testing.assert_close(inp.values, out.values, rtol=0, atol=1e-12)
    delta = (net(x)[:, 1] - net(b)[:, 1]).detach()
    torch.testing.assert_close(inp.values.sum(1), delta, rtol=0, atol=1e-12)


def test_model_left_as_given_and_bad_side_refused() -> None:
    net, (x, b) = _net(), _data()
    attribkit.deeplift(net, x, target=1, baseline=b, layer=net[1])
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    with pytest.raises(attribkit.InputError):
        attribkit.deeplift(net, x, target=1, baseline=b, layer=net[1], attribute_to="middle")
