"""Coalitions of players: bit masks, the fast Moebius / zeta transforms, Shapley and Banzhaf.

Coalition ``S`` of ``n`` players is the integer whose bit ``i`` is set when player ``i`` is in
``S``; a game is the vector ``v`` of its ``2^n`` values in that order (last axis). The Harsanyi
dividends are the Moebius transform ``I(S) = sum_{T in S} (-1)^{|S|-|T|} v(T)``, computed in
``O(n 2^n)`` by subtracting, for each player ``i``, the value of each mask without ``i`` from the
mask with ``i`` (the zeta transform adds instead and inverts it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from attribkit.core.errors import InputError

if TYPE_CHECKING:
    from attribkit.core.problem import Problem

__all__ = [
    "MAX_EXACT_PLAYERS",
    "banzhaf_from_dividends",
    "check_group_ids",
    "coalition_masks",
    "coalition_sizes",
    "coalition_values",
    "moebius",
    "n_players_of",
    "patch_group_ids",
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


# -- games from a model: v(S) = F(x_S, b_rest) ------------------------------------------------
def patch_group_ids(shape: Sequence[int], window: int | Sequence[int]) -> Tensor:
    """Group ids that cut one example of ``shape`` into patches (players) of ``window``.

    The window covers the trailing axes of ``shape`` (a ``(8, 8)`` window on ``(3, 32, 32)``
    images groups all channels of each 8 x 8 patch); patches at the edges may be smaller. Ids
    run in row-major order of the patch grid.

    Parameters
    ----------
    shape
        The shape of one example (without the batch axis).
    window
        The patch size on the trailing axes (an int: the last axis only, as for the occlusion
        window; give ``(8, 8)`` for square image patches).

    Returns
    -------
    Tensor
        ``shape`` int64 ids ``0 .. n_patches - 1``.
    """
    shape = tuple(int(s) for s in shape)
    win = (int(window),) if isinstance(window, int) else tuple(int(w) for w in window)
    if not 1 <= len(win) <= len(shape) or any(w < 1 for w in win):
        raise InputError(f"window {win} must give a positive size for 1..{len(shape)} trailing "
                         f"axes of an example of shape {shape}.")
    lead = len(shape) - len(win)
    ids = torch.zeros(shape, dtype=torch.long)
    for k, w in enumerate(win):
        size = shape[lead + k]
        cell = torch.arange(size) // w
        n_cells = (size + w - 1) // w
        view = [1] * len(shape)
        view[lead + k] = size
        ids = ids * n_cells + cell.reshape(view)
    return ids


def check_group_ids(group_ids: Tensor | None, inputs: Tensor,
                    n_players: int | None = None) -> tuple[Tensor, int]:
    """Validate group ids against ``inputs`` ``(N, ...)``; return them ``(N, D)`` and ``n``.

    ``None`` makes every feature its own player. Ids ``0 .. n - 1`` are players; a negative id
    marks a feature that is no player (it always keeps the input's value).
    """
    n_ex, feat = inputs.shape[0], inputs.shape[1:]
    d = int(torch.tensor(feat).prod()) if len(feat) else 1
    if group_ids is None:
        ids = torch.arange(d, device=inputs.device).expand(n_ex, d)
    else:
        if not isinstance(group_ids, Tensor) or group_ids.dtype.is_floating_point or (
                group_ids.dtype == torch.bool):
            raise InputError("group ids must be an integer tensor (one player id per feature).")
        g = group_ids.to(inputs.device).long()
        if g.shape == feat:
            ids = g.reshape(1, d).expand(n_ex, d)
        elif g.shape == inputs.shape:
            ids = g.reshape(n_ex, d)
        else:
            raise InputError(
                f"group ids of shape {tuple(g.shape)} match neither one example {tuple(feat)} nor "
                f"the inputs {tuple(inputs.shape)}; give one id per feature.")
    top = int(ids.max()) + 1 if ids.numel() else 0
    n = top if n_players is None else int(n_players)
    if n < 1:
        raise InputError("there are no players: every group id is negative.")
    if top > n:
        raise InputError(f"group id {top - 1} is out of range for n_players={n}.")
    return ids, n


def coalition_values(
    problem: Problem,
    group_ids: Tensor | None = None,
    *,
    coalitions: Tensor | None = None,
    n_players: int | None = None,
    batch_size: int | None = None,
    desc: str = "coalitions",
) -> Tensor:
    """The game ``v(S) = F(x_S, b_rest)`` of each example, evaluated in batches.

    Features of the players in ``S`` take the input's values, the other players' features the
    baseline's; features with a negative group id always keep the input's value. Masked inputs
    are built chunk by chunk, so only one chunk of them is ever in memory.

    Parameters
    ----------
    problem
        A problem from :func:`attribkit.core.engine.prepare` with a baseline.
    group_ids
        Integer player id of each feature, shaped like one example (shared) or like the inputs
        (per example); ``None``: every feature is a player (flattened order).
    coalitions
        Which coalitions to evaluate: ``None`` for all ``2^n`` in mask order (bit ``i`` = player
        ``i``), or boolean membership ``(M, n)`` shared by the examples, or ``(N, M, n)``.
    n_players
        The number of players (default: the largest group id plus one).
    batch_size
        Rows per model call (default the problem's).
    desc
        Progress bar label.

    Returns
    -------
    Tensor
        ``(N, M)`` target scores (``(N, K, M)`` with several targets), ``M = 2^n`` by default.
    """
    if problem.baseline is None:
        raise InputError("coalition values need a baseline (prepare(..., needs_baseline=True)).")
    x, b = problem.inputs, problem.baseline
    ids, n = check_group_ids(group_ids, x, n_players)
    n_ex = problem.n
    flat_x, flat_b = x.reshape(n_ex, -1), b.reshape(n_ex, -1)
    if coalitions is None:
        if n > MAX_EXACT_PLAYERS:
            raise InputError(f"all 2^{n} coalitions of {n} players are too many to enumerate "
                             f"(at most {MAX_EXACT_PLAYERS} players); pass coalitions=...")
        m = 1 << n
        shared: Tensor | None = None
    else:
        if coalitions.dtype != torch.bool or coalitions.shape[-1] != n or coalitions.dim() not in (
                2, 3) or (coalitions.dim() == 3 and coalitions.shape[0] != n_ex):
            raise InputError(f"coalitions must be boolean (M, {n}) or ({n_ex}, M, {n}); got "
                             f"{coalitions.dtype} {tuple(coalitions.shape)}.")
        m = int(coalitions.shape[-2])
        shared = coalitions.to(x.device)
    # a non-player keeps the input's value whether "present" or not
    flat_b = torch.where(ids < 0, flat_x, flat_b)
    col = ids.clamp_min(0)
    shared_ids = bool((ids == ids[:1]).all())
    rows_per_call = int(batch_size) if batch_size is not None else problem.batch_size
    if shared is None and shared_ids:
        make = _all_coalitions_maker(flat_x, flat_b, col[0], m, rows_per_call, x.shape[1:])
    else:
        make = _general_maker(flat_x, flat_b, col, m, n, shared, x.shape[1:])

    example = torch.arange(n_ex, device=x.device).repeat_interleave(m)
    scores = problem.scores(make, example, desc=desc, rows=rows_per_call)
    scores = scores.reshape(n_ex, m, *scores.shape[1:])
    return scores.movedim(1, -1)


def _general_maker(flat_x: Tensor, flat_b: Tensor, col: Tensor, m: int, n: int,
                   shared: Tensor | None, shape: torch.Size) -> Callable[[slice], Tensor]:
    """Rows ``(example, coalition)`` for per-example ids or given coalitions."""
    bits = torch.arange(n, device=flat_x.device)

    def make(sl: slice) -> Tensor:
        rows = torch.arange(sl.start, sl.stop, device=flat_x.device)
        ex, s = rows // m, rows % m
        if shared is None:
            memb = ((s[:, None] >> bits) & 1).bool()
        elif shared.dim() == 2:
            memb = shared[s]
        else:
            memb = shared[ex, s]
        keep = memb.gather(1, col[ex])
        return torch.where(keep, flat_x[ex], flat_b[ex]).reshape(-1, *shape)

    return make


def _all_coalitions_maker(flat_x: Tensor, flat_b: Tensor, col: Tensor, m: int, rows: int,
                          shape: torch.Size) -> Callable[[slice], Tensor]:
    """Rows for all ``2^n`` coalitions with shared ids, fast when chunks are aligned.

    With chunks of ``2^k`` rows starting at multiples of ``2^k``, the low ``k`` bits of the
    coalition numbers in a chunk run through every pattern and the high bits are constant: the
    rows for the low players are built once per example, and each chunk copies them and sets the
    few columns of the high players.
    """
    dev = flat_x.device
    k = max(0, min(rows.bit_length() - 1, m.bit_length() - 1))
    low = col < k
    table = ((torch.arange(1 << k, device=dev)[:, None] >> col.clamp_max(max(k - 1, 0))) & 1
             ).bool() & low
    high_cols = (~low).nonzero()[:, 0]
    high_shift = col[high_cols]
    aligned = rows == 1 << k
    cache: dict[int, Tensor] = {}

    def make(sl: slice) -> Tensor:
        start, stop = int(sl.start), int(sl.stop)
        if not aligned or (start % (1 << k)) or (stop - start) != (1 << k) or (
                start // m != (stop - 1) // m):
            rows_ = torch.arange(start, stop, device=dev)
            ex, s = rows_ // m, rows_ % m
            keep = ((s[:, None] >> col) & 1).bool()
            return torch.where(keep, flat_x[ex], flat_b[ex]).reshape(-1, *shape)
        e, s0 = start // m, start % m
        if e not in cache:
            cache.clear()
            cache[e] = torch.where(table, flat_x[e], flat_b[e])
        pts = cache[e].clone()
        if high_cols.numel():
            on = ((s0 >> high_shift) & 1).bool()
            pts[:, high_cols] = torch.where(on, flat_x[e, high_cols], flat_b[e, high_cols])
        return pts.reshape(-1, *shape)

    return make
