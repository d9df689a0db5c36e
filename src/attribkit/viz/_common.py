"""Shared helpers of :mod:`attribkit.viz`: array conversion, sign handling, outlier clipping."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from PIL import Image

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.core.signs import SIGNS, check_sign

__all__ = [
    "SIGNS",
    "as_array",
    "figure_to_png",
    "image_array",
    "literal",
    "normalize",
    "reduce_channels",
    "to_pil",
]


Array = np.ndarray[Any, Any]


def literal(text: object) -> str:
    """``text`` as Matplotlib must draw it verbatim: ``$`` escaped (no mathtext).

    Names from data (feature names such as ``price ($)``, labels, method names) would otherwise
    switch Matplotlib into math mode between two dollar signs, drawing garbage or raising.
    Titles and axis labels the caller writes are left alone (they may use mathtext on purpose).
    """
    return str(text).replace("\\$", "$").replace("$", "\\$")


def as_array(values: Any, index: int = 0) -> Array:
    """One example's attribution as a float64 NumPy array.

    Parameters
    ----------
    values : Attribution, Tensor or array-like
        An :class:`~attribkit.core.attribution.Attribution`, or values ``(N, C, H, W)``,
        ``(C, H, W)``, ``(H, W)`` (or any 1-D / 2-D array for text and tabular data).
    index : int, default 0
        Which example to take when a batch axis is present (4-D input, or an Attribution).

    Returns
    -------
    numpy.ndarray
        The values of that example, float64.
    """
    if isinstance(values, Attribution):
        t = values.values.detach().cpu()
        if values.multi_target:
            raise InputError("this attribution has several targets; pick one with "
                             "attr.for_target(k) before drawing it.")
        return np.asarray(t[index].double().numpy(), dtype=np.float64)
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 4:
        a = a[index]
    return a


def reduce_channels(values: Array, sign: str) -> Array:
    """Reduce ``(C, H, W)`` to ``(H, W)`` under a sign convention (2-D input passes through).

    Parameters
    ----------
    values : numpy.ndarray
        ``(C, H, W)`` or ``(H, W)`` attributions.
    sign : str
        ``"absolute"``: pixel importance ``sum_c |A_c|`` (eq. 1 of Gradients of Counterfactuals);
        ``"positive"`` / ``"negative"`` / ``"all"``: the signed channel sum, then its positive part,
        its negative part (as positive numbers) or all of it.

    Returns
    -------
    numpy.ndarray
        ``(H, W)``; non-negative except for ``"all"``.
    """
    check_sign(sign)
    if values.ndim == 3:
        r = np.abs(values).sum(axis=0) if sign == "absolute" else values.sum(axis=0)
    elif values.ndim == 2:
        r = values
    else:
        raise InputError(f"image attributions must be (N, C, H, W), (C, H, W) or (H, W); got "
                         f"shape {values.shape}.")
    out: Array
    if sign == "absolute":
        out = np.abs(r)
    elif sign == "positive":
        out = np.maximum(r, 0.0)
    elif sign == "negative":
        out = np.maximum(-r, 0.0)
    else:
        out = r
    return out


def normalize(m: Array, percentile: float = 99.0) -> Array:
    """Scale a map into ``[0, 1]`` (or ``[-1, 1]`` if it has negative values), clipping outliers.

    Parameters
    ----------
    m : numpy.ndarray
        The map.
    percentile : float, default 99
        Magnitudes above this percentile of ``|m|`` are clipped to it (100: no clipping).

    Returns
    -------
    numpy.ndarray
        ``m / q`` clipped to ``[-1, 1]`` where ``q`` is the percentile of ``|m|``; all zeros when
        the map is zero.
    """
    if not 0 < percentile <= 100:
        raise InputError(f"percentile must be in (0, 100], got {percentile!r}.")
    mag = np.abs(m)
    finite = mag[np.isfinite(mag)]
    q = float(np.percentile(finite, percentile)) if finite.size else 0.0
    if q <= 0:
        q = float(finite.max()) if finite.size else 0.0
    if q <= 0:
        return np.zeros_like(m)
    return np.clip(np.nan_to_num(m / q), -1.0, 1.0)


def image_array(image: Any) -> Array:
    """An image as ``(H, W, 3)`` uint8 for drawing.

    Parameters
    ----------
    image : PIL.Image.Image, Tensor or array-like
        A PIL image, a uint8 / float array ``(H, W, 3)`` or ``(H, W)`` (floats in ``[0, 1]``), or
        a tensor ``(1, 3, H, W)`` / ``(3, H, W)`` with values in ``[0, 1]``. Model inputs in another
        normalisation should be mapped back first (e.g. ``attribkit.zoo.vision.deprocess``).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu().double()
        if t.dim() == 4:
            t = t[0]
        if t.dim() == 3 and t.shape[0] in (1, 3):
            t = t.permute(1, 2, 0)
        image = t.numpy()
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"images must be (H, W, 3), (H, W) or (3, H, W); got shape {a.shape}.")
    a = a[:, :, :3]
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.ascontiguousarray(a)


def to_pil(a: Array) -> Image.Image:
    """An ``(H, W, 3)`` uint8 array as a PIL image."""
    return Image.fromarray(np.ascontiguousarray(a.astype(np.uint8)), mode="RGB")


def figure_to_png(fig: Any, dpi: int = 100) -> bytes:
    """Render a matplotlib figure to PNG bytes (Agg; never shown on screen)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
