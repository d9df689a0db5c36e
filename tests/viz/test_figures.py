"""Figures: interior strip and GIF, curves, comparison grid, tabular bars, molecules."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from attribkit import viz
from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.methods.integrated import InteriorGradients


def _png_shape(fig: object) -> tuple[int, int, int]:
    data = viz.figure_to_png(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).shape  # type: ignore[return-value]


def _interior(a: int = 4) -> InteriorGradients:
    alphas = torch.linspace(0.25, 1.0, a, dtype=torch.float64)
    grads = torch.zeros(1, a, 3, 8, 8, dtype=torch.float64)
    for k in range(a):
        grads[0, k, :, k:k + 2, k:k + 2] = 1.0 / (k + 1)  # moving hot spot, shrinking
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return InteriorGradients(alphas=alphas, gradients=grads, scores=alphas[None] ** 0.5,
                             inputs=x, baselines=torch.zeros_like(x))


def test_interior_frames_follow_each_alpha() -> None:
    it = _interior()
    img = np.full((8, 8, 3), 100, dtype=np.uint8)
    frames = viz.interior_frames(img, it, percentile=100)
    assert len(frames) == 4
    for k, f in enumerate(frames):
        assert (f[k, k] == 100).all() and f[7 - (k == 3), 0].max() == 0
    common = viz.interior_frames(img, it, percentile=100, common_scale=True)
    assert common[0][0, 0, 0] == 100 and common[3][3, 3, 0] == 25  # 1/4 of the largest


def test_interior_gif_has_one_frame_per_alpha(tmp_path: object) -> None:
    it = _interior(5)
    img = np.full((8, 8, 3), 200, dtype=np.uint8)
    data = viz.interior_gif(img, it, duration_ms=100)
    assert data[:6] == b"GIF89a"
    gif = Image.open(io.BytesIO(data))
    assert gif.n_frames == 5 and gif.size == (8, 8)


def test_interior_strip_renders() -> None:
    h, w, c = _png_shape(viz.interior_strip(np.zeros((8, 8, 3), np.uint8), _interior(),
                                            title="<t>"))
    assert c == 3 and w > 2 * h


def test_curves_render_and_validate() -> None:
    fig = viz.saturation_curves(np.linspace(0, 1, 5), np.random.default_rng(0).random((3, 5)),
                                labels=["a", "b", "c"])
    assert _png_shape(fig)[2] == 3
    fig2 = viz.evaluation_curves({"ig": np.ones((2, 4)), "grad": np.arange(4.0)})
    ax = fig2.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["ig", "grad"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [0, 1, 2, 3])
    with pytest.raises(InputError):
        viz.saturation_curves(np.linspace(0, 1, 5), np.ones((3, 4)))
    with pytest.raises(InputError):
        viz.evaluation_curves({})


def test_comparison_grid_titles_carry_the_gap() -> None:
    x = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    vals = torch.ones_like(x)
    attr = Attribution(values=vals, inputs=x, method="m", output=torch.tensor([110.0, 100.0]),
                       baseline_output=torch.tensor([0.0, 0.0]))  # sums 108: gaps -2 and +8
    fig = viz.comparison_grid([x[0], x[1]], {"m": attr, "raw": vals.numpy()}, labels=["a", "b"])
    maps = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(maps) == 6 and len(fig.axes) == 6 + 4  # a colour bar beside each map
    titles = [ax.get_title() for ax in maps]
    assert titles[0] == "a" and "gap -2" in titles[1] and "gap +8" in titles[4]
    assert titles[2] == "raw"
    for style in ("heatmap", "overlay"):
        viz.comparison_grid([x[0]], {"m": attr}, style=style)
    with pytest.raises(InputError):
        viz.comparison_grid([x[0]], {"m": attr}, style="nope")


def test_feature_bars_order_and_colours() -> None:
    fig = viz.feature_bars(["a", "b", "c"], [0.1, -0.5, 0.3], top=2)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["c", "b"]  # largest magnitude on top (last drawn)
    widths = [p.get_width() for p in ax.patches]
    assert widths == [0.3, -0.5]
    with pytest.raises(InputError):
        viz.feature_bars(["a"], [1.0, 2.0])


def test_molecule_image_colours_atoms() -> None:
    pytest.importorskip("rdkit")
    img = viz.molecule_image("CCO", [1.0, 0.0, -1.0], bond_scores=[0.5, -0.5])
    a = np.asarray(img)
    assert a.shape[2] == 3 and a.shape[0] > 100
    reddish = (a[..., 0] > 200) & (a[..., 1] < 150) & (a[..., 2] < 150)
    bluish = (a[..., 2] > 200) & (a[..., 0] < 150) & (a[..., 1] < 150)
    assert reddish.sum() > 50 and bluish.sum() > 50
    with pytest.raises(InputError):
        viz.molecule_image("CCO", [1.0])
    with pytest.raises(InputError):
        viz.molecule_image("not a smiles((", [1.0])


def test_comparison_grid_wraps_many_methods_for_one_input() -> None:
    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    attrs = {f"m{k}": torch.rand(1, 3, 4, 4, dtype=torch.float64) for k in range(8)}
    fig = viz.comparison_grid([x[0]], attrs, max_columns=4)
    maps = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert len(maps) == 9
    rows = {ax.get_subplotspec().rowspan.start for ax in maps}  # type: ignore[union-attr]
    assert rows == {0, 1, 2}
