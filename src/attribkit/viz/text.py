"""Text attributions: tokens highlighted as HTML (escaped) or in the terminal (ANSI colours)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from attribkit.core.errors import InputError

__all__ = ["token_colors", "tokens_ansi", "tokens_html"]


def _scores(tokens: Sequence[str], scores: Any) -> np.ndarray[Any, Any]:
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().double().numpy()
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.shape[0] != len(tokens):
        raise InputError(f"{len(tokens)} tokens but {s.shape[0]} scores; give one score per "
                         "token (e.g. attr.sum_embedding()[0]).")
    return s


def token_colors(scores: Any, tokens: Sequence[str] | None = None) -> list[tuple[int, int, int]]:
    """Background colour per token: green for positive, red for negative, white for zero.

    Parameters
    ----------
    scores : array-like
        ``(L,)`` one score per token.
    tokens : sequence of str, optional
        The tokens (only to check the length).

    Returns
    -------
    list of (int, int, int)
        RGB colours, intensity proportional to ``|score| / max |score|``.
    """
    s = _scores(tokens, scores) if tokens is not None else np.asarray(scores, dtype=np.float64)
    m = float(np.abs(s).max()) if s.size else 0.0
    out = []
    for v in s:
        w = abs(v) / m if m > 0 else 0.0
        if v >= 0:
            out.append((round(255 * (1 - 0.7 * w)), 255, round(255 * (1 - 0.7 * w))))
        else:
            out.append((255, round(255 * (1 - 0.7 * w)), round(255 * (1 - 0.7 * w))))
    return out


def _key(s: np.ndarray[Any, Any], target: str | None, output: float | None,
         baseline_output: float | None) -> str:
    """The colour key and the numbers the colours share: F(x), F(x'), their difference, the sum."""
    (gr, gg, gb), (rr, rg, rb) = token_colors(np.array([1.0, -1.0]))
    what = f"the explained class ({target})" if target else "the explained output"
    swatch = ('<span style="background:rgb({},{},{});padding:0 6px;border-radius:3px;'
              'margin:0 3px">&nbsp;</span>')
    parts = [f'<div class="ak-key" style="font-size:.85em;color:#333">'
             f'{swatch.format(gr, gg, gb)}supports {html.escape(what)}'
             f'{swatch.format(rr, rg, rb)}speaks against it; stronger colour: larger |a| '
             f"(max |a| = {float(np.abs(s).max()) if s.size else 0.0:.4g})."]
    nums = []
    if output is not None:
        nums.append(f"F(x) = {output:.4g}")
    if baseline_output is not None:
        nums.append(f"F(x') = {baseline_output:.4g}")
    if output is not None and baseline_output is not None:
        nums.append(f"F(x) - F(x') = {output - baseline_output:.4g}")
    nums.append(f"sum of attributions = {float(s.sum()):.4g}")
    parts.append(" " + html.escape(", ".join(nums)) + ".</div>")
    return "".join(parts)


def tokens_html(tokens: Sequence[str], scores: Any, *, title: str | None = None,
                key: bool = True, target: str | None = None, output: float | None = None,
                baseline_output: float | None = None) -> str:
    """An HTML fragment with each token highlighted by its attribution.

    Every token (and the title) is HTML-escaped, so untrusted text is safe to embed.

    Parameters
    ----------
    tokens : sequence of str
        The tokens.
    scores : array-like
        One attribution per token.
    title : str, optional
        A caption above the tokens.
    key : bool, default True
        Add the colour key (which colour supports the explained class) and the numbers
        ``F(x)``, ``F(x')``, their difference and the sum of the attributions.
    target : str, optional
        The explained class's name, for the key.
    output : float, optional
        ``F(x)``, the explained score at the text.
    baseline_output : float, optional
        ``F(x')``, the score at the baseline.

    Returns
    -------
    str
        A ``<div>`` of ``<span>`` elements (the score in each ``title`` tooltip).
    """
    s = _scores(tokens, scores)
    parts = ['<div class="ak-tokens" style="line-height:2;font-family:sans-serif">']
    if title is not None:
        parts.append(f"<div><b>{html.escape(title)}</b></div>")
    for tok, v, (r, g, b) in zip(tokens, s, token_colors(s), strict=True):
        parts.append(f'<span style="background:rgb({r},{g},{b});padding:2px 3px;margin:1px;'
                     f'border-radius:3px" title="{v:+.4g}">{html.escape(str(tok))}</span>')
    if key:
        parts.append(_key(s, target, output, baseline_output))
    parts.append("</div>")
    return "".join(parts)


def tokens_ansi(tokens: Sequence[str], scores: Any) -> str:
    """The tokens with 24-bit ANSI background colours, for a terminal.

    Parameters
    ----------
    tokens : sequence of str
        The tokens.
    scores : array-like
        One attribution per token.

    Returns
    -------
    str
        Tokens separated by spaces, each coloured and reset (``ESC[0m``).
    """
    s = _scores(tokens, scores)
    out = []
    for tok, (r, g, b) in zip(tokens, token_colors(s), strict=True):
        out.append(f"\x1b[48;2;{r};{g};{b}m\x1b[38;2;0;0;0m{tok}\x1b[0m")
    return " ".join(out)
