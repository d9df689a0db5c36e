"""Image attributions as pictures: heat maps, overlays and the paper's intensity scaling."""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
from PIL import Image

from attribkit.viz._common import (
    Array,
    as_array,
    image_array,
    normalize,
    reduce_channels,
    to_pil,
)

__all__ = ["attribution_map", "heatmap", "overlay", "pixel_importance", "scale_intensity"]

_DEFAULT_CMAPS = {"positive": "Reds", "negative": "Blues", "absolute": "inferno", "all": "RdBu_r"}


def pixel_importance(values: Any, index: int = 0) -> Array:
    """Pixel importance ``P_ij = sum_c |A_ijc|`` (eq. 1 of Gradients of Counterfactuals).

    Parameters
    ----------
    values : Attribution, Tensor or array
        Image attributions ``(N, C, H, W)`` or ``(C, H, W)``.
    index : int, default 0
        The example, when there is a batch axis.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64, non-negative.
    """
    return reduce_channels(as_array(values, index), "absolute")


def attribution_map(values: Any, *, sign: str = "absolute", percentile: float = 99.0,
                    index: int = 0) -> Array:
    """The normalised ``(H, W)`` map that the drawing functions colour.

    Parameters
    ----------
    values : Attribution, Tensor or array
        Image attributions ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)``.
    sign : str, default "absolute"
        ``"positive"``, ``"negative"``, ``"absolute"`` (eq. 1) or ``"all"`` (signed).
    percentile : float, default 99
        Outlier clipping: magnitudes above this percentile saturate.
    index : int, default 0
        The example, when there is a batch axis.

    Returns
    -------
    numpy.ndarray
        In ``[0, 1]`` (``[-1, 1]`` for ``sign="all"``).
    """
    return normalize(reduce_channels(as_array(values, index), sign), percentile)


def heatmap(values: Any, *, sign: str = "absolute", percentile: float = 99.0,
            cmap: str | None = None, index: int = 0) -> Array:
    """A coloured heat map of an image attribution.

    Parameters
    ----------
    values : Attribution, Tensor or array
        Image attributions ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)``.
    sign : str, default "absolute"
        ``"positive"``, ``"negative"``, ``"absolute"`` or ``"all"``; ``"all"`` uses a diverging
        map centred on zero (red positive, blue negative, white zero).
    percentile : float, default 99
        Outlier clipping percentile.
    cmap : str, optional
        A matplotlib colormap name; the default depends on ``sign``.
    index : int, default 0
        The example, when there is a batch axis.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    m = attribution_map(values, sign=sign, percentile=percentile, index=index)
    colormap = matplotlib.colormaps[cmap or _DEFAULT_CMAPS[sign]]
    u = (m + 1.0) / 2.0 if sign == "all" else m
    rgba = colormap(u)
    return (np.asarray(rgba)[:, :, :3] * 255).round().astype(np.uint8)


def _fit(img: Array, shape: tuple[int, int]) -> Array:
    if img.shape[:2] == shape:
        return img
    out: Array = np.asarray(
        to_pil(img).resize((shape[1], shape[0]), Image.Resampling.BILINEAR), dtype=np.uint8)
    return out


def overlay(image: Any, values: Any, *, sign: str = "absolute", percentile: float = 99.0,
            cmap: str | None = None, alpha: float = 0.6, index: int = 0) -> Array:
    """The heat map blended over a grey version of the image, opaque where attribution is large.

    Parameters
    ----------
    image : PIL image, array or tensor
        The picture (see :func:`attribkit.viz._common.image_array`).
    values : Attribution, Tensor or array
        Its attributions.
    sign : str, default "absolute"
        As for :func:`heatmap`.
    percentile : float, default 99
        Outlier clipping percentile.
    cmap : str, optional
        Colormap name.
    alpha : float, default 0.6
        The largest opacity of the heat map.
    index : int, default 0
        The example, when there is a batch axis.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    m = attribution_map(values, sign=sign, percentile=percentile, index=index)
    heat = heatmap(m, sign="all" if sign == "all" else "absolute", percentile=100.0,
                   cmap=cmap or _DEFAULT_CMAPS[sign])
    base = _fit(image_array(image), m.shape)
    grey = base.astype(np.float64).mean(axis=2, keepdims=True).repeat(3, axis=2)
    w = (alpha * np.abs(m))[:, :, None]
    out = (1 - w) * grey + w * heat.astype(np.float64)
    res: Array = np.clip(out, 0, 255).round().astype(np.uint8)
    return res


def scale_intensity(image: Any, values: Any, *, sign: str = "absolute",
                    percentile: float = 99.0, index: int = 0) -> Array:
    """The paper's style: pixel intensities scaled in proportion to their importance.

    Parameters
    ----------
    image : PIL image, array or tensor
        The picture.
    values : Attribution, Tensor or array
        Its attributions; reduced with ``sign`` (default eq. 1 pixel importance).
    sign : str, default "absolute"
        ``"positive"``, ``"negative"`` or ``"absolute"`` (``"all"`` uses magnitudes).
    percentile : float, default 99
        Outlier clipping percentile (the paper's pictures clip the brightest outliers).
    index : int, default 0
        The example, when there is a batch axis.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8: bright where important, black where not.
    """
    m = np.abs(attribution_map(values, sign=sign, percentile=percentile, index=index))
    base = _fit(image_array(image), m.shape).astype(np.float64)
    return np.clip(base * m[:, :, None], 0, 255).round().astype(np.uint8)
