"""KernelSHAP: with every coalition it is the exact Shapley value (attribkit's enumeration and
SHAP's KernelExplainer); under a budget it keeps efficiency exactly, is seeded, and its error
shrinks and is described by its standard errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attribkit
from attribkit.methods.agnostic import kernel_shap
from attribkit.methods.agnostic.kernel_shap import kernel_coalitions

torch.manual_seed(0)
W = torch.randn(10, 3, dtype=torch.float64)


def model(x: torch.Tensor) -> torch.Tensor:
    """Interactions of every order: a tanh layer times a product of two inputs."""
    return torch.tanh(x @ W) * (1 + x[:, :1] * x[:, 1:2]) + 0.3 * x[:, 2:3] * x[:, 3:4] * x[:, 4:5]


X = torch.randn(3, 10, dtype=torch.float64)
B = torch.full((1, 10), 0.1, dtype=torch.float64)


def test_all_coalitions_equal_exact_shapley() -> None:
    exact = attribkit.shapley_values(model, X, baseline=B, mode="exact",
                                     target=attribkit.all_classes())
    ks = kernel_shap(model, X, baseline=B, n_samples=2 ** 10 - 2,
                     target=attribkit.all_classes())
    assert ks.params["exact"] is True
    torch.testing.assert_close(ks.values, exact.values, rtol=0, atol=1e-12)
    assert float(ks.extras["stderr"].abs().max()) == 0.0


def test_groups_with_non_players_equal_exact_shapley() -> None:
    groups = torch.tensor([0, 0, 1, 2, 2, 3, -1, 4, 5, 5])
    exact = attribkit.shapley_values(model, X, baseline=B, groups=groups, mode="exact", target=1)
    ks = kernel_shap(model, X, baseline=B, groups=groups, n_samples=10_000, target=1)
    torch.testing.assert_close(ks.values, exact.values, rtol=0, atol=1e-12)
    torch.testing.assert_close(ks.gap, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12)


def test_matches_shap_kernel_explainer_with_every_coalition() -> None:
    import shap
    w = np.random.default_rng(1).normal(size=(8, 2))

    def f(a: np.ndarray) -> np.ndarray:
        return np.tanh(a @ w) + a[:, :1] * a[:, 1:2] * a[:, 2:3]

    x = np.random.default_rng(2).normal(size=(2, 8))
    bg = np.full((1, 8), 0.2)
    theirs = shap.KernelExplainer(f, bg).shap_values(x, nsamples=2 ** 8 - 2, silent=True,
                                                      l1_reg=False)
    ours = kernel_shap(attribkit.black_box(f), x, baseline=torch.tensor(bg), target=1,
                       n_samples=2 ** 8 - 2)
    np.testing.assert_allclose(ours.values.numpy(), np.asarray(theirs)[..., 1], atol=1e-10)


def test_budget_efficiency_seed_and_convergence() -> None:
    exact = attribkit.shapley_values(model, X, baseline=B, mode="exact", target=0).values
    errs, covered = [], []
    for m in (60, 250, 900):
        ks = kernel_shap(model, X, baseline=B, n_samples=m, seed=4, target=0)
        assert ks.params["exact"] is False
        torch.testing.assert_close(ks.gap, torch.zeros(3, dtype=torch.float64), rtol=0,
                                   atol=1e-12)
        err = (ks.values - exact).abs()
        errs.append(float(err.pow(2).mean().sqrt()))
        covered.append(float((err <= 3 * ks.extras["stderr"] + 1e-12).double().mean()))
        assert ks.params["forward_evaluations"] == 3 * (ks.params["n_samples"] + 2)
    assert errs[0] > errs[1] > errs[2]
    assert min(covered) >= 0.8  # the bootstrap standard errors describe the error
    again = kernel_shap(model, X, baseline=B, n_samples=250, seed=4, target=0)
    other = kernel_shap(model, X, baseline=B, n_samples=250, seed=5, target=0)
    assert torch.equal(again.values, kernel_shap(model, X, baseline=B, n_samples=250, seed=4,
                                                 target=0).values)
    assert not torch.equal(again.values, other.values)


def test_coalitions_enumerate_small_sizes_first() -> None:
    z, w, fixed, draws = kernel_coalitions(10, 100, torch.Generator().manual_seed(0))
    sizes = z.sum(1)
    assert fixed == 20 and set(sizes[:fixed].tolist()) == {1, 9}
    assert bool(((sizes[fixed:] >= 2) & (sizes[fixed:] <= 8)).all())
    assert torch.equal(z[fixed::2], ~z[fixed + 1::2])  # antithetic pairs
    assert float(w.sum()) == pytest.approx(1.0)
    # distinct pairs; a pair drawn twice weighs twice as much
    assert torch.unique(z, dim=0).shape[0] == z.shape[0]
    counts = torch.bincount(draws)
    assert int(counts.sum()) == draws.shape[0] and z.shape[0] == fixed + 2 * counts.shape[0]
    torch.testing.assert_close(w[fixed::2] / w[fixed::2].min(), counts.double() / counts.min())


def test_sklearn_predict_proba_is_a_model() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    data = rng.normal(size=(80, 5))
    clf = LogisticRegression().fit(data, (data[:, 0] + data[:, 1] > 0).astype(int))
    ks = kernel_shap(clf.predict_proba, data[:2], target=1, n_samples=30)
    exact = attribkit.shapley_values(clf.predict_proba, data[:2], target=1, mode="exact")
    torch.testing.assert_close(ks.values, exact.values, rtol=0, atol=1e-12)
    with pytest.raises(attribkit.UnsupportedModelError, match="black-box"):
        attribkit.saliency(clf.predict_proba, torch.tensor(data[:2]))


@pytest.mark.parametrize("method", ["kernel_shap", "lime"])
def test_module_left_as_given_after_success_and_failure(method: str) -> None:
    from attribkit.core.guard import hook_state

    net = torch.nn.Sequential(torch.nn.Linear(10, 4), torch.nn.Dropout(0.1),
                              torch.nn.Linear(4, 2)).double()
    net.eval()
    net[0].weight.requires_grad_(False)
    before = (hook_state(net), [p.requires_grad for p in net.parameters()],
              [m.training for m in net.modules()])
    attribkit.explain(net, X, method, n_samples=50)
    with pytest.raises(attribkit.TargetError):
        attribkit.explain(net, X, method, n_samples=50, target=7)
    after = (hook_state(net), [p.requires_grad for p in net.parameters()],
             [m.training for m in net.modules()])
    assert before == after
