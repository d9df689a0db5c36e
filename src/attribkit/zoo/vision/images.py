"""The model's input: centre crop, normalisation and its inverse, black baseline, image files."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from attribkit.core.baselines import Black
from attribkit.core.errors import InputError

__all__ = [
    "BLACK",
    "BLACK_BASELINE",
    "IMAGE_SIZE",
    "PIXEL_MEAN",
    "PIXEL_SCALE",
    "black_baseline",
    "center_crop",
    "deprocess",
    "load_image",
    "preprocess",
]

PIXEL_MEAN = 127.0
"""Subtracted from the 0..255 pixel values."""
PIXEL_SCALE = 128.0
"""Divides the centred pixel values."""
BLACK = -PIXEL_MEAN / PIXEL_SCALE
"""The normalised value of a black pixel, ``-127/128``."""
BLACK_BASELINE = Black(BLACK)
"""A :class:`attribkit.core.baselines.Black` baseline in this model's normalisation."""
IMAGE_SIZE = 224
"""Side of the square input the model expects."""


def _to_pil(image: Image.Image | np.ndarray[Any, Any]) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if not isinstance(image, np.ndarray):
        raise InputError(
            f"expected a PIL image or an HxWx3 uint8 array, got {type(image).__name__}; "
            "use load_image(path) for files."
        )
    a = image
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.dtype != np.uint8:
        raise InputError(
            f"image arrays must be uint8 (0..255), got {a.dtype}; convert with "
            "(img * 255).round().astype(np.uint8) if it is in [0, 1]."
        )
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise InputError(f"image arrays must be HxW, HxWx3 or HxWx4; got shape {a.shape}.")
    return Image.fromarray(np.ascontiguousarray(a[:, :, :3]), mode="RGB")


def center_crop(image: Image.Image | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Resize the shorter side to 224 (bilinear, antialiased) and cut the central 224 x 224.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        A PIL image, or a uint8 array ``HxWx3`` (``HxW`` grey and ``HxWx4`` RGBA also accepted).

    Returns
    -------
    numpy.ndarray
        ``(224, 224, 3)`` uint8: exactly the pixels :func:`preprocess` feeds the model.
    """
    pil = _to_pil(image)
    w, h = pil.size
    s = IMAGE_SIZE / min(w, h)
    nw, nh = max(IMAGE_SIZE, round(w * s)), max(IMAGE_SIZE, round(h * s))
    pil = pil.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - IMAGE_SIZE) // 2, (nh - IMAGE_SIZE) // 2
    pil = pil.crop((left, top, left + IMAGE_SIZE, top + IMAGE_SIZE))
    return np.asarray(pil, dtype=np.uint8).copy()


def preprocess(image: Image.Image | np.ndarray[Any, Any]) -> Tensor:
    """Turn a photo into the model's input.

    Parameters
    ----------
    image : PIL.Image.Image or numpy.ndarray
        A PIL image or a uint8 array ``HxWx3`` (see :func:`center_crop`).

    Returns
    -------
    Tensor
        ``(1, 3, 224, 224)`` float32, ``(pixels - 127) / 128``.
    """
    crop = center_crop(image)
    x = torch.from_numpy(crop).permute(2, 0, 1).float()
    return ((x - PIXEL_MEAN) / PIXEL_SCALE).unsqueeze(0).contiguous()


def deprocess(x: Tensor) -> np.ndarray[Any, Any]:
    """Invert :func:`preprocess`, for drawing.

    Parameters
    ----------
    x : Tensor
        ``(1, 3, H, W)`` or ``(3, H, W)`` normalised image.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 (values rounded and clipped to 0..255).
    """
    t = x.detach().cpu()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise InputError(f"deprocess takes (1, 3, H, W) or (3, H, W); got {tuple(x.shape)}.")
    pixels = (t.double() * PIXEL_SCALE + PIXEL_MEAN).round().clamp(0, 255)
    return pixels.permute(1, 2, 0).numpy().astype(np.uint8)


def black_baseline(x: Tensor) -> Tensor:
    """The all-black image in the model's normalisation, shaped like ``x``.

    Parameters
    ----------
    x : Tensor
        Inputs, e.g. from :func:`preprocess`.

    Returns
    -------
    Tensor
        ``torch.full_like(x, -127/128)``.
    """
    return torch.full_like(x, BLACK)


def load_image(path: str | pathlib.Path) -> Tensor:
    """Read any image file PIL understands and preprocess it.

    Parameters
    ----------
    path : str or pathlib.Path
        The image file (PNG, JPEG, ...).

    Returns
    -------
    Tensor
        ``(1, 3, 224, 224)`` float32 model input.

    Raises
    ------
    InputError
        When the file is missing or is not an image PIL can read.
    """
    p = pathlib.Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"image file not found: {str(p)!r}; check the path.")
    try:
        with Image.open(p) as img:
            img.load()
            return preprocess(img)
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(
            f"cannot read {str(p)!r} as an image ({err}); give a PNG, JPEG or another format "
            "Pillow reads."
        ) from err
