"""Coalitions of players: bit masks, the fast Moebius / zeta transforms, Shapley and Banzhaf.

Coalition ``S`` of ``n`` players is the integer whose bit ``i`` is set when player ``i`` is in
``S``; a game is the vector ``v`` of its ``2^n`` values in that order (last axis). The Harsanyi
dividends are the Moebius transform ``I(S) = sum_{T in S} (-1)^{|S|-|T|} v(T)``, computed in
``O(n 2^n)`` by subtracting, for each player ``i``, the value of each mask without ``i`` from the
mask with ``i`` (the zeta transform adds instead and inverts it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from attribkit.core.errors import InputError

__all__ = [
    "MAX_EXACT_PLAYERS",
    "banzhaf_from_dividends",
    "coalition_masks",
    "coalition_sizes",
    "moebius",
    "n_players_of",
    "shapley_from_dividends",
    "zeta",
]

#: The most players for which all ``2^n`` coalitions are enumerated on this kind of machine.
MAX_EXACT_PLAYERS = 20


def n_players_of(values: Tensor) -> int:
    """``n`` for a game vector whose last axis has ``2^n`` entries."""
    size = values.shape[-1]
    n = size.bit_length() - 1
    if size < 1 or 1 << n != size:
        raise InputError(f"a game needs 2^n values on its last axis, got {size}.")
    return n


def _butterfly(values: Tensor, sign: float) -> Tensor:
    n = n_players_of(values)
    out = values.clone()
    lead = out.shape[:-1]
    for i in range(n):
        view = out.view(*lead, -1, 2, 1 << i)
        view[..., 1, :].add_(view[..., 0, :], alpha=sign)
    return out


def moebius(values: Tensor) -> Tensor:
    """Harsanyi dividends of every coalition from the game values (last axis ``2^n``)."""
    return _butterfly(values, -1.0)


def zeta(dividends: Tensor) -> Tensor:
    """Game values from Harsanyi dividends: ``v(S) = sum_{T in S} I(T)`` (inverse of Moebius)."""
    return _butterfly(dividends, 1.0)


def coalition_sizes(n: int, device: torch.device | None = None) -> Tensor:
    """``|S|`` for every coalition mask ``0 .. 2^n - 1`` (int64)."""
    sizes = torch.zeros(1 << n, dtype=torch.long, device=device)
    for i in range(n):
        sizes.view(-1, 2, 1 << i)[:, 1, :] += 1
    return sizes


def coalition_masks(start: int, stop: int, n: int, device: torch.device | None = None) -> Tensor:
    """Boolean membership ``(stop - start, n)`` of the coalitions numbered ``start .. stop - 1``."""
    ids = torch.arange(start, stop, dtype=torch.long, device=device)
    bits = torch.arange(n, dtype=torch.long, device=device)
    return ((ids[:, None] >> bits) & 1).bool()


def _allocate(dividends: Tensor, weights: Tensor) -> Tensor:
    n = n_players_of(dividends)
    share = dividends * weights.to(dividends.dtype)
    lead = share.shape[:-1]
    cols = [share.view(*lead, -1, 2, 1 << i)[..., 1, :].sum(dim=(-2, -1)) for i in range(n)]
    return torch.stack(cols, dim=-1)


def shapley_from_dividends(dividends: Tensor) -> Tensor:
    """Shapley values ``phi_i = sum_{S contains i} I(S) / |S|`` (last axis ``n``)."""
    n = n_players_of(dividends)
    sizes = coalition_sizes(n, dividends.device).clamp_min(1)
    return _allocate(dividends, 1.0 / sizes.to(dividends.dtype))


def banzhaf_from_dividends(dividends: Tensor) -> Tensor:
    """Banzhaf values ``sum_{S contains i} I(S) / 2^{|S| - 1}`` (last axis ``n``)."""
    n = n_players_of(dividends)
    sizes = coalition_sizes(n, dividends.device).clamp_min(1)
    return _allocate(dividends, torch.pow(0.5, (sizes - 1).to(dividends.dtype)))
