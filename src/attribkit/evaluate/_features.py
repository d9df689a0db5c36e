"""Shared helpers of the evaluations: features (pixels or groups), orderings, rank statistics."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.errors import InputError
from attribkit.core.masks import resolve_mask
from attribkit.core.signs import DEFAULT_SIGN, apply_sign, check_sign, reduce_sign

__all__ = ["attribution_values", "default_target", "feature_groups", "group_importance",
           "group_ranks", "pixel_map", "spearman"]


def attribution_values(attributions: Attribution | Tensor, inputs: Tensor) -> Tensor:
    """The attribution tensor shaped like ``inputs`` (from an :class:`Attribution` or a tensor)."""
    values = attributions.values if isinstance(attributions, Attribution) else attributions
    if not isinstance(values, Tensor):
        raise InputError("attributions must be an Attribution or a tensor shaped like the inputs.")
    if values.shape != inputs.shape:
        raise InputError(
            f"attributions {tuple(values.shape)} do not match the inputs {tuple(inputs.shape)}; "
            "with several targets pick one first (attribution.for_target(k))."
        )
    return values.detach().to(inputs.dtype)


def default_target(attributions: Attribution | Tensor, target: Any) -> Any:
    """``target`` if given, else the class the attribution explained (where it recorded one)."""
    if target is not None or not isinstance(attributions, Attribution):
        return target
    t = attributions.target
    if t is not None and t.dim() == 1:
        return t
    return None


@shared_parameters("inputs")
def feature_groups(inputs: Tensor, groups: Tensor | None = None) -> Tensor:
    """A group id for every input element, ``(N, D)`` with ``D`` elements per example.

    Parameters
    ----------
    groups
        ``None``: for images ``(N, C, H, W)`` one group per pixel (its channels together),
        otherwise one group per element. Or a feature mask (:mod:`attribkit.masks`): integer
        ids that broadcast to the inputs: ``(H, W)`` patches shared by all images,
        ``(N, 1, H, W)`` per image (superpixels), ``(L,)`` / ``(N, L, 1)`` tokens, ``(N, A)``
        atoms...; any ids (renumbered ``0 .. n - 1`` in increasing order); negative ids mark
        elements that are never removed (``-1`` in the result).
    """
    n = inputs.shape[0]
    if groups is None:
        if inputs.dim() == 4:
            h, w = inputs.shape[2:]
            ids = torch.arange(h * w, device=inputs.device).reshape(1, 1, h, w)
        else:
            ids = torch.arange(inputs[0].numel(), device=inputs.device)
            ids = ids.reshape(1, *inputs.shape[1:])
        return ids.expand_as(inputs).reshape(n, -1)
    ids, _, _ = resolve_mask(groups, inputs)  # validated, broadcast, numbered 0 .. n - 1
    return ids


def group_importance(values: Tensor, groups: Tensor, sign: str = DEFAULT_SIGN) -> Tensor:
    """The importance of each group per example ``(N, G)``; empty groups get ``-inf``.

    Parameters
    ----------
    values
        ``(N, ...)`` attributions.
    groups
        ``(N, D)`` ids from :func:`feature_groups` (``-1``: in no group).
    sign
        ``"absolute"``: ``sum |a|`` over each group (pixel importance of Gradients of
        Counterfactuals, eq. 1); ``"all"``: the signed sum; ``"positive"`` / ``"negative"``: its
        positive / negative part (see :mod:`attribkit.core.signs`).
    """
    check_sign(sign)
    v = values.reshape(values.shape[0], -1)
    v = v.abs() if sign == "absolute" else v
    n_groups = int(groups.max()) + 1
    col = torch.where(groups < 0, torch.full_like(groups, n_groups), groups)  # -1: no group
    imp = torch.zeros((v.shape[0], n_groups + 1), dtype=v.dtype, device=v.device)
    imp.scatter_add_(1, col, v)
    size = torch.zeros_like(imp).scatter_add_(1, col, torch.ones_like(v))
    imp, size = imp[:, :n_groups], size[:, :n_groups]
    if sign in ("positive", "negative"):
        imp = apply_sign(imp, sign)
    return torch.where(size > 0, imp, torch.full_like(imp, -torch.inf))


def group_ranks(importance: Tensor) -> Tensor:
    """The rank of each group per example (0 = most important; ties keep the id order)."""
    order = torch.sort(importance, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ar = torch.arange(order.shape[1], device=order.device).expand_as(order)
    ranks.scatter_(1, order, ar)
    return ranks


def pixel_map(values: Tensor, sign: str = DEFAULT_SIGN) -> Tensor:
    """Per-position importance: the channels of ``(N, C, H, W)`` images reduced under ``sign``
    (``sum_c |A|`` by default); other shapes keep their positions, with ``sign`` applied to each.
    """
    return reduce_sign(values, 1, sign) if values.dim() == 4 else apply_sign(values, sign)


def _average_ranks(x: Tensor) -> Tensor:
    """Ranks of a 1-D tensor with ties sharing their average rank (as ``scipy.stats.rankdata``)."""
    _, inverse, counts = torch.unique(x, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).to(torch.float64)
    average = ends - (counts.to(torch.float64) - 1) / 2
    out: Tensor = average[inverse]
    return out


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman rank correlation between the rows of ``a`` and ``b`` (flattened), ``(N,)``.

    Ties get average ranks; a constant row has no defined correlation and gives ``nan``.
    """
    a2, b2 = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    out = []
    for ra, rb in zip(a2, b2, strict=True):
        xa, xb = _average_ranks(ra.detach().cpu()), _average_ranks(rb.detach().cpu())
        xa, xb = xa - xa.mean(), xb - xb.mean()
        den = (xa.norm() * xb.norm()).item()
        out.append(float((xa @ xb).item() / den) if den > 0 else float("nan"))
    return torch.tensor(out, dtype=torch.float64)
