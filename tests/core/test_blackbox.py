"""Black-box models: any callable from a batch to scores works for the perturbation family,
NumPy in or out; the gradient family refuses one before any work, with a one-line reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attribkit
from attribkit.core.blackbox import BlackBox, admit, is_black_box
from attribkit.core.errors import ModelOutputError, UnsupportedModelError

W = np.array([[1.0, -1.0], [2.0, 0.5], [-0.5, 1.5]])


def numpy_scores(a: np.ndarray) -> np.ndarray:
    assert isinstance(a, np.ndarray), "a black box gets NumPy arrays"
    return np.tanh(a @ W)


def torch_scores(t: torch.Tensor) -> torch.Tensor:
    return torch.tanh(t @ torch.from_numpy(W))


X = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]])


@pytest.mark.parametrize("method", ["occlusion", "shapley_values", "kernel_shap", "lime"])
def test_numpy_black_box_equals_the_same_torch_function(method: str) -> None:
    opts = {"seed": 0} if method in ("shapley_values", "kernel_shap", "lime") else {}
    a = attribkit.explain(attribkit.black_box(numpy_scores), X, method, target=1, **opts)
    b = attribkit.explain(torch_scores, torch.from_numpy(X), method, target=1, **opts)
    torch.testing.assert_close(a.values, b.values, rtol=1e-12, atol=1e-12)
    assert a.values.dtype == torch.float64


def test_prediction_difference_with_a_black_box() -> None:
    bg = torch.zeros(2, 3, dtype=torch.float64)
    a = attribkit.prediction_difference(attribkit.black_box(numpy_scores), X, background=bg,
                                        target=0)
    b = attribkit.occlusion(torch_scores, torch.from_numpy(X), target=0)
    torch.testing.assert_close(a.values, b.values)


def test_auto_mode_tensor_first_then_numpy() -> None:
    auto = BlackBox(torch_scores)
    auto(torch.from_numpy(X))
    assert auto.mode is False  # a torch function keeps getting tensors
    only_numpy = BlackBox(lambda a: np.tanh(np.asarray(a).dot(W)) if isinstance(a, np.ndarray)
                          else (_ for _ in ()).throw(TypeError("numpy only")))
    out = only_numpy(torch.from_numpy(X))
    assert only_numpy.mode is True and torch.allclose(out, torch.from_numpy(np.tanh(X @ W)))


def test_refusals_are_one_line_and_early() -> None:
    calls = []

    def counted(a: np.ndarray) -> np.ndarray:
        calls.append(1)
        return numpy_scores(a)

    bb = attribkit.black_box(counted)
    for name in ("saliency", "integrated_gradients", "smoothgrad", "expected_gradients"):
        opts = {"background": torch.zeros(1, 3)} if name == "expected_gradients" else {}
        with pytest.raises(UnsupportedModelError) as err:
            attribkit.explain(bb, torch.from_numpy(X), name, **opts)
        assert "\n" not in str(err.value) and "perturbation method" in str(err.value)
    assert calls == []  # refused before the model was called
    with pytest.raises(ModelOutputError, match="NumPy array"):
        attribkit.saliency(lambda t: np.tanh(t.detach().numpy() @ W), torch.from_numpy(X))
    with pytest.raises(ModelOutputError, match="predict_proba"):
        attribkit.occlusion(attribkit.black_box(lambda a: (a[:, 0] > 0).astype(int)), X)
    with pytest.raises(UnsupportedModelError, match="drop layer="):
        admit(numpy_scores, X, black_box=True, layer=torch.nn.Linear(1, 1))


def test_sklearn_estimators_are_black_boxes() -> None:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(np.random.default_rng(0).normal(size=(20, 3)),
                                   np.arange(20) % 2)
    assert is_black_box(clf.predict_proba) and not is_black_box(torch_scores)
    a = attribkit.occlusion(clf.predict_proba, X, target=1)
    assert a.values.shape == (2, 3)
