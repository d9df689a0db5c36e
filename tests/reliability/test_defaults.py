"""Defaults that used to hang or lie in the Python API (issue 26)."""

from __future__ import annotations

import warnings

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import cnn, images

import attribkit
from attribkit.zoo import digits, vision


@case("silent errors", "baseline=\"black\" on attribkit's own EfficientNet, which sees "
      "(pixels - 127) / 128 (black was the value 0.0, mid-grey, while the CLI used -127/128)",
      "zoo models declare their input space (model.attribkit_input_space); \"black\", "
      "\"white\" and \"grey\" go through it: black is -127/128 in the Python API as on the "
      "command line, with no warning")
def test_black_is_black_on_zoo_models() -> None:
    model = vision.load_efficientnet_lite0()
    x = torch.zeros(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no note: the model says what black is
        attr = attribkit.integrated_gradients(model, x, baseline="black", target=0, steps=2)
    assert torch.equal(attr.baselines, torch.full_like(x, vision.BLACK))
    assert vision.SoftmaxModel(model).attribkit_input_space == vision.INPUT_SPACE
    mnist = digits.load_mnist_cnn()
    assert mnist.attribkit_input_space.colour("black") == pytest.approx(digits.BLACK, abs=1e-15)
    assert vision.INPUT_SPACE.colour("white") == (255 - 127) / 128


@case("silent errors", "baseline=\"black\" (or \"white\", \"grey\") on a model attribkit knows "
      "nothing of", "uses the [0, 1] value (0, 1, 0.5) and warns once, saying the value and how to "
      "give the model's own: baseline=attribkit.Black(v) or model.attribkit_input_space = "
      "attribkit.InputSpace(mean, scale, pixel_max)")
def test_black_on_an_unknown_model_says_so() -> None:
    model, x = cnn(), images(2)
    with pytest.warns(UserWarning, match=r"baseline='grey' is the value 0.5 .*InputSpace") as rec:
        attr = attribkit.integrated_gradients(model, x, baseline="grey", target=0, steps=4)
    assert len([w for w in rec if "baseline=" in str(w.message)]) == 1
    assert rec[0].filename == __file__  # the note points at the user's line
    assert torch.equal(attr.baselines, torch.full_like(x, 0.5))
    model.attribkit_input_space = attribkit.InputSpace(mean=(0.5, 0.25), scale=(0.5, 0.25))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attr = attribkit.integrated_gradients(model, x, baseline="black", target=0, steps=4)
    assert torch.equal(attr.baselines[:, 0], torch.full_like(x[:, 0], -1.0))
    assert torch.equal(attr.baselines[:, 1], torch.full_like(x[:, 1], -1.0))
