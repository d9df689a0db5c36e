"""Completeness, batching, several targets, layers, interior gradients."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import attribkit


def _smooth_cnn(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Conv2d(5, 4, 3), nn.Softplus(), nn.Flatten(),
                         nn.Linear(4, 6)).double().eval()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_completeness_random_mlps_and_cnns(seed: int,
                                           make_mlp: Callable[..., nn.Module]) -> None:
    g = torch.Generator().manual_seed(seed)
    mlp = make_mlp(n_in=9, n_out=4, seed=seed)
    x = torch.randn(4, 9, dtype=torch.float64, generator=g) * 2
    a = attribkit.integrated_gradients(mlp, x, steps=64)
    assert a.gap is not None and float(a.gap.abs().max()) < 1e-6
    cnn = _smooth_cnn(seed)
    xi = torch.randn(2, 3, 6, 6, dtype=torch.float64, generator=g)
    a = attribkit.integrated_gradients(cnn, xi, baseline=0.3, steps=64)
    assert a.gap is not None and float(a.gap.abs().max()) < 1e-6
    assert a.values.shape == xi.shape


def test_float32_inputs_and_model() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    x = torch.randn(3, 5)
    a = attribkit.integrated_gradients(net, x, steps=32)
    assert a.values.dtype == torch.float32
    assert a.gap is not None and float(a.gap.abs().max()) < 1e-4


def test_number_of_model_calls_follows_batch_size() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(4, 3).double()
    calls: list[int] = []

    def model(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape[0])
        return lin(x)

    x = torch.randn(3, 4, dtype=torch.float64)
    attribkit.integrated_gradients(model, x, steps=10, batch_size=7)
    # one call on the inputs, one on the 3 baselines, a 2-row probe that rows are independent
    # (issue 13), then 30 path points in chunks of 7
    assert calls == [3, 3, 2, 7, 7, 7, 7, 2]


def test_several_targets_share_forward_and_match_single_calls(
        make_mlp: Callable[..., nn.Module]) -> None:
    net = make_mlp(n_in=5, n_out=4, seed=7)
    x = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    multi = attribkit.integrated_gradients(net, x, target=attribkit.all_classes(), steps=16)
    assert multi.values.shape == (3, 4, 5)
    for k in range(4):
        single = attribkit.integrated_gradients(net, x, target=k, steps=16)
        torch.testing.assert_close(multi.values[:, k], single.values, rtol=0, atol=1e-12)
        torch.testing.assert_close(multi.for_target(k).values, single.values)
    top = attribkit.integrated_gradients(net, x, target=attribkit.top_k(2), steps=16)
    assert top.target is not None and top.target.shape == (3, 2)
    assert (top.target[:, 0] == net(x).argmax(1)).all()
    assert top.gap is not None and top.gap.shape == (3, 2)


def test_per_example_baselines_and_shared_baseline(make_mlp: Callable[..., nn.Module]) -> None:
    net = make_mlp(n_in=4, n_out=2, seed=2)
    x = torch.randn(3, 4, dtype=torch.float64)
    shared = torch.randn(4, dtype=torch.float64)
    a = attribkit.integrated_gradients(net, x, baseline=shared, steps=8)
    b = attribkit.integrated_gradients(net, x, baseline=shared.expand(3, 4).clone(), steps=8)
    torch.testing.assert_close(a.values, b.values)
    assert a.baselines is not None and a.baselines.shape == x.shape


class _TokenModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(11, 4).double()
        self.head = nn.Linear(4, 2).double()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = torch.tanh(self.emb(ids)) * mask[..., None]
        return self.head(e.sum(1))


def test_attribution_at_embedding_layer_with_mask() -> None:
    m = _TokenModel()
    ids = torch.tensor([[1, 5, 7, 0], [2, 3, 0, 0]])
    mask = torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float64)
    pad = torch.zeros_like(ids)
    a = attribkit.integrated_gradients(m, ids, target=1, baseline=pad, layer=m.emb,
                                       forward_args=(mask,), steps=64)
    assert a.values.shape == (2, 4, 4)
    assert a.gap is not None and float(a.gap.abs().max()) < 1e-6
    # independent: integrate the head on embeddings directly

    class OnEmb(nn.Module):
        def forward(self, e: torch.Tensor, mk: torch.Tensor) -> torch.Tensor:
            return m.head((torch.tanh(e) * mk[..., None]).sum(1))

    e, e0 = m.emb(ids).detach(), m.emb(pad).detach()
    ref = attribkit.integrated_gradients(OnEmb(), e, target=1, baseline=e0,
                                         forward_args=(mask,), steps=64)
    torch.testing.assert_close(a.values, ref.values)
    assert a.sum_embedding().shape == (2, 4)
    assert float(a.values[1, 2:].abs().max()) == 0.0  # masked tokens get nothing


def test_interior_gradients_match_autograd(make_mlp: Callable[..., nn.Module]) -> None:
    net = make_mlp(n_in=3, n_out=2, seed=4)
    x = torch.randn(2, 3, dtype=torch.float64)
    alphas = [0.1, 0.5, 1.0]
    ig = attribkit.interior_gradients(net, x, target=1, alphas=alphas)
    assert ig.gradients.shape == (2, 3, 3)
    for k, alpha in enumerate(alphas):
        p = (alpha * x).requires_grad_(True)
        (gr,) = torch.autograd.grad(net(p)[:, 1].sum(), p)
        torch.testing.assert_close(ig.gradients[:, k], gr)
        torch.testing.assert_close(ig.scores[:, k], net(alpha * x)[:, 1].detach())
    assert ig.mean_magnitude().shape == (2, 3)
    fine = attribkit.interior_gradients(net, x, target=1,
                                        alphas=torch.linspace(1 / 400, 1, 400))
    right = attribkit.integrated_gradients(net, x, target=1, steps=400, rule="riemann_right")
    torch.testing.assert_close(fine.cumulative()[:, -1], right.values)


def test_interior_pixel_importance_is_eq1() -> None:
    torch.manual_seed(0)
    cnn = _smooth_cnn(0)
    x = torch.randn(1, 3, 6, 6, dtype=torch.float64)
    ig = attribkit.interior_gradients(cnn, x, alphas=[0.5, 1.0])
    torch.testing.assert_close(ig.pixel_importance(), ig.gradients.abs().sum(dim=2))
    assert ig.pixel_importance().shape == (1, 2, 6, 6)


def test_progress_bar_is_shown_when_asked(capsys: pytest.CaptureFixture[str],
                                          make_mlp: Callable[..., nn.Module]) -> None:
    net = make_mlp()
    x = torch.randn(2, 6, dtype=torch.float64)
    attribkit.integrated_gradients(net, x, steps=8, progress=True)
    assert "integrated gradients" in capsys.readouterr().err
    attribkit.integrated_gradients(net, x, steps=8)
    assert capsys.readouterr().err == ""


def test_explain_dispatches_through_registry(make_mlp: Callable[..., nn.Module]) -> None:
    net = make_mlp()
    x = torch.randn(2, 6, dtype=torch.float64)
    a = attribkit.explain(net, x, method="ig", steps=8)
    b = attribkit.integrated_gradients(net, x, steps=8)
    torch.testing.assert_close(a.values, b.values)
    info = attribkit.methods()["integrated_gradients"]
    assert info.complete and info.needs_baseline and "implementation_invariance" in info.axioms
    with pytest.raises(attribkit.InputError, match="unknown attribution method"):
        attribkit.explain(net, x, method="nonsense")
