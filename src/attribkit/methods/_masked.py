"""Feature ablation: occlusion of whole groups of a feature mask (Captum's FeatureAblation).

Group ``g`` of example ``i`` is set to the fill value (the baseline, or each background sample in
turn) while everything else keeps the input's value; the drop ``F(x) - F(x with g filled)`` is
the group's. The occluded copies are built chunk by chunk, so only one chunk is in memory.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, fx

from attribkit.core import fastgraph
from attribkit.core.engine import DEFAULT_MEMORY_BUDGET, Problem
from attribkit.core.localforward import Local, crop_boxes
from attribkit.core.problem import check_finite
from attribkit.core.progress import progress_bar

#: Rows per model call where only the boxes are computed, as a multiple of a full pass's
#: (a local pass holds whole activations only in the small late layers).
LOCAL_ROWS = 4
#: The most bytes of one image's activations kept for local passes (EfficientNet-Lite0 at
#: 224 x 224: 77 MiB); larger images run whole passes.
LOCAL_MAX_BYTES = DEFAULT_MEMORY_BUDGET // 2

#: Boxes of the masks: their ``(h, w)`` size, and ``(top, left)`` of mask numbers ``k`` of
#: example ``e``.
Boxes = tuple[tuple[int, int], Callable[[Tensor, int], tuple[Tensor, Tensor]]]

__all__ = ["group_boxes", "group_drops", "occluded_drops"]


def group_drops(p: Problem, ids: Tensor, n: int, fills: Tensor | None,
                rows_per_call: int, local_rows: int | None = None) -> Tensor:
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
    local_rows
        Rows per call of local passes, where the groups of images are compact enough for them
        (:func:`group_boxes`).

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

    boxes = group_boxes(ids.reshape(-1, *shape), n) if len(shape) == 3 else None
    return occluded_drops(p, n, mask, fills, rows_per_call, "feature ablation", boxes,
                          local_rows)


#: The largest share of an image a group's bounding box may cover for local passes.
GROUP_BOX_SHARE = 0.25


def group_boxes(ids: Tensor, n: int) -> Boxes | None:
    """Boxes of the groups of ``(N, C, H, W)`` ids: one size (the largest bounding box of a
    group over the examples) and each group's corner per example; ``None`` where a box would
    cover more than :data:`GROUP_BOX_SHARE` of the image or there are too many groups to
    compute them cheaply (the groups then run whole passes).

    Parameters
    ----------
    ids
        ``(N, C, H, W)`` group ids ``0 .. n - 1`` (negative: never occluded).
    n
        The number of groups.
    """
    big, hh, ww = int(ids.shape[0]), int(ids.shape[2]), int(ids.shape[3])
    if n == 0 or big * n * hh * ww > (64 << 20):
        return None
    tops, lefts, hs, ws = [], [], [], []
    where = torch.arange(hh * ww, device=ids.device)
    for e in range(big):
        g = ids[e].reshape(-1, hh * ww)  # (C, H W): a group may differ from channel to channel
        ok = g >= 0
        onehot = torch.zeros((n, hh * ww), dtype=torch.bool, device=ids.device)
        onehot[g[ok].long(), where.expand_as(g)[ok]] = True
        onehot = onehot.reshape(n, hh, ww)
        rows, cols = onehot.any(dim=2), onehot.any(dim=1)  # (n, H), (n, W)
        first_r = rows.to(torch.int8).argmax(1)
        last_r = hh - 1 - rows.flip(1).to(torch.int8).argmax(1)
        first_c = cols.to(torch.int8).argmax(1)
        last_c = ww - 1 - cols.flip(1).to(torch.int8).argmax(1)
        present = rows.any(1)
        hs.append(int(torch.where(present, last_r - first_r + 1, 1).max()))
        ws.append(int(torch.where(present, last_c - first_c + 1, 1).max()))
        tops.append(first_r)
        lefts.append(first_c)
    h, w = max(hs), max(ws)
    if h * w > GROUP_BOX_SHARE * hh * ww:
        return None
    top = torch.stack(tops).clamp_max(hh - h)  # (N, n)
    left = torch.stack(lefts).clamp_max(ww - w)

    def corner(k: Tensor, e: int) -> tuple[Tensor, Tensor]:
        return top[e, k], left[e, k]

    return (h, w), corner


def occluded_drops(p: Problem, n: int, mask: Callable[[Tensor, Tensor], Tensor],
                   fills: Tensor | None, rows_per_call: int, desc: str,
                   boxes: Boxes | None = None, local_rows: int | None = None) -> Tensor:
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
    boxes
        Where each mask lies in an image ``(N, C, H, W)``: the box size and the ``(top,
        left)`` of mask numbers, so that a traced model can compute only what a mask changes
        (:mod:`attribkit.core.localforward`); ``None``: whole forward passes.
    local_rows
        Rows per call of the local passes (default: ``rows_per_call``).

    Returns
    -------
    Tensor
        ``(N, n)`` or ``(N, K, n)`` with several targets.
    """
    x = p.inputs
    dev = x.device
    n_fill = 1 if fills is None else int(fills.shape[0])
    per_ex = n_fill * n

    def parts(sl: slice) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Examples, fill rows and masks of rows ``sl``, and where each fill comes from."""
        rows = torch.arange(sl.start, sl.stop, device=dev)
        ex, rest = rows // per_ex, rows % per_ex
        j, k = rest // n, rest % n
        if fills is None:
            assert p.baseline is not None
            return ex, k, p.baseline, ex, mask(ex, k)
        return ex, k, fills, j, mask(ex, k)

    def make(sl: slice) -> Tensor:
        ex, _, source, which, m = parts(sl)
        return torch.where(m, source[which], x[ex])

    def make_boxes(sl: slice, top: Tensor, left: Tensor, h: int, w: int) -> Tensor:
        """The boxes of rows ``sl`` alone (no whole copies of the images)."""
        ex, _, source, which, m = parts(sl)
        m = m.expand(len(ex), *x.shape[1:])
        r = torch.arange(len(ex), device=dev)
        return torch.where(crop_boxes(m, r, top, left, h, w),
                           crop_boxes(source, which, top, left, h, w),
                           crop_boxes(x, ex, top, left, h, w))

    example = torch.arange(p.n, device=dev).repeat_interleave(per_ex)
    scores = None if boxes is None else _local_scores(
        p, make, make_boxes, per_ex, n, boxes, rows_per_call, local_rows or rows_per_call, desc)
    if scores is None:
        scores = p.scores(make, example, desc=desc, rows=rows_per_call)
    assert p.output is not None
    scores = scores.reshape(p.n, n_fill, n, *scores.shape[1:]).mean(dim=1)
    drops = p.output[:, None] - scores
    return drops.movedim(1, -1)


def _local_scores(p: Problem, make: Callable[[slice], Tensor],
                  make_boxes: Callable[[slice, Tensor, Tensor, int, int], Tensor], per_ex: int,
                  n: int, boxes: Boxes, whole_rows: int, rows: int, desc: str
                  ) -> Tensor | None:
    """Target scores of all rows by local passes (:class:`Local`) of the fast copy or the
    traced model, example by example, or ``None`` where they do not apply (the fast path
    turned off, a model that does not trace, not images, extra forward arguments).

    On a CPU only (on a GPU whole passes are sized by the memory budget, and local ones are
    not measured there). The first call of each example (``whole_rows`` rows) is also run
    whole; where the two differ by more than ``sqrt(eps)`` of the dtype (relative), or where
    no operation could work on boxes (the larger calls would then be whole passes), the rest
    runs whole as well. Later calls take ``rows`` rows.
    """
    x = p.inputs
    if (p.layer is not None or p.compiled is not None or p.forward_args or x.dim() != 4
            or not x.is_floating_point() or x.device.type != "cpu" or not fastgraph.enabled()):
        return None
    gm = p.fast if isinstance(p.fast, fx.GraphModule) else fastgraph.trace(p.model)
    if gm is None:
        return None
    (h, w), corner = boxes
    if h >= x.shape[2] and w >= x.shape[3]:
        return None
    res: list[Tensor] = []
    trusted = True
    with torch.no_grad(), progress_bar(p.n * per_ex, desc, p.progress) as bar:
        for e in range(p.n):
            local = Local(gm, x[e:e + 1].contiguous(memory_format=torch.channels_last),
                          (h, w)) if trusted else None
            trusted = local is not None and local.usable and local.nbytes <= LOCAL_MAX_BYTES
            first, end = e * per_ex, (e + 1) * per_ex
            starts = [first, *range(first + whole_rows, end, rows)]
            for s, stop in zip(starts, [*starts[1:], end], strict=True):
                sl = slice(s, stop)
                ex = torch.full((stop - s,), e, dtype=torch.long, device=x.device)
                top, left = corner(torch.arange(s, stop, device=x.device) % n, e)
                if trusted and s > first:
                    assert local is not None
                    out = local(lambda sl=sl: make(sl), top, left,  # type: ignore[misc]
                                patch=make_boxes(sl, top, left, h, w))
                else:
                    pts = make(sl)
                    out = p.call(pts, ex)
                    if trusted and local is not None:  # the first call: compare the two
                        near = local(pts, top, left)
                        trusted = local.local_nodes > 0 and fastgraph.reproduces(near, out)
                sc = p.target.select(out, ex)
                check_finite(sc, "the model output")
                res.append(sc)
                bar.update(sl.stop - sl.start)
    p.forward_evaluations += p.n * per_ex
    return torch.cat(res)
