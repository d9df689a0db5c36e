"""Feature masks: integer group ids that tie input elements into features (players, segments).

A feature mask holds one integer id per input element. Elements with the same id form one
feature: occlusion sets them to the baseline together, Shapley values treat them as one player,
the evaluations remove them together. The mask is shaped like one example, like the batch, or
any shape that broadcasts to the inputs under PyTorch's rules (``(H, W)`` or ``(1, H, W)`` for
``(N, C, H, W)`` images: all channels of a pixel in the same group; ``(N, 1, H, W)``: one
segmentation per image). Ids need not be contiguous (``{0, 5, 9}`` are three groups, numbered
in increasing order); a negative id marks elements that belong to no group: they always keep
the input's value and get attribution 0.

This module validates masks once for every method (:func:`resolve_mask`), moves values
between groups and elements (:func:`group_to_features`), and makes masks: :func:`grid`,
:func:`superpixels` (scikit-image, imported when called), :func:`from_labels`, with
:func:`check` and :func:`n_groups` for users (all five public as :mod:`attribkit.masks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.coalitions import patch_group_ids
from attribkit.core.errors import InputError

__all__ = ["check", "check_mask", "from_labels", "grid", "group_to_features", "n_groups",
           "pick_mask", "resolve_mask", "superpixels"]


def pick_mask(feature_mask: Any, groups: Any) -> Any:
    """The mask under either keyword: ``feature_mask=`` (the name used everywhere) or ``groups=``
    (its older alias); giving both is an error."""
    if feature_mask is not None and groups is not None:
        raise InputError("give the group ids once: feature_mask= (groups= is its older alias).")
    return feature_mask if feature_mask is not None else groups


def check_mask(mask: Any, shape: Sequence[int]) -> Tensor:
    """Validate a feature mask against an input ``shape``; return it as int64, broadcast.

    Parameters
    ----------
    mask
        Integer ids: a tensor or a NumPy array whose shape broadcasts to ``shape``.
    shape
        The shape the mask must cover (the inputs ``(N, ...)`` or one example).

    Returns
    -------
    Tensor
        ``shape`` int64 ids (an expanded view; negative ids are kept).
    """
    if mask is None:
        raise InputError("feature_mask is None: give integer group ids, one per input element.")
    if not isinstance(mask, Tensor):
        try:
            mask = torch.as_tensor(mask)
        except (TypeError, ValueError, RuntimeError) as err:
            raise InputError(f"feature_mask must be an integer tensor or array, got "
                             f"{type(mask).__name__}.") from err
    if mask.dtype == torch.bool or mask.dtype.is_floating_point or mask.dtype.is_complex:
        raise InputError(f"feature_mask must hold integer group ids, got {mask.dtype}; convert "
                         "labels with .long() (or use attribkit.masks.from_labels).")
    shape = tuple(int(s) for s in shape)
    m = tuple(int(s) for s in mask.shape)
    fits = len(m) <= len(shape) and all(
        a in (1, b) for a, b in zip(m[::-1], shape[::-1], strict=False))
    if not fits:
        raise InputError(
            f"feature_mask of shape {tuple(mask.shape)} does not broadcast to the inputs "
            f"{shape}; give one example's shape, the batch's, or e.g. (1, H, W) / (N, 1, H, W) "
            "to share ids over channels.")
    out: Tensor = mask.long().expand(shape)
    return out


def resolve_mask(mask: Any, inputs: Tensor) -> tuple[Tensor, int, Tensor]:
    """Group ids of every element of ``inputs`` ``(N, ...)``, numbered ``0 .. n - 1``.

    Parameters
    ----------
    mask
        A feature mask (see the module docstring), or ``None``: every element its own group.
    inputs
        ``(N, ...)`` inputs.

    Returns
    -------
    ids : Tensor
        ``(N, D)`` int64: the group of each element in ``0 .. n - 1``, or ``-1`` (no group).
    n : int
        The number of groups (distinct non-negative ids over the whole batch).
    labels : Tensor
        ``(n,)`` the user's id of each group (``arange(n)`` when the ids were contiguous).
    """
    n_ex = int(inputs.shape[0])
    d = int(inputs[:1].numel())
    if mask is None:
        ids = torch.arange(d, device=inputs.device).expand(n_ex, d)
        return ids, d, torch.arange(d)
    full = check_mask(mask, tuple(inputs.shape)).to(inputs.device).reshape(n_ex, d)
    present = full[full >= 0]
    if present.numel() == 0:
        raise InputError("feature_mask has no groups: every id is negative (negative ids mark "
                         "elements that belong to no group).")
    labels, inverse = torch.unique(present, sorted=True, return_inverse=True)
    n = int(labels.numel())
    if int(labels[-1]) == n - 1:  # already 0 .. n - 1
        ids = torch.where(full < 0, torch.full_like(full, -1), full)
    else:
        ids = torch.full_like(full, -1)
        ids[full >= 0] = inverse
    return ids, n, labels.cpu()


def group_to_features(per_group: Tensor, ids: Tensor, shape: Sequence[int], *,
                      split: bool = False) -> Tensor:
    """Element values from group values: each element gets its group's value.

    Parameters
    ----------
    per_group
        ``(N, n)`` or ``(N, K, n)`` one value per group.
    ids
        ``(N, D)`` group ids from :func:`resolve_mask` (negative: no group, value 0).
    shape
        The inputs' shape ``(N, ...)``.
    split
        ``False``: every element gets its group's whole value (occlusion, Captum's
        FeatureAblation); ``True``: the value is split equally over the group's elements, so
        the elements sum to the group values (Shapley values, KernelSHAP, LIME).

    Returns
    -------
    Tensor
        ``(N, ...)`` (or ``(N, K, ...)``) element values.
    """
    n_ex, n = per_group.shape[0], per_group.shape[-1]
    col = torch.where(ids < 0, torch.full_like(ids, n), ids)
    per = per_group
    if split:
        counts = torch.zeros((n_ex, n + 1), dtype=per_group.dtype, device=per_group.device)
        counts.scatter_add_(1, col, torch.ones_like(col, dtype=per_group.dtype))
        view = counts[:, :n].clamp_min(1).reshape(n_ex, *([1] * (per_group.dim() - 2)), n)
        per = per_group / view
    per = torch.cat([per, torch.zeros_like(per[..., :1])], dim=-1)
    if per_group.dim() == 3:
        idx = col[:, None, :].expand(-1, per_group.shape[1], -1)
        return per.gather(-1, idx).reshape(n_ex, per_group.shape[1], *shape[1:])
    return per.gather(-1, col).reshape(tuple(shape))


# -- making masks (public as attribkit.masks) ------------------------------------------------------
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
