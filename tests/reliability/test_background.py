"""KernelSHAP, LIME and occlusion with a background data set (issue 26)."""

from __future__ import annotations

import numpy as np
import pytest
import shap
import torch
from tests.reliability._cases import case
from tests.reliability._nets import mlp, rows

import attribkit


def _linear(d: int = 4) -> torch.nn.Linear:
    torch.manual_seed(3)
    return torch.nn.Linear(d, 2).double().eval()


@pytest.mark.parametrize("method", ["kernel_shap", "lime", "occlusion"])
@pytest.mark.parametrize("how", ["Background", "tensor"])
@case("silent errors", "kernel_shap / lime / occlusion with a background data set (several "
      "reference rows, as SHAP's KernelExplainer takes) instead of one baseline row",
      "baseline=attribkit.Background(rows), or a (B, ...) tensor with B neither 1 nor N: each "
      "coalition's value is the mean over the rows; on a linear model every method gives the "
      "closed form w_i (x_i - mean_b b_i), and completeness reads F(x) - E_b F(b)")
def test_background_closed_form_on_a_linear_model(method: str, how: str) -> None:
    model, x, bg = _linear(), rows(3, d=4), rows(7, d=4, seed=5)
    opts = {"kernel_shap": {"n_samples": 14}, "lime": {"alpha": 0.0, "n_samples": 64},
            "occlusion": {}}[method]
    base = attribkit.Background(bg) if how == "Background" else bg
    attr = attribkit.explain(model, x, method=method, target=1, baseline=base, **opts)
    want = model.weight[1].detach() * (x - bg.mean(0))
    torch.testing.assert_close(attr.values, want, rtol=1e-9, atol=1e-12)
    assert attr.params["background_size"] == 7
    with torch.no_grad():
        fb = model(bg)[:, 1].mean()
    torch.testing.assert_close(attr.baseline_output, fb.expand(3), rtol=1e-12, atol=1e-12)


@case("silent errors", "kernel_shap with a background of 5 rows on a ReLU MLP with 4 features, "
      "against SHAP's KernelExplainer(f, background) (exact: every coalition enumerated)",
      "the same Shapley values to 1e-8, complete against F(x) - E_b F(b)")
def test_background_kernel_shap_matches_shap() -> None:
    model, x, bg = mlp(0, d=4), rows(3, d=4), rows(5, d=4, seed=9)
    attr = attribkit.kernel_shap(model, x, target=2, baseline=attribkit.Background(bg),
                                 n_samples=14)

    def f(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(a, dtype=torch.float64))[:, 2].numpy()

    explainer = shap.KernelExplainer(f, bg.numpy())
    want = explainer.shap_values(x.numpy(), nsamples=1000, silent=True)
    np.testing.assert_allclose(attr.values.numpy(), want, rtol=1e-8, atol=1e-10)
    assert attr.gap is not None and float(attr.gap.abs().max()) < 1e-10
