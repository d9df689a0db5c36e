"""Feature masks on the picture: the boundaries of the segments (superpixels, grid cells)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from attribkit.viz._common import Array, image_array

__all__ = ["segment_boundaries"]


def _spatial(mask: Any) -> Array:
    """The ``(H, W)`` ids of one image from ``(H, W)``, ``(1 or C, H, W)`` or ``(1, 1|C, H, W)``."""
    m = torch.as_tensor(mask).detach().cpu()
    while m.dim() > 2:
        m = m[0]
    return np.asarray(m.numpy(), dtype=np.int64)


def segment_boundaries(image: Any, mask: Any,
                       color: tuple[int, int, int] = (255, 230, 0)) -> Array:
    """The image with the boundaries between the segments of ``mask`` drawn in ``color``.

    Parameters
    ----------
    image
        The picture (see :func:`attribkit.viz.image_array`): ``(H, W, 3)`` uint8, floats in
        ``[0, 1]``, a PIL image or a tensor.
    mask
        Integer ids of one image: ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)`` (the first image
        and channel are used); resized to the picture (nearest) when the sizes differ.
    color
        The boundary colour (RGB).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    img = image_array(image).copy()
    ids = _spatial(mask)
    h, w = img.shape[:2]
    if ids.shape != (h, w):
        lab = Image.fromarray(ids.astype(np.int32), mode="I")
        ids = np.asarray(lab.resize((w, h), Image.Resampling.NEAREST), dtype=np.int64)
    edge = np.zeros((h, w), dtype=bool)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    img[edge] = np.asarray(color, dtype=np.uint8)
    return img
