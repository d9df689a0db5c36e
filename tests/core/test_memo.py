"""Checks run once per model and shapes, and again after the model is edited (issue 20)."""

from __future__ import annotations

import gc

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import cnn, images, mlp, rows
from torch import Tensor, nn

import attribkit
from attribkit.core import memo


class Centring(nn.Module):
    """An MLP whose output subtracts the batch mean when ``centre`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp(1)
        self.centre = False

    def forward(self, x: Tensor) -> Tensor:
        y = self.net(x)
        return y - y.mean(0) if self.centre else y


def _batches(model: nn.Module) -> tuple[list[int], object]:
    seen: list[int] = []
    handle = model.register_forward_pre_hook(lambda _m, a: seen.append(int(a[0].shape[0])))
    return seen, handle


def test_second_call_skips_the_probes() -> None:
    model, x = cnn(0), images(1)
    seen, handle = _batches(model)
    attribkit.integrated_gradients(model, x, target=0, steps=8)
    first = list(seen)
    seen.clear()
    b = attribkit.integrated_gradients(model, x, target=0, steps=8)
    handle.remove()
    # first call: input, baseline, the 2-row independence probe, the 1-row memory probe, points
    assert first == [1, 1, 2, 1, 8]
    assert seen == [1, 1, 8]
    a = attribkit.integrated_gradients(cnn(0), x, target=0, steps=8)  # a fresh, equal model
    torch.testing.assert_close(b.values, a.values, rtol=0, atol=0)


@case("silent errors", "a model edited between two calls so that it starts mixing rows (a flag "
      "set, a parameter replaced, a hook added) after a first call that passed the checks",
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


def test_parameter_writes_change_the_fingerprint() -> None:
    model = cnn(0)
    before = memo.fingerprint(model)
    assert memo.fingerprint(model) == before
    with torch.no_grad():
        model[0].weight.mul_(1.0)  # same values, bumped version counter
    after = memo.fingerprint(model)
    assert after != before
    model[2].weight = nn.Parameter(model[2].weight.detach().clone())
    assert memo.fingerprint(model) != after
    model.train()
    assert memo.fingerprint(model) != after


def test_new_shape_is_checked_and_memory_is_weak() -> None:
    model = cnn(0)
    seen, handle = _batches(model)
    attribkit.integrated_gradients(model, images(1), target=0, steps=4)
    seen.clear()
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    attribkit.integrated_gradients(model, x, target=0, steps=4)
    handle.remove()
    assert 2 in seen  # another image size: probed again
    n_before = len(memo._MEMORY)
    del model, handle
    gc.collect()
    assert len(memo._MEMORY) == n_before - 1


def test_plain_functions_are_not_remembered() -> None:
    net = mlp(0)
    calls: list[int] = []

    def f(x: Tensor) -> Tensor:
        calls.append(int(x.shape[0]))
        return net(x)

    for _ in range(2):
        calls.clear()
        attribkit.integrated_gradients(f, rows(1), target=0, steps=4, batch_size=4)
        assert 2 in calls
