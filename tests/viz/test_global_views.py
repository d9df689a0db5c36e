"""Global views of a batch: beeswarm, mean |a| bars, dependence; regions and tokens as features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attribkit import viz
from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError


def _bars(fig: Figure) -> list[object]:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _batch(n: int = 40, f: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, f))
    a = x * np.arange(1, f + 1)  # feature j's attribution grows with its value, weight j+1
    return a, x


def test_summary_plot_rows_points_and_colour_bar() -> None:
    a, x = _batch()
    a[3, 1] = np.nan  # a missing entry is left out
    fig = viz.summary_plot(a, x, [f"f{j}" for j in range(5)], top=3)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["f2", "f3", "f4"]  # top on top
    counts = [len(c.get_offsets()) for c in ax.collections]
    assert counts == [40, 40, 40]
    (bar,) = _bars(fig)
    assert bar.get_ylabel() == "feature value"  # type: ignore[attr-defined]
    # the dots sit at the attributions (x) of their feature, in the order drawn
    np.testing.assert_allclose(np.sort(ax.collections[-1].get_offsets()[:, 0]), np.sort(a[:, 4]))
    w, h = fig.get_size_inches()
    assert w == 7.0 and h == pytest.approx(0.42 * 3 + 1.4)
    all_rows = viz.summary_plot(a, x, top=None)  # drawn from f0 (bottom) to f4
    assert [len(c.get_offsets()) for c in all_rows.axes[0].collections] == [40, 39, 40, 40, 40]
    assert not _bars(viz.summary_plot(a))  # no feature values: one colour, no bar


def test_mean_abs_bars_values() -> None:
    a, _ = _batch()
    fig = viz.mean_abs_bars(a, [f"f{j}" for j in range(5)], top=4)
    widths = [p.get_width() for p in fig.axes[0].patches]  # type: ignore[attr-defined]
    expected = np.sort(np.abs(a).mean(axis=0))[1:]  # bottom to top: the 4 largest, ascending
    np.testing.assert_allclose(widths, expected)


def test_dependence_plot_picks_the_interacting_feature() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    a = np.stack([x[:, 0] * x[:, 2], x[:, 1], x[:, 2]], axis=1)  # a_0 depends on x_2
    fig = viz.dependence_plot(a, x, "f0", ["f0", "f1", "f2"])
    (bar,) = _bars(fig)
    assert bar.get_ylabel() == "value of f2"  # type: ignore[attr-defined]
    pts = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(pts, np.stack([x[:, 0], a[:, 0]], axis=1))
    assert not _bars(viz.dependence_plot(a, x, 1, color_by=None))
    with pytest.raises(InputError, match="no feature named"):
        viz.dependence_plot(a, x, "nope", ["f0", "f1", "f2"])


def test_region_values_by_hand() -> None:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, 3, 10, 12, generator=g, dtype=torch.float64)
    x = torch.rand(2, 3, 10, 12, generator=g, dtype=torch.float64)
    attr = Attribution(values=v, inputs=x, method="m")
    vals, feats, names = viz.region_values(attr, 4)  # 3 x 3 cells, the last ones smaller
    assert vals.shape == (2, 9) and names[:4] == ["r0c0", "r0c1", "r0c2", "r1c0"]
    assert vals[1, 5] == pytest.approx(float(v[1, :, 4:8, 8:12].sum()))
    assert vals[0, 8] == pytest.approx(float(v[0, :, 8:10, 8:12].sum()))
    np.testing.assert_allclose(vals.sum(axis=1), v.sum(dim=(1, 2, 3)).numpy())  # completeness
    assert feats is not None and feats[0, 4] == pytest.approx(float(x[0, :, 4:8, 4:8].mean()))
    masks = torch.zeros(2, 10, 12, dtype=torch.bool)
    masks[0, :5], masks[1, 5:, :6] = True, True
    mv, mf, mn = viz.region_values(v, masks, inputs=x)
    assert mn == ["region 0", "region 1"] and mf is not None
    assert mv[0, 1] == pytest.approx(float(v[0, :, 5:, :6].sum()))
    labels = -torch.ones(10, 12, dtype=torch.long)
    labels[:2, :2] = 0
    lv, lf, _ = viz.region_values(v, labels)
    assert lv.shape == (2, 1) and lf is None
    assert lv[1, 0] == pytest.approx(float(v[1, :, :2, :2].sum()))
    fig = viz.summary_plot(vals, feats, names)
    assert len(fig.axes[0].collections) == 9 and len(_bars(fig)) == 1


def test_token_values_by_hand() -> None:
    vals, names = viz.token_values([["good", "film", "good"], ["bad", "film"]],
                                   [[1.0, 0.5, 2.0], [-1.0, 0.25]])
    assert names[0] == "film"  # most frequent first
    j = {t: names.index(t) for t in names}
    assert vals[0, j["good"]] == 3.0 and vals[1, j["film"]] == 0.25
    assert np.isnan(vals[1, j["good"]]) and np.isnan(vals[0, j["bad"]])
    fig = viz.mean_abs_bars(vals, names)
    assert len(fig.axes[0].patches) == 3  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="2 tokens but 3 scores"):
        viz.token_values([["a", "b"]], [[1.0, 2.0, 3.0]])
