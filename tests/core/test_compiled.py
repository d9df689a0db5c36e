"""``compile=True``: the same attribution, one warning where compilation fails (issue 20)."""

from __future__ import annotations

import pytest
import torch
from tests.reliability._nets import mlp, rows

import attribkit
from attribkit.core import compiled


def test_compile_refuses_plain_functions_and_layers() -> None:
    net = mlp(0)
    with pytest.raises(attribkit.InputError, match="needs an nn"):
        attribkit.integrated_gradients(lambda t: net(t), rows(2), target=0, compile=True)
    with pytest.raises(attribkit.InputError, match="layer="):
        attribkit.integrated_gradients(net, rows(2), target=0, compile=True, layer=net[0])


def test_padding_keeps_the_gradients_of_real_rows() -> None:
    pts = torch.arange(6.0, dtype=torch.float64).reshape(3, 2).requires_grad_(True)
    padded = compiled.pad_rows(pts, 5)
    assert padded.shape == (5, 2)
    (g,) = torch.autograd.grad((padded**2).sum(), pts)
    torch.testing.assert_close(g, 2 * pts.detach())  # padded rows send nothing back


@pytest.mark.slow
def test_compiled_ig_matches_eager_and_is_kept_across_calls() -> None:
    model, x = mlp(0), rows(3)
    eager = attribkit.integrated_gradients(model, x, target=2, steps=20, batch_size=8)
    a = attribkit.integrated_gradients(model, x, target=2, steps=20, batch_size=8, compile=True)
    fn = compiled.compiled_model(model)
    b = attribkit.integrated_gradients(model, x, target=2, steps=20, batch_size=8, compile=True)
    assert compiled.compiled_model(model) is fn  # the compiled module (and its warm-up) is kept
    assert fn is not None and model not in compiled._FAILED  # it did compile
    torch.testing.assert_close(a.values, eager.values, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(b.values, eager.values, rtol=1e-10, atol=1e-12)
    compiled.forget(model)
