"""Curves: saturation ``F(alpha x)`` (Gradients of Counterfactuals, Figure 2) and evaluation curves
(AOPC, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from attribkit.core.errors import InputError
from attribkit.viz._common import literal

__all__ = ["evaluation_curves", "saturation_curves"]


def _np(a: Any) -> np.ndarray[Any, Any]:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def saturation_curves(alphas: Any, scores: Any, *, labels: Sequence[str] | None = None,
                      normalize: bool = False, title: str = "Saturation: F(αx) against α",
                      ylabel: str = "score F(αx)") -> Figure:
    """Figure 2: one curve ``F(alpha x)`` per input.

    Parameters
    ----------
    alphas : array-like
        ``(A,)`` scaling parameters.
    scores : array-like
        ``(N, A)`` scores, one row per input (e.g. ``InteriorGradients.scores``).
    labels : sequence of str, optional
        A legend entry per input (shown beside the axes when there are at most 12).
    normalize : bool, default False
        Divide each curve by its value at the largest alpha.
    title : str, default "Saturation: F(αx) against α"
        Axes title.
    ylabel : str, default "score F(αx)"
        The y-axis label.

    Returns
    -------
    matplotlib.figure.Figure
        The curves.
    """
    a, s = _np(alphas), _np(scores)
    if s.ndim == 1:
        s = s[None]
    if a.ndim != 1 or s.ndim != 2 or s.shape[1] != a.shape[0]:
        raise InputError(f"saturation_curves needs alphas (A,) and scores (N, A); got "
                         f"{a.shape} and {s.shape}.")
    if normalize:
        s = s / np.where(s[:, -1:] == 0, 1.0, s[:, -1:])
    outside = labels is not None and len(s) <= 12
    fig = Figure(figsize=(9.0 if outside else 7.6, 4.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for i, row in enumerate(s):
        label = literal(labels[i]) if labels is not None and i < len(labels) else None
        ax.plot(a, row, lw=1.5, alpha=0.85, label=label)
    ax.set_xlabel("scaling parameter α")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if outside:  # beside the axes, never over a curve
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
                  frameon=False)
    return fig


def evaluation_curves(curves: Mapping[str, Any], *, x: Any = None,
                      xlabel: str = "perturbation step", ylabel: str = "AOPC",
                      title: str = "AOPC: mean score drop as top pixels are removed") -> Figure:
    """Evaluation curves of several methods on one axes (AOPC, deletion, insertion).

    Parameters
    ----------
    curves : mapping of str to array-like
        Method name to its ``(S,)`` curve (or ``(N, S)``: the mean over rows is drawn with a band
        of one standard error).
    x : array-like, optional
        ``(S,)`` x positions; default ``0 .. S-1``.
    xlabel : str, default "perturbation step"
        The x-axis label.
    ylabel : str, default "AOPC"
        The y-axis label.
    title : str, default "AOPC: mean score drop as top pixels are removed"
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        The curves.
    """
    if not curves:
        raise InputError("evaluation_curves needs at least one curve.")
    fig = Figure(figsize=(9.0, 4.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for name, c in curves.items():
        v = _np(c)
        mean = v.mean(axis=0) if v.ndim == 2 else v
        xs = _np(x) if x is not None else np.arange(mean.shape[0], dtype=np.float64)
        ax.plot(xs, mean, lw=1.8, label=literal(name))
        if v.ndim == 2 and v.shape[0] > 1:
            se = v.std(axis=0, ddof=1) / np.sqrt(v.shape[0])
            ax.fill_between(xs, mean - se, mean + se, alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
              frameon=False)  # beside the axes, never over a curve
    return fig
