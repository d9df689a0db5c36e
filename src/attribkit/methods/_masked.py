"""Feature ablation: occlusion of whole groups of a feature mask (Captum's FeatureAblation).

Group ``g`` of example ``i`` is set to the fill value (the baseline, or each background sample in
turn) while everything else keeps the input's value; the drop ``F(x) - F(x with g filled)`` is
the group's. The occluded copies are built chunk by chunk, so only one chunk is in memory.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from attribkit.core.engine import Problem

__all__ = ["group_drops", "occluded_drops"]


def group_drops(p: Problem, ids: Tensor, n: int, fills: Tensor | None,
                rows_per_call: int) -> Tensor:
    """``F(x) - F(x with one group filled)`` per example and group, averaged over the fills.

    Parameters
    ----------
    p
        The problem (with a baseline when ``fills`` is ``None``).
    ids
        ``(N, D)`` group ids ``0 .. n - 1`` (negative: never occluded).
    n
        The number of groups.
    fills
        ``(B, ...)`` fill values shaped like one example (Prediction Difference), or ``None``:
        the baseline.
    rows_per_call
        Rows per model call.

    Returns
    -------
    Tensor
        ``(N, n)`` or ``(N, K, n)`` with several targets.
    """
    dev = p.inputs.device
    ids = ids.to(dev)
    shape = tuple(p.inputs.shape[1:])

    def mask(ex: Tensor, g: Tensor) -> Tensor:
        return (ids[ex] == g[:, None]).reshape(-1, *shape)

    return occluded_drops(p, n, mask, fills, rows_per_call, "feature ablation")


def occluded_drops(p: Problem, n: int, mask: Callable[[Tensor, Tensor], Tensor],
                   fills: Tensor | None, rows_per_call: int, desc: str) -> Tensor:
    """``F(x) - F(x with mask k filled)`` per example and mask ``k < n``, averaged over the fills.

    Parameters
    ----------
    p
        The problem (with a baseline when ``fills`` is ``None``).
    n
        The number of masks per example.
    mask
        ``mask(ex, k)`` for rows of example ids and mask numbers: a boolean tensor that
        broadcasts to ``(R, *example_shape)``, true where the row is filled.
    fills
        ``(B, ...)`` fill values shaped like one example, or ``None``: the baseline.
    rows_per_call
        Rows per model call.
    desc
        Progress bar label.

    Returns
    -------
    Tensor
        ``(N, n)`` or ``(N, K, n)`` with several targets.
    """
    x = p.inputs
    dev = x.device
    n_fill = 1 if fills is None else int(fills.shape[0])
    per_ex = n_fill * n

    def make(sl: slice) -> Tensor:
        rows = torch.arange(sl.start, sl.stop, device=dev)
        ex, rest = rows // per_ex, rows % per_ex
        j, k = rest // n, rest % n
        if fills is None:
            assert p.baseline is not None
            fill = p.baseline[ex]
        else:
            fill = fills[j]
        return torch.where(mask(ex, k), fill, x[ex])

    example = torch.arange(p.n, device=dev).repeat_interleave(per_ex)
    old = p.batch_size
    p.batch_size = rows_per_call
    try:
        scores = p.scores(make, example, desc=desc)
    finally:
        p.batch_size = old
    assert p.output is not None
    scores = scores.reshape(p.n, n_fill, n, *scores.shape[1:]).mean(dim=1)
    drops = p.output[:, None] - scores
    return drops.movedim(1, -1)
