"""Perturbation curves against hand computations on linear models, and on a model that reads one
image region (where the right answer is known by construction)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import attribkit
from attribkit.core.errors import InputError
from attribkit.evaluate import ablation_curve, aopc, deletion_curve, feature_groups, insertion_curve


class RegionModel(nn.Module):
    """Reads only the top-left 4 x 4 pixels of (N, 3, 8, 8) images: sum tanh(w * x)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.rand(3, 4, 4, generator=g, dtype=torch.float64) + 0.5)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.w * x[:, :, :4, :4]).flatten(1).sum(dim=1)


def _linear(w: Tensor) -> nn.Module:
    lin = nn.Linear(w.numel(), 1, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(w[None])
    return nn.Sequential(lin, nn.Flatten(0))


def test_ablation_scores_match_a_hand_computation() -> None:
    w = torch.tensor([1.0, -2.0, 0.5, 3.0, -0.1, 0.7], dtype=torch.float64)
    x = torch.tensor([[1.0, 1.0, -2.0, 0.5, 4.0, 1.0]], dtype=torch.float64)
    a = w * x  # exact attribution of a linear model with a zero baseline
    curve = ablation_curve(_linear(w), x, a[0:1], k=2, steps=3)
    order = a[0].abs().argsort(descending=True)
    expected = [float((w * x[0]).sum())]
    kept = x[0].clone()
    for s in range(3):
        kept[order[2 * s: 2 * s + 2]] = 0.0
        expected.append(float((w * kept).sum()))
    assert curve.scores[0].tolist() == pytest.approx(expected, abs=1e-12)
    drops = [expected[0] - e for e in expected]
    # AOPC after step k: the mean drop over steps 0..k (seed 003)
    assert curve.aopc_curve.tolist() == pytest.approx(
        [sum(drops[: i + 1]) / (i + 1) for i in range(4)], abs=1e-12)
    assert curve.counts.tolist() == [0, 2, 4, 6]


def test_groups_are_ablated_together() -> None:
    x = torch.rand(1, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    patches = torch.arange(16).reshape(4, 4) // 2 % 2 + 2 * (torch.arange(16).reshape(4, 4) // 8)
    gid = feature_groups(x, patches)
    assert gid.shape == (1, 32) and int(gid.max()) == 3
    values = torch.zeros_like(x)
    values[:, :, 2:, 2:] = 1.0  # the bottom-right patch matters most
    model = nn.Sequential(nn.Flatten(), nn.Linear(32, 1, bias=False).double(), nn.Flatten(0))
    with torch.no_grad():
        model[1].weight.fill_(1.0)
    curve = ablation_curve(model, x, values, k=1, steps=1, groups=patches)
    assert float(curve.drops[0, 1]) == pytest.approx(float(x[:, :, 2:, 2:].sum()), abs=1e-12)


def test_pixels_ablate_all_channels() -> None:
    x = torch.ones(1, 3, 2, 2, dtype=torch.float64)
    values = torch.zeros_like(x)
    values[0, 1, 0, 1] = 5.0
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False).double(), nn.Flatten(0))
    with torch.no_grad():
        model[1].weight.fill_(1.0)
    curve = ablation_curve(model, x, values, k=1, steps=1)
    assert float(curve.drops[0, 1]) == pytest.approx(3.0)  # one pixel = 3 channel values


def test_aopc_of_ig_beats_random_on_a_region_model() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 8, 8, dtype=torch.float64, generator=g) + 0.2
    model = RegionModel()
    ig = attribkit.integrated_gradients(model, x, steps=32)
    random = torch.rand(x.shape, dtype=torch.float64, generator=g)
    a_ig = aopc(model, x, ig, k=2, steps=8)
    a_rand = aopc(model, x, random, k=2, steps=8)
    assert a_ig > 2 * a_rand > 0


def test_deletion_and_insertion_rank_a_faithful_order_first() -> None:
    w = torch.tensor([3.0, 2.0, 1.0, 0.5, 0.25, 0.1], dtype=torch.float64)
    x = torch.ones(2, 6, dtype=torch.float64)
    model = _linear(w)
    good, bad = w.expand(2, 6), w.flip(0).expand(2, 6)
    assert deletion_curve(model, x, good, steps=6).area < deletion_curve(model, x, bad,
                                                                          steps=6).area
    ins_good = insertion_curve(model, x, good, steps=6)
    assert ins_good.area > insertion_curve(model, x, bad, steps=6).area
    # insertion of the full order ends at F(x); at the start the input is the baseline (F = 0)
    assert ins_good.scores[:, 0].tolist() == [0.0, 0.0]
    assert ins_good.scores[:, -1].tolist() == pytest.approx([6.85, 6.85])
    # area: trapezoid of the scores against the fraction, by hand
    s = ins_good.scores[0]
    assert ins_good.area == pytest.approx(float(((s[1:] + s[:-1]) / 2).sum() / 6))


def test_progress_and_batching_give_the_same_curve() -> None:
    model = RegionModel()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    a = attribkit.integrated_gradients(model, x, steps=8)
    c1 = ablation_curve(model, x, a, k=4, steps=5, batch_size=3, progress=True)
    c2 = ablation_curve(model, x, a, k=4, steps=5, batch_size=64)
    assert torch.allclose(c1.scores, c2.scores)


def test_wrong_shapes_are_refused() -> None:
    model = RegionModel()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(InputError, match="do not match"):
        ablation_curve(model, x, torch.zeros(1, 3, 4, 4), k=1, steps=1)
    with pytest.raises(InputError, match="broadcast"):
        ablation_curve(model, x, torch.zeros_like(x), groups=torch.zeros(5, 5, dtype=torch.long))


def test_token_groups_remove_whole_embeddings() -> None:
    # (N, L, D) embeddings; groups (L, 1): one group per token, all its dimensions together
    x = torch.ones(1, 4, 3, dtype=torch.float64)
    values = torch.zeros_like(x)
    values[0, 2] = 1.0  # token 2 matters most
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False).double(), nn.Flatten(0))
    with torch.no_grad():
        model[1].weight.copy_(torch.arange(12, dtype=torch.float64)[None])
    curve = ablation_curve(model, x, values, k=1, steps=1,
                           groups=torch.arange(4)[:, None])
    assert float(curve.drops[0, 1]) == pytest.approx(6.0 + 7.0 + 8.0)


def test_sign_decides_the_order_and_absolute_is_deprecated() -> None:
    # F = w . x with distinct weights, so the scores show which feature went first
    w = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    x = torch.ones(1, 4, dtype=torch.float64)
    model = _linear(w)
    a = torch.tensor([[-5.0, 3.0, 2.0, 1.0]], dtype=torch.float64)
    expected = {"absolute": [10.0, 9.0, 7.0, 4.0, 0.0],  # |a| order: 0, 1, 2, 3
                "all": [10.0, 8.0, 5.0, 1.0, 0.0],       # signed order: 1, 2, 3, then 0
                "positive": [10.0, 8.0, 5.0, 1.0, 0.0],  # clamp(a, 0): feature 0 ranks last
                "negative": [10.0, 9.0, 7.0, 4.0, 0.0]}  # only feature 0; ties keep id order
    for sign, scores in expected.items():
        assert deletion_curve(model, x, a, steps=4, sign=sign).scores[0].tolist() == scores
    with pytest.warns(DeprecationWarning, match="sign='all'"):
        old = deletion_curve(model, x, a, steps=4, absolute=False)
    assert old.scores[0].tolist() == expected["all"]
    with pytest.raises(attribkit.InputError, match="sign must be one of"):
        ablation_curve(model, x, a, sign="signed")
