"""LIME against the ``lime`` package and Captum's Lime given the same perturbations, plus a
closed form (an additive model is fitted exactly)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attribkit
from attribkit.core.errors import InputError, UnsupportedModelError
from attribkit.methods.agnostic import lime

RNG = np.random.default_rng(0)
W = RNG.normal(size=(12, 3))
GROUPS = torch.arange(12) // 2  # 6 interpretable features of two columns each


def _numpy_model(x: np.ndarray) -> np.ndarray:
    """A black box: NumPy in, NumPy out (softmax of a tanh layer)."""
    assert isinstance(x, np.ndarray)
    z = np.tanh(x @ W) + 0.5 * x[:, :1] * x[:, 2:3]
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


numpy_model = attribkit.black_box(_numpy_model)


def _perturbed(x: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    keep = s[:, GROUPS.numpy()]
    return np.where(keep, x[None], b[None])


def test_matches_lime_package_given_the_same_samples() -> None:
    from lime.lime_base import LimeBase
    from sklearn.linear_model import Ridge
    from sklearn.metrics import pairwise_distances

    x = RNG.normal(size=(1, 12))
    b = np.full(12, 0.3)
    s = RNG.integers(0, 2, size=(300, 6)).astype(bool)
    s[0] = True  # lime's first sample is the instance itself
    width = 0.25
    ours = lime(numpy_model, x, target=1, baseline=torch.tensor(b)[None], groups=GROUPS,
                samples=torch.from_numpy(s), kernel_width=width, distance="cosine",
                surrogate="ridge", alpha=1.0)
    # the lime package's pieces: cosine distances to the instance, its image kernel, Ridge(1)
    labels = _numpy_model(_perturbed(x[0], b, s))
    d = pairwise_distances(s.astype(float), s[:1].astype(float), metric="cosine").ravel()
    base = LimeBase(lambda dd: np.sqrt(np.exp(-(dd ** 2) / width ** 2)))
    intercept, exp, score, _ = base.explain_instance_with_data(
        s.astype(float), labels, d, 1, 6, feature_selection="none",
        model_regressor=Ridge(alpha=1.0, fit_intercept=True))
    coef = np.zeros(6)
    for j, c in exp:
        coef[j] = c
    np.testing.assert_allclose(ours.extras["players"][0].numpy(), coef, rtol=1e-9, atol=1e-12)
    assert float(ours.extras["intercept"][0]) == pytest.approx(intercept, rel=1e-9)
    assert float(ours.extras["r2"][0]) == pytest.approx(score, rel=1e-9)
    # every column of a group shows its group's coefficient
    np.testing.assert_allclose(ours.values[0].numpy(), coef[GROUPS.numpy()], rtol=1e-9)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_matches_captum_lime_given_the_same_samples(distance: str) -> None:
    from captum._utils.models.linear_model import SkLearnLasso
    from captum.attr import Lime
    from captum.attr._core.lime import get_exp_kernel_similarity_function

    x = torch.tensor(RNG.normal(size=(1, 12)))
    b = torch.full((1, 12), -0.2, dtype=torch.float64)
    s = torch.from_numpy(RNG.integers(0, 2, size=(400, 6)).astype(bool))
    rows = iter(s.long())
    width = 3.0 if distance == "euclidean" else 0.5
    oracle = Lime(lambda t: torch.from_numpy(_numpy_model(t.numpy())),
                  interpretable_model=SkLearnLasso(alpha=0.005, tol=1e-12, max_iter=200000),
                  similarity_func=get_exp_kernel_similarity_function(distance, width),
                  perturb_func=lambda *_a, **_k: next(rows)[None])
    theirs = oracle.attribute(x, target=2, baselines=b, feature_mask=GROUPS[None],
                              n_samples=400, perturbations_per_eval=50)
    ours = lime(numpy_model, x, target=2, baseline=b, groups=GROUPS, samples=s,
                space="input", distance="l2" if distance == "euclidean" else "cosine",
                kernel_width=width, surrogate="lasso", alpha=0.005)
    # Captum fits in float32 (distances and design matrix), so agreement is to float32 rounding
    np.testing.assert_allclose(ours.values.numpy(), theirs.numpy(), rtol=2e-4, atol=2e-5)


def test_additive_model_is_fitted_exactly() -> None:
    w = torch.tensor([1.5, -2.0, 0.5, 3.0], dtype=torch.float64)
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5], [0.3, -0.7, 2.0, 1.0]], dtype=torch.float64)
    attr = lime(lambda t: t @ w, x, n_samples=64, alpha=0.0, seed=3)
    torch.testing.assert_close(attr.values, w * x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(attr.extras["r2"], torch.ones(2, dtype=torch.float64))


def test_seeded_black_box_and_explain() -> None:
    x = RNG.normal(size=(3, 12))
    a = attribkit.explain(numpy_model, x, method="lime", groups=GROUPS, n_samples=200, seed=5)
    b = lime(numpy_model, torch.from_numpy(x), groups=GROUPS, n_samples=200, seed=5)
    torch.testing.assert_close(a.values, b.values)
    assert a.values.shape == (3, 12) and a.extras["r2"].shape == (3,)
    assert a.params["forward_evaluations"] == 3 * 200
    c = lime(numpy_model, x, groups=GROUPS, n_samples=200, seed=6, sampler="size")
    assert not torch.equal(a.values, c.values)


def test_multi_target_and_errors() -> None:
    x = torch.tensor(RNG.normal(size=(2, 12)))
    attr = lime(numpy_model, x, target=attribkit.all_classes(), groups=GROUPS, n_samples=100)
    assert attr.values.shape == (2, 3, 12) and attr.extras["r2"].shape == (2, 3)
    single = lime(numpy_model, x, target=1, groups=GROUPS, n_samples=100)
    torch.testing.assert_close(attr.values[:, 1], single.values)
    with pytest.raises(InputError, match="distance"):
        lime(numpy_model, x, distance="manhattan")
    with pytest.raises(InputError, match="samples"):
        lime(numpy_model, x, groups=GROUPS, samples=torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(UnsupportedModelError, match="black-box"):
        attribkit.integrated_gradients(attribkit.black_box(numpy_model), x)
