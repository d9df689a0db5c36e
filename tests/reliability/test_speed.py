"""Speed without silent shortcuts (issue 20): remembered checks and compile=True fall-backs."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import mlp, rows, same, snapshot
from torch import Tensor, nn

import attribkit
from attribkit.core import compiled


class Centring(nn.Module):
    """An MLP whose output subtracts the batch mean when ``centre`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(1)
        self.centre = False

    def forward(self, x: Tensor) -> Tensor:
        y = self.net(x)
        return y - y.mean(0) if self.centre else y


@case("silent errors", "a model edited between two calls so that it starts mixing rows (a flag "
      "set, a hook added, forward replaced) after a first call that passed the checks",
      "the checks are remembered per model with a fingerprint of its modules, flags, hooks and "
      "tensors (version counters included): the edited model is probed again and refused")
@pytest.mark.parametrize("edit", ["flag", "hook", "forward"])
def test_edited_model_is_checked_again(edit: str) -> None:
    model, x = Centring().double().eval(), rows(3)
    attribkit.integrated_gradients(model, x, target=0, steps=4)
    if edit == "flag":
        model.centre = True
    elif edit == "hook":
        model.net.register_forward_hook(lambda _m, _a, y: y - y.mean(0))
    else:
        plain = model.forward
        model.forward = lambda x: plain(x) - plain(x).mean(0)  # type: ignore[method-assign]
    with pytest.raises(attribkit.InputError, match="other rows of its batch"):
        attribkit.integrated_gradients(model, x, target=0, steps=4)


def _broken_compile(model: Any, **_kw: Any) -> Any:
    def run(*_a: Any) -> Any:
        raise RuntimeError("InductorError: CppCompileError: C++ compile error (simulated)")

    return run


@case("errors", "compile=True on a machine or model where torch.compile fails (no C compiler, "
      "an unsupported operation): the failure forced by a torch.compile that raises",
      "one RuntimeWarning naming the compiler's error, then the model runs uncompiled with the "
      "same result; the failure is remembered, so a second call neither retries nor warns; "
      "the model is left as given")
def test_compile_failure_falls_back_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = mlp(0), rows(3)
    plain = attribkit.integrated_gradients(model, x, target=1, steps=16, batch_size=8)
    before = snapshot(model)
    monkeypatch.setattr(torch, "compile", _broken_compile)
    with pytest.warns(RuntimeWarning, match="torch.compile failed") as record:
        first = attribkit.integrated_gradients(model, x, target=1, steps=16, batch_size=8,
                                               compile=True)
    assert sum("torch.compile" in str(w.message) for w in record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = attribkit.integrated_gradients(model, x, target=1, steps=16, batch_size=8,
                                                compile=True, tolerance=0.05)
    torch.testing.assert_close(first.values, plain.values, rtol=0, atol=0)
    assert second.error_estimate is not None
    assert same(before, snapshot(model))
    compiled.forget(model)
