"""``compile=True``: the same attribution, one warning where compilation fails (issue 20)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import mlp, rows, same, snapshot

import attribkit
from attribkit.core import compiled


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
