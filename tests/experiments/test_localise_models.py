"""The localisation and AOPC experiments on the real models (slow: EfficientNet-Lite0, the MNIST
CNN), within the demo's budget."""

from __future__ import annotations

import pytest
import torch

from attribkit.experiments import experiments
from attribkit.experiments.localisation import digit_rows, photo_rows


@pytest.mark.slow
def test_digits_ig_lies_inside_the_ink_box_by_construction() -> None:
    rows = digit_rows(per_class=2, steps=8)
    assert len(rows) == 20
    for r in rows:
        # outside the ink box the pixels equal the black baseline, so IG is exactly 0 there
        assert r.ig == pytest.approx(1.0, abs=1e-12)
        assert 0 < r.grad < 1 and r.small
        assert r.p > 0.9


@pytest.mark.slow
def test_coffee_cup_box_is_counted_and_ig_concentrates_in_it() -> None:
    from attribkit.zoo import vision

    model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
    rows, _, _, masks = photo_rows(model, photos=["coffee"], variants=["full"], steps=8)
    (r,) = rows
    assert r.cls == 967 and r.p > 0.9  # espresso
    assert r.eligible  # the cup is under 2/3 of the image and blacking it out drops p below 0.1
    assert r.p_ablated < 0.1
    assert r.ig > r.area  # more of IG's mass in the box than a uniform map would put there
    assert float(masks[0].to(torch.float64).mean()) == pytest.approx(r.area)


def test_experiments_are_registered_for_the_vision_demo() -> None:
    names = experiments("vision")
    assert {"localisation", "aopc_photos"} <= set(names)
