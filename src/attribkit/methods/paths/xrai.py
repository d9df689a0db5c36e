"""XRAI (Kapishnikov, Bolukbasi, Viegas & Terry 2019, "XRAI: better attributions through
regions").

A base attribution (Integrated Gradients by default, any registered method otherwise) is summed
over the channels by its maximum, and the image is over-segmented at several scales
(:mod:`._segments`). Regions are then added greedily: at each step the region whose *new* pixels
carry the highest mean attribution (the gain density) is added, and its new pixels get that
mean as their value, until the chosen share of the image is covered; pixels no region reached get
the mean of what is left. Regions adding fewer than ``min_pixel_diff`` new pixels are dropped.
The result ranks regions, not pixels: ``extras["ranks"]`` numbers them from 1 (most important).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.errors import InputError
from attribkit.methods.paths._segments import felzenszwalb_masks
from attribkit.methods.registry import get, register

__all__ = ["xrai", "xrai_map"]


def xrai_map(attr: np.ndarray, masks: Sequence[np.ndarray], *, area_threshold: float = 1.0,
             min_pixel_diff: int = 50, fast: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The XRAI map of one ``(H, W)`` attribution over region ``masks``.

    Parameters
    ----------
    attr
        ``(H, W)`` per-pixel attribution.
    masks
        Boolean ``(H, W)`` regions (overlapping, from several scales).
    area_threshold
        Stop once this share of the image is covered (the rest gets the mean of what is left).
    min_pixel_diff
        Drop regions that would add fewer new pixels than this.
    fast
        Rank the regions once by their own density instead of re-ranking after each addition.

    Returns
    -------
    values
        ``(H, W)`` float64 map.
    ranks
        ``(H, W)`` int: the order (1 first) in which each pixel's region was added, by gain.
    """
    shape = attr.shape
    a = torch.as_tensor(np.asarray(attr, dtype=np.float64)).reshape(-1)
    if len(masks) == 0:
        raise InputError("xrai needs at least one region mask.")
    m = torch.as_tensor(np.stack([np.asarray(k, dtype=bool).reshape(-1) for k in masks]))
    mf = m.to(torch.float64)
    by_pixel = mf.T.contiguous()  # (P, K): the regions of each pixel, read row by row below
    covered = torch.zeros_like(a, dtype=torch.bool)
    out = torch.full_like(a, -torch.inf)
    trace: list[tuple[Tensor, float]] = []
    fresh = mf.sum(dim=1)  # new pixels each region would add
    mass = mf @ a  # their attribution
    alive = torch.ones(m.shape[0], dtype=torch.bool)
    if fast:
        dens = torch.where(fresh > 0, mass / fresh.clamp_min(1), -torch.inf)
        order = torch.sort(dens, descending=True, stable=True).indices.tolist()
        for j in order:
            new = m[j] & ~covered
            if int(new.sum()) < min_pixel_diff:
                continue
            gain = float(a[new].mean())
            trace.append((new, gain))
            out[new] = gain
            covered |= m[j]
    else:
        area = 0.0
        while area <= area_threshold:
            alive &= fresh >= min_pixel_diff
            if not bool(alive.any()):
                break
            dens = torch.where(alive, mass / fresh.clamp_min(1), -torch.inf)
            j = int(torch.argmax(dens))  # the first of equal gains, as a strict '>' scan
            new = m[j] & ~covered
            gain = float(a[new].mean())
            trace.append((new, gain))
            out[new] = gain
            covered |= new
            area = float(covered.sum()) / covered.numel()
            alive[j] = False
            idx = new.nonzero()[:, 0]
            rows = by_pixel[idx]
            fresh -= rows.sum(dim=0)
            mass -= a[idx] @ rows
    rest = out == -torch.inf
    if bool(rest.any()):
        out[rest] = a[rest].mean()
    ranked = [t for t, _ in sorted(trace, key=lambda t: -t[1])]
    if bool(rest.any()):
        ranked.append(rest)
    ranks = torch.zeros_like(a, dtype=torch.long)
    for i, region in enumerate(ranked):
        ranks[region] = i + 1
    return out.reshape(shape).numpy(), ranks.reshape(shape).numpy()


def _base(model: Callable[..., Tensor], inputs: Tensor, base: str | Attribution | Tensor,
          target: Any, baseline: Any, options: Mapping[str, Any]) -> tuple[Tensor, Any]:
    """The base attribution ``(N, C, H, W)`` and the target it explained."""
    if isinstance(base, Attribution):
        return base.values, base.target if base.target is not None else target
    if isinstance(base, Tensor):
        return base, target
    info = get(base)
    opts = dict(options)
    if baseline is None and info.needs_baseline and info.name == "integrated_gradients":
        # the paper's default: IG averaged over a black and a white image (the input's extremes)
        lo = inputs.flatten(1).amin(dim=1).reshape(-1, *([1] * (inputs.dim() - 1)))
        hi = inputs.flatten(1).amax(dim=1).reshape(-1, *([1] * (inputs.dim() - 1)))
        first = info.fn(model, inputs, target=target, baseline=lo.expand_as(inputs), **opts)
        fixed = first.target if first.target is not None else target
        second = info.fn(model, inputs, target=fixed, baseline=hi.expand_as(inputs), **opts)
        return 0.5 * (first.values + second.values), fixed
    if baseline is not None:
        opts["baseline"] = baseline
    res = info.fn(model, inputs, target=target, **opts)
    return res.values, res.target if res.target is not None else target


@register(
    "xrai",
    family="path",
    needs_baseline=False,
    complete=False,
    axioms=set(),
    summary="XRAI: over-segmented regions ranked greedily by the base attribution they gain.",
    example_rank=3,
)
@shared_parameters("target:single")
def xrai(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    base: str | Attribution | Tensor = "integrated_gradients",
    base_options: Mapping[str, Any] | None = None,
    segments: Sequence[Sequence[np.ndarray]] | None = None,
    area_threshold: float = 1.0,
    min_pixel_diff: int = 50,
    fast: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
) -> Attribution:
    """XRAI region attribution of images.

    Parameters
    ----------
    model
        A callable from images ``(B, C, H, W)`` to ``(B,)`` or ``(B, K)``.
    inputs
        ``(N, C, H, W)`` images (segmented in the model's own normalisation: only the value
        range's shape matters).
    baseline
        The base method's baseline; ``None`` with IG: IG averaged over a black and a white
        image (each example's minimum and maximum value), as in the paper.
    base
        The base attribution: a registered method name, or an Attribution / tensor
        ``(N, C, H, W)`` already computed.
    base_options
        Options of the base method (e.g. ``{"steps": 32}``).
    segments
        Region masks per example (a list of boolean ``(H, W)`` arrays each); default
        Felzenszwalb at six scales (:func:`~attribkit.methods.paths._segments.felzenszwalb_masks`).
    area_threshold
        Share of the image ranked region by region before the rest is lumped together.
    min_pixel_diff
        Regions adding fewer new pixels are dropped.
    fast
        The paper's fast variant: rank regions once instead of after each addition.
    batch_size
        Rows per model call of the base method.
    progress
        Show the base method's progress bar.

    Returns
    -------
    Attribution
        ``values`` ``(N, 1, H, W)``; ``extras["ranks"]`` ``(N, H, W)`` region ranks (1 = most
        important) and ``extras["base"]`` the base attribution.
    """
    if not isinstance(inputs, Tensor) or inputs.dim() != 4:
        shape = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise InputError(f"xrai segments images: inputs must be (N, C, H, W), got {shape}.")
    if segments is not None and len(segments) != inputs.shape[0]:
        raise InputError("segments must hold one list of masks per example.")
    opts = dict(base_options or {})
    if isinstance(base, str):
        if get(base).name == "xrai":
            raise InputError("xrai cannot be its own base attribution.")
        if batch_size is not None:
            opts.setdefault("batch_size", batch_size)
        opts.setdefault("progress", progress)
    attr, fixed = _base(model, inputs, base, target, baseline, opts)
    if attr.shape != inputs.shape:
        raise InputError(f"the base attribution {tuple(attr.shape)} must be shaped like the "
                         f"inputs {tuple(inputs.shape)} (one target).")
    maps, ranks = [], []
    for e in range(inputs.shape[0]):
        pix = attr[e].detach().to(torch.float64).amax(dim=0).cpu().numpy()
        masks = (list(segments[e]) if segments is not None else
                 felzenszwalb_masks(inputs[e].detach().permute(1, 2, 0).cpu().numpy()))
        v, r = xrai_map(pix, masks, area_threshold=area_threshold,
                        min_pixel_diff=min_pixel_diff, fast=fast)
        maps.append(torch.as_tensor(v))
        ranks.append(torch.as_tensor(r))
    values = torch.stack(maps)[:, None].to(inputs.dtype)
    tgt = fixed if isinstance(fixed, Tensor) else None
    params = {"base": base if isinstance(base, str) else "given", "area_threshold":
              area_threshold, "min_pixel_diff": min_pixel_diff, "fast": fast,
              "segments": "given" if segments is not None else "felzenszwalb"}
    return Attribution(values=values, inputs=inputs.detach(), method="xrai", params=params,
                       target=tgt, target_label="given" if target is not None else "predicted",
                       extras={"ranks": torch.stack(ranks), "base": attr.detach()})
