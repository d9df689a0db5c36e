"""Every drawn map has a colour bar: comparison grid, explanation grid, single figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attribkit import viz
from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError


def colour_bars(fig: Figure) -> list[object]:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def panels(fig: Figure) -> list[object]:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible()]


def _attr() -> Attribution:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 12, 12, generator=g, dtype=torch.float64)
    v = torch.randn(1, 3, 12, 12, generator=g, dtype=torch.float64)
    return Attribution(values=v, inputs=x, method="m", output=torch.tensor([1.0]),
                       baseline_output=torch.tensor([0.0]))


@pytest.mark.parametrize("style", ["heatmap", "overlay", "intensity"])
@pytest.mark.parametrize("sign", ["absolute", "positive", "negative", "all"])
def test_each_map_has_a_scale_in_its_units(style: str, sign: str) -> None:
    a = _attr()
    fig = viz.attribution_figure(a, a.inputs[0], style=style, sign=sign, percentile=100)
    (bar,) = colour_bars(fig)
    lo, hi = bar.get_ylim()  # type: ignore[attr-defined]
    m = a.values[0].sum(0).numpy()
    expected = {"absolute": np.abs(a.values[0].numpy()).sum(0).max(),
                "positive": np.maximum(m, 0).max(), "negative": np.maximum(-m, 0).max(),
                "all": np.abs(m).max()}[sign]
    assert hi == pytest.approx(expected)
    # signed maps are centred on zero, the others start at zero
    assert lo == pytest.approx(-expected if sign == "all" and style != "intensity" else 0.0)
    assert len(panels(fig)) == 2


def test_diverging_map_is_centred_on_zero() -> None:
    m = np.array([[-1.0, 0.0], [0.5, 2.0]])
    fig = Figure()
    ax = fig.add_subplot()
    mappable = viz.draw_attribution(ax, m, sign="all", percentile=100)
    assert mappable.norm.vmin == -2.0 and mappable.norm.vmax == 2.0
    assert mappable.get_cmap().name == "RdBu_r"
    rgba = mappable.to_rgba(np.array([0.0]))[0]
    assert rgba[:3] == pytest.approx(mappable.get_cmap()(0.5)[:3])  # zero is the middle colour


def test_comparison_grid_has_one_bar_per_map() -> None:
    a = _attr()
    fig = viz.comparison_grid([a.inputs[0]], {"a": a, "b": a.values.numpy(), "c": a},
                              style="heatmap", sign="all")
    assert len(panels(fig)) == 4 and len(colour_bars(fig)) == 3


def test_explanation_grid_keeps_failures_in_place() -> None:
    a = _attr()
    maps = {"ig": a, "broken": RuntimeError("no layer"), "sal": a.values, "skipped": "too slow"}
    top = [("cat", 0.7), ("dog", 0.2), ("fox", 0.05)]
    fig = viz.explanation_grid(a.inputs[0], maps, top_classes=top, columns=3, panel=3.0,
                               title="photo")
    assert len(panels(fig)) == 6 and len(colour_bars(fig)) == 2
    titles = [ax.get_title() for ax in panels(fig)]  # type: ignore[attr-defined]
    assert titles[:2] == ["input", "top classes (score)"]
    assert "broken\nfailed" in titles and "skipped\nfailed" in titles
    assert titles[2].startswith("ig\nrelative gap")
    w, h = fig.get_size_inches()
    assert w == pytest.approx(3 * 3.0 * 1.2) and h > 2 * 3.0  # two rows of 3 panels
    assert fig.axes[1].patches and len(fig.axes[1].patches) == 3  # one bar per class
    with pytest.raises(InputError, match="pass image="):
        viz.draw_attribution(fig.axes[0], a, style="overlay")
