"""LIME: a weighted linear surrogate fitted around each input (Ribeiro, Singh & Guestrin 2016).

The interpretable features are groups of input features (a feature mask: superpixels, tokens,
columns; by default every feature). A sample is a binary vector ``z`` (which interpretable
features are present); the model sees the input with the absent groups set to the baseline,
``F(x_z, b_rest)``. Each sample is weighted by the exponential kernel
``pi(z) = exp(-D(z)^2 / (2 sigma^2))`` of its distance ``D`` to the input (cosine or L2, measured
on the binary vectors against all-ones as in the ``lime`` package, or on the perturbed inputs as
in Captum), and a weighted ridge (or lasso) regression ``F ~ b0 + sum_j beta_j z_j`` is fitted
per example. The coefficients ``beta`` are the attribution; the surrogate's weighted ``R^2`` says
how well a linear model describes the model near the input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.background import background_rows, mean_over, split_background
from attribkit.core.cost import announce, check_memory, photo_players
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError
from attribkit.core.masks import group_to_features, pick_mask, resolve_mask
from attribkit.methods.agnostic._common import (
    check_samples,
    forward_rows,
    sample_values,
    weighted_r2,
)
from attribkit.methods.registry import register

__all__ = ["draw_samples", "fit_lasso", "fit_ridge", "lime"]

_DISTANCES = ("cosine", "l2")


def draw_samples(n_ex: int, m: int, n: int, *, sampler: str = "bernoulli",
                 generator: torch.Generator, include_input: bool = True) -> Tensor:
    """Binary samples ``(N, M, n)`` of which interpretable features are present.

    ``"bernoulli"``: each feature present with probability 1/2 (Captum, ``lime``'s images);
    ``"size"``: the number of absent features uniform in ``1..n``, then which ones uniformly
    (``lime``'s text). With ``include_input`` the first sample is the input itself (all present).
    """
    if sampler == "bernoulli":
        s = torch.rand((n_ex, m, n), generator=generator) < 0.5
    elif sampler == "size":
        absent = torch.randint(1, n + 1, (n_ex, m, 1), generator=generator)
        rank = torch.argsort(torch.rand((n_ex, m, n), generator=generator), dim=-1)
        s = rank >= absent
    else:
        raise InputError(f"sampler must be 'bernoulli' or 'size', got {sampler!r}.")
    if include_input:
        s[:, 0] = True
    return s


def fit_ridge(z: Tensor, y: Tensor, w: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Weighted ridge with an unpenalised intercept, batched: ``(B, M, n), (B, M), (B, M)`` ->
    coefficients ``(B, n)`` and intercepts ``(B,)`` (scikit-learn's ``Ridge`` objective
    ``sum w (y - b0 - z beta)^2 + alpha |beta|^2``)."""
    zc, yc, zm, ym = _centre(z, y, w)
    gram = zc.transpose(1, 2) @ (w[..., None] * zc)
    rhs = zc.transpose(1, 2) @ (w * yc)[..., None]
    eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
    beta = torch.linalg.lstsq(gram + alpha * eye, rhs).solution[..., 0]
    return beta, ym - (zm * beta).sum(-1)


def fit_lasso(z: Tensor, y: Tensor, w: Tensor, alpha: float, *, max_sweeps: int = 20000,
              tol: float = 1e-12) -> tuple[Tensor, Tensor]:
    """Weighted lasso with an unpenalised intercept by cyclic coordinate descent, batched.

    The objective is scikit-learn's ``Lasso`` with ``sample_weight`` (weights rescaled to sum
    to the number of samples): ``1/2 sum w~ (y - b0 - z beta)^2 + alpha |beta|_1`` with
    ``w~ = w / sum w``. Sweeps stop when no coefficient moves by more than ``tol``.
    """
    wn = w / w.sum(-1, keepdim=True)
    zc, yc, zm, ym = _centre(z, y, wn)
    gram = zc.transpose(1, 2) @ (wn[..., None] * zc)
    c = (zc.transpose(1, 2) @ (wn * yc)[..., None])[..., 0]
    n = z.shape[-1]
    beta = torch.zeros_like(c)
    diag = torch.diagonal(gram, dim1=1, dim2=2)
    for _ in range(max_sweeps):
        biggest = 0.0
        for j in range(n):
            rho = c[:, j] - (gram[:, j] * beta).sum(-1) + diag[:, j] * beta[:, j]
            new = torch.sign(rho) * (rho.abs() - alpha).clamp_min(0)
            new = torch.where(diag[:, j] > 0, new / diag[:, j].clamp_min(1e-300),
                              torch.zeros_like(new))
            biggest = max(biggest, float((new - beta[:, j]).abs().max()))
            beta[:, j] = new
        if biggest <= tol:
            break
    return beta, ym - (zm * beta).sum(-1)


def _centre(z: Tensor, y: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    tot = w.sum(-1, keepdim=True)
    zm = (w[..., None] * z).sum(1) / tot
    ym = (w * y).sum(-1) / tot[..., 0]
    return z - zm[:, None], y - ym[:, None], zm, ym


def _distances(s: Tensor, distance: str, space: str, x: Tensor, b: Tensor, ids: Tensor,
               n: int) -> Tensor:
    """``D(z)`` of every sample ``(N, M)``, on the binary vectors or on the perturbed inputs."""
    sf = s.to(torch.float64)
    if space == "interpretable":
        count = sf.sum(-1)
        if distance == "l2":
            return (n - count).clamp_min(0).sqrt()
        return torch.where(count > 0, 1 - (count / n).sqrt(), torch.ones_like(count))
    # perturbed input z = x on present groups and non-players, b elsewhere: per-group sums
    fx, fb = x.reshape(x.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()
    col = torch.where(ids < 0, torch.full_like(ids, n), ids)

    def per_group(v: Tensor) -> Tensor:
        out = torch.zeros((v.shape[0], n + 1), dtype=v.dtype, device=v.device)
        return out.scatter_add_(1, col, v)

    if distance == "l2":
        g = per_group((fx - fb) ** 2)[:, :n]
        return ((1 - sf) @ g[..., None])[..., 0].clamp_min(0).sqrt()
    xx, xb, bb = per_group(fx * fx), per_group(fx * fb), per_group(fb * fb)
    dot = (sf @ xx[:, :n, None])[..., 0] + ((1 - sf) @ xb[:, :n, None])[..., 0] + xx[:, n:]
    zz = (sf @ xx[:, :n, None])[..., 0] + ((1 - sf) @ bb[:, :n, None])[..., 0] + xx[:, n:]
    den = (xx.sum(-1, keepdim=True) * zz).sqrt()
    return torch.where(den > 0, 1 - dot / den.clamp_min(1e-300), torch.ones_like(dot))


@register(
    "lime",
    family="perturbation",
    needs_baseline=True,
    complete=False,
    # ridge is linear in the scores (same seed, same samples); a dummy or a symmetric pair gets
    # spurious, unequal coefficients from the samples' chance correlations (the audit measures it)
    axioms={"sensitivity_a", "implementation_invariance", "linearity"},
    stochastic=True,
    summary="LIME: coefficients of a kernel-weighted linear surrogate fitted to random "
            "perturbations (black-box models welcome).",
)
@shared_parameters("model:black_box", "inputs:black_box", "target", "groups", "seed", "progress",
                   "forward_args")
def lime(
    model: Callable[..., Any],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    feature_mask: Tensor | None = None,
    groups: Tensor | None = None,
    n_samples: int = 1000,
    distance: str = "cosine",
    space: str = "interpretable",
    kernel_width: float | None = None,
    surrogate: str = "ridge",
    alpha: float = 1.0,
    sampler: str = "bernoulli",
    samples: Tensor | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """LIME coefficients of interpretable features (groups of input features).

    Parameters
    ----------
    baseline
        The value of an absent feature: ``None`` (zeros), a number, a name, a Baseline or a
        tensor (the training mean for tabular data, a blurred image...).
    feature_mask
        Integer id of each feature's interpretable feature (superpixels, tokens, columns), shaped
        like one example, like the inputs, or broadcasting to them (:mod:`attribkit.masks`); ids
        need not be contiguous; negative ids are always present. ``None``: every feature is an
        interpretable feature.
    n_samples
        Perturbations per example (the first is the input itself unless ``samples`` is given).
    distance
        ``"cosine"`` or ``"l2"``.
    space
        Where the distance is measured: ``"interpretable"`` (binary vector against all-ones, as
        the ``lime`` package) or ``"input"`` (perturbed input against the input, as Captum).
    kernel_width
        ``sigma`` of the kernel ``exp(-D^2 / (2 sigma^2))``; default 0.25 for cosine (``lime``'s
        images) and ``0.75 sqrt(n)`` for L2 (``lime``'s tables).
    surrogate
        ``"ridge"`` (``lime``'s default) or ``"lasso"`` (Captum's default); both fit an
        unpenalised intercept.
    alpha
        The ridge or lasso penalty (scikit-learn's convention for each).
    sampler
        ``"bernoulli"`` (each feature present with probability 1/2) or ``"size"`` (number of
        absent features uniform, as ``lime``'s text explainer).
    samples
        Inject the binary perturbations instead of drawing them: ``(M, n)`` shared or
        ``(N, M, n)`` (0/1 or bool).
    batch_size
        Rows per model call; ``None`` chooses it.

    Returns
    -------
    Attribution
        ``values`` shaped like the inputs: each feature carries the coefficient of its
        interpretable feature (non-players 0); ``extras``: ``players`` ``(N, [K,] n)``
        coefficients, ``intercept`` and ``r2`` ``(N, [K])`` (the surrogate's weighted
        ``R^2`` on its samples), ``samples`` ``(N, M, n)``, ``weights`` ``(N, M)``.
    """
    if distance not in _DISTANCES:
        raise InputError(f"distance must be 'cosine' or 'l2', got {distance!r}.")
    if space not in ("interpretable", "input"):
        raise InputError(f"space must be 'interpretable' or 'input', got {space!r}.")
    if surrogate not in ("ridge", "lasso"):
        raise InputError(f"surrogate must be 'ridge' or 'lasso', got {surrogate!r}.")
    if not isinstance(n_samples, int) or n_samples < 2:
        raise InputError(f"n_samples must be an int >= 2, got {n_samples!r}.")
    if alpha < 0:
        raise InputError(f"alpha must be >= 0, got {alpha!r}.")
    mask = pick_mask(feature_mask, groups)
    baseline, background = split_background(baseline, inputs)
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, black_box=True) as p:
        bg = None if background is None else background_rows(background, p.inputs)
        mask = photo_players(p.inputs, mask, "lime")
        ids, n, labels = resolve_mask(mask, p.inputs)
        m = int(samples.shape[-2]) if isinstance(samples, Tensor) and samples.dim() >= 2 else (
            n_samples)
        # the surrogate's design (E, M, n) and Gram matrix (E, n, n) in float64
        check_memory(8.0 * p.n * (m * n + 2 * n * n), f"lime with {n:,} interpretable features",
                     "give fewer with feature_mask= (attribkit.masks.superpixels or "
                     "attribkit.masks.grid).")
        announce("lime", p.n * m, progress, "or fewer n_samples=")
        if samples is None:
            gen = torch.Generator().manual_seed(seed)
            # every example gets the draws a call on it alone would get: batching examples
            # (a data-set run stacks items) leaves each one's result unchanged
            s = draw_samples(1, n_samples, n, sampler=sampler, generator=gen).to(ids.device)
            s = s.repeat(p.n, 1, 1)
        else:
            s = check_samples(samples, p.n, n).to(ids.device)
        width = kernel_width if kernel_width is not None else (
            0.25 if distance == "cosine" else 0.75 * math.sqrt(n))
        if width <= 0:
            raise InputError(f"kernel_width must be positive, got {width!r}.")
        rows = forward_rows(p, batch_size)
        if bg is None:
            y = sample_values(p, ids, n, s, rows, "lime").to(torch.float64)
        else:  # each sample's value is its mean over the background rows
            y = mean_over(p, bg, lambda: sample_values(p, ids, n, s, rows, "lime"))
        assert p.baseline is not None  # with a background: the rows' mean
        d = _distances(s, distance, space, p.inputs, p.baseline, ids, n)
        w = torch.exp(-(d ** 2) / (2 * width ** 2))
        lead = y.shape[:-1]  # (N,) or (N, K)
        k = 1 if y.dim() == 2 else int(y.shape[1])
        z = s.to(torch.float64)[:, None].expand(-1, k, -1, -1).reshape(-1, *s.shape[1:])
        ww = w[:, None].expand(-1, k, -1).reshape(-1, w.shape[-1])
        yy = y.reshape(-1, y.shape[-1])
        fit = fit_ridge if surrogate == "ridge" else fit_lasso
        beta, b0 = fit(z, yy, ww, alpha)
        pred = b0[:, None] + (z @ beta[..., None])[..., 0]
        r2 = weighted_r2(yy, pred, ww)
        beta = beta.reshape(*lead, n)
        values = group_to_features(beta, ids, p.inputs.shape).to(p.inputs.dtype)
        params = {"n_samples": int(s.shape[1]), "players": n, "feature_mask": mask is not None,
                  "distance": distance,
                  "space": space, "kernel_width": float(width), "surrogate": surrogate,
                  "alpha": float(alpha), "sampler": "given" if samples is not None else sampler,
                  "seed": seed, "forward_evaluations": p.forward_evaluations}
        if bg is not None:
            params["background_size"] = int(bg.shape[0])
        extras = {"players": beta, "intercept": b0.reshape(lead), "r2": r2.reshape(lead),
                  "samples": s, "weights": w, "group_ids": ids.reshape(p.inputs.shape),
                  "group_labels": labels}
        return p.result(values, "lime", params, extras=extras)

