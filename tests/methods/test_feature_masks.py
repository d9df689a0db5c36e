"""feature_mask= on occlusion, prediction difference, Shapley, KernelSHAP and LIME.

Oracles: Captum's FeatureAblation, ShapleyValues and ShapleyValueSampling with the same mask
(float64), and a closed form for a model that is additive over the groups.
"""

from __future__ import annotations

import captum.attr as ca
import pytest
import torch
from torch import nn

import attribkit
from attribkit.core.errors import InputError


def _images(rng: torch.Generator, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=rng, dtype=torch.float64)


def _per_feature(players: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Each element gets its group's whole value (Captum's convention)."""
    return players.gather(1, ids.reshape(ids.shape[0], -1)).reshape(ids.shape)


@pytest.mark.parametrize("per_example", [False, True])
def test_occlusion_matches_captum_feature_ablation(make_cnn, rng, per_example):
    model = make_cnn(seed=1).double()
    x = _images(rng)
    b = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    if per_example:  # (N, 1, H, W): a different segmentation per image, over all channels
        mask = torch.stack([attribkit.masks.grid((1, 8, 8), 4),
                            attribkit.masks.grid((1, 8, 8), (2, 8))])
    else:  # one (1, H, W) grid shared by the batch
        mask = attribkit.masks.grid((1, 8, 8), 3)
    ours = attribkit.occlusion(model, x, target=4, baseline=b, feature_mask=mask)
    ref = ca.FeatureAblation(model).attribute(x, baselines=b, target=4,
                                              feature_mask=mask.expand_as(x).contiguous())
    torch.testing.assert_close(ours.values, ref, rtol=1e-10, atol=1e-12)
    assert ours.params["groups"] == int(mask.max()) + 1


def test_occlusion_mask_of_pixels_is_occlusion_1(make_cnn, rng):
    """A mask with one id per element is Occlusion-1 (the sliding window of one feature)."""
    model = make_cnn(seed=2).double()
    x = _images(rng, 1)
    mask = torch.arange(x[0].numel()).reshape(x.shape[1:])
    torch.testing.assert_close(attribkit.occlusion(model, x, target=0, feature_mask=mask).values,
                               attribkit.occlusion(model, x, target=0).values)


def test_non_contiguous_ids_are_renumbered(make_cnn, rng):
    model = make_cnn(seed=3).double()
    x = _images(rng)
    mask = attribkit.masks.grid((1, 8, 8), 4)
    sparse = torch.tensor([3, 10, 11, 40])[mask]  # the same 4 groups under other ids
    a = attribkit.occlusion(model, x, target=1, feature_mask=sparse)
    torch.testing.assert_close(a.values, attribkit.occlusion(model, x, target=1,
                                                             feature_mask=mask).values)
    assert a.extras["group_labels"].tolist() == [3, 10, 11, 40]
    s = attribkit.shapley_values(model, x, target=1, feature_mask=sparse)
    assert s.params["players"] == 4 and s.extras["players"].shape == (2, 4)


def test_shapley_matches_captum_shapley_values(make_cnn, rng):
    model = make_cnn(seed=4).double()
    x, b = _images(rng), torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    mask = torch.tensor([[0, 0, 1, 1], [2, 2, 3, 4]]).repeat_interleave(4, 0)  # 5 groups
    mask = mask.repeat_interleave(2, 1)[None]  # (1, 8, 8)
    ours = attribkit.shapley_values(model, x, target=2, baseline=b, feature_mask=mask,
                                    mode="exact")
    ref = ca.ShapleyValues(model).attribute(x, baselines=b, target=2,
                                            feature_mask=mask.expand_as(x).contiguous())
    ids = ours.extras["group_ids"]
    # Captum accumulates its Shapley values in float32
    torch.testing.assert_close(_per_feature(ours.extras["players"], ids), ref.double(),
                               rtol=1e-5, atol=1e-6)
    # our values split a player's value over its elements, so they sum to F(x) - F(b)
    torch.testing.assert_close(ours.values.sum((1, 2, 3)), ours.output - ours.baseline_output)


def test_shapley_sampling_agrees_with_captum_sampling(make_cnn, rng):
    """Both estimators with 300 permutations land on the exact values (Captum's ShapleyValues)
    within a few of our standard errors; Captum's sampling error is of the same size."""
    model = make_cnn(seed=5).double()
    x = _images(rng, 1)
    mask = attribkit.masks.grid((1, 8, 8), (4, 8)) * 2 + (attribkit.masks.grid((1, 8, 8), (8, 2))
                                                          >= 2)  # 4 groups
    full = mask.expand_as(x).contiguous()
    exact = ca.ShapleyValues(model).attribute(x, target=3, feature_mask=full).double()
    torch.manual_seed(0)
    sampled_ref = ca.ShapleyValueSampling(model).attribute(
        x, target=3, feature_mask=full, n_samples=300).double()
    ours = attribkit.shapley_values(model, x, target=3, feature_mask=mask, mode="sampling",
                                    n_samples=300, seed=0)
    ids = ours.extras["group_ids"]
    per_feature = _per_feature(ours.extras["players"], ids)
    tol = 5 * float(ours.extras["stderr"].max()) + 1e-9
    assert tol < 0.1 * float(exact.abs().max())  # the check is not vacuous
    assert float((per_feature - exact).abs().max()) <= tol
    assert float((sampled_ref - exact).abs().max()) <= 2 * tol


class _GroupAdditive(nn.Module):
    """``F(x) = sum_g h_g(x_g)``: per group, the product of its first two elements plus the
    square of its sum; no interaction between groups."""

    def __init__(self, ids: torch.Tensor, n: int) -> None:
        super().__init__()
        self.ids, self.n = ids.reshape(-1), n

    def terms(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        out = []
        for g in range(self.n):
            v = flat[:, self.ids == g]
            out.append(v[:, 0] * v[:, 1] + v.sum(1) ** 2)
        return torch.stack(out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.terms(x).sum(1)


@pytest.mark.parametrize("method", ["occlusion", "shapley_values", "kernel_shap", "lime"])
def test_additive_model_closed_form(rng, method):
    """Every group's attribution is ``h_g(x_g) - h_g(b_g)`` for a group-additive model."""
    mask = attribkit.masks.grid((2, 6), (2, 2))  # 3 groups of 4 elements
    model = _GroupAdditive(mask, 3)
    x = torch.randn(2, 2, 6, generator=rng, dtype=torch.float64)
    b = torch.randn(2, 2, 6, generator=rng, dtype=torch.float64)
    expected = model.terms(x) - model.terms(b)
    opts: dict[str, object] = {"surrogate": "ridge", "alpha": 0.0} if method == "lime" else {}
    a = attribkit.explain(model, x, method=method, baseline=b, feature_mask=mask, **opts)
    got = a.extras["group_drops"] if method == "occlusion" else a.extras["players"]
    torch.testing.assert_close(got, expected, rtol=1e-8, atol=1e-10)


def test_prediction_difference_closed_form(rng):
    mask = attribkit.masks.grid((2, 6), (2, 3))  # 2 groups
    model = _GroupAdditive(mask, 2)
    x = torch.randn(2, 2, 6, generator=rng, dtype=torch.float64)
    bg = torch.randn(5, 2, 6, generator=rng, dtype=torch.float64)
    a = attribkit.prediction_difference(model, x, background=bg, feature_mask=mask)
    expected = model.terms(x) - model.terms(bg).mean(0)
    torch.testing.assert_close(a.extras["group_drops"], expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(a.values[:, 1, 5], expected[:, 1])  # the group's whole drop


def test_negative_ids_are_never_occluded(make_mlp, rng):
    model = make_mlp(n_in=6, seed=6).double()
    x = torch.randn(3, 6, generator=rng, dtype=torch.float64)
    mask = torch.tensor([0, 0, -1, 1, 1, -1])
    a = attribkit.occlusion(model, x, target=0, feature_mask=mask)
    assert bool((a.values[:, [2, 5]] == 0).all())
    ref = ca.FeatureAblation(model).attribute(x, target=0, feature_mask=torch.tensor(
        [[0, 0, 2, 1, 1, 3]]))  # Captum has no "no group": give those two their own groups
    torch.testing.assert_close(a.values[:, [0, 1, 3, 4]], ref[:, [0, 1, 3, 4]])


def test_mask_errors_are_one_line(make_mlp):
    model = make_mlp(n_in=6, seed=7).double()
    x = torch.zeros(2, 6, dtype=torch.float64)
    bad = {
        "integer group ids": torch.zeros(6),
        "does not broadcast": torch.zeros(5, dtype=torch.long),
        "no groups": torch.full((6,), -1),
    }
    for words, mask in bad.items():
        with pytest.raises(InputError, match=words) as info:
            attribkit.occlusion(model, x, feature_mask=mask)
        assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="not both"):
        attribkit.occlusion(model, x, window=2, feature_mask=torch.zeros(6, dtype=torch.long))
    with pytest.raises(InputError, match="once"):
        attribkit.shapley_values(model, x, feature_mask=torch.zeros(6, dtype=torch.long),
                                 groups=torch.zeros(6, dtype=torch.long))
