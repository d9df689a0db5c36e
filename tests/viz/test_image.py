"""Image heat maps, overlays and the seed's intensity scaling."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

from attribkit import viz
from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError


def _square_attr() -> torch.Tensor:
    """(1, 3, 20, 20): positive square at rows 2..6, cols 3..7; negative square at 12..16."""
    a = torch.zeros(1, 3, 20, 20, dtype=torch.float64)
    a[0, :, 2:7, 3:8] = 1.0
    a[0, :, 12:17, 12:17] = -2.0
    return a


def test_pixel_importance_is_eq1() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    expected = np.abs(a[1].numpy()).sum(axis=0)  # independent: sum_c |A_c|
    np.testing.assert_allclose(viz.pixel_importance(a, index=1), expected, rtol=0, atol=1e-12)
    attr = Attribution(values=a, inputs=a, method="x")
    np.testing.assert_allclose(viz.pixel_importance(attr, index=1), expected, atol=1e-12)


@pytest.mark.parametrize("sign", ["positive", "negative", "absolute", "all"])
def test_heatmap_shape_dtype(sign: str) -> None:
    h = viz.heatmap(_square_attr(), sign=sign)
    assert h.shape == (20, 20, 3) and h.dtype == np.uint8


def test_sign_handling_puts_mass_in_the_right_square() -> None:
    a = _square_attr()
    pos = viz.attribution_map(a, sign="positive", percentile=100)
    neg = viz.attribution_map(a, sign="negative", percentile=100)
    both = viz.attribution_map(a, sign="all", percentile=100)
    assert pos[2:7, 3:8].min() == 1.0 and pos[12:17, 12:17].max() == 0.0
    assert neg[12:17, 12:17].min() == 1.0 and neg[2:7, 3:8].max() == 0.0
    # signed channel sums: +3 and -6; scaled by the max magnitude 6
    assert both[4, 4] == pytest.approx(0.5) and both[14, 14] == pytest.approx(-1.0)
    assert both[0, 0] == 0.0


def test_diverging_map_red_positive_blue_negative_white_zero() -> None:
    h = viz.heatmap(_square_attr(), sign="all", percentile=100).astype(int)
    r, _g, b = h[14, 14]  # most negative: blue
    assert b > r + 60
    r, _g, b = h[4, 4]  # positive: red
    assert r > b + 30
    assert h[0, 0].min() > 230  # zero: near white


def test_percentile_clipping_saturates_outliers() -> None:
    m = np.zeros((10, 10))
    m[0, 0] = 1000.0
    m[1:, :] = np.linspace(0, 1, 90).reshape(9, 10)
    clipped = viz.normalize(m, percentile=95)
    unclipped = viz.normalize(m, percentile=100)
    assert clipped.max() == 1.0 and unclipped.max() == 1.0
    assert clipped[5, 5] > 10 * unclipped[5, 5]  # the outlier no longer squashes the rest
    with pytest.raises(InputError):
        viz.normalize(m, percentile=0)


def test_scale_intensity_brightens_important_pixels_only() -> None:
    img = np.full((20, 20, 3), 200, dtype=np.uint8)
    out = viz.scale_intensity(img, _square_attr(), sign="positive", percentile=100)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    assert (out[2:7, 3:8] == 200).all()
    assert (out[12:17, 12:17] == 0).all() and (out[0, 0] == 0).all()


def test_overlay_keeps_grey_where_nothing_and_colours_where_attribution() -> None:
    img = np.zeros((20, 20, 3), dtype=np.uint8)
    img[..., 0] = 90
    img[..., 1] = 120
    img[..., 2] = 150
    out = viz.overlay(img, _square_attr(), sign="positive", percentile=100).astype(int)
    assert (out[0, 0] == 120).all()  # grey of (90, 120, 150)
    assert out[4, 4, 0] > out[4, 4, 2] + 30  # red-ish where positive


def test_zero_attribution_gives_black_intensity_image() -> None:
    img = np.full((4, 4, 3), 255, dtype=np.uint8)
    out = viz.scale_intensity(img, np.zeros((3, 4, 4)))
    assert (out == 0).all()


def test_bad_inputs_are_clear() -> None:
    with pytest.raises(InputError, match="sign"):
        viz.heatmap(_square_attr(), sign="up")
    with pytest.raises(InputError, match="shape"):
        viz.heatmap(np.zeros(5))
    multi = Attribution(values=torch.zeros(1, 2, 3, 4, 4), inputs=torch.zeros(1, 3, 4, 4),
                        method="x")
    with pytest.raises(InputError, match="for_target"):
        viz.heatmap(multi)


def test_image_array_accepts_tensors_in_unit_range() -> None:
    t = torch.zeros(1, 3, 4, 5)
    t[0, 0] = 1.0
    a = viz.image_array(t)
    assert a.shape == (4, 5, 3) and a[0, 0].tolist() == [255, 0, 0]


def test_png_round_trip_keeps_the_hot_spot(tmp_path: pathlib.Path) -> None:
    from PIL import Image

    a = torch.zeros(1, 3, 32, 48, dtype=torch.float64)
    a[0, 1, 20:26, 30:40] = 5.0  # positive evidence in one rectangle
    path = tmp_path / "h.png"
    viz.to_pil(viz.heatmap(a, sign="positive")).save(path)
    back = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert back.shape == (32, 48, 3) and back.min() >= 0 and back.max() <= 255
    darkness = 765 - back.sum(axis=2)  # "Reds": zero is near white, strong is dark red
    ys, xs = np.nonzero(darkness > darkness.max() / 2)
    assert ys.min() == 20 and ys.max() == 25 and xs.min() == 30 and xs.max() == 39
