"""One attribution drawn on a matplotlib axes, always with its colour scale.

The map is shown in the attribution's own units: ``sign="all"`` uses a diverging colormap
centred on zero (red: evidence for the target, blue: against), the other signs a sequential
colormap from zero. Magnitudes above the ``percentile`` saturate, and the colour bar shows it.
"""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from attribkit.core.errors import InputError
from attribkit.core.signs import DEFAULT_SIGN, check_sign
from attribkit.viz._common import Array, as_array, image_array, reduce_channels

__all__ = ["CMAPS", "STYLES", "UNITS", "attribution_figure", "draw_attribution", "map_label",
           "map_scale"]

#: The default colormap of each ``sign``: sequential for magnitudes, diverging for signed maps.
CMAPS = {"absolute": "inferno", "positive": "Reds", "negative": "Blues", "all": "RdBu_r"}
#: How a map can be drawn.
STYLES = ("heatmap", "overlay", "intensity")
_LABELS = {"absolute": r"$\Sigma_c\,|a|$", "positive": r"positive part of $\Sigma_c\,a$",
           "negative": r"negative part of $\Sigma_c\,a$", "all": r"$\Sigma_c\,a$ (signed)"}


#: What a method's attributions measure, where it is not a share of F(x) - F(x'): shown on the
#: colour bar.
UNITS = {"occlusion": "drop in the explained score",
         "feature_ablation": "drop in the explained score"}


def map_label(method: str | None = None, sign: str = DEFAULT_SIGN) -> str:
    """The colour bar's label: what is shown (``sum_c |a|``) and, for methods in :data:`UNITS`,
    its unit (occlusion: the drop in the explained score)."""
    text = _LABELS[sign]
    unit = UNITS.get(str(method or "").split(":")[0])
    return f"{text}: {unit}" if unit else text


def map_scale(m: Array, percentile: float = 99.0) -> float:
    """The magnitude at which a map saturates: the ``percentile`` of ``|m|`` (its maximum if
    that is zero; 1 for an all-zero map, so that a scale can still be drawn)."""
    if not 0 < percentile <= 100:
        raise InputError(f"percentile must be in (0, 100], got {percentile!r}.")
    mag = np.abs(m[np.isfinite(m)])
    if mag.size == 0:
        return 1.0
    q = float(np.percentile(mag, percentile))
    if q <= 0:
        q = float(mag.max())
    return q if q > 0 else 1.0


def draw_attribution(ax: Axes, values: Any, *, image: Any = None, style: str = "heatmap",
                     sign: str = DEFAULT_SIGN, percentile: float = 99.0, cmap: str | None = None,
                     alpha: float = 0.7, index: int = 0, colorbar: bool = True,
                     label: str | None = None) -> ScalarMappable:
    """Draw one example's attribution on ``ax`` with a colour bar beside it.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    values : Attribution, Tensor or array
        Image attributions ``(N, C, H, W)``, ``(C, H, W)`` or a map ``(H, W)``.
    image : PIL image, array or tensor, optional
        The picture, needed by the ``"overlay"`` and ``"intensity"`` styles.
    style : str, default "heatmap"
        ``"heatmap"``: the map alone; ``"overlay"``: the map over a grey copy of the picture,
        opaque where the attribution is large; ``"intensity"``: the picture's pixels scaled by
        their importance (Gradients of Counterfactuals), with a grey scale bar.
    sign : str, default "absolute"
        ``"absolute"``, ``"positive"``, ``"negative"`` (sequential map from 0) or ``"all"``
        (diverging map centred on 0). See :mod:`attribkit.core.signs`.
    percentile : float, default 99
        Magnitudes above this percentile of ``|map|`` saturate (the bar's end shows it).
    cmap : str, optional
        A matplotlib colormap; default from :data:`CMAPS`.
    alpha : float, default 0.7
        The overlay's largest opacity.
    index : int, default 0
        The example, when there is a batch axis.
    colorbar : bool, default True
        Add the colour bar.
    label : str, optional
        The colour bar's label (default: what is shown, e.g. ``"sum_c |a|"``).

    Returns
    -------
    matplotlib.cm.ScalarMappable
        The colour scale (for a shared colour bar, say).
    """
    check_sign(sign)
    if style not in STYLES:
        raise InputError(f"style must be one of {', '.join(STYLES)}; got {style!r}.")
    if style != "heatmap" and image is None:
        raise InputError(f"style={style!r} draws over the picture: pass image=.")
    m = reduce_channels(as_array(values, index), sign)
    q = map_scale(m, percentile)
    signed = sign == "all"
    norm = Normalize(vmin=-q if signed else 0.0, vmax=q)
    colours = matplotlib.colormaps[cmap or CMAPS[sign]]
    h, w = m.shape
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    if style == "heatmap":
        mappable: ScalarMappable = ax.imshow(m, cmap=colours, norm=norm, interpolation="nearest")
    else:
        base = image_array(image).astype(np.float64)
        strength = np.clip(np.abs(m) / q, 0.0, 1.0)
        if style == "overlay":
            grey = base.mean(axis=2)
            ax.imshow(grey, cmap="gray", vmin=0, vmax=255, extent=extent)
            ax.imshow(m, cmap=colours, norm=norm, alpha=alpha * strength, extent=extent,
                      interpolation="bilinear")
            mappable = ScalarMappable(norm=norm, cmap=colours)
        else:
            from PIL import Image

            fitted = np.asarray(Image.fromarray(base.astype(np.uint8)).resize(
                (w, h), Image.Resampling.BILINEAR), dtype=np.float64)
            ax.imshow((fitted * strength[:, :, None]).round().astype(np.uint8), extent=extent)
            mappable = ScalarMappable(norm=Normalize(vmin=0.0, vmax=q), cmap="gray")
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        fig = ax.get_figure()
        assert fig is not None
        clipped = bool(np.nanmax(np.abs(m)) > q) if m.size else False
        extend = ("both" if signed else "max") if clipped else "neither"
        cb = fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.02, extend=extend)
        cb.ax.tick_params(labelsize=7)
        cb.formatter.set_powerlimits((-2, 3))  # type: ignore[attr-defined]
        cb.ax.yaxis.get_offset_text().set_fontsize(6)
        text = label if label is not None else _LABELS[sign]
        if style == "intensity":
            text += " (brightness)"
        cb.set_label(text, fontsize=7)
    return mappable


def attribution_figure(values: Any, image: Any = None, *, style: str | None = None,
                       sign: str = DEFAULT_SIGN, percentile: float = 99.0,
                       cmap: str | None = None, index: int = 0, title: str | None = None,
                       size: float = 4.0, label: str | None = None) -> Figure:
    """A figure of one attribution with its colour bar (and the picture beside it, if given).

    Parameters
    ----------
    values : Attribution, Tensor or array
        Image attributions.
    image : PIL image, array or tensor, optional
        The picture; shown on the left and used by the overlay.
    style : str, optional
        As for :func:`draw_attribution`; default ``"overlay"`` with a picture, else
        ``"heatmap"``.
    sign, percentile, cmap, index
        As for :func:`draw_attribution`.
    title : str, optional
        Figure title.
    size : float, default 4
        Panel size in inches (at 100 dpi: 400 px).
    label : str, optional
        The colour bar's label (default: :func:`map_label` of the attribution's method).

    Returns
    -------
    matplotlib.figure.Figure
        One or two panels; the attribution panel has a colour bar.
    """
    chosen = style or ("overlay" if image is not None else "heatmap")
    panels = 2 if image is not None else 1
    fig = Figure(figsize=(size * panels + 0.8, size + (0.4 if title else 0.1)),
                 layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    if image is not None:
        axes[0].imshow(image_array(image))
        axes[0].set_title("input", fontsize=9)
        axes[0].axis("off")
    method = getattr(values, "method", None)
    draw_attribution(axes[-1], values, image=image, style=chosen, sign=sign,
                     percentile=percentile, cmap=cmap, index=index,
                     label=label if label is not None else map_label(method, sign))
    axes[-1].set_title(f"attribution ({sign})", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
