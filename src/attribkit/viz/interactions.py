"""Pictures of interaction indices: a pair heat map, a top-coalitions bar chart, an arc network.

Each takes an :class:`~attribkit.core.interactions_result.Interactions` (from
:func:`attribkit.interactions` or :func:`attribkit.prompt_interactions`) and returns a
matplotlib figure (Agg, never shown). Red is positive (the players together raise the output
beyond their single effects), blue negative, on scales symmetric around zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Arc

from attribkit.core.errors import InputError

__all__ = ["interaction_bars", "interaction_heatmap", "interaction_network"]

Array = np.ndarray[Any, Any]
_POS, _NEG = "#b2182b", "#2166ac"


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def _row(result: Any, example: int, target: int, what: str = "values") -> Array:
    t = getattr(result, what)
    if t is None:
        raise InputError(f"this result has no {what}.")
    arr: Array = np.asarray(t.detach().cpu().double().numpy(), dtype=np.float64)[example]
    out: Array = arr[target] if arr.ndim == 2 else arr
    return out


def _names(result: Any, names: Sequence[str] | None, max_label: int) -> list[str]:
    n = int(result.n_players)
    if names is not None:
        if len(names) != n:
            raise InputError(f"names has {len(names)} entries for {n} players.")
        got = [str(s) for s in names]
    else:
        got = [str(result.player_name(p)) for p in range(n)]
    return [_short(s, max_label) for s in got]


def _matrix(result: Any, example: int, target: int) -> Array:
    if int(result.order) < 2:
        raise InputError("this picture needs pairs: compute the interactions with order >= 2.")
    row = _row(result, example, target)
    n = int(result.n_players)
    m = np.zeros((n, n))
    for i, c in enumerate(result.coalitions):
        if len(c) == 1:
            m[c[0], c[0]] = row[i]
        elif len(c) == 2:
            m[c[0], c[1]] = m[c[1], c[0]] = row[i]
    return m


def interaction_heatmap(result: Any, *, example: int = 0, target: int = 0,
                        names: Sequence[str] | None = None, diagonal: bool = True,
                        annotate: bool | None = None, title: str | None = None,
                        max_label: int = 18) -> Figure:
    """The order-2 values as a symmetric players x players heat map with a colour bar.

    Parameters
    ----------
    result : Interactions
        The interactions (order at least 2).
    example : int
        Which example.
    target : int
        Which target, when several were explained.
    names : sequence of str, optional
        Player labels (default: the result's names, else the player ids).
    diagonal : bool
        Show the single players' values on the diagonal (else leave it blank).
    annotate : bool, optional
        Write the values in the cells (default: up to 12 players).
    title : str, optional
        Axes title (default: the index and the order).
    max_label : int
        Longest label before it is shortened.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    m = _matrix(result, example, target)
    n = m.shape[0]
    if not diagonal:
        m[np.diag_indices(n)] = np.nan
    labels = _names(result, names, max_label)
    side = min(3.0 + 0.45 * n, 16.0)
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot(1, 1, 1)
    vmax = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0
    vmax = vmax or 1.0
    im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    if annotate if annotate is not None else n <= 12:
        for i in range(n):
            for j in range(n):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2g}", ha="center", va="center", fontsize=6,
                            color="white" if abs(m[i, j]) > 0.6 * vmax else "black")
    what = "pairs off the diagonal, single players on it" if diagonal else "pairs"
    ax.set_title(title or f"{result.index} interactions ({what})", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=f"{result.index} value")
    fig.tight_layout()
    return fig


def interaction_bars(result: Any, k: int = 10, *, size: int | None = None, example: int = 0,
                     target: int = 0, names: Sequence[str] | None = None,
                     title: str | None = None, max_label: int = 24) -> Figure:
    """The ``k`` coalitions with the largest absolute values as horizontal bars, largest on top;
    with error bars of 1.96 standard errors when the values are estimated.

    Parameters
    ----------
    result : Interactions
        The interactions.
    k : int
        How many coalitions.
    size : int, optional
        Only coalitions of this size (default: the order, e.g. pairs).
    example, target : int
        Which example and target.
    names : sequence of str, optional
        Player labels.
    title : str, optional
        Axes title.
    max_label : int
        Longest player label before it is shortened.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    size = int(result.order) if size is None else int(size)
    row = _row(result, example, target)
    err = _row(result, example, target, "stderr") if result.stderr is not None else None
    pos = [i for i, c in enumerate(result.coalitions) if len(c) == size]
    if not pos:
        raise InputError(f"there are no coalitions of size {size} (order {result.order}).")
    best = sorted(pos, key=lambda i: -abs(row[i]))[:max(1, int(k))]
    labels = _names(result, names, max_label)
    ticks = [" × ".join(labels[p] for p in result.coalitions[i]) for i in best]
    vals = np.array([row[i] for i in best])
    fig = Figure(figsize=(7.5, 1.0 + 0.35 * len(best)))
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(best))[::-1]
    ax.barh(y, vals, color=[_POS if v >= 0 else _NEG for v in vals],
            xerr=None if err is None else 1.96 * np.array([err[i] for i in best]),
            error_kw={"elinewidth": 0.8, "capsize": 2})
    ax.set_yticks(y, ticks, fontsize=8)
    ax.axvline(0.0, color="black", linewidth=0.6)
    ax.set_xlabel(f"{result.index} value" + ("" if err is None else " (± 1.96 s.e.)"))
    ax.set_title(title or f"Strongest {'pairs' if size == 2 else f'coalitions of {size}'}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def interaction_network(result: Any, k: int = 10, *, example: int = 0, target: int = 0,
                        names: Sequence[str] | None = None, title: str | None = None,
                        max_label: int = 12) -> Figure:
    """The strongest ``k`` pairs as arcs over the players in reading order (tokens, spans).

    Each player is a dot on a line (coloured by its single value); each of the ``k`` pairs with
    the largest absolute values is an arc between its two players, red when positive, blue when
    negative, thicker when stronger.

    Parameters
    ----------
    result : Interactions
        The interactions (order at least 2).
    k : int
        How many pairs.
    example, target : int
        Which example and target.
    names : sequence of str, optional
        Player labels.
    title : str, optional
        Axes title.
    max_label : int
        Longest label before it is shortened.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; its arcs are ``fig.axes[0].patches``, strongest first.
    """
    m = _matrix(result, example, target)
    n = m.shape[0]
    labels = _names(result, names, max_label)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    best = sorted(pairs, key=lambda p: -abs(m[p]))[:max(1, int(k))]
    strongest = max(abs(m[best[0]]), 1e-300)
    fig = Figure(figsize=(min(2.0 + 0.7 * n, 18.0), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for i, j in best:
        v = m[i, j]
        ax.add_patch(Arc(((i + j) / 2, 0.0), j - i, (j - i) * 0.9, theta1=0, theta2=180,
                         color=_POS if v >= 0 else _NEG,
                         linewidth=0.6 + 5.0 * abs(v) / strongest))
    single = np.diag(m)
    smax = float(np.abs(single).max()) or 1.0
    ax.scatter(range(n), np.zeros(n), c=single, cmap="RdBu_r", vmin=-smax, vmax=smax, s=60,
               zorder=3, edgecolors="black", linewidths=0.5)
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(-0.2, max(1.0, 0.5 * max(j - i for i, j in best)) * 1.05)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or f"{result.index}: the {len(best)} strongest pairs (dots: single "
                 "players)", fontsize=10)
    fig.tight_layout()
    return fig
