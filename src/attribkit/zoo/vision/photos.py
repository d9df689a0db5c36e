"""Sample photos that ship with scikit-image and scikit-learn, full size or preprocessed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from attribkit.core.errors import InputError
from attribkit.zoo.vision.extra import missing
from attribkit.zoo.vision.images import preprocess

__all__ = ["DEFAULT_PHOTOS", "PHOTOS", "load_photo", "sample_photos"]

PHOTOS: tuple[str, ...] = (
    "chelsea",
    "coffee",
    "astronaut",
    "rocket",
    "motorcycle",
    "camera",
    "china",
    "flower",
)
"""Names :func:`sample_photos` and :func:`load_photo` accept (``camera`` is grey, made RGB)."""
DEFAULT_PHOTOS: tuple[str, ...] = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower")
"""The colour photos :func:`sample_photos` returns when no names are given."""


def load_photo(name: str) -> np.ndarray[Any, Any]:
    """One sample photo at full resolution, as an ``HxWx3`` uint8 array.

    Parameters
    ----------
    name : str
        One of :data:`PHOTOS`: ``chelsea``, ``coffee``, ``astronaut``, ``rocket``, ``motorcycle``
        (left image of ``skimage.data.stereo_motorcycle``), ``camera`` (grey, as 3 channels) from
        scikit-image; ``china``, ``flower`` from scikit-learn's ``load_sample_images``.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.
    """
    if name not in PHOTOS:
        raise InputError(f"unknown photo {name!r}; choose from {', '.join(PHOTOS)}.")
    if name in ("china", "flower"):
        try:
            from sklearn.datasets import load_sample_image
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise missing("scikit-learn", err) from err
        return np.asarray(load_sample_image(f"{name}.jpg"), dtype=np.uint8)
    try:
        import skimage.data as skd
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise missing("scikit-image", err) from err
    loader = getattr(skd, "stereo_motorcycle" if name == "motorcycle" else name)
    image = loader()
    if name == "motorcycle":
        image = image[0]  # (left, right, disparity): take the left view
    a = np.asarray(image, dtype=np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return a


def sample_photos(names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """Sample photos that ship with scikit-image and scikit-learn, preprocessed.

    Parameters
    ----------
    names : sequence of str, optional
        Which photos (see :data:`PHOTOS`); default :data:`DEFAULT_PHOTOS`.

    Returns
    -------
    dict of str to Tensor
        Name to ``(1, 3, 224, 224)`` model input, in the order asked.
    """
    if isinstance(names, str):
        names = [names]
    chosen = DEFAULT_PHOTOS if names is None else tuple(names)
    return {name: preprocess(load_photo(name)) for name in chosen}
