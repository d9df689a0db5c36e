"""The model is left exactly as it was; bad inputs get clear errors instead of wrong answers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import attribkit
from attribkit.core.guard import hook_state


def _snapshot(model: nn.Module) -> dict[str, object]:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
        "hooks": hook_state(model),
    }


def _assert_same(model: nn.Module, before: dict[str, object]) -> None:
    after = _snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["grads"] == before["grads"]
    assert after["hooks"] == before["hooks"]
    state_b = before["state"]
    assert isinstance(state_b, dict)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state_b[k])


class _Raising(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2).double()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 2:
            raise RuntimeError("boom")
        return self.lin(x)


def test_model_unchanged_after_success(make_mlp: Callable[..., nn.Module]) -> None:
    net = make_mlp()
    net[0].weight.requires_grad_(False)  # a mixed state must come back as it was
    before = _snapshot(net)
    x = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    attribkit.integrated_gradients(net, x, steps=4, rule="adaptive")
    attribkit.integrated_gradients(net, x, tolerance=0.1)
    _assert_same(net, before)
    assert x.requires_grad and x.grad is None


def test_model_unchanged_after_raising_forward() -> None:
    m = _Raising()
    m.train(False)
    before = _snapshot(m)
    with pytest.raises(RuntimeError, match="boom"):
        attribkit.integrated_gradients(m, torch.randn(2, 3, dtype=torch.float64), steps=4)
    _assert_same(m, before)


def test_model_unchanged_after_layer_attribution_error() -> None:
    emb = nn.Embedding(5, 3).double()
    model = nn.Sequential(emb, nn.Flatten(), nn.Linear(6, 2).double())
    before = _snapshot(model)
    ids = torch.tensor([[1, 2]])
    with pytest.raises(attribkit.TargetError):
        attribkit.integrated_gradients(model, ids, layer=emb, target=9, steps=4)
    _assert_same(model, before)
    attribkit.integrated_gradients(model, ids, layer=emb, target=1, steps=4)
    _assert_same(model, before)


def test_baseline_shape_and_dtype_errors(make_mlp: Callable[..., nn.Module]) -> None:
    net = make_mlp()
    x = torch.randn(2, 6, dtype=torch.float64)
    with pytest.raises(attribkit.BaselineError, match="shape"):
        attribkit.integrated_gradients(net, x, baseline=torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(attribkit.BaselineError, match="dtype"):
        attribkit.integrated_gradients(net, x, baseline=torch.zeros(2, 6))
    with pytest.raises(attribkit.BaselineError, match="unknown baseline"):
        attribkit.integrated_gradients(net, x, baseline="mauve")


def test_integer_inputs_need_an_embedding_layer(make_mlp: Callable[..., nn.Module]) -> None:
    with pytest.raises(attribkit.InputError, match="layer="):
        attribkit.integrated_gradients(make_mlp(), torch.ones(2, 6, dtype=torch.long))


def test_target_errors(make_mlp: Callable[..., nn.Module]) -> None:
    net = make_mlp(n_out=3)
    x = torch.randn(2, 6, dtype=torch.float64)
    with pytest.raises(attribkit.TargetError, match="out of range"):
        attribkit.integrated_gradients(net, x, target=3)
    with pytest.raises(attribkit.TargetError, match="one index per example"):
        attribkit.integrated_gradients(net, x, target=[0, 1, 2])
    with pytest.raises(attribkit.TargetError, match="one scalar per example"):
        attribkit.integrated_gradients(net, x, target=lambda out: out)
    scalar = attribkit.integrated_gradients(lambda z: net(z)[:, 0], x, steps=4)
    assert scalar.target is None
    with pytest.raises(attribkit.TargetError, match="no target index"):
        attribkit.integrated_gradients(lambda z: net(z)[:, 0], x, target=2)


def test_output_shape_error_suggests_callable_target() -> None:
    def model(x: torch.Tensor) -> torch.Tensor:
        return x[:, None, :].repeat(1, 2, 1)

    x = torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(attribkit.ModelOutputError, match="callable target"):
        attribkit.integrated_gradients(model, x)
    a = attribkit.integrated_gradients(model, x, target=lambda out: out[:, 1, 2], steps=4)
    torch.testing.assert_close(a.values[:, 2], x[:, 2])


def test_non_finite_inputs_outputs_gradients() -> None:
    lin = nn.Linear(2, 1).double()
    x = torch.tensor([[1.0, float("nan")]], dtype=torch.float64)
    with pytest.raises(attribkit.NonFiniteError, match="inputs"):
        attribkit.integrated_gradients(lin, x)
    with pytest.raises(attribkit.NonFiniteError, match="output"):
        attribkit.integrated_gradients(lambda z: torch.log(z[:, 0] - 1.0),
                                       torch.tensor([[0.5, 1.0]], dtype=torch.float64))
    with pytest.raises(attribkit.NonFiniteError, match="gradients"):
        attribkit.integrated_gradients(lambda z: torch.sqrt(z[:, 0].abs()),
                                       torch.tensor([[1.0, 1.0]], dtype=torch.float64),
                                       rule="riemann_left", steps=4)


def test_training_mode_with_dropout_warns(make_mlp: Callable[..., nn.Module]) -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2)).double().train()
    with pytest.warns(RuntimeWarning, match="training mode"):
        attribkit.integrated_gradients(net, torch.randn(2, 4, dtype=torch.float64), steps=4)
    assert net.training


def test_mismatched_model_dtype(make_mlp: Callable[..., nn.Module]) -> None:
    with pytest.raises(attribkit.InputError, match="float64"):
        attribkit.integrated_gradients(make_mlp(), torch.randn(2, 6))


def test_bad_options(make_mlp: Callable[..., nn.Module]) -> None:
    net, x = make_mlp(), torch.randn(2, 6, dtype=torch.float64)
    with pytest.raises(attribkit.InputError, match="unknown integration rule"):
        attribkit.integrated_gradients(net, x, rule="simpson")
    with pytest.raises(attribkit.InputError, match="steps"):
        attribkit.integrated_gradients(net, x, steps=0)
    with pytest.raises(attribkit.InputError, match="tolerance"):
        attribkit.integrated_gradients(net, x, tolerance=2.0)
    with pytest.raises(attribkit.InputError, match="batch_size"):
        attribkit.integrated_gradients(net, x, batch_size=0)
    with pytest.raises(attribkit.InputError, match="batch axis"):
        attribkit.integrated_gradients(net, torch.zeros(0, 6, dtype=torch.float64))


def test_channels_last_gives_same_values_and_restores_tensors(
        make_cnn: Callable[..., nn.Module]) -> None:
    net = make_cnn(seed=3)
    before = _snapshot(net)
    ptrs = [(p.data_ptr(), p.stride()) for p in net.parameters()]
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    plain = attribkit.integrated_gradients(net, x, target=2, steps=16)
    fast = attribkit.integrated_gradients(net, x, target=2, steps=16, channels_last=True)
    torch.testing.assert_close(fast.values, plain.values, rtol=0, atol=1e-12)
    _assert_same(net, before)
    assert [(p.data_ptr(), p.stride()) for p in net.parameters()] == ptrs
