"""Tabular attributions: a horizontal bar chart of feature attributions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from attribkit.core.errors import InputError
from attribkit.viz._common import literal

__all__ = ["feature_bars", "waterfall"]


def feature_bars(names: Sequence[str], values: Any, *, top: int | None = 15,
                 title: str | None = None) -> Figure:
    """Feature attributions as horizontal bars, largest magnitude on top.

    Parameters
    ----------
    names : sequence of str
        Feature names.
    values : array-like
        ``(F,)`` one attribution per feature.
    top : int, optional, default 15
        Show only the ``top`` largest magnitudes (``None``: all).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        Positive bars in red, negative in blue.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.shape[0] != len(names):
        raise InputError(f"{len(names)} feature names but {v.shape[0]} values.")
    order = np.argsort(-np.abs(v), kind="stable")
    if top is not None:
        order = order[:top]
    order = order[::-1]
    fig = Figure(figsize=(5.0, 0.3 * len(order) + 1.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh([literal(names[i]) for i in order], v[order],
            color=["#c0392b" if v[i] >= 0 else "#2e6fb7" for i in order])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("attribution")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def waterfall(names: Sequence[str], values: Any, features: Any = None, *,
              base: float | None = None, output: float | None = None, top: int = 8,
              title: str | None = None, width: float = 4.2) -> Figure:
    """One row's attributions as a compact waterfall: from the base value ``F(x')`` to the
    prediction ``F(x)``, the ``top`` largest features each with its value, the rest as one bar.

    Parameters
    ----------
    names : sequence of str
        Feature names.
    values : array-like
        ``(F,)`` one attribution per feature.
    features : array-like, optional
        ``(F,)`` the row's feature values, printed beside the names (``name = value``).
    base : float, optional
        ``F(x')``, where the bars start (default 0).
    output : float, optional
        ``F(x)``, marked at the end; the gap to ``base + sum(values)`` is the completeness gap.
    top : int, default 8
        Features drawn one by one (largest |attribution| first); the others are summed.
    title : str, optional
        Axes title.
    width : float, default 4.2
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Red bars push the output up, blue ones down, each starting where the previous ended.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.shape[0] != len(names):
        raise InputError(f"{len(names)} feature names but {v.shape[0]} values.")
    fv = None if features is None else np.asarray(
        features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor)
        else features, dtype=np.float64).reshape(-1)
    order = list(np.argsort(-np.abs(v), kind="stable")[:top])
    labels = [literal(names[i]) + (f" = {fv[i]:.4g}" if fv is not None else "") for i in order]
    steps = [float(v[i]) for i in order]
    rest = [i for i in range(v.shape[0]) if i not in set(order)]
    if rest:
        labels.append(f"{len(rest)} other features")
        steps.append(float(v[rest].sum()))
    start = float(base) if base is not None else 0.0
    fig = Figure(figsize=(width, 0.22 * len(steps) + 0.9))
    ax = fig.add_subplot(1, 1, 1)
    left = start
    for row, d in enumerate(steps):
        ax.barh(row, d, left=left, height=0.7, color="#c0392b" if d >= 0 else "#2e6fb7")
        left += d
    ax.set_yticks(range(len(steps)), labels, fontsize=7)
    ax.margins(x=0.06)
    ax.invert_yaxis()
    ax.axvline(start, color="#555", lw=0.8, ls=":")
    ax.tick_params(axis="x", labelsize=7)
    text = f"F(x') = {start:.4g}" if base is not None else "0"
    if output is not None:
        ax.axvline(output, color="black", lw=1.0)
        text += f" → F(x) = {output:.4g}"
    text += f"; sum = {float(v.sum()):.4g}"
    ax.set_xlabel(text, fontsize=7)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig
