"""PNG pictures for the explorer: attribution maps as transparent overlays, inputs, molecules.

A map is drawn as RGBA: colour from a lookup table, opacity growing with magnitude, so the photo
shows through where attribution is small; the page's opacity slider only changes CSS. Signed maps
use a diverging scale (blue negative, red positive, symmetric about zero); absolute maps a
sequential one. The scale's top is the 99th percentile of the magnitude (outliers clipped), and
the same number is sent to the page for the colour key.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["encode_png", "input_png", "map_png", "map_scale", "reduce_map"]

Array = np.ndarray[Any, Any]


def _lut(name: str) -> Array:
    from matplotlib import colormaps

    return np.asarray(colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255, dtype=np.uint8)


_LUTS: dict[str, Array] = {}


def lut(sign: str) -> Array:
    """The 256-colour table of a sign mode (``signed``: RdBu reversed; ``absolute``: inferno)."""
    name = "RdBu_r" if sign == "signed" else "inferno"
    if name not in _LUTS:
        _LUTS[name] = _lut(name)
    return _LUTS[name]


def reduce_map(values: Array, sign: str) -> Array:
    """An image attribution ``(C, H, W)`` / ``(H, W)`` / ``(1, C, H, W)`` as one ``(H, W)`` map.

    ``signed``: the channel sum; ``absolute``: the sum of absolute values over channels.
    Anything that is not an image-like array is flattened to one row.
    """
    v: Array = np.asarray(values, dtype=np.float64)
    while v.ndim > 3 and v.shape[0] == 1:
        v = v[0]
    if v.ndim == 3:
        out: Array = np.abs(v).sum(axis=0) if sign == "absolute" else v.sum(axis=0)
        return out
    if v.ndim != 2:
        v = v.reshape(1, -1)
    return np.abs(v) if sign == "absolute" else v


def map_scale(m: Array, percentile: float = 99.0) -> float:
    """The colour scale's top: the ``percentile`` of ``|m|`` (or its max when that is zero)."""
    mag = np.abs(m[np.isfinite(m)])
    if not mag.size:
        return 0.0
    q = float(np.percentile(mag, percentile))
    return q if q > 0 else float(mag.max())


def _alphas(sign: str) -> bytes:
    """Opacity per palette index: ``sqrt`` of the magnitude the index stands for."""
    idx = np.arange(256, dtype=np.float64)
    mag = np.abs(idx - 127.5) / 127.5 if sign == "signed" else idx / 255.0
    alpha = (255 * np.sqrt(mag)).round().astype(np.uint8)
    if sign == "signed":
        alpha[127:129] = 0  # the two indices around zero
    return alpha.tobytes()


def map_indices(m: Array, sign: str, scale: float | None = None) -> Array:
    """``(H, W)`` map -> ``(H, W)`` uint8 palette indices (128 or 0 is zero, 255 the top)."""
    s = map_scale(m) if scale is None else scale
    m = np.nan_to_num(m)
    if s <= 0:
        return np.full(m.shape, 128 if sign == "signed" else 0, dtype=np.uint8)
    if sign == "signed":
        u = np.clip(m * (1.0 / s), -1.0, 1.0)
        idx: Array = ((u + 1.0) * 127.5).round().astype(np.uint8)
    else:
        idx = (np.clip(np.abs(m) * (1.0 / s), 0.0, 1.0) * 255).round().astype(np.uint8)
    return idx


def map_rgba(m: Array, sign: str, scale: float | None = None) -> Array:
    """``(H, W)`` map -> ``(H, W, 4)`` uint8 overlay."""
    s = map_scale(m) if scale is None else scale
    m = np.nan_to_num(m)
    if s <= 0:
        return np.zeros((*m.shape, 4), dtype=np.uint8)
    table = lut(sign)
    if sign == "signed":
        u = np.clip(m / s, -1.0, 1.0)
        idx = ((u + 1.0) * 127.5).round().astype(np.int64)
        mag = np.abs(u)
    else:
        u = np.clip(np.abs(m) / s, 0.0, 1.0)
        idx = (u * 255).round().astype(np.int64)
        mag = u
    out = np.empty((*m.shape, 4), dtype=np.uint8)
    out[..., :3] = table[idx]
    out[..., 3] = (255 * np.sqrt(mag)).round().astype(np.uint8)
    return out


def encode_png(a: Array, *, min_side: int = 0) -> bytes:
    """PNG bytes of an RGB(A) uint8 array, upscaled (nearest) so its short side is ``min_side``."""
    img = Image.fromarray(np.ascontiguousarray(a))
    short = min(img.width, img.height)
    if min_side and short < min_side:
        k = max(1, int(np.ceil(min_side / short)))
        img = img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def map_png(values: Array, sign: str, scale: float | None = None) -> bytes:
    """The PNG overlay of an image attribution: a palette image (1 byte per pixel) whose
    palette carries the colour scale and, per entry, its opacity (the same picture as
    :func:`map_rgba`, a quarter of the bytes, several times faster to encode)."""
    idx = map_indices(reduce_map(values, sign), sign, scale)
    img = Image.fromarray(idx, mode="P")
    img.putpalette(lut(sign).reshape(-1).tolist())
    short = min(img.width, img.height)
    if short < 128:
        k = int(np.ceil(128 / short))
        img = img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", transparency=_alphas(sign), compress_level=1)
    return buf.getvalue()


def input_png(x: Array) -> bytes | None:
    """A picture of a model input ``(3, H, W)`` / ``(1, H, W)`` / ``(H, W)``, min-max scaled."""
    a = np.asarray(x, dtype=np.float64)
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or min(a.shape[:2]) < 2:
        return None
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    u = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    img = (np.clip(u, 0, 1) * 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return encode_png(img, min_side=128)


def molecule_png(smiles: str, atom_scores: Array, sign: str) -> bytes | None:
    """The molecule with atoms coloured by attribution (needs RDKit); None without it."""
    try:
        from attribkit.viz.molecule import molecule_image

        scores = np.abs(atom_scores) if sign == "absolute" else atom_scores
        img = molecule_image(smiles, scores, size=(360, 280))
    except Exception:
        return None
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
