"""Careless inputs tried on every registered method: each gets an attribkit error, not a
traceback from deep inside torch, and the model is left as given (issue 13)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import cnn, images, mlp, rows, same, snapshot
from torch import Tensor, nn

import attribkit

METHODS = sorted(attribkit.methods())


def setup(method: str) -> tuple[nn.Module, Tensor, dict[str, Any]]:
    """A small model, good inputs and the options the method needs."""
    if method in ("grad_cam", "guided_grad_cam"):
        model = cnn(0)
        return model, images(2), {"layer": model[2]}
    if method == "layer_conductance":
        model = mlp(0)
        return model, rows(2), {"layer": model[1]}
    if method == "neuron_conductance":
        model = mlp(0)
        return model, rows(2), {"neuron": attribkit.neuron(model[1], 0)}
    if attribkit.methods()[method].example_rank >= 2:  # Blur IG, XRAI: image-shaped examples
        return cnn(0), images(2), {}
    model, x = mlp(0), rows(2)
    extra: dict[str, Any] = {}
    if method in ("prediction_difference", "deepshap", "expected_gradients"):
        extra["background"] = rows(3, seed=5)
    if method in ("expected_gradients", "smoothgrad", "smoothgrad_squared", "vargrad"):
        extra["n_samples"] = 4
    if method == "shapley_values":
        extra["n_samples"] = 4
    return model, x, extra


def with_value(x: Tensor, value: float) -> Tensor:
    y = x.clone()
    y.view(-1)[1] = value
    return y


class Returns(nn.Module):
    """Wraps a model and returns something else than one float tensor."""

    def __init__(self, inner: nn.Module, kind: str) -> None:
        super().__init__()
        self.inner, self.kind = inner, kind

    def forward(self, x: Tensor) -> Any:
        out = self.inner(x)
        if self.kind == "tuple":
            return out, out
        if self.kind == "dict":
            return {"logits": out}
        return out.argmax(1, keepdim=True)  # integers


#: (tried, expected error, how the call is made careless)
CARELESS: dict[str, tuple[str, type[Exception], Callable[[nn.Module, Tensor, dict[str, Any]],
                                                         tuple[Any, Any, dict[str, Any]]]]] = {
    "nan": ("a NaN in the inputs", attribkit.NonFiniteError,
            lambda m, x, kw: (m, with_value(x, math.nan), kw)),
    "inf": ("an inf in the inputs", attribkit.NonFiniteError,
            lambda m, x, kw: (m, with_value(x, math.inf), kw)),
    "empty": ("an empty batch (0 examples)", attribkit.InputError,
              lambda m, x, kw: (m, x[:0], kw)),
    "ints": ("integer inputs without layer=", attribkit.InputError,
             lambda m, x, kw: (m, x.long(), kw)),
    "scalar": ("a 0-d tensor as inputs", attribkit.InputError,
               lambda m, x, kw: (m, x.flatten()[0], kw)),
    "list": ("a Python list as inputs", attribkit.InputError,
             lambda m, x, kw: (m, x.tolist(), kw)),
    "dtype": ("float32 inputs for a float64 model", attribkit.InputError,
              lambda m, x, kw: (m, x.float(), kw)),
    "target_high": ("target 7 for a model with 3 outputs", attribkit.TargetError,
                    lambda m, x, kw: (m, x, {**kw, "target": 7})),
    "target_negative": ("target -1", attribkit.TargetError,
                        lambda m, x, kw: (m, x, {**kw, "target": -1})),
    "target_length": ("five target indices for two examples", attribkit.TargetError,
                      lambda m, x, kw: (m, x, {**kw, "target": [0, 1, 2, 0, 1]})),
    "target_bool": ("target=True", attribkit.TargetError,
                    lambda m, x, kw: (m, x, {**kw, "target": True})),
    "target_float": ("target=1.5", attribkit.TargetError,
                     lambda m, x, kw: (m, x, {**kw, "target": 1.5})),
    "returns_tuple": ("a model returning a tuple", attribkit.ModelOutputError,
                      lambda m, x, kw: (Returns(m, "tuple"), x, kw)),
    "returns_dict": ("a model returning a dict (a Hugging Face output)",
                     attribkit.ModelOutputError,
                     lambda m, x, kw: (Returns(m, "dict"), x, kw)),
    "returns_ints": ("a model returning integer class ids", attribkit.ModelOutputError,
                     lambda m, x, kw: (Returns(m, "ints"), x, kw)),
    "batch_zero": ("batch_size=0", attribkit.InputError,
                   lambda m, x, kw: (m, x, {**kw, "batch_size": 0})),
    "unknown_option": ("a misspelt option (stpes=10)", TypeError,
                       lambda m, x, kw: (m, x, {**kw, "stpes": 10})),
}


def careless_cases(fn: Callable[..., Any]) -> Callable[[], Any]:
    for key in reversed(list(CARELESS)):
        tried, error, _ = CARELESS[key]
        verdict = "fixed" if key in FIXED else "held"
        fn = case("errors", f"{tried}, for each of the {len(METHODS)} registered methods",
                  f"{error.__name__} with a one-line reason; the model is left as given "
                  "(flags, hooks, parameters, buffers)", verdict)(fn)
    return fn


#: Kinds that some method answered with a raw torch/Python error before issue 13.
FIXED = {"ints", "dtype"}  # grad_cam: a raw error from inside the model / no dtype check


@pytest.mark.parametrize("kind", list(CARELESS))
@pytest.mark.parametrize("method", METHODS)
@careless_cases
def test_careless_input(method: str, kind: str) -> None:
    model, x, kw = setup(method)
    _, error, make = CARELESS[kind]
    before = snapshot(model)
    call_model, inputs, options = make(model, x, kw)
    with pytest.raises(error):
        attribkit.explain(call_model, inputs, method=method, **options)
    assert same(before, snapshot(model))


BASELINE_METHODS = [m for m in METHODS if attribkit.methods()[m].needs_baseline
                    and "baseline" in inspect.signature(attribkit.methods()[m].fn).parameters]


@pytest.mark.parametrize("method", BASELINE_METHODS)
@case("errors", f"a baseline of the wrong shape, with NaN, of another dtype, or of text, for "
      f"each of the {len(BASELINE_METHODS)} methods with a baseline",
      "BaselineError (or NonFiniteError) naming the shapes / dtype; model left as given", "held")
def test_careless_baselines(method: str) -> None:
    model, x, kw = setup(method)
    before = snapshot(model)
    bad = [torch.zeros(3, 4, dtype=torch.float64), with_value(torch.zeros_like(x), math.nan),
           torch.zeros_like(x).float(), "moon"]
    for baseline in bad:
        with pytest.raises((attribkit.BaselineError, attribkit.NonFiniteError)):
            attribkit.explain(model, x, method=method, baseline=baseline, **kw)
    assert same(before, snapshot(model))
