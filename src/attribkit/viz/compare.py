"""A method-comparison grid: the input, then one map per method (seed 003, Figure 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.viz._common import image_array, literal
from attribkit.viz.image import heatmap, overlay, scale_intensity

__all__ = ["comparison_grid"]

_STYLES = ("intensity", "heatmap", "overlay")


def _gap_text(attr: Any, i: int) -> str:
    if not isinstance(attr, Attribution):
        return ""
    rg, g = attr.relative_gap, attr.gap
    if rg is None or g is None:
        return ""
    return f"\ngap {float(g[i]):+.2g} ({float(rg[i]):.1%})"


def comparison_grid(images: Sequence[Any], attributions: Mapping[str, Any], *,
                    labels: Sequence[str] | None = None, style: str = "intensity",
                    sign: str = "absolute", percentile: float = 99.0,
                    panel: float = 2.3, max_columns: int = 6) -> Figure:
    """Rows of inputs; columns: the input, then each method's map, titled with the gap.

    Parameters
    ----------
    images : sequence
        One picture per row (PIL images, ``(H, W, 3)`` arrays or ``[0, 1]`` tensors).
    attributions : mapping of str to Attribution or array
        Method name to attributions for all rows ``(N, C, H, W)``; an
        :class:`~attribkit.core.attribution.Attribution` also gives the completeness gap.
    labels : sequence of str, optional
        Caption of each input (e.g. ``"tabby 0.62"``: label and score).
    style : str, default "intensity"
        ``"intensity"`` (the seed's: pixels scaled by importance), ``"heatmap"`` or ``"overlay"``.
    sign : str, default "absolute"
        Sign handling (see :func:`attribkit.viz.heatmap`).
    percentile : float, default 99
        Outlier clipping percentile.
    panel : float, default 2.3
        Panel size in inches.
    max_columns : int, default 6
        With a single input, wrap the panels into rows of at most this many.

    Returns
    -------
    matplotlib.figure.Figure
        The grid.
    """
    if style not in _STYLES:
        raise InputError(f"style must be one of {', '.join(_STYLES)}; got {style!r}.")
    if not attributions:
        raise InputError("comparison_grid needs at least one method's attributions.")
    per_input = 1 + len(attributions)
    if len(images) == 1 and per_input > max_columns > 0:
        cols, rows = max_columns, -(-per_input // max_columns)
    else:
        cols, rows = per_input, len(images)
    fig = Figure(figsize=(panel * cols, panel * rows + 0.3))
    for i, img in enumerate(images):
        base = image_array(img)
        ax = fig.add_subplot(rows, cols, i * per_input + 1)
        ax.imshow(base)
        ax.set_title(literal(labels[i]) if labels is not None else "input", fontsize=8)
        ax.axis("off")
        for j, (name, attr) in enumerate(attributions.items()):
            ax = fig.add_subplot(rows, cols, i * per_input + j + 2)
            if style == "intensity":
                pic = scale_intensity(base, attr, sign=sign, percentile=percentile, index=i)
            elif style == "heatmap":
                pic = heatmap(attr, sign=sign, percentile=percentile, index=i)
            else:
                pic = overlay(base, attr, sign=sign, percentile=percentile, index=i)
            ax.imshow(np.asarray(pic))
            ax.set_title(f"{literal(name)}{_gap_text(attr, i)}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig
