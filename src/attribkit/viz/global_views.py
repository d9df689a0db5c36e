"""Global views of a batch, as SHAP users know them: summary (beeswarm), mean |a| bars and
dependence plots.

Each takes a matrix of attributions ``(N, F)``: one row per example, one column per feature.
Tabular attributions are that already; image attributions become one column per region (grid
cells or given masks) with :func:`attribkit.viz.region_values`, and token attributions one column
per token with :func:`attribkit.viz.token_values` (``nan`` where a text lacks the token; such
entries are left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.viz._common import Array

__all__ = ["as_matrix", "dependence_plot", "mean_abs_bars", "summary_plot"]

_FEATURE_CMAP = "coolwarm"


def as_matrix(values: Any, name: str = "values") -> Array:
    """Attributions (an :class:`Attribution`, a tensor, an array) as float64 ``(N, F)``.

    One example ``(features,)`` becomes one row; anything else that is not 2-D raises an
    :class:`InputError` naming ``name``.
    """
    if isinstance(values, Attribution):
        values = values.values
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise InputError(f"{name} must be (examples, features); got shape {a.shape}. For images "
                         "use attribkit.viz.region_values, for tokens attribkit.viz.token_values.")
    return a


def _names(names: Sequence[str] | None, n: int) -> list[str]:
    if names is None:
        return [f"feature {i}" for i in range(n)]
    if len(names) != n:
        raise InputError(f"{len(names)} feature names for {n} features.")
    return [str(s) for s in names]


def _order(v: Array, top: int | None) -> Array:
    with np.errstate(invalid="ignore"):
        mean_abs = np.nan_to_num(np.nanmean(np.abs(v), axis=0), nan=-1.0)
    order = np.argsort(-mean_abs, kind="stable")
    return order[:top] if top is not None else order


def _scaled(f: Array) -> Array:
    """Each feature's values mapped to [0, 1] between its 5th and 95th percentile."""
    out = np.full_like(f, np.nan)
    for j in range(f.shape[1]):
        col = f[:, j]
        ok = np.isfinite(col)
        if not ok.any():
            continue
        lo, hi = np.percentile(col[ok], [5, 95])
        if hi <= lo:
            lo, hi = float(col[ok].min()), float(col[ok].max())
        out[:, j] = 0.5 if hi <= lo else np.clip((col - lo) / (hi - lo), 0, 1)
    return out


def _swarm(x: Array, width: float = 0.4, bins: int = 60) -> Array:
    """Vertical offsets that stack points falling in the same x bin (a deterministic beeswarm)."""
    if x.size == 0:
        return x
    span = float(x.max() - x.min()) or 1.0
    b = np.floor((x - x.min()) / span * bins).astype(int)
    offs = np.zeros_like(x)
    order = np.argsort(x, kind="stable")
    counts: dict[int, int] = {}
    for i in order:
        k = counts.get(int(b[i]), 0)
        counts[int(b[i])] = k + 1
        offs[i] = (k + 1) // 2 * (1 if k % 2 else -1)
    peak = max(float(np.abs(offs).max()), 1.0)
    out: Array = offs / peak * width
    return out


def summary_plot(values: Any, features: Any = None, names: Sequence[str] | None = None, *,
                 top: int | None = 20, title: str | None = None) -> Figure:
    """The beeswarm summary: one row per feature (largest mean |a| on top), one dot per example
    at its attribution, coloured by the feature's value.

    Parameters
    ----------
    values : array-like, Tensor or Attribution
        ``(N, F)`` attributions.
    features : array-like, optional
        ``(N, F)`` the features' values (the inputs), for the colour; without it the dots are
        one colour and there is no colour bar.
    names : sequence of str, optional
        Feature names.
    top : int, optional, default 20
        Show the ``top`` features by mean |a| (``None``: all).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with a colour bar "feature value" (low to high) when ``features`` is given.
    """
    v = as_matrix(values)
    labels = _names(names, v.shape[1])
    f = None if features is None else as_matrix(features, "features")
    if f is not None and f.shape != v.shape:
        raise InputError(f"features {f.shape} must match the attributions {v.shape}.")
    order = _order(v, top)
    fig = Figure(figsize=(7.0, 0.42 * len(order) + 1.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    cmap = matplotlib.colormaps[_FEATURE_CMAP]
    scaled = _scaled(f) if f is not None else None
    for row, j in enumerate(order[::-1]):
        col = v[:, j]
        ok = np.isfinite(col)
        xs = col[ok]
        ys = row + _swarm(xs)
        if scaled is not None:
            c = scaled[ok, j]
            colours = np.where(np.isfinite(c)[:, None], cmap(np.nan_to_num(c)), (0.6, 0.6, 0.6, 1))
            ax.scatter(xs, ys, c=colours, s=12, linewidths=0, alpha=0.9)
        else:
            ax.scatter(xs, ys, color="#4a78b5", s=12, linewidths=0, alpha=0.8)
    ax.set_yticks(range(len(order)), [labels[j] for j in order[::-1]], fontsize=9)
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_xlabel("attribution (effect on the model output)")
    ax.set_ylim(-0.7, len(order) - 0.3)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if scaled is not None:
        sm = matplotlib.cm.ScalarMappable(norm=Normalize(0, 1), cmap=cmap)
        cb = fig.colorbar(sm, ax=ax, fraction=0.04, pad=0.02, aspect=30)
        cb.set_ticks([0, 1], labels=["low", "high"])
        cb.set_label("feature value", fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def mean_abs_bars(values: Any, names: Sequence[str] | None = None, *, top: int | None = 20,
                  title: str | None = None) -> Figure:
    """The global importance of each feature: mean |a| over the batch, largest on top.

    Parameters
    ----------
    values : array-like, Tensor or Attribution
        ``(N, F)`` attributions (``nan`` entries are left out of the mean).
    names : sequence of str, optional
        Feature names.
    top : int, optional, default 20
        Show the ``top`` features (``None``: all).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        Horizontal bars labelled with their values.
    """
    v = as_matrix(values)
    labels = _names(names, v.shape[1])
    order = _order(v, top)
    with np.errstate(invalid="ignore"):
        means = np.nanmean(np.abs(v), axis=0)[order][::-1]
    fig = Figure(figsize=(6.0, 0.36 * len(order) + 1.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    bars = ax.barh(range(len(order)), means, color="#4a78b5")
    ax.bar_label(bars, [f"{m:.3g}" for m in means], fontsize=8, padding=2)
    ax.set_yticks(range(len(order)), [labels[j] for j in order[::-1]], fontsize=9)
    ax.set_xlabel("mean |attribution| over the batch")
    ax.set_xlim(0, float(np.nanmax(means)) * 1.2 if len(means) and np.nanmax(means) > 0 else 1)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _feature_index(feature: int | str, labels: list[str]) -> int:
    if isinstance(feature, str):
        if feature not in labels:
            raise InputError(f"no feature named {feature!r}; names are {labels[:5]} ...")
        return labels.index(feature)
    if not 0 <= int(feature) < len(labels):
        raise InputError(f"feature {feature} does not exist; there are {len(labels)}.")
    return int(feature)


def dependence_plot(values: Any, features: Any, feature: int | str,
                    names: Sequence[str] | None = None, *, color_by: int | str | None = "auto",
                    title: str | None = None) -> Figure:
    """How one feature's attribution depends on its value, coloured by a second feature.

    Parameters
    ----------
    values : array-like, Tensor or Attribution
        ``(N, F)`` attributions.
    features : array-like
        ``(N, F)`` the features' values.
    feature : int or str
        The feature on the x axis (index or name).
    names : sequence of str, optional
        Feature names.
    color_by : int, str, "auto" or None, default "auto"
        The feature whose value colours the dots; ``"auto"`` picks the one that best explains
        this feature's attribution among examples with similar values of it (a hint of an
        interaction, see ``_best_partner``); ``None``: one colour, no colour bar.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        A scatter of ``(x_j, a_j)`` with a colour bar for ``color_by``.
    """
    v, f = as_matrix(values), as_matrix(features, "features")
    if f.shape != v.shape:
        raise InputError(f"features {f.shape} must match the attributions {v.shape}.")
    labels = _names(names, v.shape[1])
    j = _feature_index(feature, labels)
    k: int | None
    if color_by == "auto":
        k = _best_partner(v[:, j], f, j)
    else:
        k = None if color_by is None else _feature_index(color_by, labels)
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    ok = np.isfinite(v[:, j]) & np.isfinite(f[:, j])
    if k is None:
        ax.scatter(f[ok, j], v[ok, j], s=14, color="#4a78b5", linewidths=0)
    else:
        ck = f[ok, k]
        good = ck[np.isfinite(ck)]
        lo, hi = np.percentile(good, [5, 95]) if good.size else (0.0, 1.0)
        sc = ax.scatter(f[ok, j], v[ok, j], c=ck, cmap=_FEATURE_CMAP, s=14, linewidths=0,
                        vmin=lo, vmax=hi if hi > lo else lo + 1)
        cb = fig.colorbar(sc, ax=ax, fraction=0.05, pad=0.02, extend="both")
        cb.set_label(f"value of {labels[k]}", fontsize=9)
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_xlabel(f"value of {labels[j]}")
    ax.set_ylabel(f"attribution of {labels[j]}")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _best_partner(a: Array, f: Array, j: int) -> int | None:
    """The feature whose value best explains ``a_j`` at a fixed ``x_j`` (an interaction hint).

    The examples are sorted by ``x_j`` and cut into bins of about ``sqrt(N)``; within each bin
    ``x_j`` is nearly constant, so a strong correlation of ``a_j`` with ``x_k`` there points at
    an interaction of ``j`` and ``k``. The absolute correlations are summed over the bins.
    """
    ok = np.isfinite(a) & np.isfinite(f[:, j])
    order = np.argsort(f[ok, j], kind="stable")
    aa, ff = a[ok][order], f[ok][order]
    size = max(3, int(np.sqrt(len(aa))))
    best, score = None, 0.0
    for k in range(f.shape[1]):
        if k == j:
            continue
        total = 0.0
        for start in range(0, len(aa) - size + 1, size):
            xa, xk = aa[start:start + size], ff[start:start + size, k]
            if np.isfinite(xk).all() and np.std(xa) > 0 and np.std(xk) > 0:
                total += abs(float(np.corrcoef(xa, xk)[0, 1]))
        if total > score:
            best, score = k, total
    return best
