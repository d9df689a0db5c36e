"""The explanation grid of one picture: the input, its top classes, then every method's map.

This is the figure the command line's report shows: each method's map has its colour bar, and a
method that failed keeps its place in the grid with the reason written there.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.core.signs import DEFAULT_SIGN
from attribkit.viz._common import image_array
from attribkit.viz.panels import draw_attribution, map_label

__all__ = ["explanation_grid"]


def _title(name: str, attr: Any) -> str:
    if isinstance(attr, Attribution) and attr.relative_gap is not None:
        return f"{name}\nrelative gap {float(attr.relative_gap[0]):.1%}"
    return name


def _classes(ax: Axes, top: Sequence[tuple[str, float]]) -> None:
    names = [textwrap.shorten(str(n), 28, placeholder="…") for n, _ in top][::-1]
    scores = [float(s) for _, s in top][::-1]
    bars = ax.barh(range(len(scores)), scores, color="#4a78b5")
    ax.set_yticks(range(len(scores)), names, fontsize=8)
    ax.bar_label(bars, [f"{s:.3g}" for s in scores], fontsize=7, padding=2)
    hi = max([*scores, 0.0])
    ax.set_xlim(min([*scores, 0.0]), hi * 1.3 if hi > 0 else 1.0)
    ax.set_title("top classes (score)", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _failure(ax: Axes, name: str, reason: Any) -> None:
    text = str(reason) if not isinstance(reason, BaseException) else (
        f"{type(reason).__name__}: {reason}")
    ax.text(0.5, 0.5, textwrap.fill(text, 34), ha="center", va="center", fontsize=8,
            color="#8a1c1c", wrap=True, transform=ax.transAxes)
    ax.set_title(f"{name}\nfailed", fontsize=9, color="#8a1c1c")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#d9a0a0")


def explanation_grid(image: Any, attributions: Mapping[str, Any], *,
                     top_classes: Sequence[tuple[str, float]] | None = None,
                     style: str = "overlay", sign: str = DEFAULT_SIGN, percentile: float = 99.0,
                     index: int = 0, columns: int = 4, panel: float = 3.4,
                     title: str | None = None) -> Figure:
    """The input, its top classes with scores, and all methods side by side in one grid.

    Parameters
    ----------
    image : PIL image, array or tensor
        The picture the model saw (the attributions' grid; ``[0, 1]`` tensors or uint8).
    attributions : mapping of str to Attribution, array, str or exception
        Method name to its attribution of ``image``; a string or an exception marks a method
        that failed, drawn in its place with the reason.
    top_classes : sequence of (str, float), optional
        The best classes and their scores, best first (a bar chart next to the input).
    style : str, default "overlay"
        ``"overlay"``, ``"heatmap"`` or ``"intensity"`` (see
        :func:`attribkit.viz.draw_attribution`).
    sign : str, default "absolute"
        ``"all"`` shows positive and negative evidence on a diverging map centred on zero.
    percentile : float, default 99
        Outlier clipping percentile.
    index : int, default 0
        The example within each attribution batch.
    columns : int, default 4
        Panels per row.
    panel : float, default 3.4
        Panel width in inches (about 340 px at 100 dpi).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        ``2 + len(attributions)`` panels (1 without ``top_classes``); each map has a colour bar.
    """
    if columns < 1:
        raise InputError(f"columns must be at least 1, got {columns}.")
    base = image_array(image)
    n_panels = 1 + (top_classes is not None) + len(attributions)
    cols = min(columns, n_panels)
    rows = -(-n_panels // cols)
    fig = Figure(figsize=(panel * 1.2 * cols, panel * rows + (0.4 if title else 0.1)),
                 layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    axes[0].imshow(base)
    axes[0].set_title("input", fontsize=9)
    axes[0].axis("off")
    k = 1
    if top_classes is not None:
        _classes(axes[k], list(top_classes))
        k += 1
    for name, attr in attributions.items():
        ax = axes[k]
        k += 1
        if isinstance(attr, str | BaseException):
            _failure(ax, name, attr)
            continue
        draw_attribution(ax, attr, image=base, style=style, sign=sign, percentile=percentile,
                         index=index, label=map_label(name, sign))
        ax.set_title(_title(name, attr), fontsize=9)
    for ax in axes[k:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
