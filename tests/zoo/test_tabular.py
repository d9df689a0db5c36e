"""Tests of attribkit.zoo.tabular: the breast-cancer MLP, its data, cache and column groups."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer

import attribkit
from attribkit.zoo import tabular


@pytest.fixture(scope="module")
def tmp_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """One empty cache directory for the whole module (the model is trained once in it)."""
    path = tmp_path_factory.mktemp("attribkit_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTRIBKIT_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def trained(tmp_cache: pathlib.Path) -> tuple[torch.nn.Module, tabular.BreastCancerData]:
    assert not tabular.model_cache_path(0).exists()
    return tabular.load_breast_cancer_mlp(seed=0)


@pytest.fixture(scope="module")
def data() -> tabular.BreastCancerData:
    return tabular.breast_cancer_data()


def test_feature_names_and_groups_match_sklearn() -> None:
    names = [str(n) for n in load_breast_cancer().feature_names]
    assert list(tabular.FEATURE_NAMES) == names
    mask = tabular.group_mask()
    assert mask.shape == (30,) and mask.dtype == torch.long
    for gid, group in enumerate(tabular.GROUP_NAMES):
        cols = [i for i, n in enumerate(names) if n in (f"mean {group}", f"{group} error")]
        cols += [i for i, n in enumerate(names) if n == f"worst {group}"]
        assert sorted(cols) == sorted(tabular.FEATURE_GROUPS[group])
        assert mask[cols].tolist() == [gid] * 3
    assert sorted(mask.tolist()) == sorted(list(range(10)) * 3)


def test_split_and_standardisation(data: tabular.BreastCancerData) -> None:
    raw = load_breast_cancer()
    assert data.X_train.shape == (426, 30) and data.X_test.shape == (143, 30)
    assert data.X_train.dtype == torch.float64
    assert len(data.y_train) + len(data.y_test) == 569
    assert int(data.y_train.sum() + data.y_test.sum()) == int(raw.target.sum())
    torch.testing.assert_close(data.X_train.mean(0), torch.zeros(30, dtype=torch.float64))
    torch.testing.assert_close(
        data.X_train.std(0, unbiased=False), torch.ones(30, dtype=torch.float64)
    )
    # every standardised row maps back to a real row of the raw data
    back = data.unstandardise(data.X_test).numpy()
    dist = np.abs(back[:, None, :] - raw.data[None, :, :]).max(axis=2).min(axis=1)
    assert dist.max() < 1e-9
    torch.testing.assert_close(data.standardise(back), data.X_test)


def test_trained_model_is_accurate_and_cached(
    tmp_cache: pathlib.Path, trained: tuple[torch.nn.Module, tabular.BreastCancerData]
) -> None:
    model, d = trained
    path = tabular.model_cache_path(0)
    assert path.is_file() and path.is_relative_to(tmp_cache)
    assert d.test_accuracy >= 0.9 and d.seed == 0
    with torch.no_grad():
        pred = model(d.X_test).argmax(1)
    assert d.test_accuracy == pytest.approx(float((pred == d.y_test).double().mean()))
    again, _ = tabular.load_breast_cancer_mlp(seed=0)  # from the cache this time
    assert again is not model
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_corrupt_cache_file_is_replaced(
    tmp_cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def fake_train(data: tabular.BreastCancerData, seed: int = 0) -> torch.nn.Sequential:
        calls.append(seed)
        with torch.no_grad():
            model = tabular.build_mlp()
            for p in model.parameters():
                p.fill_(0.125)
        return model.eval()

    monkeypatch.setattr(tabular, "train_breast_cancer_mlp", fake_train)
    path = tabular.model_cache_path(3)
    path.write_bytes(b"garbage")
    model, _ = tabular.load_breast_cancer_mlp(seed=3)
    assert calls == [3]
    state = torch.load(path, weights_only=True)
    assert set(state) == set(model.state_dict())
    assert all(torch.all(v == 0.125) for v in state.values())
    tabular.load_breast_cancer_mlp(seed=3)  # now read back, no training
    assert calls == [3]


def test_training_is_deterministic_and_keeps_global_rng(data: tabular.BreastCancerData) -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = tabular.train_breast_cancer_mlp(data, seed=1, steps=50)
    assert torch.equal(torch.rand(3), expected_next)
    b = tabular.train_breast_cancer_mlp(data, seed=1, steps=50)
    c = tabular.train_breast_cancer_mlp(data, seed=2, steps=50)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_integrated_gradients_per_column(
    trained: tuple[torch.nn.Module, tabular.BreastCancerData],
) -> None:
    captum_attr = pytest.importorskip("captum.attr")
    model, d = trained
    x = d.X_test[:8]
    zeros = torch.zeros_like(x)
    attr = attribkit.integrated_gradients(model, x, target=0, baseline=zeros, steps=64)
    assert attr.values.shape == (8, 30) and attr.values.dtype == torch.float64
    # oracle: Captum with the same Gauss-Legendre rule
    oracle = captum_attr.IntegratedGradients(model).attribute(
        x, baselines=zeros, target=0, n_steps=64, method="gausslegendre"
    )
    torch.testing.assert_close(attr.values, oracle, atol=1e-6, rtol=1e-6)
    # completeness: the columns sum to F(x) - F(0), up to the quadrature error at the ReLU kinks
    fine = attribkit.integrated_gradients(
        model, x, target=0, baseline=zeros, steps=256, rule="riemann_trapezoid"
    )
    with torch.no_grad():
        diff = model(x)[:, 0] - model(zeros)[:, 0]
    err = (fine.values.sum(1) - diff).abs() / diff.abs()
    assert float(err.max()) < 5e-3


def test_exact_shapley_over_column_groups(
    trained: tuple[torch.nn.Module, tabular.BreastCancerData],
) -> None:
    shapley = pytest.importorskip("attribkit.methods.shapley")
    model, d = trained
    x = d.X_test[:2]
    mask = tabular.group_mask()
    got = shapley.shapley_values(model, x, target=0, groups=mask, mode="exact")
    players = got.extras["players"]
    assert players.shape == (2, 10)
    # independent brute force: v(S) = F_0(x on the groups in S, 0 elsewhere), Shapley weights
    n = len(tabular.GROUP_NAMES)
    members = torch.tensor(
        [[(s >> g) & 1 for g in range(n)] for s in range(2**n)], dtype=torch.bool
    )
    size = members.sum(1)
    weight = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    for e in range(2):
        keep = members[:, mask]  # (2^n, 30): which columns keep the input's value
        with torch.no_grad():
            v = model(torch.where(keep, x[e], torch.zeros(()).double()))[:, 0]
        for g in range(n):
            without = ~members[:, g]
            s = torch.nonzero(without).flatten()
            w = torch.tensor([weight[int(k)] for k in size[s]], dtype=torch.float64)
            phi = float((w * (v[s + 2**g] - v[s])).sum())
            assert players[e, g].item() == pytest.approx(phi, abs=1e-10, rel=1e-9)
