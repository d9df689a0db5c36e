"""Occlusion (Zeiler & Fergus 2014) and Prediction Difference (Zintgraf et al. 2017).

A window slides over the input; each position is replaced by a fill value (the baseline) and the
drop of the target score, ``F(x) - F(x with the window filled)``, is credited to every feature
under the window; a feature covered by several windows gets the mean of their drops.

* Occlusion-1: a window of one feature (the default), ``a_i = v(N) - v(N \\ {i})``: the
  independent effect of ``i`` plus every interaction it takes part in, each given whole
  (Deng et al. 2023, Table 1), so the attributions are not complete.
* Occlusion-patch: a window of several features with a stride.
* Prediction Difference: Occlusion averaged over fill values drawn from a background set.

All occluded copies are built chunk by chunk and evaluated in batches. On images with a model
the forward fast path traces (:mod:`attribkit.core.fastgraph`), a window's copy differs from
the image only in a box, and each forward pass computes only what that box reaches, layer by
layer (:mod:`attribkit.core.localforward`; 4 times the rows per call, since the large early
activations are not held whole; a given ``batch_size`` is kept). So does feature ablation
(``feature_mask=``) where every group fits a box of at most a quarter of the image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.background import background_rows, mean_over, split_background
from attribkit.core.cost import announce, photo_like, photo_window
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import BaselineError, InputError
from attribkit.core.masks import group_to_features, resolve_mask
from attribkit.core.multi import several_inputs
from attribkit.core.notes import note
from attribkit.core.probes import forward_rows
from attribkit.methods._masked import LOCAL_ROWS, Boxes, group_drops, occluded_drops
from attribkit.methods.registry import register

__all__ = ["occlusion", "prediction_difference", "window_grid"]


def _tuple(value: int | Sequence[int] | None, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    t = (int(value),) if isinstance(value, int) else tuple(int(v) for v in value)
    if not t or any(v < 1 for v in t):
        raise InputError(f"{name} must be a positive int or a tuple of positive ints, got "
                         f"{value!r}.")
    return t


def window_grid(shape: Sequence[int], window: int | Sequence[int] | None = None,
                stride: int | Sequence[int] | None = None) -> list[Tensor]:
    """Which features each window position covers, one boolean matrix per axis.

    Parameters
    ----------
    shape
        The shape of one example (without the batch axis).
    window
        The window on the trailing axes; the other axes are covered whole. A tuple of ``k``
        sizes covers the last ``k`` axes. An int covers the two spatial axes of an image (an
        example of shape ``(C, H, W)``: ``w`` means a ``w x w`` patch over all channels) and the
        last axis of any other shape. ``None``: one feature.
    stride
        The step on the same axes as ``window`` (default: the window, non-overlapping; an int
        is the same step on each of the window's axes).

    Returns
    -------
    list of Tensor
        For each axis ``d``, ``(P_d, D_d)``: position ``p`` covers features ``[p s, p s + w)``
        (clipped at the end); there are ``ceil((D - w) / s) + 1`` positions, so the windows
        reach the end of the axis (with ``stride > window`` some features stay uncovered and
        get 0).
    """
    shape = tuple(int(s) for s in shape)
    win = _tuple(window, "window") or (1,) * len(shape)
    if len(shape) == 3 and isinstance(window, int) and not isinstance(window, bool):
        win = (int(window), int(window))  # an image (C, H, W): a square over H and W
    if len(win) > len(shape):
        raise InputError(f"window {win} has more axes than one example of shape {shape}.")
    step = _tuple(stride, "stride") or win
    if len(step) == 1 and len(win) > 1:
        step = step * len(win)
    if len(step) != len(win):
        raise InputError(f"stride {step} must have as many axes as the window {win}.")
    lead = len(shape) - len(win)
    full_win = tuple(shape[:lead]) + win
    full_step = tuple(shape[:lead]) + step
    grids = []
    for d, (size, w, s) in enumerate(zip(shape, full_win, full_step, strict=True)):
        if w > size:
            raise InputError(
                f"the window ({w}) is larger than axis {d + 1} of the input ({size}); inputs of "
                f"shape {shape} need a window of at most {shape[lead:]} on the trailing axes.")
        positions = -(-(size - w) // s) + 1
        starts = torch.arange(positions) * s
        idx = torch.arange(size)
        grids.append((idx[None, :] >= starts[:, None]) & (idx[None, :] < starts[:, None] + w))
    return grids


def _occluded_drops(p: Problem, grids: list[Tensor], fills: Tensor | None,
                    rows_per_call: int, local_rows: int) -> Tensor:
    """``F(x) - F(occluded)`` per example and window, averaged over the fills: ``(N, [K,] P)``."""
    dev = p.inputs.device
    grids = [g.to(dev) for g in grids]
    sizes = [int(g.shape[0]) for g in grids]
    n_win = 1
    for s in sizes:
        n_win *= s
    dims = len(grids)

    def mask(ex: Tensor, w: Tensor) -> Tensor:
        m = torch.ones((ex.shape[0],) + (1,) * dims, dtype=torch.bool, device=dev)
        for d in range(dims - 1, -1, -1):
            pos = w % sizes[d]
            w = w // sizes[d]
            shape = [ex.shape[0]] + [1] * dims
            shape[d + 1] = -1
            m = m & grids[d][pos].reshape(shape)
        return m

    return occluded_drops(p, n_win, mask, fills, rows_per_call, "occlusion", _boxes(grids),
                          local_rows)


def _boxes(grids: list[Tensor]) -> Boxes | None:
    """The windows' boxes on the last two axes of ``(C, H, W)`` examples (see
    :func:`~attribkit.methods._masked.occluded_drops`), or ``None`` for other shapes."""
    if len(grids) != 3:
        return None
    gh, gw = grids[1], grids[2]
    h, w = int(gh.sum(1).max()), int(gw.sum(1).max())
    top = gh.to(torch.int8).argmax(1).clamp_max(int(gh.shape[1]) - h)  # first covered row
    left = gw.to(torch.int8).argmax(1).clamp_max(int(gw.shape[1]) - w)
    n_w, n_h = int(gw.shape[0]), int(gh.shape[0])

    def corner(k: Tensor, _e: int) -> tuple[Tensor, Tensor]:
        return top[(k // n_w) % n_h], left[k % n_w]

    return (h, w), corner


def _spread(drops: Tensor, grids: list[Tensor]) -> Tensor:
    """Mean drop of the windows covering each feature: ``(N, [K,] P) -> (N, [K,] ...)``."""
    lead = drops.dim() - 1
    t = drops.reshape(*drops.shape[:-1], *[int(g.shape[0]) for g in grids])
    count = torch.ones([int(g.shape[0]) for g in grids], dtype=drops.dtype, device=drops.device)
    for g in grids:
        gf = g.to(drops.dtype).to(drops.device)
        t = torch.tensordot(t, gf, dims=([lead], [0]))
        count = torch.tensordot(count, gf, dims=([0], [0]))
    return t / count.clamp_min(1)  # features no window covers (stride > window) get 0


@register(
    "occlusion",
    aliases=("occlusion_1", "occlusion_patch"),
    family="perturbation",
    needs_baseline=True,
    complete=False,
    axioms={"sensitivity_a", "sensitivity_b", "implementation_invariance", "linearity",
            "symmetry"},
    summary="Occlusion: the drop of the score when a sliding window is replaced by the baseline.",
)
@several_inputs()
@shared_parameters("model", "inputs", "target", "batch_size", "progress", "forward_args")
def occlusion(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    window: int | Sequence[int] | None = None,
    stride: int | Sequence[int] | None = None,
    feature_mask: Tensor | None = None,
    fill: float | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Occlusion-1 (``window=None``) or Occlusion-patch with a sliding window.

    Parameters
    ----------
    baseline
        What fills an occluded window: ``None`` (zeros), a number, a name, a Baseline or a
        tensor shaped like the inputs.
    window
        The window on the trailing axes (``(8, 8)`` on ``(N, 3, H, W)`` images covers all
        channels of an 8 x 8 patch; so does ``8``, since an int on ``(C, H, W)`` examples is a
        square over the two spatial axes, and the last axis on other shapes); ``None``: one
        feature at a time (Occlusion-1).
    stride
        The window's step (default: the window size).
    feature_mask
        Integer group ids instead of a window (feature ablation, as Captum's FeatureAblation):
        shaped like one example, like the inputs, or broadcasting to them (``(1, H, W)``:
        superpixels over all channels; see :mod:`attribkit.masks`). Each group is set to the
        baseline as a whole and its drop goes to every one of its features; negative ids are
        never occluded (value 0).
    fill
        Shorthand for a constant ``baseline``.

    Returns
    -------
    Attribution
        Each feature's mean drop over the windows that cover it; ``extras["window_drops"]``
        ``(N, [K,] P_1, ..., P_d)`` the drop of every window position. With ``feature_mask``:
        each feature's group drop; ``extras["group_drops"]`` ``(N, [K,] n)``,
        ``extras["group_ids"]`` and ``extras["group_labels"]`` (the user's id of each group).
    """
    if fill is not None:
        if baseline is not None:
            raise InputError("give either fill= or baseline=, not both.")
        baseline = float(fill)
    _one_of(window, stride, feature_mask)
    baseline, background = split_background(baseline, inputs)
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, black_box=True) as p:
        bg = None if background is None else background_rows(background, p.inputs)
        if bg is not None:  # the drops are averaged over the rows (Prediction Difference)
            mean_over(p, bg, lambda: torch.zeros(()))
        if feature_mask is not None:
            return _ablate(p, feature_mask, bg, batch_size, "occlusion")
        window, stride = photo_windows(p, window, stride, "occlusion")
        grids = window_grid(p.inputs.shape[1:], window, stride)
        announce("occlusion", p.n * _positions(grids) * (1 if bg is None else len(bg)),
                 progress, "or a larger window=")
        drops = _occluded_drops(p, grids, bg, *_rows(p, batch_size))
        values = _spread(drops, grids)
        params = {"window": window, "stride": stride if stride is not None else window,
                  "windows": int(drops.shape[-1]), "forward_evaluations": p.forward_evaluations}
        if bg is not None:
            params["background_size"] = int(bg.shape[0])
        shaped = drops.reshape(*drops.shape[:-1], *[int(g.shape[0]) for g in grids])
        return p.result(values, "occlusion", params, extras={"window_drops": shaped})


@register(
    "prediction_difference",
    family="perturbation",
    needs_baseline=False,
    complete=False,
    axioms={"sensitivity_b", "implementation_invariance", "linearity"},
    summary="Prediction Difference: occlusion averaged over fill values from a background set.",
)
@several_inputs()
@shared_parameters("model", "inputs", "target", "batch_size", "progress", "forward_args")
def prediction_difference(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    background: Tensor,
    target: Any = None,
    baseline: Any = None,
    window: int | Sequence[int] | None = None,
    stride: int | Sequence[int] | None = None,
    feature_mask: Tensor | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Occlusion marginalised over a background set: ``F(x) - E_b F(x with the window := b)``.

    Parameters
    ----------
    background
        ``(B, ...)`` samples shaped like one example each (e.g. training data); every window is
        filled with each of them in turn and the drops are averaged.
    baseline
        Not used (the background takes its place); must be ``None``.
    window
        The window on the trailing axes, as for :func:`occlusion` (an int on ``(C, H, W)``
        examples is a square over H and W); ``None``: one feature at a time.
    stride
        The window's step (default: the window size).
    feature_mask
        Integer group ids instead of a window, as for :func:`occlusion`: each group is filled
        with each background sample as a whole.

    Returns
    -------
    Attribution
        Each feature's mean expected drop over the windows that cover it;
        ``extras["window_drops"]`` per window position.
    """
    if baseline is not None:
        raise InputError("prediction_difference takes its fill values from background=, not "
                         "from a baseline.")
    _one_of(window, stride, feature_mask)
    with prepare(model, inputs, target=target, needs_baseline=False, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, black_box=True) as p:
        bg = _check_background(background, p.inputs)
        if feature_mask is not None:
            return _ablate(p, feature_mask, bg, batch_size, "prediction_difference")
        window, stride = photo_windows(p, window, stride, "prediction_difference")
        grids = window_grid(p.inputs.shape[1:], window, stride)
        announce("prediction_difference", p.n * _positions(grids) * int(bg.shape[0]), progress,
                 "or a larger window=")
        drops = _occluded_drops(p, grids, bg, *_rows(p, batch_size))
        values = _spread(drops, grids)
        params = {"window": window, "stride": stride if stride is not None else window,
                  "background_size": int(bg.shape[0]), "windows": int(drops.shape[-1]),
                  "forward_evaluations": p.forward_evaluations}
        shaped = drops.reshape(*drops.shape[:-1], *[int(g.shape[0]) for g in grids])
        return p.result(values, "prediction_difference", params,
                        extras={"window_drops": shaped})


def _check_background(background: object, inputs: Tensor) -> Tensor:
    """A background set ``(B, ...)`` whose rows are shaped like one example of ``inputs``."""
    if not isinstance(background, Tensor):
        raise BaselineError(f"background must be a tensor of samples (B, ...), got "
                            f"{type(background).__name__}.")
    if background.dim() != inputs.dim() or background.shape[1:] != inputs.shape[1:] or (
            background.shape[0] == 0):
        raise BaselineError(
            f"background of shape {tuple(background.shape)} does not fit inputs of shape "
            f"{tuple(inputs.shape)}: give (B, {', '.join(str(s) for s in inputs.shape[1:])}) "
            "samples, B >= 1.")
    if background.dtype != inputs.dtype:
        raise BaselineError(f"background dtype {background.dtype} does not match the inputs' "
                            f"{inputs.dtype}; convert it with .to({inputs.dtype}).")
    if not torch.isfinite(background).all():
        raise BaselineError("the background contains NaN or inf values.")
    return background.detach().to(inputs.device)


def photo_windows(p: Problem, window: Any, stride: Any, method: str) -> tuple[Any, Any]:
    """The command line's window and stride on photos where the call gives neither (one value
    at a time is 150,528 forward passes per 224 x 224 photo), with a one-line note."""
    if window is not None or stride is not None or not photo_like(p.inputs):
        return window, stride
    window, stride = photo_window(p.inputs)
    h, w = (int(s) for s in p.inputs.shape[-2:])
    note(f"{method} on {h} x {w} images occludes {window[0]} x {window[1]} windows with "
         f"stride {stride[0]} (one value at a time would be "
         f"{p.inputs[0].numel():,} forward passes per image); pass window= and stride= (or "
         "feature_mask=) to choose.")
    return window, stride


def _rows(p: Problem, batch_size: int | None) -> tuple[int, int]:
    """Rows per call of whole passes and of local passes (``batch_size`` for both if given)."""
    rows = forward_rows(p, batch_size)
    return rows, rows if batch_size is not None else rows * LOCAL_ROWS


def _positions(grids: list[Tensor]) -> int:
    return math.prod(int(g.shape[0]) for g in grids)


def _one_of(window: object, stride: object, feature_mask: object) -> None:
    if feature_mask is not None and (window is not None or stride is not None):
        raise InputError("give either a window (and stride) or a feature_mask, not both: the "
                         "mask's groups replace the sliding window.")


def _ablate(p: Problem, feature_mask: Any, fills: Tensor | None, batch_size: int | None,
            method: str) -> Attribution:
    """Occlusion of the groups of ``feature_mask``: every feature gets its group's drop."""
    ids, n, labels = resolve_mask(feature_mask, p.inputs)
    announce(method, p.n * n * (1 if fills is None else int(fills.shape[0])), p.progress,
             "or fewer groups")
    drops = group_drops(p, ids, n, fills, *_rows(p, batch_size))
    values = group_to_features(drops, ids, tuple(p.inputs.shape))
    params: dict[str, Any] = {"feature_mask": True, "groups": n,
                              "forward_evaluations": p.forward_evaluations}
    if fills is not None:
        params["background_size"] = int(fills.shape[0])
    extras = {"group_drops": drops, "group_ids": ids.reshape(p.inputs.shape),
              "group_labels": labels}
    return p.result(values, method, params, extras=extras)
