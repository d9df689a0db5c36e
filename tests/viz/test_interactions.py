"""Interaction pictures: the heat map shows the matrix, the bars the strongest coalitions, the
network one arc per strongest pair; each renders to a PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from attribkit import viz
from attribkit.core.errors import InputError
from attribkit.core.interaction_indices import coalitions_up_to
from attribkit.core.interactions_result import Interactions


def _result(stderr: bool = False, order: int = 2) -> Interactions:
    n = 5
    cs = coalitions_up_to(n, order)
    vals = torch.zeros(1, len(cs), dtype=torch.float64)
    given = {(0,): 0.5, (3,): -0.2, (0, 1): 2.0, (1, 4): -3.0, (2, 3): 0.25, (0, 4): 1.0}
    for c, v in given.items():
        if len(c) <= order:
            vals[0, cs.index(c)] = v
    return Interactions(values=vals, coalitions=cs, index="FSII", order=order, n_players=n,
                        output=torch.ones(1), baseline_output=torch.zeros(1), evaluations=32,
                        exact=not stderr, stderr=vals.abs() * 0.1 + 0.01 if stderr else None,
                        names=("alpha", "beta", "gamma", "delta", "epsilon"))


def _png(fig: object) -> tuple[int, ...]:
    data = viz.figure_to_png(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).shape


def test_heatmap_is_the_symmetric_matrix_with_a_diverging_colour_bar() -> None:
    res = _result()
    fig = viz.interaction_heatmap(res)
    ax, bar = fig.axes  # the heat map and its colour bar
    shown = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(shown, res.matrix()[0].numpy())
    assert shown[1, 4] == shown[4, 1] == -3.0 and shown[0, 0] == 0.5
    lo, hi = ax.images[0].get_clim()
    assert lo == -hi == -3.0 and ax.images[0].get_cmap().name == "RdBu_r"
    assert [t.get_text() for t in ax.get_xticklabels()] == list(res.names or ())
    assert bar.get_ylabel() == "FSII value"
    h, w, _ = _png(fig)
    assert h > 100 and w > 100
    blank = viz.interaction_heatmap(res, diagonal=False)
    assert np.isnan(np.asarray(blank.axes[0].images[0].get_array(), dtype=float)[2, 2])


def test_bars_show_the_strongest_pairs_in_order_with_error_bars() -> None:
    fig = viz.interaction_bars(_result(stderr=True), k=3)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    ys = [p.get_y() for p in ax.patches]
    assert widths == [-3.0, 2.0, 1.0] and ys == sorted(ys, reverse=True)  # largest on top
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "beta × epsilon", "alpha × beta", "alpha × epsilon"]
    bars = next(c for c in ax.containers if hasattr(c, "errorbar"))
    assert bars.errorbar is not None and "1.96" in ax.get_xlabel()
    _png(fig)
    singles = viz.interaction_bars(_result(), k=2, size=1).axes[0]
    assert [p.get_width() for p in singles.patches] == [0.5, -0.2]


def test_network_draws_one_arc_per_strongest_pair() -> None:
    fig = viz.interaction_network(_result(), k=4)
    arcs = fig.axes[0].patches
    assert len(arcs) == 4
    # strongest first: (1, 4) spans 3 positions, is blue and the thickest
    assert arcs[0].width == 3 and arcs[0].center == (2.5, 0.0)
    assert arcs[0].get_linewidth() > arcs[1].get_linewidth() > arcs[3].get_linewidth()
    assert arcs[0].get_edgecolor()[2] > arcs[0].get_edgecolor()[0]  # negative: blue
    _png(fig)


def test_pictures_refuse_order_one_and_wrong_names() -> None:
    with pytest.raises(InputError, match="order >= 2"):
        viz.interaction_heatmap(_result(order=1))
    with pytest.raises(InputError, match="names has 2 entries for 5 players"):
        viz.interaction_network(_result(), names=["a", "b"])
