"""IDGI: exact completeness on the discrete path, and the paper's formula re-implemented here
independently (the path's points and gradients built by this test, or recorded from PAIR)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from tests.methods.paths._pair import call_model, chw, hwc, pair

import attribkit
from attribkit.core.errors import InputError
from attribkit.toys import Polynomial


def _paper_idgi(model, points, target: int) -> torch.Tensor:
    """Yang et al. 2023, Algorithm 1: for consecutive path points z_k, z_{k+1},
    ``res += (F(z_{k+1}) - F(z_k)) * g_k^2 / sum(g_k^2)`` with ``g_k`` the gradient at ``z_k``."""
    res = torch.zeros_like(points[0])
    for k in range(len(points) - 1):
        z = points[k].clone().requires_grad_(True)
        f = model(z[None])[0, target]
        (g,) = torch.autograd.grad(f, z)
        with torch.no_grad():
            d = model(points[k + 1][None])[0, target] - f
            res += d * g * g / (g * g).sum()
    return res


def _smooth_cnn() -> torch.nn.Sequential:
    torch.manual_seed(5)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64, 5)).double().eval()


@pytest.mark.parametrize("path", ["integrated_gradients", "guided_ig", "blur_ig"])
def test_completeness_is_exact_for_the_discrete_path(rng, path):
    model = _smooth_cnn()
    x = torch.randn(3, 3, 8, 8, generator=rng, dtype=torch.float64)
    opts = {"max_sigma": 3.0} if path == "blur_ig" else {"baseline": 0.3}
    res = attribkit.idgi(model, x, target=2, path_method=path, steps=9, **opts)
    rises = res.extras["path_scores"].diff(dim=1)  # F(z_{k+1}) - F(z_k), k = 0..m-1
    assert res.delta is not None and res.baseline_output is not None
    sums = res.values.flatten(1).sum(dim=1)
    torch.testing.assert_close(sums, rises.sum(dim=1), rtol=0, atol=1e-13)
    torch.testing.assert_close(sums, res.delta, rtol=0, atol=1e-13)
    # the endpoints of the recorded path are F(x') and F(x)
    torch.testing.assert_close(res.extras["path_scores"][:, 0], res.baseline_output)
    torch.testing.assert_close(res.extras["path_scores"][:, -1], res.output)
    # the path method's own Riemann sum on the same gradients is not exact
    base_gap = (res.extras["path_attribution"].flatten(1).sum(1) - res.delta).abs()
    assert float(base_gap.max()) > 1e-6


def test_straight_path_matches_the_papers_formula(make_mlp, rng):
    model = make_mlp(n_in=5)
    x = torch.randn(2, 5, generator=rng, dtype=torch.float64)
    b = 0.2 * torch.randn(2, 5, generator=rng, dtype=torch.float64)
    m = 11
    res = attribkit.explain(model, x, "idgi", target=1, baseline=b, steps=m)
    for e in range(2):
        pts = [b[e] + (k / m) * (x[e] - b[e]) for k in range(m + 1)]
        torch.testing.assert_close(res.values[e], _paper_idgi(model, pts, 1), rtol=1e-10,
                                   atol=1e-13)
    ig = attribkit.integrated_gradients(model, x, target=1, baseline=b, steps=m,
                                        rule="riemann_left")
    torch.testing.assert_close(res.extras["path_attribution"], ig.values)


def test_guided_path_matches_the_papers_formula_on_pairs_path(make_mlp, rng):
    model = make_mlp(n_in=6, seed=2)
    x = torch.randn(1, 6, generator=rng, dtype=torch.float64)
    m = 14
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    pair.GuidedIG().GetMask(x[0].numpy(), call_model(model, 0, seen), x_steps=m, max_dist=0.2)
    pts = [torch.as_tensor(p) for p, _ in seen] + [x[0]]  # PAIR's points, then the input
    res = attribkit.idgi(model, x, target=0, path_method="guided_ig", steps=m, max_dist=0.2)
    torch.testing.assert_close(res.values[0], _paper_idgi(model, pts, 0), rtol=1e-9,
                               atol=1e-12)


def test_blur_path_matches_the_papers_formula(rng):
    model = _smooth_cnn()
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    m, top = 6, 2.5
    sig = [top * i / m for i in range(m, -1, -1)]  # from the widest blur down to the image
    pts = [chw(ndimage.gaussian_filter(hwc(x[0]), [s, s, 0], mode="constant") if s else
               hwc(x[0])) for s in sig]
    res = attribkit.idgi(model, x, target=4, path_method="blur_ig", steps=m, max_sigma=top)
    torch.testing.assert_close(res.values[0], _paper_idgi(model, pts, 4), rtol=1e-9,
                               atol=1e-12)


def test_a_rise_where_the_gradient_vanishes_goes_to_the_next_gradient():
    # F = ReLU(x1 + x2 - 1) from 0, 4 steps: the step from alpha 1/2 to 3/4 starts on the kink
    # (gradient 0) but F rises by 0.5; that rise is carried to the last step, whose gradient
    # (1, 1) shares its own rise and the carried one half and half
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.ReLU()).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 1.0]]))
        model[0].bias.fill_(-1.0)
    x = torch.tensor([[1.5, 0.5]], dtype=torch.float64)
    res = attribkit.idgi(model, x, target=0, steps=4)
    torch.testing.assert_close(res.values[0], torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_a_feature_with_no_effect_gets_nothing():
    # F = x1 x2 + x1^2 (x3 unused) from 0: the gradient at the baseline is exactly zero, yet F
    # rises on the first step; the rise goes to the next gradient, never to x3
    poly = Polynomial([[1, 1, 0], [2, 0, 0]], [1.0, 1.0])
    x = torch.tensor([[0.7, -1.2, 2.0]], dtype=torch.float64)
    for path in ("integrated_gradients", "guided_ig"):
        res = attribkit.idgi(poly, x, path_method=path, steps=6)
        assert float(res.values[0, 2]) == 0.0
        torch.testing.assert_close(res.values.sum(), res.delta[0])


def test_a_score_cut_from_the_graph_is_refused():
    # no gradient anywhere (the comparison leaves the autograd graph), yet F jumps: like every
    # gradient method, IDGI refuses instead of sharing the rise by a rule of its own (issue 13)
    def step(z):
        return (z.sum(dim=1, keepdim=True) > 1.0).to(z.dtype)

    x = torch.tensor([[1.5, 0.5]], dtype=torch.float64)
    with pytest.raises(InputError, match="does not depend on the inputs"):
        attribkit.idgi(step, x, target=0, steps=4)


def test_refuses_other_paths_and_their_options(make_mlp, rng):
    x = torch.randn(1, 6, generator=rng, dtype=torch.float64)
    with pytest.raises(InputError, match="follows the path"):
        attribkit.idgi(make_mlp(), x, path_method="saliency")
    with pytest.raises(InputError, match="max_sigma"):
        attribkit.idgi(make_mlp(), x, path_method="ig", max_sigma=3.0)
