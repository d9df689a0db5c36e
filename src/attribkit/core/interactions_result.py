"""The :class:`Interactions` result: an interaction index of every coalition up to an order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attribkit.core.errors import InputError

__all__ = ["Interactions"]


@dataclass(frozen=True)
class Interactions:
    """Interaction values of players (features or groups) of each example.

    Attributes
    ----------
    values
        ``(N, M)`` (``(N, K, M)`` with several targets): the index of each coalition in
        ``coalitions``.
    coalitions
        The coalitions up to ``order`` as tuples of player numbers ``0 .. n - 1``, by size then
        lexicographically; the first is the empty coalition.
    index
        ``"Moebius"``, ``"SII"``, ``"BII"``, ``"STII"``, ``"FSII"`` or ``"k-SII"``.
    order
        The highest order.
    n_players
        The number of players ``n``.
    output
        ``F(x)`` per example, the value of the full coalition ``v(N)``.
    baseline_output
        ``v(empty)``: the model with every player at the baseline (features outside every group
        keep the input's values), i.e. ``F(x')`` when every feature is a player.
    evaluations
        Model evaluations per example spent on the game (``2^n`` when exact).
    exact
        Whether the values are exact (all coalitions) or estimated (``budget=``).
    stderr
        Standard errors like ``values`` when estimated, else ``None``.
    labels
        ``(n,)`` the user's id of each player (the feature-mask ids, or flat feature indices).
    params
        The call's options, for the record.
    target
        The explained class per example, where one was chosen.
    names
        A display name per player (e.g. the text of each prompt span), else ``None``.
    """

    values: Tensor
    coalitions: tuple[tuple[int, ...], ...]
    index: str
    order: int
    n_players: int
    output: Tensor
    baseline_output: Tensor
    evaluations: int
    exact: bool
    stderr: Tensor | None = None
    labels: Tensor | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    target: Tensor | None = None
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.values.shape[-1] != len(self.coalitions):
            raise InputError(f"{self.values.shape[-1]} values for {len(self.coalitions)} "
                             "coalitions.")

    # -- lookups ------------------------------------------------------------------------------
    def _label(self, player: int) -> int:
        return int(self.labels[player]) if self.labels is not None else int(player)

    def _position(self, coalition: Sequence[int]) -> int:
        players = tuple(sorted(int(p) for p in coalition))
        if self.labels is not None:
            lookup = {int(v): i for i, v in enumerate(self.labels.tolist())}
            try:
                players = tuple(sorted(lookup[p] for p in players))
            except KeyError as err:
                raise InputError(f"player {err.args[0]} is not among the ids "
                                 f"{self.labels.tolist()}.") from None
        try:
            return self.coalitions.index(players)
        except ValueError:
            raise InputError(f"coalition {tuple(coalition)} is not among the coalitions up to "
                             f"order {self.order} of {self.n_players} players.") from None

    def player_name(self, player: int) -> str:
        """The display name of player ``player`` (``0 .. n - 1``): its name, else its id."""
        if self.names is not None:
            return self.names[player]
        return str(self._label(player))

    def value(self, coalition: Sequence[int]) -> Tensor:
        """The index of one coalition (given in the user's player ids), ``(N,)`` or ``(N, K)``."""
        return self.values[..., self._position(coalition)]

    def of_order(self, size: int) -> tuple[tuple[tuple[int, ...], ...], Tensor]:
        """The coalitions of exactly ``size`` players (user ids) and their values ``(..., M_s)``."""
        pos = [i for i, c in enumerate(self.coalitions) if len(c) == size]
        if not pos:
            raise InputError(f"there are no coalitions of size {size} (order {self.order}).")
        named = tuple(tuple(self._label(p) for p in self.coalitions[i]) for i in pos)
        return named, self.values[..., pos]

    def top(self, k: int = 10, *, size: int | None = None, example: int = 0,
            target: int = 0) -> list[tuple[tuple[int, ...], float]]:
        """The ``k`` coalitions with the largest absolute values, largest first.

        Parameters
        ----------
        k
            How many.
        size
            Only coalitions of this size (default: the order, e.g. pairs for ``order=2``).
        example
            Which example.
        target
            Which target, when several were explained.
        """
        names, vals = self.of_order(self.order if size is None else size)
        row = vals[example]
        if row.dim() == 2:
            row = row[target]
        best = torch.argsort(row.abs(), descending=True)[:k]
        return [(names[int(i)], float(row[i])) for i in best]

    def matrix(self) -> Tensor:
        """The order-2 values as a symmetric ``(N, n, n)`` matrix (``(N, K, n, n)``), the
        order-1 values on the diagonal; needs ``order >= 2``."""
        if self.order < 2:
            raise InputError("matrix() needs order >= 2 (pairs); this result has order 1.")
        n = self.n_players
        out = self.values.new_zeros((*self.values.shape[:-1], n, n))
        for i, c in enumerate(self.coalitions):
            if len(c) == 1:
                out[..., c[0], c[0]] = self.values[..., i]
            elif len(c) == 2:
                out[..., c[0], c[1]] = self.values[..., i]
                out[..., c[1], c[0]] = self.values[..., i]
        return out

    def total(self) -> Tensor:
        """The sum over all coalitions (the empty one included): ``F(x)`` for the efficient
        indices (FSII, STII, k-SII, and Moebius at ``order = n``)."""
        return self.values.sum(dim=-1)

    def __repr__(self) -> str:
        how = "exact" if self.exact else f"estimated, budget {self.evaluations}"
        return (f"Interactions({self.index}, order={self.order}, {self.n_players} players, "
                f"{tuple(self.values.shape[:-1])} examples, {how})")
