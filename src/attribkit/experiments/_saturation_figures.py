"""Figures of the saturation experiment: Figure 2 (a and b side by side), Figure 12 (layers) and
Figure 3's trend of the interior gradients' magnitude."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

__all__ = ["figure2", "figure3_trend", "figure12"]


def _legend(ax: object, labels: Sequence[str]) -> None:
    if len(labels) <= 12:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),  # type: ignore[attr-defined]
                  borderaxespad=0, frameon=False)


def figure2(alphas: Tensor, probability: Tensor, logit: Tensor, labels: Sequence[str]) -> Figure:
    """Softmax score (a) and pre-softmax logit (b) of each image's top class against alpha."""
    fig = Figure(figsize=(11.5, 4.0), layout="constrained")
    a = alphas.numpy()
    for k, (curves, title, ylab) in enumerate((
            (probability, "(a) softmax score of the top class", "softmax score"),
            (logit, "(b) pre-softmax logit of the top class", "logit"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, row in enumerate(curves.numpy()):
            ax.plot(a, row, lw=1.4, alpha=0.85, label=labels[i] if k == 1 else None)
        ax.set_xlabel("scaling parameter α")
        ax.set_ylabel(ylab)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if k == 1:
            _legend(ax, labels)
    return fig


def figure12(alphas: Tensor, l2: Mapping[str, Tensor], cosine: Mapping[str, Tensor],
             labels: Sequence[str]) -> Figure:
    """Per layer (columns): relative L2 distance (top) and cosine distance (bottom) of the
    activations at ``alpha`` to those at the image."""
    names = list(l2)
    fig = Figure(figsize=(3.0 * len(names) + 1.6, 5.4), layout="constrained")
    a = alphas.numpy()
    for j, name in enumerate(names):
        for r, (curves, ylab) in enumerate(((l2[name], "‖a(α) − a(1)‖ / ‖a(1)‖"),
                                           (cosine[name], "1 − cos(a(α), a(1))"))):
            ax = fig.add_subplot(2, len(names), r * len(names) + j + 1)
            for i, row in enumerate(curves.numpy()):
                ax.plot(a, row, lw=1.2, alpha=0.85,
                        label=labels[i] if (r == 0 and j == len(names) - 1) else None)
            if r == 0:
                ax.set_title(f"layer {name}", fontsize=9)
            else:
                ax.set_xlabel("α")
            if j == 0:
                ax.set_ylabel(ylab, fontsize=8)
            ax.grid(alpha=0.3)
            if r == 0 and j == len(names) - 1:
                _legend(ax, labels)
    return fig


def figure3_trend(alphas: Tensor, magnitude: Tensor, logit_magnitude: Tensor,
                  labels: Sequence[str]) -> Figure:
    """Mean |gradient| of the top-class softmax score (left) and logit (right) at each alpha,
    log scale, one line per image: Figure 3's inset, with the numbers on the axis."""
    fig = Figure(figsize=(11.5, 3.8), layout="constrained")
    a = alphas.numpy()
    for k, (mag, what) in enumerate(((magnitude, "softmax score"), (logit_magnitude, "logit"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for i, row in enumerate(mag.numpy()):
            ax.plot(a, np.maximum(row, 1e-30), marker="o", ms=3, lw=1.3, alpha=0.85,
                    label=labels[i] if k == 1 else None)
        ax.set_yscale("log")
        ax.set_xlabel("scaling parameter α")
        ax.set_ylabel(f"mean |gradient| of the {what}")
        ax.set_title(f"Interior gradients of the {what} (Figure 3)", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        if k == 1:
            _legend(ax, labels)
    return fig
