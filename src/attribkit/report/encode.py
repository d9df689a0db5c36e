"""How the report stores its pictures: photo-like ones as lossy WebP, line art as PNG.

A 224 x 224 photo or heat map is ten times smaller as WebP at quality 85 than as PNG, with no
visible change at the report's size; plots with few colours (axes, lines, text) stay PNG, which
keeps them sharp and is smaller for them anyway. Animations (GIF) become animated WebP when that
is smaller.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from attribkit.core.errors import InputError
from attribkit.viz._common import figure_to_png, image_array, to_pil

__all__ = ["PHOTO_COLOURS", "WEBP_QUALITY", "encode_image", "is_photo_like"]

PHOTO_COLOURS = 2048
"""A picture with more distinct colours than this (on a 1-in-4 pixel sample) is photo-like."""
WEBP_QUALITY = 85
"""Quality of the lossy WebP used for photo-like pictures (0-100)."""


def is_photo_like(pil: Image.Image) -> bool:
    """Whether ``pil`` has the many distinct colours of a photo or a heat map (not line art)."""
    a = np.asarray(pil.convert("RGB"))[::2, ::2].reshape(-1, 3).astype(np.int32)
    packed = (a[:, 0] << 16) | (a[:, 1] << 8) | a[:, 2]
    return int(np.unique(packed).size) > PHOTO_COLOURS


def _png(pil: Image.Image) -> bytes:
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _webp(pil: Image.Image) -> bytes:
    buf = io.BytesIO()
    pil.convert("RGB").save(buf, format="WEBP", quality=WEBP_QUALITY, method=4)
    return buf.getvalue()


def _gif(data: bytes) -> tuple[bytes, str]:
    """An animation as animated WebP when that is smaller, else the GIF as given."""
    try:
        im = Image.open(io.BytesIO(data))
        frames, durations = [], []
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            frames.append(im.convert("RGB"))
            durations.append(int(im.info.get("duration", 100)))
        buf = io.BytesIO()
        frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:],
                       duration=durations, loop=0, quality=WEBP_QUALITY)
        webp = buf.getvalue()
    except (OSError, ValueError):  # an animation PIL cannot re-encode: keep it as it is
        return data, "image/gif"
    return (webp, "image/webp") if len(webp) < len(data) else (data, "image/gif")


def encode_image(item: Any, *, photo: bool | None = None) -> tuple[bytes, str]:
    """The bytes and MIME type a report embeds for ``item``.

    Parameters
    ----------
    item : bytes, PIL image, numpy array or matplotlib figure
        PNG, GIF or WebP bytes, a PIL image, an ``(H, W, 3)`` array, or a figure.
    photo : bool, optional
        ``True``: lossy WebP; ``False``: PNG; ``None``: WebP when :func:`is_photo_like` or the
        PNG is over three times the WebP (a grey photo), and smaller; PNG otherwise. Bytes
        given as PNG follow the same rule; GIF bytes become animated WebP when smaller.

    Returns
    -------
    tuple of (bytes, str)
        The encoded picture and its MIME type.
    """
    if isinstance(item, bytes | bytearray):
        data = bytes(item)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(data) if photo is not False else (data, "image/gif")
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return data, "image/webp"
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            raise InputError("image bytes must be PNG, GIF or WebP.")
        if photo is False:
            return data, "image/png"
        pil: Image.Image = Image.open(io.BytesIO(data))
    elif hasattr(item, "savefig"):
        pil = Image.open(io.BytesIO(figure_to_png(item)))
    else:
        pil = item if isinstance(item, Image.Image) else to_pil(image_array(item))
    if photo is False:
        return _png(pil), "image/png"
    webp = _webp(pil)
    if photo is None:
        png = _png(pil)
        # photo-like: many colours, or (a grey photo in a figure) PNG three times the WebP
        if len(png) <= len(webp) or not (is_photo_like(pil) or len(png) > 3 * len(webp)):
            return png, "image/png"
    return webp, "image/webp"
