"""Shapley interaction indices as allocations of Harsanyi dividends (one weight table each).

Every index here is linear in the Harsanyi dividends ``m(T)`` of the game and passes the
dividend of a coalition ``T`` to each sub-coalition ``S`` (``|S| <= order``) with a weight that
depends only on ``t = |T|``, ``s = |S|`` and the order ``k``::

    index(S) = sum_{T contains S} w(t, s, k) m(T)

so an index *is* its weight function (the view of shapiq's ``MoebiusConverter`` and of the
unification paper, Deng et al. 2023). The weights, exact rationals:

* ``Moebius``: ``w = [t == s]`` (each dividend stays where it is; orders above ``k`` are dropped).
* ``SII`` (Grabisch & Roubens 1999): ``w = 1 / (t - s + 1)``.
* ``BII`` (Banzhaf interaction index): ``w = 2^-(t - s)``.
* ``STII`` (Sundararajan et al. 2020): ``[t == s]`` for ``s < k``; at ``s = k`` a dividend of
  ``t >= k`` is split equally over its ``C(t, k)`` subsets of size ``k``.
* ``FSII`` (Tsai et al. 2023): ``[t == s]`` for ``t <= k``; above it
  ``(-1)^(k-s) s/(k+s) C(k, s) C(t-1, k) / C(t+k-1, k+s)``.
* ``k-SII`` (Bordt & von Luxburg 2023): the Bernoulli aggregation of SII,
  ``w = sum_{r=s}^{min(k,t)} C(t-s, r-s) B_(r-s) / (t - r + 1)`` for ``s >= 1``.

The empty coalition follows shapiq's conventions (``SII`` / ``BII``: the formula at ``s = 0``;
the others: ``v(empty)``). :func:`indices_from_dividends` applies any weight table to all
``2^n`` dividends with one shared loop: for each size ``s`` a superset-sum transform
(``O(n 2^n)``) of the dividends scaled by ``w(|T|, s)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache

import torch
from torch import Tensor

from attribkit.core.coalitions import coalition_sizes, moebius, n_players_of
from attribkit.core.errors import InputError

__all__ = [
    "INDICES",
    "coalitions_up_to",
    "dividend_weights",
    "index_weight",
    "indices_from_dividends",
    "indices_from_sparse",
    "indices_from_values",
    "normalise_index",
    "value_weights",
]

#: The interaction indices, in the order the docs present them.
INDICES = ("Moebius", "SII", "BII", "STII", "FSII", "k-SII")
_ALIASES = {name.lower().replace("-", ""): name for name in INDICES} | {
    "harsanyi": "Moebius", "mobius": "Moebius", "shapleytaylor": "STII",
    "faithshap": "FSII", "ksii": "k-SII", "banzhaf": "BII", "shapley": "SII"}


def normalise_index(index: str) -> str:
    """The canonical name of an interaction index (case and dashes are ignored)."""
    key = str(index).lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in _ALIASES:
        raise InputError(f"unknown interaction index {index!r}; choose one of "
                         f"{', '.join(INDICES)}.")
    return _ALIASES[key]


# -- the weight of each index: dividend of |T| = t passed to each S in T with |S| = s -------
def _moebius(t: int, s: int, k: int) -> Fraction:
    return Fraction(int(t == s))


def _sii(t: int, s: int, k: int) -> Fraction:
    return Fraction(1, t - s + 1)


def _bii(t: int, s: int, k: int) -> Fraction:
    return Fraction(1, 2 ** (t - s))


def _stii(t: int, s: int, k: int) -> Fraction:
    if s < k or t <= k:
        return Fraction(int(t == s))
    return Fraction(1, math.comb(t, k))


def _fsii(t: int, s: int, k: int) -> Fraction:
    if t <= k:
        return Fraction(int(t == s))
    sign = 1 if (k - s) % 2 == 0 else -1
    return sign * Fraction(s, k + s) * Fraction(
        math.comb(k, s) * math.comb(t - 1, k), math.comb(t + k - 1, k + s))


@lru_cache(maxsize=64)
def _bernoulli(m: int) -> tuple[Fraction, ...]:
    """Bernoulli numbers ``B_0 .. B_m`` with ``B_1 = -1/2``."""
    b = [Fraction(1)]
    for j in range(1, m + 1):
        b.append(-sum((math.comb(j + 1, i) * b[i] for i in range(j)), Fraction(0))
                 / (j + 1))
    return tuple(b)


def _ksii(t: int, s: int, k: int) -> Fraction:
    if s == 0:
        return Fraction(int(t == 0))
    b = _bernoulli(k)
    return sum((math.comb(t - s, r - s) * b[r - s] * Fraction(1, t - r + 1)
                for r in range(s, min(k, t) + 1)), Fraction(0))


_WEIGHTS: dict[str, Callable[[int, int, int], Fraction]] = {
    "Moebius": _moebius, "SII": _sii, "BII": _bii, "STII": _stii, "FSII": _fsii,
    "k-SII": _ksii}


def index_weight(index: str, t: int, s: int, order: int) -> Fraction:
    """The exact share of the dividend of a ``t``-coalition passed to one ``s``-subset.

    Parameters
    ----------
    index
        One of :data:`INDICES`.
    t
        The size of the dividend's coalition ``T``.
    s
        The size of the sub-coalition ``S`` (``s <= t``, ``s <= order``).
    order
        The order ``k`` of the explanation.
    """
    if not 0 <= s <= min(t, order):
        return Fraction(0)
    return _WEIGHTS[normalise_index(index)](t, s, order)


@lru_cache(maxsize=256)
def _weight_table(index: str, n: int, order: int) -> tuple[tuple[Fraction, ...], ...]:
    return tuple(tuple(index_weight(index, t, s, order) for s in range(order + 1))
                 for t in range(n + 1))


def dividend_weights(index: str, n: int, order: int, *,
                     dtype: torch.dtype = torch.float64) -> Tensor:
    """The weight table ``W[t, s]`` of an index for ``n`` players, ``(n + 1, order + 1)``."""
    table = _weight_table(normalise_index(index), int(n), int(order))
    return torch.tensor([[float(w) for w in row] for row in table], dtype=dtype)


@lru_cache(maxsize=64)
def _value_table(index: str, n: int, order: int) -> tuple[tuple[tuple[Fraction, ...], ...], ...]:
    table = _weight_table(index, n, order)
    out = []
    for s in range(order + 1):
        rows = []
        for u in range(n + 1):
            cells = []
            for j in range(min(s, u) + 1):  # j = |S and U|
                a = u + s - j  # |S or U|
                if a > n:
                    cells.append(Fraction(0))
                    continue
                cells.append(sum(((-1) ** (t - u) * math.comb(n - a, t - a) * table[t][s]
                                  for t in range(a, n + 1)), Fraction(0)))
            rows.append(tuple(cells) + (Fraction(0),) * (order - len(cells) + 1))
        out.append(tuple(rows))
    return tuple(out)


def value_weights(index: str, n: int, order: int, *,
                  dtype: torch.dtype = torch.float64) -> Tensor:
    """The index as a linear function of the game values, ``C[s, u, j]``, ``(k+1, n+1, k+1)``.

    ``index(S) = sum_U C[|S|, |U|, |S and U|] v(U)``: substituting the dividends
    ``m(T) = sum_{U in T} (-1)^(|T|-|U|) v(U)`` gives
    ``C[s, u, j] = sum_t (-1)^(t - u) C(n - a, t - a) w(t, s)`` with ``a = u + s - j``, summed
    in exact rationals (the float sum would cancel catastrophically). The sampler uses it to
    estimate an index from a sample of coalitions without bias.
    """
    table = _value_table(normalise_index(index), int(n), int(order))
    return torch.tensor([[[float(c) for c in row] for row in tab] for tab in table], dtype=dtype)


# -- coalitions up to an order ----------------------------------------------------------------
def coalitions_up_to(n: int, order: int, *, min_size: int = 0) -> tuple[tuple[int, ...], ...]:
    """All coalitions of ``min_size .. order`` players, by size then lexicographically."""
    return tuple(c for s in range(min_size, order + 1) for c in itertools.combinations(range(n), s))


def _masks(coalitions: Sequence[tuple[int, ...]], device: torch.device | None = None) -> Tensor:
    return torch.tensor([sum(1 << i for i in c) for c in coalitions], dtype=torch.long,
                        device=device)


def _check_order(n: int, order: int) -> None:
    if not 1 <= order <= n:
        raise InputError(f"order={order} must be between 1 and the number of players ({n}).")


# -- the shared exact loop --------------------------------------------------------------------
def indices_from_dividends(dividends: Tensor, index: str, order: int) -> Tensor:
    """An interaction index of every coalition up to ``order`` from all ``2^n`` dividends.

    Parameters
    ----------
    dividends
        ``(..., 2^n)`` Harsanyi dividends in mask order (bit ``i`` = player ``i``).
    index
        One of :data:`INDICES`.
    order
        The highest order ``k`` (``1 <= k <= n``).

    Returns
    -------
    Tensor
        ``(..., M)`` values of the coalitions :func:`coalitions_up_to` ``(n, order)`` lists.
    """
    n = n_players_of(dividends)
    _check_order(n, order)
    w = dividend_weights(index, n, order, dtype=dividends.dtype).to(dividends.device)
    sizes = coalition_sizes(n, dividends.device)
    lead = dividends.shape[:-1]
    outs = []
    for s in range(order + 1):
        g = dividends * w[sizes, s]
        if s == 0:
            outs.append(g.sum(dim=-1, keepdim=True))
            continue
        for i in range(n):  # superset sums: g(S) += g(S + i) for S without i
            view = g.view(*lead, -1, 2, 1 << i)
            view[..., 0, :].add_(view[..., 1, :])
        outs.append(g[..., _masks(coalitions_up_to(n, s, min_size=s), g.device)])
    return torch.cat(outs, dim=-1)


def indices_from_values(values: Tensor, index: str, order: int) -> Tensor:
    """:func:`indices_from_dividends` of the game ``values`` ``(..., 2^n)`` (mask order)."""
    return indices_from_dividends(moebius(values), index, order)


def indices_from_sparse(coalitions: Sequence[Sequence[int]], dividends: Tensor, n: int,
                        index: str, order: int) -> Tensor:
    """An index from a few non-zero dividends (a sparse game, e.g. a polynomial model).

    Parameters
    ----------
    coalitions
        The coalitions ``T`` with a non-zero dividend (player tuples, each at most once).
    dividends
        ``(..., len(coalitions))`` their dividends.
    n
        The number of players.
    index
        One of :data:`INDICES`.
    order
        The highest order.

    Returns
    -------
    Tensor
        ``(..., M)`` over :func:`coalitions_up_to` ``(n, order)``.
    """
    _check_order(n, order)
    table = _weight_table(normalise_index(index), int(n), int(order))
    targets = coalitions_up_to(n, order)
    where = {c: i for i, c in enumerate(targets)}
    rows, cols, vals = [], [], []
    for j, coal in enumerate(coalitions):
        t_set = tuple(sorted(int(p) for p in coal))
        for s in range(min(order, len(t_set)) + 1):
            w = float(table[len(t_set)][s])
            if w == 0.0:
                continue
            for sub in itertools.combinations(t_set, s):
                rows.append(where[sub])
                cols.append(j)
                vals.append(w)
    flat = dividends.reshape(-1, len(coalitions)).T  # (J, B)
    if not rows:
        return dividends.new_zeros((*dividends.shape[:-1], len(targets)))
    alloc = torch.sparse_coo_tensor(torch.tensor([rows, cols]), torch.tensor(
        vals, dtype=dividends.dtype), (len(targets), len(coalitions)),
        check_invariants=True).coalesce()
    out: Tensor = torch.sparse.mm(alloc.to(dividends.device), flat.contiguous())  # (M, B)
    return out.T.reshape(*dividends.shape[:-1], len(targets))
