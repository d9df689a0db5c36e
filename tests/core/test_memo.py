"""Checks run once per model and shapes, and again after the model is edited (issue 20)."""

from __future__ import annotations

import gc

import torch
from tests.reliability._nets import cnn, images, mlp, rows
from torch import Tensor, nn

import attribkit
from attribkit.core import memo


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
    gc.collect()  # models of earlier tests that only a reference cycle kept
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
