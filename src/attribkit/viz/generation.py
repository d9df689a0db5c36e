"""The token-by-token heat map of generation attribution: generated tokens x prompt tokens.

Takes a :class:`~attribkit.sequences.GenerationAttribution` (or any object with ``matrix``,
``prompt_tokens``, ``generated_tokens``) and draws it; nothing here computes attributions.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["colour_limit", "condense_columns", "generation_heatmap", "generation_html"]


def _matrix(result: Any) -> np.ndarray[Any, Any]:
    m = result.matrix
    arr = m.detach().cpu().double().numpy() if hasattr(m, "detach") else np.asarray(m, float)
    return np.asarray(arr, dtype=np.float64)


def condense_columns(matrix: np.ndarray[Any, Any], labels: Sequence[str], max_columns: int = 30
                     ) -> tuple[np.ndarray[Any, Any], list[str]]:
    """At most ``max_columns`` columns: the prompt tokens with the largest total ``|a|`` and one
    ``other`` column that sums the rest.

    Parameters
    ----------
    matrix : ndarray
        ``(T, P)`` generated x prompt.
    labels : sequence of str
        The ``P`` column labels.
    max_columns : int
        Largest number of columns kept; when ``P`` is larger, the ``max_columns - 1`` columns
        with the largest ``sum_t |a_tj|`` stay (in prompt order) and the rest are added up,
        row by row, into a last column ``other (N tokens)``, so every row keeps its sum.

    Returns
    -------
    tuple of ndarray and list of str
        The condensed matrix and its column labels.
    """
    m = np.asarray(matrix, dtype=np.float64)
    names = [str(s) for s in labels]
    if max_columns < 2:
        raise ValueError(f"max_columns must be at least 2, got {max_columns}")
    p = m.shape[1]
    if p <= max_columns:
        return m, names
    weight = np.nan_to_num(np.abs(m)).sum(axis=0)
    keep = np.sort(np.argsort(-weight, kind="stable")[:max_columns - 1])
    rest = np.setdiff1d(np.arange(p), keep)
    out = np.concatenate([m[:, keep], m[:, rest].sum(axis=1, keepdims=True)], axis=1)
    return out, [names[j] for j in keep] + [f"other ({rest.size} tokens)"]


def colour_limit(matrix: np.ndarray[Any, Any], percentile: float = 99.0) -> float:
    """The top of a symmetric colour scale: the ``percentile`` of ``|matrix|`` (its largest
    value when that is zero; 1 for an all-zero matrix), so that a few extreme cells do not
    wash out the rest."""
    mag = np.abs(np.asarray(matrix, dtype=np.float64))
    mag = mag[np.isfinite(mag)]
    if not mag.size:
        return 1.0
    top = float(np.percentile(mag, percentile))
    return top if top > 0 else (float(mag.max()) or 1.0)


def generation_heatmap(result: Any, *, title: str | None = None, annotate: bool | None = None,
                       max_label: int = 14, max_columns: int = 30,
                       percentile: float = 99.0) -> Figure:
    """A heat map: one row per generated token, one column per prompt token (or group).

    Red is positive (the prompt token raised the generated token's log-probability), blue
    negative, on a scale symmetric around zero that ends at the ``percentile`` of ``|a|``
    (larger values take the end colour; the colour bar says so). A long prompt is condensed to
    ``max_columns`` columns (:func:`condense_columns`): the prompt tokens with the largest total
    ``|a|`` and one ``other`` column. The row labels show each generated token's
    log-probability. The figure is at most 18 inches wide.

    Parameters
    ----------
    result : GenerationAttribution
        The attribution.
    title : str, optional
        Axes title (default: the method and the completeness gap when there is one).
    annotate : bool, optional
        Write the values in the cells (default: when there are at most 15 x 15 cells).
    max_label : int
        Longest token label before it is shortened.
    max_columns : int
        Most columns drawn (see above).
    percentile : float
        The colour scale's end, as a percentile of ``|a|`` over the cells drawn.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (Agg; save it or pass it to the report).
    """
    full = _matrix(result)
    m, labels = condense_columns(full, result.prompt_tokens, max_columns)
    t, p = m.shape

    def short(s: str) -> str:
        return s if len(s) <= max_label else s[:max_label - 1] + "…"

    fig = Figure(figsize=(min(max(6.0, 3.0 + 0.55 * p), 18.0), min(2.0 + 0.42 * t, 14.0)))
    ax = fig.add_subplot(1, 1, 1)
    vmax = colour_limit(m, percentile)
    im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto",
                   interpolation="nearest")
    ticks = [short(s) for s in labels]
    if p < full.shape[1]:
        ticks[-1] = labels[-1]  # "other (N tokens)" in full
    ax.set_xticks(range(p), ticks, rotation=60, ha="right", fontsize=8)
    logp = getattr(result, "logprobs", None)
    rows = []
    for i, tok in enumerate(result.generated_tokens):
        extra = f"  (log p {float(logp[i]):.2f})" if logp is not None else ""
        rows.append(f"{short(tok)}{extra}")
    ax.set_yticks(range(t), rows, fontsize=8)
    kept = "" if p == full.shape[1] else (
        f" ({p - 1} of {full.shape[1]} with the largest total |a|, the rest summed)")
    ax.set_xlabel(f"prompt token{kept}", fontsize=9)
    ax.set_ylabel("generated token")
    if annotate if annotate is not None else (t <= 15 and p <= 15):
        for i in range(t):
            for j in range(p):
                v = m[i, j]
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(v) > 0.6 * vmax else "black")
    if title is None:
        title = getattr(result, "method", "attribution")
        rg = getattr(result, "relative_gap", None)
        if rg is not None:
            title += f"  (largest completeness gap {float(np.max(_numpy(rg))):.1%})"
    ax.set_title(title, fontsize=10)
    clipped = bool((np.abs(m) > vmax).any())
    bar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02,
                       extend="both" if clipped else "neither")
    bar.set_label(f"attribution\n(colours end at ±{vmax:.3g},\n"
                  f"the {percentile:g}th percentile of |a|)", fontsize=8)
    fig.tight_layout()
    return fig


def _numpy(x: Any) -> np.ndarray[Any, Any]:
    return x.detach().cpu().double().numpy() if hasattr(x, "detach") else np.asarray(x, float)


def generation_html(result: Any, *, digits: int = 3) -> str:
    """The matrix as an HTML table with cell colours (red positive, blue negative).

    Parameters
    ----------
    result : GenerationAttribution
        The attribution.
    digits : int
        Decimals shown.

    Returns
    -------
    str
        A ``<table>`` fragment (for :class:`attribkit.report.Report.raw`).
    """
    m = _matrix(result)
    vmax = float(np.abs(m).max()) or 1.0
    head = "".join(f"<th>{html.escape(s)}</th>" for s in result.prompt_tokens)
    body = []
    for i, tok in enumerate(result.generated_tokens):
        cells = []
        for v in m[i]:
            a = min(1.0, abs(v) / vmax)
            rgb = (255, int(255 * (1 - a)), int(255 * (1 - a))) if v >= 0 else (
                int(255 * (1 - a)), int(255 * (1 - a)), 255)
            cells.append(f'<td style="background:rgb{rgb}">{v:.{digits}f}</td>')
        body.append(f"<tr><th>{html.escape(tok)}</th>{''.join(cells)}"
                    f"<td>{float(m[i].sum()):.{digits}f}</td></tr>")
    return (f"<table><tr><th></th>{head}<th>sum</th></tr>{''.join(body)}</table>")
