"""The localisation experiment (seed 003, section 2.5): its scoring on a model whose answer is
known in closed form, the bootstrap interval, and the labelled set's boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attribkit.experiments._stats import bootstrap_ci
from attribkit.experiments.localisation import LocRow, box_figure, score_boxes, summary
from attribkit.zoo import digits, photo_boxes


class _BoxNet(torch.nn.Module):
    """Two logits: ``(sum of the box's pixels) + 0.5 (sum of the others)`` and ``0``."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.w = (mask.to(torch.float64) + 0.5 * (~mask).to(torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x * self.w).sum(dim=(1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], dim=1).softmax(dim=1)


def test_scores_match_the_closed_form() -> None:
    # 6 x 6 images, box = top-left 3 x 2 (6 of 36 positions), pixels outside the box equal the
    # baseline 0: IG is exactly 0 there; the gradient is p(1-p) inside and p(1-p)/2 outside.
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[0:3, 0:2] = True
    x = torch.zeros(2, 3, 6, 6, dtype=torch.float64)
    x[0, :, 0:3, 0:2] = 0.2
    x[1, :, 0:3, 0:2] = torch.linspace(0.1, 0.3, 6, dtype=torch.float64).reshape(3, 2)
    model = _BoxNet(mask)
    masks = mask.expand(2, 6, 6)
    maps: dict[str, torch.Tensor] = {}
    rows = score_boxes(model, x, masks, torch.tensor([0, 0]), baseline_value=0.0,
                       names=["a", "b"], steps=16, batch_size=None, maps=maps)
    # the maps handed back are the ones scored: IG is 0 off the box, the gradient is not
    assert maps["ig"].shape == maps["gradient"].shape == x.shape
    assert float(maps["ig"][:, :, ~mask].abs().max()) == 0.0
    assert float(maps["gradient"][:, :, ~mask].abs().min()) > 0.0
    fig = box_figure(x, masks, maps["ig"], maps["gradient"], ["a", "b"])
    assert len(fig.axes) == 6
    grad_share = 6 * 1.0 / (6 * 1.0 + 30 * 0.5)
    for r, xi in zip(rows, x, strict=True):
        s = float(xi.sum())
        assert r.p == pytest.approx(1 / (1 + math.exp(-s)), abs=1e-12)
        assert r.p_ablated == pytest.approx(0.5, abs=1e-12)  # box black: logit 0
        assert r.area == pytest.approx(6 / 36)
        assert r.ig == pytest.approx(1.0, abs=1e-12)
        assert r.grad == pytest.approx(grad_share, abs=1e-12)
        assert r.diff == pytest.approx(1 - grad_share, abs=1e-12)
        assert r.small and not r.drops  # 0.5 is not at most half of p < 1
        assert not r.eligible


def _row(name: str, ig: float, grad: float, *, area: float = 0.3, p_abl: float = 0.1) -> LocRow:
    return LocRow(name=name, cls=0, p=0.8, p_ablated=p_abl, area=area, ig=ig, grad=grad)


def test_summary_counts_only_images_meeting_both_conditions() -> None:
    rows = [_row("a", 0.7, 0.5), _row("b", 0.4, 0.6), _row("c", 0.9, 0.2),
            _row("too big", 0.9, 0.0, area=0.7), _row("no drop", 0.9, 0.0, p_abl=0.5)]
    s = summary(rows)
    assert s["n"] == 3 and s["ig_wins"] == 2 and s["ties"] == 0
    assert s["mean_diff_pp"] == pytest.approx((20 - 20 + 70) / 3)
    assert s["ig"] == pytest.approx((0.7 + 0.4 + 0.9) / 3)
    assert summary(rows, eligible_only=False)["n"] == 5
    assert summary(rows[3:]) == {"n": 0}


def test_bootstrap_of_two_values_spans_them() -> None:
    # Resampled means of {a, b} are a, (a+b)/2, b with probabilities 1/4, 1/2, 1/4, so the
    # 2.5 % and 97.5 % quantiles are a and b.
    mean, low, high = bootstrap_ci([1.0, 3.0], n_boot=4000, seed=1)
    assert (mean, low, high) == (2.0, 1.0, 3.0)
    assert bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0, 5.0)


def test_bootstrap_agrees_with_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    v = np.random.default_rng(3).normal(size=40)
    _, low, high = bootstrap_ci(v, n_boot=5000, seed=0)
    ref = scipy_stats.bootstrap((v,), np.mean, n_resamples=5000, method="percentile",
                                random_state=0).confidence_interval
    assert low == pytest.approx(ref.low, abs=0.03)
    assert high == pytest.approx(ref.high, abs=0.03)
    assert bootstrap_ci(v, seed=0) == bootstrap_ci(v, seed=0)


@pytest.mark.parametrize("shape", [(300, 451), (512, 512), (427, 640), (640, 427)])
def test_boxes_follow_cut_mirror_and_resize_exactly(shape: tuple[int, int]) -> None:
    from attribkit.zoo import vision

    h, w = shape
    box = (h // 5, w // 3, h // 5 + h // 3, w // 3 + w // 4)
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[box[0]:box[2], box[1]:box[3]] = 255
    for v in photo_boxes.variants_of(h, w):
        boxes, kept = photo_boxes.variant_boxes([box], (h, w), v)
        crop = vision.center_crop(photo_boxes.variant_image(img, v))
        bright = crop[:, :, 0] > 127
        if not bright.any():
            assert boxes == () or kept == 0
            continue
        rows, cols = np.nonzero(bright)
        want = (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1)
        assert len(boxes) == 1, v
        assert np.abs(np.array(boxes[0]) - np.array(want)).max() <= 1, (v, boxes, want)


def test_drawn_boxes_lie_inside_their_photos() -> None:
    from attribkit.zoo import vision

    objs = photo_boxes.photo_objects()
    assert {o.photo for o in objs} == set(vision.PHOTOS)
    for o in objs:
        h, w = vision.load_photo(o.photo).shape[:2]
        assert o.classes and all(0 <= c < 1000 for c in o.classes)
        for t, left, b, r in o.boxes:
            assert 0 <= t < b <= h and 0 <= left < r <= w, (o.photo, (t, left, b, r))


def test_ink_boxes_hold_all_the_ink() -> None:
    a = np.zeros((5, 7))
    a[1, 2] = a[3, 5] = 0.3
    assert digits.ink_box(a) == (1, 2, 4, 6)
    x, y, boxes = digits.mnist_digits(3)
    assert x.shape == (30, 1, 28, 28) and sorted(set(y.tolist())) == list(range(10))
    for xi, (t, left, b, r) in zip(x, boxes, strict=True):
        ink = xi[0] > digits.BLACK + 1e-6
        outside = ink.clone()
        outside[t:b, left:r] = False
        assert not outside.any() and ink[t:b, left:r].any()
