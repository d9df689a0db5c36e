"""XRAI against PAIR ``saliency.core.XRAI`` given the same base attributions (and segments)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.methods.paths._pair import hwc, pair

import attribkit
from attribkit.core.errors import InputError
from attribkit.methods.paths._segments import _regions, felzenszwalb_masks


def _rectangles(seed: int, h: int, w: int, n: int = 25) -> list[np.ndarray]:
    """Random overlapping rectangles (several 'scales') as region masks."""
    r = np.random.default_rng(seed)
    masks = []
    for _ in range(n):
        y0, x0 = r.integers(0, h - 3), r.integers(0, w - 3)
        hh, ww = r.integers(3, h // 2 + 3), r.integers(3, w // 2 + 3)
        m = np.zeros((h, w), dtype=bool)
        m[y0:y0 + hh, x0:x0 + ww] = True
        masks.append(m)
    return masks


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("area", [1.0, 0.4])
def test_matches_pair_with_given_segments(make_cnn, rng, fast, area):
    model = make_cnn()
    x = torch.randn(2, 3, 24, 20, generator=rng, dtype=torch.float64)
    base = torch.randn(2, 3, 24, 20, generator=rng, dtype=torch.float64)
    segs = [_rectangles(e, 24, 20) for e in range(2)]
    ours = attribkit.xrai(model, x, base=base, segments=segs, fast=fast, area_threshold=area,
                          min_pixel_diff=5)
    for e in range(2):
        params = pair.XRAIParameters(algorithm="fast" if fast else "full", area_threshold=area,
                                     return_xrai_segments=True)
        params.experimental_params["min_pixel_diff"] = 5
        ref = pair.XRAI().GetMaskWithDetails(hwc(x[e]), None, base_attribution=hwc(base[e]),
                                             segments=segs[e], extra_parameters=params)
        np.testing.assert_allclose(ours.values[e, 0].numpy(), ref.attribution_mask,
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(ours.extras["ranks"][e].numpy(), ref.segments)


def test_matches_pair_with_its_own_felzenszwalb_segments(make_cnn, rng):
    model = make_cnn()
    x = torch.rand(1, 3, 32, 32, generator=rng, dtype=torch.float64)
    x[:, 0, :16] += 1.0  # two halves of different colour
    x[:, 2, :, 20:] -= 0.8
    base = torch.randn(1, 3, 32, 32, generator=rng, dtype=torch.float64)
    ours = attribkit.explain(model, x, "xrai", base=base)
    ref = pair.XRAI().GetMaskWithDetails(
        hwc(x[0]), None, base_attribution=hwc(base[0]),
        extra_parameters=pair.XRAIParameters(return_xrai_segments=True))
    np.testing.assert_allclose(ours.values[0, 0].numpy(), ref.attribution_mask, rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_array_equal(ours.extras["ranks"][0].numpy(), ref.segments)
    assert len(np.unique(ref.segments)) > 2  # several regions, not one


def test_regions_cover_the_image_and_ranks_follow_the_values(make_cnn, rng):
    model = make_cnn()
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    whole = np.ones((8, 8), dtype=bool)  # so that every pixel is reached by a region
    res = attribkit.xrai(model, x, target=3, base_options={"steps": 8},
                         segments=[[*_rectangles(3, 8, 8, 12), whole]], min_pixel_diff=1)
    v, r = res.values[0, 0], res.extras["ranks"][0]
    assert int(r.min()) == 1 and torch.isfinite(v).all()
    # a region ranked earlier never has a lower value than one ranked later
    means = [float(v[r == k].mean()) for k in range(1, int(r.max()) + 1) if (r == k).any()]
    assert means == sorted(means, reverse=True)
    # the default base is IG averaged over a black and a white image (the input's extremes)
    lo, hi = float(x.min()), float(x.max())
    ig = [attribkit.integrated_gradients(model, x, target=3, baseline=v0, steps=8).values
          for v0 in (lo, hi)]
    torch.testing.assert_close(res.extras["base"], 0.5 * (ig[0] + ig[1]))


def test_no_region_crosses_a_colour_edge():
    im = np.zeros((40, 40, 3))
    im[:, 20:] = 1.0
    masks = [m for m in felzenszwalb_masks(im, dilation=0, resize=False) if m.any()]
    assert len(masks) >= 2 * 6  # both halves at each of the six scales
    assert not any(m[:, :20].any() and m[:, 20:].any() for m in masks)
    # dilation grows each region by the disk's radius across the edge
    grown = [m for m in felzenszwalb_masks(im, dilation=2, resize=False) if m.any()]
    assert all(m[:, 18:22].any() for m in grown)


def test_refuses_non_images_and_mismatched_segments(make_mlp, make_cnn, rng):
    with pytest.raises(InputError, match=r"\(N, C, H, W\)"):
        attribkit.xrai(make_mlp(), torch.randn(2, 6, dtype=torch.float64))
    x = torch.randn(2, 3, 8, 8, generator=rng, dtype=torch.float64)
    with pytest.raises(InputError, match="one list of masks per example"):
        attribkit.xrai(make_cnn(), x, base=x, segments=[_rectangles(0, 8, 8)])
    with pytest.raises(InputError, match="own base"):
        attribkit.xrai(make_cnn(), x, base="xrai")


def test_region_dilation_equals_skimage_per_mask():
    from skimage.morphology import dilation, disk

    labels = np.random.default_rng(4).integers(2, 9, size=(23, 31))
    labels[5:15, 7:20] = 11  # a large region; labels 9 and 10 are absent (empty masks)
    ours = _regions(labels, disk(3))
    assert len(ours) == 11 - 2 + 1
    for k, got in enumerate(ours):
        ref = dilation(labels == 2 + k, footprint=disk(3))
        np.testing.assert_array_equal(got, ref)
