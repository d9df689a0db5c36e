"""A method-comparison grid: the input, then one map per method (Gradients of Counterfactuals,
Figure 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.core.signs import DEFAULT_SIGN
from attribkit.viz._common import image_array, literal
from attribkit.viz.panels import STYLES, draw_attribution

__all__ = ["comparison_grid"]


def _gap_text(attr: Any, i: int) -> str:
    if not isinstance(attr, Attribution):
        return ""
    rg, g = attr.relative_gap, attr.gap
    if rg is None or g is None:
        return ""
    return f"\ngap {float(g[i]):+.2g} ({float(rg[i]):.1%})"


def comparison_grid(images: Sequence[Any], attributions: Mapping[str, Any], *,
                    labels: Sequence[str] | None = None, style: str = "intensity",
                    sign: str = DEFAULT_SIGN, percentile: float = 99.0,
                    panel: float = 2.6, max_columns: int = 5) -> Figure:
    """Rows of inputs; columns: the input, then each method's map with its colour bar, titled
    with the completeness gap.

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
        ``"intensity"`` (the seed's: pixels scaled by importance), ``"heatmap"`` or ``"overlay"``
        (see :func:`attribkit.viz.draw_attribution`).
    sign : str, default "absolute"
        ``"all"`` draws signed maps on a diverging colormap centred on zero.
    percentile : float, default 99
        Outlier clipping percentile.
    panel : float, default 2.6
        Panel size in inches (colour bar included).
    max_columns : int, default 5
        With a single input, wrap the panels into rows of at most this many.

    Returns
    -------
    matplotlib.figure.Figure
        The grid; every map has its own colour bar (each map has its own scale).
    """
    if style not in STYLES:
        raise InputError(f"style must be one of {', '.join(STYLES)}; got {style!r}.")
    if not attributions:
        raise InputError("comparison_grid needs at least one method's attributions.")
    per_input = 1 + len(attributions)
    if len(images) == 1 and per_input > max_columns > 0:
        cols, rows = max_columns, -(-per_input // max_columns)
    else:
        cols, rows = per_input, len(images)
    fig = Figure(figsize=(panel * 1.25 * cols, panel * rows + 0.3), layout="constrained")
    for i, img in enumerate(images):
        base = image_array(img)
        ax = fig.add_subplot(rows, cols, i * per_input + 1)
        ax.imshow(base)
        ax.set_title(literal(labels[i]) if labels is not None else "input", fontsize=8)
        ax.axis("off")
        for j, (name, attr) in enumerate(attributions.items()):
            ax = fig.add_subplot(rows, cols, i * per_input + j + 2)
            draw_attribution(ax, attr, image=base, style=style, sign=sign,
                             percentile=percentile, index=i)
            ax.set_title(f"{literal(name)}{_gap_text(attr, i)}", fontsize=8)
    return fig
