"""Faithfulness metrics: does removing what the attribution calls important change the output?

* :func:`faithfulness_correlation` (Bhatt, Weller & Moura 2020): random subsets of features are
  set to the baseline; the Pearson correlation, over the subsets, between the attribution mass of
  each subset and the score drop it causes. Higher is better.
* :func:`pixel_flipping` (Bach et al. 2015; Samek et al. 2017): features are set to the baseline
  in order of attribution, ``features_in_step`` at a time; the area under the score curve
  (trapezoid, unit step) is lower for a faithful ranking.
* :func:`region_perturbation` (Samek et al. 2017): the same with square regions ranked by their
  summed attribution; the mean score drop over the steps (AOPC) is higher for a faithful
  ranking (most relevant first).

All perturbed inputs are evaluated in batches through the engine, so black-box models work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError
from attribkit.core.masks import resolve_mask
from attribkit.evaluate._features import default_target
from attribkit.evaluate._metric import (
    MetricResult,
    as_inputs,
    broadcast_values,
    generator,
    pearson,
)

__all__ = ["faithfulness_correlation", "pixel_flipping", "region_perturbation"]


@shared_parameters("model:measured", "inputs", "attributions:measured", "target:measured", "seed",
                   "batch_size:rows", "progress")
def faithfulness_correlation(
    model: Callable[..., Any],
    inputs: Tensor,
    attributions: Attribution | Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    subset_size: int = 224,
    n_runs: int = 100,
    subsets: Tensor | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> MetricResult:
    """Faithfulness correlation (Bhatt et al. 2020), one score per example; higher is better.

    Parameters
    ----------
    baseline
        The value removed features take (``None``: zeros; Quantus's ``perturb_baseline``).
    subset_size
        Features per random subset (Quantus's default 224).
    n_runs
        Random subsets per example.
    subsets
        Inject the subsets instead of drawing them: ``(N, n_runs, subset_size)`` flat feature
        indices.
    """
    x = as_inputs(inputs)
    a = broadcast_values(attributions, x).reshape(x.shape[0], -1)
    n, d = a.shape
    if subsets is None:
        if not 1 <= subset_size < d:
            raise InputError(f"subset_size must be in 1..{d - 1}, got {subset_size}.")
        g = generator(seed)
        subsets = torch.stack([torch.stack([torch.randperm(d, generator=g)[:subset_size]
                                            for _ in range(n_runs)]) for _ in range(n)])
    elif subsets.dim() != 3 or subsets.shape[0] != n:
        raise InputError(f"subsets must be (N={n}, runs, size) feature indices.")
    idx = subsets.long().to(x.device)
    runs = int(idx.shape[1])
    with prepare(model, x, target=default_target(attributions, target), baseline=baseline,
                 batch_size=batch_size, progress=progress, black_box=True,
                 allow_multi_target=False) as p:
        fx, fb = p.inputs.reshape(n, -1), p.baseline.reshape(n, -1)  # type: ignore[union-attr]

        def make(sl: slice) -> Tensor:
            rows = torch.arange(sl.start, sl.stop, device=x.device)
            ex, run = rows // runs, rows % runs
            cols = idx[ex, run]
            pts = fx[ex].clone()
            pts.scatter_(1, cols, fb[ex].gather(1, cols))
            return pts.reshape(-1, *p.inputs.shape[1:])

        example = torch.arange(n, device=x.device).repeat_interleave(runs)
        scores = p.scores(make, example, desc="faithfulness").reshape(n, runs)
        assert p.output is not None
        drops = (p.output[:, None] - scores).to(torch.float64)
    sums = a.gather(1, idx.reshape(n, -1)).reshape(idx.shape).sum(-1)
    return MetricResult("faithfulness_correlation", pearson(sums, drops).cpu(), True,
                        params={"subset_size": int(idx.shape[2]), "n_runs": runs, "seed": seed})


def _curve_scores(model: Callable[..., Any], x: Tensor, rank: Tensor, thresholds: Tensor,
                  target: Any, baseline: Any, batch_size: int | None, progress: bool,
                  desc: str) -> tuple[Tensor, Tensor]:
    """Scores ``(N, S)`` of the inputs with every feature of rank ``< thresholds[s]`` set to the
    baseline, and ``F(x)`` ``(N,)``."""
    n, s = x.shape[0], int(thresholds.shape[0])
    with prepare(model, x, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, black_box=True, allow_multi_target=False) as p:
        fx, fb = p.inputs.reshape(n, -1), p.baseline.reshape(n, -1)  # type: ignore[union-attr]
        thr = thresholds.to(x.device)

        def make(sl: slice) -> Tensor:
            rows = torch.arange(sl.start, sl.stop, device=x.device)
            ex, step = rows // s, rows % s
            off = rank[ex] < thr[step][:, None]
            return torch.where(off, fb[ex], fx[ex]).reshape(-1, *p.inputs.shape[1:])

        example = torch.arange(n, device=x.device).repeat_interleave(s)
        scores = p.scores(make, example, desc=desc).reshape(n, s).to(torch.float64)
        assert p.output is not None
        return scores, p.output.to(torch.float64)


def _ranks(importance: Tensor, order: str, seed: int) -> Tensor:
    """Rank of each column per row (0 first): ``morf`` most relevant first, ``lerf`` least,
    ``random``; ties keep the index order."""
    if order == "random":
        g = generator(seed)
        perm = torch.stack([torch.randperm(importance.shape[1], generator=g)
                            for _ in range(importance.shape[0])]).to(importance.device)
    elif order in ("morf", "lerf"):
        key = -importance if order == "morf" else importance
        perm = torch.sort(key, dim=1, stable=True).indices
    else:
        raise InputError(f"order must be 'morf', 'lerf' or 'random', got {order!r}.")
    ranks = torch.empty_like(perm)
    ranks.scatter_(1, perm, torch.arange(perm.shape[1], device=perm.device).expand_as(perm))
    return ranks


def pixel_flipping(
    model: Callable[..., Any],
    inputs: Tensor,
    attributions: Attribution | Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    features_in_step: int = 1,
    max_steps: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> MetricResult:
    """Pixel flipping (Bach et al. 2015): the score as features are removed, most relevant
    first; ``scores`` is the area under that curve (trapezoid, unit step), lower is better.

    Parameters
    ----------
    features_in_step
        Features (input elements) removed per step (Quantus's ``features_in_step``).
    max_steps
        Stop after this many steps (default: until every feature is removed).

    The other parameters are those of :func:`faithfulness_correlation`; ``curve`` is
    ``(N, S)`` the score after each step.
    """
    x = as_inputs(inputs)
    a = broadcast_values(attributions, x).reshape(x.shape[0], -1)
    if features_in_step < 1:
        raise InputError(f"features_in_step must be >= 1, got {features_in_step}.")
    steps = math.ceil(a.shape[1] / features_in_step)
    steps = steps if max_steps is None else min(steps, int(max_steps))
    thresholds = torch.arange(1, steps + 1) * features_in_step
    scores, _ = _curve_scores(model, x, _ranks(a, "morf", 0), thresholds,
                              default_target(attributions, target), baseline, batch_size,
                              progress, "pixel flipping")
    auc = torch.trapezoid(scores, dx=1.0, dim=1) if steps > 1 else scores[:, 0]
    return MetricResult("pixel_flipping", auc.cpu(), False, curve=scores.cpu(),
                        params={"features_in_step": features_in_step, "steps": steps})


def region_perturbation(
    model: Callable[..., Any],
    inputs: Tensor,
    attributions: Attribution | Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    patch_size: int = 8,
    regions_evaluation: int = 100,
    order: str = "morf",
    seed: int = 0,
    feature_mask: Tensor | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> MetricResult:
    """Region perturbation (Samek et al. 2017) on images ``(N, C, H, W)``; higher is better
    (with ``order="morf"``).

    Square regions of ``patch_size`` (all channels; smaller at the right and bottom edges) are
    ranked by their summed attribution and set to the baseline one after another, cumulatively,
    for ``regions_evaluation`` steps. ``curve`` is ``(N, S)`` the score drop ``F(x) - F(x_s)``
    after each step; ``scores`` its mean over the steps (AOPC). ``order="lerf"`` removes the
    least relevant first (then lower is better); ``"random"`` is the reference.
    ``feature_mask`` (integer ids that broadcast to the inputs, :mod:`attribkit.masks`: e.g.
    superpixels) replaces the square regions with its groups, on any input shape; elements
    with a negative id are never removed.
    """
    x = as_inputs(inputs)
    if x.dim() != 4 and feature_mask is None:
        raise InputError(f"region perturbation needs images (N, C, H, W), got {tuple(x.shape)}; "
                         "give feature_mask= for other inputs.")
    a = broadcast_values(attributions, x)
    n = x.shape[0]
    if feature_mask is None:
        h, w = x.shape[2:]
        rows_, cols_ = torch.arange(h) // patch_size, torch.arange(w) // patch_size
        n_w = -(-w // patch_size)
        region = (rows_[:, None] * n_w + cols_[None, :]).to(x.device)
        n_regions = int(region.max()) + 1
        ids = region.expand(x.shape).reshape(n, -1)
    else:
        ids, n_regions, _ = resolve_mask(feature_mask, x)
    col = torch.where(ids < 0, torch.full_like(ids, n_regions), ids)  # -1: in no region
    sums = torch.zeros((n, n_regions + 1), dtype=torch.float64, device=x.device)
    sums.scatter_add_(1, col, a.reshape(n, -1).to(torch.float64))
    ranked = torch.cat([_ranks(sums[:, :n_regions], order, seed),
                        torch.full((n, 1), torch.iinfo(torch.long).max, device=x.device)], 1)
    rank = ranked.gather(1, col)
    steps = min(regions_evaluation, n_regions)
    scores, fx = _curve_scores(model, x, rank, torch.arange(1, steps + 1),
                               default_target(attributions, target), baseline, batch_size,
                               progress, "regions")
    drops = fx[:, None] - scores
    return MetricResult("region_perturbation", drops.mean(1).cpu(), order != "lerf",
                        curve=drops.cpu(), params={"patch_size": patch_size, "steps": steps,
                                                   "order": order, "seed": seed,
                                                   "feature_mask": feature_mask is not None})
