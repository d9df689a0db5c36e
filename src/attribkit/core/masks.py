"""Feature masks: integer group ids that tie input elements into features (players, segments).

A feature mask holds one integer id per input element. Elements with the same id form one
feature: occlusion sets them to the baseline together, Shapley values treat them as one player,
the evaluations remove them together. The mask is shaped like one example, like the batch, or
any shape that broadcasts to the inputs under PyTorch's rules (``(H, W)`` or ``(1, H, W)`` for
``(N, C, H, W)`` images: all channels of a pixel in the same group; ``(N, 1, H, W)``: one
segmentation per image). Ids need not be contiguous (``{0, 5, 9}`` are three groups, numbered
in increasing order); a negative id marks elements that belong to no group: they always keep
the input's value and get attribution 0.

This module validates masks once for every method (:func:`resolve_mask`) and moves values
between groups and elements (:func:`group_to_features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.errors import InputError

__all__ = ["check_mask", "group_to_features", "pick_mask", "resolve_mask"]


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
