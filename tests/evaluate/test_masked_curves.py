"""Deletion, insertion and AOPC with a feature mask, against a hand-written loop.

Whole groups are removed (or revealed) together, ranked by the group's summed attribution
(signed, or of absolute values); elements with a negative id are never touched: they keep the
input's value in deletion and in insertion.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attribkit
from attribkit.evaluate import ablation_curve, deletion_curve, insertion_curve


def _tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 6), nn.Tanh(),
                         nn.Linear(6, 3)).double()


def _hand_curve(model, x, b, attr, mask, counts, target, insert, sign):
    """The definition, one example and one step at a time."""
    out = torch.zeros(x.shape[0], len(counts), dtype=torch.float64)
    for i in range(x.shape[0]):
        m = mask[i].expand_as(x[i])
        a = attr[i].abs() if sign == "absolute" else attr[i]
        ids = sorted({int(v) for v in m.unique() if v >= 0})
        score = {g: float(a[m == g].sum()) for g in ids}
        order = sorted(ids, key=lambda g: -score[g])  # stable: ties keep the id order
        for s, c in enumerate(counts):
            hit = (m < 0) if insert else torch.zeros_like(m, dtype=torch.bool)
            for g in order[:c]:
                hit |= m == g
            z = torch.where(hit, x[i], b[i]) if insert else torch.where(hit, b[i], x[i])
            with torch.no_grad():
                out[i, s] = model(z[None])[0, target]
    return out


@pytest.mark.parametrize("sign", ["all", "absolute"])
def test_curves_with_a_mask_match_the_hand_loop(sign):
    g = torch.Generator().manual_seed(0)
    model = _tiny()
    x = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64)
    b = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64) * 0.1
    attr = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64)
    # one segmentation per image (N, 1, H, W), non-contiguous ids, some pixels in no group
    mask = torch.stack([attribkit.masks.grid((1, 4, 4), 2) * 3,
                        attribkit.masks.grid((1, 4, 4), (4, 1)) + 11])
    mask[0, 0, 0, 0] = -1
    opts = {"target": 1, "baseline": b, "feature_mask": mask, "sign": sign}
    dele = deletion_curve(model, x, attr, steps=4, **opts)
    n_groups = 8  # 4 cells (image 0) and 4 columns (image 1) under 8 distinct ids
    assert dele.counts.tolist() == [0, 2, 4, 6, 8]
    torch.testing.assert_close(dele.scores, _hand_curve(model, x, b, attr, mask, [
        0, 2, 4, 6, 8], 1, False, sign))
    ins = insertion_curve(model, x, attr, steps=n_groups, **opts)
    torch.testing.assert_close(ins.scores, _hand_curve(model, x, b, attr, mask, list(
        range(n_groups + 1)), 1, True, sign))
    abl = ablation_curve(model, x, attr, k=1, steps=3, **opts)
    torch.testing.assert_close(abl.scores, _hand_curve(model, x, b, attr, mask, [0, 1, 2, 3],
                                                       1, False, sign))
    assert abl.aopc == pytest.approx(attribkit.evaluate.aopc(model, x, attr, k=1, steps=3,
                                                             **opts))
    # the pixel in no group keeps the input's value even with every group removed
    full = deletion_curve(model, x, attr, steps=1, **opts).scores[:, -1]
    z = b.clone()
    z[0, :, 0, 0] = x[0, :, 0, 0]
    z[1] = b[1]
    with torch.no_grad():
        torch.testing.assert_close(full, model(z)[:, 1])
    # ... and insertion starts from the baseline with that pixel at the input's value, not
    # at the baseline's (it is never inserted because it is never removed)
    start = insertion_curve(model, x, attr, steps=1, **opts).scores[:, 0]
    with torch.no_grad():
        torch.testing.assert_close(start, model(z)[:, 1])
        assert float((start[0] - model(b)[0, 1]).abs()) > 1e-6


def test_feature_mask_is_groups():
    model = _tiny(1)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    attr = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    mask = attribkit.masks.grid((4, 4), 2)  # (H, W): broadcast over the batch and channels
    a = deletion_curve(model, x, attr, steps=4, feature_mask=mask, target=0)
    b = deletion_curve(model, x, attr, steps=4, groups=mask, target=0)
    torch.testing.assert_close(a.scores, b.scores)
    with pytest.raises(attribkit.InputError, match="does not broadcast"):
        deletion_curve(model, x, attr, feature_mask=torch.zeros(3, 3, dtype=torch.long))


def test_region_perturbation_with_a_grid_mask_is_the_square_regions():
    """A grid mask of the patch size gives the square regions that are tested against Quantus;
    a per-image mask matches the hand loop's drops."""
    g = torch.Generator().manual_seed(1)
    model = _tiny(2)
    x = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64)
    attr = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64)
    ev = attribkit.evaluate
    square = ev.region_perturbation(model, x, attr, target=2, patch_size=2, regions_evaluation=3)
    masked = ev.region_perturbation(model, x, attr, target=2, regions_evaluation=3,
                                    feature_mask=attribkit.masks.grid((1, 4, 4), 2))
    torch.testing.assert_close(masked.curve, square.curve)
    mask = torch.stack([attribkit.masks.grid((1, 4, 4), (4, 1)), attribkit.masks.grid((1, 4, 4),
                                                                                      (1, 4))])
    got = ev.region_perturbation(model, x, attr, target=2, regions_evaluation=4,
                                 feature_mask=mask)
    zero = torch.zeros_like(x)
    hand = _hand_curve(model, x, zero, attr, mask, [0, 1, 2, 3, 4], 2, False, "all")
    torch.testing.assert_close(got.curve, hand[:, :1] - hand[:, 1:])
