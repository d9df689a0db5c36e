"""Tabular attributions: a horizontal bar chart of feature attributions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from attribkit.core.errors import InputError
from attribkit.viz._common import literal

__all__ = ["feature_bars"]


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
