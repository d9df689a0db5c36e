"""Which coalitions the interaction estimators evaluate, and what each sampled row weighs.

The design of :mod:`attribkit.core.interaction_sampling` and
:mod:`attribkit.core.interaction_regression`:

* ``v(empty)`` and ``v(N)`` are always evaluated (rows 0 and 1).
* Coalition sizes ``t`` and ``n - t`` form one stratum. A stratum is enumerated completely when
  the budget it would get covers it (the smallest and largest sizes first), otherwise it gets a
  number of random coalitions of size ``t``, each with its complement (antithetic pairs).
  Budget goes to the strata in proportion to a power of the Shapley kernel's mass
  ``1/(t (n - t))`` (1 for the cross-fitted estimator, 1/2 for the FSII regression: measured
  best at 40 players; the middle sizes say most about pairs).
* The pairs of each stratum are dealt alternately to two folds (for cross-fitting).

Every row has the Shapley kernel weight of its coalition,
``mu(U) = 1 / (C(n, u) u (n - u))`` (up to a constant), divided by its inclusion rate (1 in
an enumerated stratum, ``pairs / C(n, t)`` in a sampled one), so that weighted sums over the
rows estimate the kernel-weighted sums over all ``2^n`` coalitions without bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from attribkit.core.interaction_indices import coalitions_up_to

__all__ = ["Design", "dividend_features", "draw_design", "minimum_budget", "plan_strata",
           "row_weights"]


def minimum_budget(n: int) -> int:
    """The fewest evaluations the sampler accepts for ``n`` players (two pairs per stratum)."""
    return 2 + 4 * (n // 2)


@dataclass(frozen=True)
class Design:
    """The evaluated coalitions and how they were drawn.

    Attributes
    ----------
    coalitions
        ``(B, n)`` boolean rows: empty, full, the enumerated strata, then the sampled pairs
        (a coalition, then its complement).
    n_fixed
        Rows before the first sampled pair.
    pair_stratum
        ``(P,)`` the stratum ``t`` of each sampled pair (pair ``i`` is rows
        ``n_fixed + 2 i`` and ``n_fixed + 2 i + 1``).
    pair_fold
        ``(P,)`` the fold (0 or 1) of each pair.
    """

    coalitions: Tensor
    n_fixed: int
    pair_stratum: Tensor
    pair_fold: Tensor

    @property
    def n_players(self) -> int:
        """The number of players."""
        return int(self.coalitions.shape[1])

    @property
    def strata(self) -> tuple[int, ...]:
        """The sampled strata, ascending."""
        return tuple(sorted({int(t) for t in self.pair_stratum.tolist()}))

    def pair_rows(self) -> tuple[Tensor, Tensor]:
        """The row of each pair's first coalition and of its complement."""
        first = self.n_fixed + 2 * torch.arange(int(self.pair_stratum.shape[0]))
        return first, first + 1


def plan_strata(n: int, budget: int, power: float = 1.0) -> tuple[list[int], dict[int, int]]:
    """Which strata ``t = 1 .. n // 2`` are enumerated, and pairs for the others (even counts).

    Parameters
    ----------
    n
        The number of players.
    budget
        Evaluations, the two ends included.
    power
        Stratum ``t`` gets budget in proportion to ``(1 / (t (n - t)))^power``: 1 follows the
        kernel's mass, smaller values move samples towards the middle sizes.
    """
    strata = list(range(1, n // 2 + 1))
    cost = {t: math.comb(n, t) * (1 if 2 * t == n else 2) for t in strata}
    share = {t: (1.0 / (t * (n - t))) ** power for t in strata}
    left, exact = budget - 2, []
    open_ = list(strata)
    while open_:
        total = sum(share[t] for t in open_)
        cheap = [t for t in open_ if cost[t] <= left * share[t] / total]
        if not cheap:
            break
        t = min(cheap, key=lambda u: cost[u])
        exact.append(t)
        open_.remove(t)
        left -= cost[t]
    pairs: dict[int, int] = {}
    if open_:
        total = sum(share[t] for t in open_)
        for t in open_:
            pairs[t] = max(2, 2 * int(left / 2 * share[t] / total / 2))
        while 2 * sum(pairs.values()) > left and any(p > 2 for p in pairs.values()):
            big = max(pairs, key=lambda u: pairs[u])
            pairs[big] -= 2
        want = {t: left / 2 * share[t] / total for t in open_}
        while 2 * (sum(pairs.values()) + 2) <= left:  # spend what rounding left over
            t = max(open_, key=lambda u: want[u] - pairs[u])
            pairs[t] += 2
    return exact, pairs


def _random_coalitions(n: int, t: int, m: int, gen: torch.Generator) -> Tensor:
    order = torch.argsort(torch.rand((m, n), generator=gen), dim=1)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n).expand(m, n))
    return rank < t


def _all_of_size(n: int, t: int) -> Tensor:
    idx = torch.tensor(coalitions_up_to(n, t, min_size=t), dtype=torch.long).reshape(-1, t)
    out = torch.zeros((idx.shape[0], n), dtype=torch.bool)
    out.scatter_(1, idx, True)
    return out


def draw_design(n: int, budget: int, seed: int, power: float = 1.0) -> Design:
    """The coalitions to evaluate for ``n`` players and ``budget`` evaluations (module doc).

    Parameters
    ----------
    n
        The number of players.
    budget
        Evaluations.
    seed
        Seed of the local random generator.
    power
        The allocation over strata (:func:`plan_strata`).
    """
    gen = torch.Generator().manual_seed(int(seed))
    exact, pairs = plan_strata(n, budget, power)
    rows = [torch.zeros((1, n), dtype=torch.bool), torch.ones((1, n), dtype=torch.bool)]
    for t in exact:
        block = _all_of_size(n, t)
        rows += [block] if 2 * t == n else [block, ~block]
    n_fixed = sum(int(r.shape[0]) for r in rows)
    stratum: list[int] = []
    fold: list[int] = []
    for t, p in pairs.items():
        first = _random_coalitions(n, t, p, gen)
        rows.append(torch.stack([first, ~first], dim=1).reshape(2 * p, n))
        stratum += [t] * p
        fold += [i % 2 for i in range(p)]
    return Design(coalitions=torch.cat(rows), n_fixed=n_fixed,
                  pair_stratum=torch.tensor(stratum, dtype=torch.long),
                  pair_fold=torch.tensor(fold, dtype=torch.long))


def row_weights(design: Design, keep: Tensor | None = None) -> Tensor:
    """Shapley-kernel weight over inclusion rate of every row, ``(B,)`` (the ends get 0).

    Parameters
    ----------
    design
        The design.
    keep
        ``(P,)`` boolean: the pairs in use (e.g. one fold); the others get weight 0 and the
        rates count only the kept pairs. ``None``: all.
    """
    n, coal = design.n_players, design.coalitions
    sizes = coal.sum(dim=1)
    comb = torch.tensor([float(math.comb(n, u)) for u in range(n + 1)], dtype=torch.float64)
    w = 1.0 / (comb[sizes] * (sizes * (n - sizes)).clamp_min(1).to(torch.float64))
    w[:2] = 0.0
    strat = design.pair_stratum
    used = torch.ones_like(strat, dtype=torch.bool) if keep is None else keep
    rate = torch.zeros_like(strat, dtype=torch.float64)
    for t in design.strata:
        in_t = strat == t
        drawn = int((in_t & used).sum()) * (2 if 2 * t == n else 1)  # draws of each size
        rate[in_t] = drawn / math.comb(n, t) if drawn else 1.0
    first, second = design.pair_rows()
    scale = torch.where(used, 1.0 / rate, torch.zeros_like(rate))
    w[first] = w[first] * scale
    w[second] = w[second] * scale
    return w


def dividend_features(coalitions: Tensor, degree: int) -> Tensor:
    """``[T in U]`` for every coalition ``T`` of ``1 .. degree`` players, ``(B, p)`` float64.

    Parameters
    ----------
    coalitions
        ``(B, n)`` boolean rows ``U``.
    degree
        The largest ``|T|``.
    """
    n = int(coalitions.shape[1])
    u = coalitions.to(torch.float64)
    cols = [u]
    for s in range(2, degree + 1):
        sets = torch.tensor(coalitions_up_to(n, s, min_size=s), dtype=torch.long)
        prod = u[:, sets[:, 0]]
        for j in range(1, s):
            prod = prod * u[:, sets[:, j]]
        cols.append(prod)
    return torch.cat(cols[:degree], dim=1)
