"""Feature masks to pass as ``feature_mask=``: grids, superpixels, labels, and their validation.

A feature mask holds one integer group id per input element; the elements of a group are
occluded together (:func:`attribkit.occlusion`, :func:`attribkit.prediction_difference`), form
one player (:func:`attribkit.shapley_values`, :func:`attribkit.kernel_shap`, :func:`attribkit.lime`)
and are removed together by the evaluations (:func:`attribkit.evaluate.deletion_curve`, ...).

>>> import torch, attribkit
>>> mask = attribkit.masks.grid((3, 32, 32), 8)          # 16 square cells over all channels
>>> attribkit.masks.n_groups(mask)
16
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.coalitions import patch_group_ids
from attribkit.core.errors import InputError
from attribkit.core.masks import check_mask, resolve_mask

__all__ = ["check", "from_labels", "grid", "n_groups", "superpixels"]

_METHODS = ("slic", "felzenszwalb")


def grid(shape: Sequence[int], cell: int | Sequence[int]) -> Tensor:
    """Square (or rectangular) cells over the trailing axes of one example.

    Parameters
    ----------
    shape
        The shape of one example: ``(C, H, W)`` images, ``(H, W)``, ``(L,)`` sequences...
    cell
        The cell size: an int is a square over the last two axes (the last axis of a 1-D
        shape), a tuple covers that many trailing axes. Leading axes (channels) share the ids;
        cells at the edges may be smaller.

    Returns
    -------
    Tensor
        ``shape`` int64 ids ``0 .. cells - 1`` in row-major order of the cells.
    """
    shape = tuple(int(s) for s in shape)
    if not shape or any(s < 1 for s in shape):
        raise InputError(f"grid needs the shape of one example, got {shape}.")
    if isinstance(cell, bool):
        raise InputError(f"grid cell must be a positive int or a tuple of them, got {cell!r}.")
    if isinstance(cell, int):
        win: tuple[int, ...] = (int(cell),) * min(2, len(shape))
    else:
        win = tuple(int(c) for c in cell)
    if any(w > s for w, s in zip(win[::-1], shape[::-1], strict=False)):
        raise InputError(f"grid cell {win} is larger than the trailing axes of {shape}.")
    return patch_group_ids(shape, win)


def _images(image: Any) -> tuple[np.ndarray[Any, Any], bool]:
    """``(N, H, W, C)`` float64 images scaled to [0, 1] per image; whether a batch was given."""
    t = image.detach().cpu() if isinstance(image, Tensor) else torch.as_tensor(np.asarray(image))
    if not t.is_floating_point():
        t = t.double()
    batch = t.dim() == 4
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4:
        raise InputError(f"superpixels need an image (C, H, W) or a batch (N, C, H, W), got "
                         f"shape {tuple(t.shape)}.")
    t = t.double()
    lo = t.amin(dim=(1, 2, 3), keepdim=True)
    span = (t.amax(dim=(1, 2, 3), keepdim=True) - lo).clamp_min(1e-12)
    return ((t - lo) / span).permute(0, 2, 3, 1).numpy(), batch


def superpixels(image: Tensor | np.ndarray[Any, Any], method: str = "slic", *,
                n_segments: int = 50, compactness: float = 10.0, scale: float = 100.0,
                sigma: float = 0.5, min_size: int = 20) -> Tensor:
    """Superpixels of an image (or of each image of a batch) with scikit-image.

    Parameters
    ----------
    image
        ``(C, H, W)`` or ``(N, C, H, W)``, any value range (each image is rescaled to [0, 1]
        for the segmentation only).
    method
        ``"slic"`` (Achanta et al. 2012; ``n_segments``, ``compactness``, ``sigma``) or
        ``"felzenszwalb"`` (Felzenszwalb & Huttenlocher 2004; ``scale``, ``sigma``,
        ``min_size``; as XRAI uses).
    n_segments, compactness
        SLIC's approximate number of segments and colour/space trade-off.
    scale, sigma, min_size
        Felzenszwalb's observation scale, pre-smoothing (also SLIC's) and smallest segment.

    Returns
    -------
    Tensor
        ``(1, H, W)`` int64 ids ``0 .. k - 1`` for one image, ``(N, 1, H, W)`` for a batch:
        broadcast over the channels, ready for ``feature_mask=``.
    """
    if method not in _METHODS:
        raise InputError(f"superpixels method must be one of {_METHODS}, got {method!r}.")
    try:
        from skimage import segmentation
    except ImportError as err:  # pragma: no cover - scikit-image ships with the vision extra
        raise InputError("superpixels need scikit-image: pip install 'attribkit[vision]'.") from err
    imgs, batch = _images(image)
    out = []
    for img in imgs:
        if method == "slic":
            seg = segmentation.slic(img, n_segments=int(n_segments), compactness=compactness,
                                    sigma=sigma, start_label=0, channel_axis=-1,
                                    convert2lab=img.shape[-1] == 3)
        else:
            seg = segmentation.felzenszwalb(img, scale=scale, sigma=sigma,
                                            min_size=int(min_size), channel_axis=-1)
        out.append(from_labels(seg)[None])
    masks = torch.stack(out)
    return masks if batch else masks[0]


def from_labels(labels: Tensor | np.ndarray[Any, Any] | Sequence[Any],
                shape: Sequence[int] | None = None) -> Tensor:
    """A feature mask from any integer labelling (a segmentation map, word ids of tokens, ...).

    Parameters
    ----------
    labels
        Integer labels (NumPy or torch); any values, renumbered ``0 .. k - 1`` in increasing
        order (negative labels stay ``-1``: elements in no group).
    shape
        Optionally the inputs' shape the mask must broadcast to.

    Returns
    -------
    Tensor
        int64 ids shaped like ``labels``.
    """
    t = labels if isinstance(labels, Tensor) else torch.as_tensor(np.asarray(labels))
    flat = check_mask(t, tuple(t.shape))
    if shape is not None:
        check_mask(flat, tuple(shape))
    ids, _, _ = resolve_mask(flat.reshape(1, -1), torch.empty((1, flat.numel())))
    return ids.reshape(t.shape).clone()


def check(mask: Any, shape: Sequence[int]) -> Tensor:
    """Validate ``mask`` for inputs of ``shape``: integer ids that broadcast to it.

    Returns the mask broadcast to ``shape`` as int64; raises :class:`attribkit.InputError` with
    a one-line reason otherwise.
    """
    return check_mask(mask, shape).clone()


def n_groups(mask: Any) -> int:
    """The number of distinct non-negative ids (groups) in ``mask``."""
    t = check_mask(mask, tuple(torch.as_tensor(mask).shape))
    return int(torch.unique(t[t >= 0]).numel())
