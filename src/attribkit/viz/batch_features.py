"""Features for the global views: image attributions summed over regions, token attributions
gathered by token, each as a matrix ``(examples, features)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.viz._common import Array

__all__ = ["region_values", "token_values"]


def region_values(attributions: Any, regions: Any = 16, *, inputs: Any = None,
                  ) -> tuple[Array, Array | None, list[str]]:
    """Image attributions summed over regions: one column per grid cell or mask.

    Parameters
    ----------
    attributions : Attribution or Tensor
        ``(N, C, H, W)`` (or ``(N, H, W)``) attributions.
    regions : int, (int, int) or Tensor, default 16
        A cell size (square cells, or ``(height, width)``; edge cells may be smaller), a label
        map ``(H, W)`` / ``(N, H, W)`` of integers ``0 .. G-1`` (negative: no region), or
        boolean masks ``(G, H, W)``.
    inputs : Tensor, optional
        ``(N, C, H, W)`` the images; gives each region's feature value (its mean intensity).
        Default: the inputs of an :class:`Attribution`.

    Returns
    -------
    (values, features, names)
        ``values (N, G)``: the signed sum of the attributions in each region (completeness is
        kept: the regions' sums add up to the total inside them); ``features (N, G)`` or
        ``None``; ``names``: ``"r{row}c{col}"`` for cells, ``"region {g}"`` otherwise.
    """
    if isinstance(attributions, Attribution):
        if inputs is None:
            inputs = attributions.inputs
        attributions = attributions.values
    a = torch.as_tensor(attributions).detach().cpu().double()
    if a.dim() == 4:
        a = a.sum(dim=1)
    if a.dim() != 3:
        raise InputError(f"region_values needs image attributions (N, C, H, W) or (N, H, W); "
                         f"got shape {tuple(a.shape)}.")
    n, h, w = a.shape
    x = None
    if inputs is not None:
        xt = torch.as_tensor(inputs).detach().cpu().double()
        x = xt.mean(dim=1) if xt.dim() == 4 else xt
    if isinstance(regions, int | tuple):
        ch, cw = (regions, regions) if isinstance(regions, int) else regions
        if ch < 1 or cw < 1:
            raise InputError(f"cell size must be positive, got {regions!r}.")
        rows, cols = -(-h // ch), -(-w // cw)
        lab = (torch.arange(h)[:, None] // ch) * cols + torch.arange(w)[None] // cw
        labels = lab.expand(n, h, w)
        names = [f"r{r}c{c}" for r in range(rows) for c in range(cols)]
    else:
        m = torch.as_tensor(regions).detach().cpu()
        if m.dtype == torch.bool:
            if m.dim() != 3 or m.shape[1:] != (h, w):
                raise InputError(f"masks must be (G, {h}, {w}); got {tuple(m.shape)}.")
            masks = m.to(torch.float64)
            vals = torch.einsum("nhw,ghw->ng", a, masks)
            feats = None if x is None else torch.einsum("nhw,ghw->ng", x, masks) / \
                masks.sum(dim=(1, 2)).clamp_min(1)
            return (vals.numpy(), None if feats is None else feats.numpy(),
                    [f"region {g}" for g in range(m.shape[0])])
        if m.shape[-2:] != (h, w):
            raise InputError(f"a label map must be (H, W) or (N, H, W) = ({h}, {w}); got "
                             f"{tuple(m.shape)}.")
        labels = m.to(torch.long).expand(n, h, w)
        names = [f"region {g}" for g in range(int(labels.max()) + 1)]
    g = len(names)
    flat = labels.reshape(n, -1)
    keep = flat >= 0
    idx = flat.clamp_min(0)
    vals = torch.zeros(n, g, dtype=torch.float64).scatter_add_(
        1, idx, a.reshape(n, -1) * keep)
    feats = None
    if x is not None:
        size = torch.zeros(n, g, dtype=torch.float64).scatter_add_(1, idx, keep.double())
        feats = torch.zeros(n, g, dtype=torch.float64).scatter_add_(
            1, idx, x.reshape(n, -1) * keep) / size.clamp_min(1)
    return vals.numpy(), None if feats is None else feats.numpy(), names


def token_values(tokens: Sequence[Sequence[str]], scores: Sequence[Any], *,
                 min_count: int = 1) -> tuple[Array, list[str]]:
    """Token attributions of several texts as one column per distinct token.

    Parameters
    ----------
    tokens : sequence of sequence of str
        The tokens of each text.
    scores : sequence of array-like
        One score per token of each text.
    min_count : int, default 1
        Keep tokens that occur in at least this many texts.

    Returns
    -------
    (values, names)
        ``values (N, V)``: the summed score of each token in each text, ``nan`` where a text
        does not contain it; ``names``: the tokens, most frequent first.
    """
    if len(tokens) != len(scores):
        raise InputError(f"{len(tokens)} texts but {len(scores)} score vectors.")
    rows: list[dict[str, float]] = []
    count: dict[str, int] = {}
    for toks, sc in zip(tokens, scores, strict=True):
        s = np.asarray(torch.as_tensor(sc).detach().cpu().double().numpy()).reshape(-1)
        if s.shape[0] != len(toks):
            raise InputError(f"{len(toks)} tokens but {s.shape[0]} scores in one text.")
        row: dict[str, float] = {}
        for t, v in zip(toks, s, strict=True):
            row[t] = row.get(t, 0.0) + float(v)
        for t in row:
            count[t] = count.get(t, 0) + 1
        rows.append(row)
    names = sorted((t for t, c in count.items() if c >= min_count), key=lambda t: -count[t])
    out = np.full((len(rows), len(names)), np.nan)
    for i, row in enumerate(rows):
        for j, t in enumerate(names):
            if t in row:
                out[i, j] = row[t]
    return out, names
