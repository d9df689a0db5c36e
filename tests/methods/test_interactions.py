"""attribkit.interactions and attribkit.integrated_hessians on models written here: shapiq and
path-explain as oracles, completeness, feature groups, black boxes and refusals."""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest
import shapiq
import torch
from torch import nn

import attribkit
from attribkit.core.errors import InputError, UnsupportedModelError


def _net(d: int = 5) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, 2)).double().eval()


def _shapiq_game(model: nn.Module, x: torch.Tensor, base: torch.Tensor, target: int):
    def game(c: np.ndarray) -> np.ndarray:
        keep = torch.from_numpy(np.atleast_2d(c).astype(bool))
        pts = torch.where(keep, x[None], base[None])
        with torch.no_grad():
            return model(pts)[:, target].numpy()
    return game


@pytest.mark.parametrize("index", ["SII", "STII", "FSII", "k-SII", "BII", "Moebius"])
def test_matches_shapiq_on_a_torch_model(index: str) -> None:
    net = _net()
    x = torch.randn(1, 5, dtype=torch.float64)
    res = attribkit.interactions(net, x, index=index, order=2, target=1, baseline=0.0)
    computer = shapiq.ExactComputer(_shapiq_game(net, x[0], torch.zeros(5, dtype=torch.float64),
                                                 1), n_players=5)
    ref = computer("Moebius") if index == "Moebius" else computer(index, order=2)
    for i, c in enumerate(res.coalitions):
        if index == "FSII" and c:  # the big-M regression of shapiq is ~1e-10 off
            assert float(res.values[0, i]) == pytest.approx(ref[c], abs=1e-8)
        else:
            assert float(res.values[0, i]) == pytest.approx(ref[c], abs=1e-10)
    assert res.exact and res.evaluations == 32 and res.stderr is None
    with torch.no_grad():
        assert float(res.output[0]) == pytest.approx(float(net(x)[0, 1]), abs=1e-12)
        assert float(res.baseline_output[0]) == pytest.approx(float(net(0 * x)[0, 1]), abs=1e-12)


def test_result_views() -> None:
    net = _net()
    x = torch.randn(2, 5, dtype=torch.float64)
    res = attribkit.interactions(net, x, index="FSII", target=0)
    torch.testing.assert_close(res.total(), res.output, rtol=0, atol=1e-10)
    mat = res.matrix()
    assert mat.shape == (2, 5, 5)
    torch.testing.assert_close(mat, mat.transpose(-1, -2))
    top = res.top(3, example=1)
    assert len(top) == 3 and abs(top[0][1]) >= abs(top[2][1])
    assert float(res.value(top[0][0])[1]) == top[0][1]
    assert float(mat[1, top[0][0][0], top[0][0][1]]) == top[0][1]


def test_feature_groups_and_a_numpy_black_box() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=6)

    def f(batch: np.ndarray) -> np.ndarray:  # NumPy in, NumPy out: x0 x1 + x2 + x3 x4 x5
        b = batch
        return b[:, 0] * b[:, 1] * w[0] + b[:, 2] + b[:, 3] * b[:, 4] * b[:, 5]

    x = np.ones((1, 6))
    mask = torch.tensor([10, 10, 20, 30, 30, 40])  # groups {0,1}, {2}, {3,4}, {5}
    res = attribkit.interactions(attribkit.black_box(f), x, index="Moebius", order=2,
                                 feature_mask=mask)
    assert res.n_players == 4 and res.labels.tolist() == [10, 20, 30, 40]
    assert float(res.value((10,))[0]) == pytest.approx(w[0])  # the pair inside one group
    assert float(res.value((30, 40))[0]) == pytest.approx(1.0)
    assert float(res.value((10, 20))[0]) == pytest.approx(0.0, abs=1e-12)
    assert res.top(1)[0][0] == (30, 40)


def test_sampled_with_budget_gives_errors_and_cost() -> None:
    net = _net(16)
    x = torch.randn(1, 16, dtype=torch.float64)
    exact = attribkit.interactions(net, x, index="SII", target=0)
    est = attribkit.interactions(net, x, index="SII", target=0, budget=3000, seed=3)
    assert not est.exact and est.stderr is not None and est.evaluations <= 3000
    z = (est.values - exact.values)[0, 1:] / est.stderr[0, 1:]
    assert float((z.abs() < 3.5).double().mean()) > 0.95
    again = attribkit.interactions(net, x, index="SII", target=0, budget=3000, seed=3)
    torch.testing.assert_close(again.values, est.values, rtol=0, atol=0)


def test_refusals_are_one_clear_line() -> None:
    net = nn.Linear(22, 1).double()
    x = torch.randn(1, 22, dtype=torch.float64)
    with pytest.raises(InputError, match=r"2\^22 = 4,194,304 .* pass budget="):
        attribkit.interactions(net, x)
    with pytest.raises(InputError, match="order=4 is above the number of players"):
        attribkit.interactions(nn.Linear(3, 1).double(), x[:, :3], order=4)
    with pytest.raises(InputError, match="hole: group 1 has no feature in example 1"):
        attribkit.interactions(nn.Linear(3, 1).double(), x[:2, :3].repeat(2, 1),
                               feature_mask=torch.tensor([[0, 1, 2], [0, 2, 2]]))
    with pytest.raises(InputError, match="budget=10 is too small"):
        attribkit.interactions(net, x, budget=10)
    with pytest.raises(InputError, match="unknown interaction index"):
        attribkit.interactions(net, x[:, :3], index="Owen")


def _path_explain():
    spec = importlib.util.find_spec("path_explain")
    assert spec is not None and spec.submodule_search_locations
    path = pathlib.Path(next(iter(spec.submodule_search_locations)))
    file = path / "explainers" / "path_explainer_torch.py"
    loader = importlib.util.spec_from_file_location("path_explainer_torch", file)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module.PathExplainerTorch


def test_integrated_hessians_match_path_explain() -> None:
    net = nn.Sequential(nn.Linear(4, 6), nn.Softplus(), nn.Linear(6, 1)).double().eval()
    torch.manual_seed(1)
    x = torch.randn(3, 4, dtype=torch.float64)
    base = torch.zeros(1, 4, dtype=torch.float64)
    ref = _path_explain()(net).interactions(x.clone().requires_grad_(True), base,
                                            num_samples=64, use_expectation=False,
                                            verbose=False).detach().double()
    m = 8  # path-explain: round(sqrt(64)) equally spaced nodes on both integrals, ends included
    mine = attribkit.integrated_hessians(net, x, baseline=0.0,
                                         nodes=(np.linspace(0, 1, m), np.full(m, 1 / m)))
    # path-explain keeps its gradients in float32
    torch.testing.assert_close(mine.values, ref, rtol=1e-5, atol=1e-6)


def test_integrated_hessians_completeness() -> None:
    net = _net(5)
    x = torch.randn(2, 5, dtype=torch.float64)
    ih = attribkit.integrated_hessians(net, x, target=1, steps=24)
    ig = attribkit.integrated_gradients(net, x, target=1, steps=64)
    torch.testing.assert_close(ih.attributions(), ig.values, rtol=0, atol=1e-10)
    assert float(ih.gap().abs().max()) < 1e-10
    torch.testing.assert_close(ih.values, ih.values.transpose(-1, -2), rtol=0, atol=1e-10)
    # F = x0 x1 from 0 to (2, 3): G_01 = G_10 = 6 * int int a b = 1.5 and the diagonal
    # G_00 = 2 * int int 3 a b = 1.5 (Janizek et al.'s closed form), x2 gets nothing
    prod = attribkit.integrated_hessians(lambda z: z[:, 0] * z[:, 1], torch.tensor(
        [[2.0, 3.0, 1.0]], dtype=torch.float64), steps=4)
    expected = torch.tensor([[1.5, 1.5, 0.0], [1.5, 1.5, 0.0], [0.0, 0.0, 0.0]],
                            dtype=torch.float64)
    torch.testing.assert_close(prod.values[0], expected, rtol=0, atol=1e-12)
    assert prod.top(1)[0] == ((0, 1), pytest.approx(3.0))


def test_integrated_hessians_refuse_black_boxes() -> None:
    with pytest.raises(UnsupportedModelError):
        attribkit.integrated_hessians(attribkit.black_box(lambda a: a.sum(1)),
                                      np.ones((1, 3)))
