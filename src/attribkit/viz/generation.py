"""The token-by-token heat map of generation attribution: generated tokens x prompt tokens.

Takes a :class:`~attribkit.sequences.GenerationAttribution` (or any object with ``matrix``,
``prompt_tokens``, ``generated_tokens``) and draws it; nothing here computes attributions.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["generation_heatmap", "generation_html"]


def _matrix(result: Any) -> np.ndarray[Any, Any]:
    m = result.matrix
    arr = m.detach().cpu().double().numpy() if hasattr(m, "detach") else np.asarray(m, float)
    return np.asarray(arr, dtype=np.float64)


def generation_heatmap(result: Any, *, title: str | None = None, annotate: bool | None = None,
                       max_label: int = 14) -> Figure:
    """A heat map: one row per generated token, one column per prompt token (or group).

    Red is positive (the prompt token raised the generated token's log-probability), blue
    negative, on a scale symmetric around zero. The right margin shows each row's sum and the
    generated token's log-probability.

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

    Returns
    -------
    matplotlib.figure.Figure
        The figure (Agg; save it or pass it to the report).
    """
    m = _matrix(result)
    t, p = m.shape

    def short(s: str) -> str:
        return s if len(s) <= max_label else s[:max_label - 1] + "…"

    fig = Figure(figsize=(min(2.0 + 0.55 * p, 18.0), min(1.6 + 0.42 * t, 14.0)))
    ax = fig.add_subplot(1, 1, 1)
    vmax = float(np.abs(m).max()) or 1.0
    im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(p), [short(s) for s in result.prompt_tokens], rotation=60, ha="right",
                  fontsize=8)
    logp = getattr(result, "logprobs", None)
    rows = []
    for i, tok in enumerate(result.generated_tokens):
        extra = f"  (log p {float(logp[i]):.2f})" if logp is not None else ""
        rows.append(f"{short(tok)}{extra}")
    ax.set_yticks(range(t), rows, fontsize=8)
    ax.set_xlabel("prompt token")
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
            title += f"  (largest completeness gap {float(rg.max()):.1%})"
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    return fig


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
