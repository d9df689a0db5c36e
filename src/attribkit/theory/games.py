"""A cooperative game from a model's prediction, and its Harsanyi dividends.

``v(S) = F(x_S, b_rest)``: the players in ``S`` (single features, or groups of features given as
a mask of group ids: image patches, tokens, atoms, table columns) take the input's values, the
other players' features the baseline's. The Harsanyi dividends ``I(S) = sum_{T in S}
(-1)^{|S|-|T|} v(T)`` are the interaction effects ``J(S)`` of Deng et al. 2023, Understanding and
Unifying Fourteen Attribution Methods with Taylor Interactions; they come from all ``2^n`` values by
the fast Moebius transform of :mod:`attribkit.core.coalitions`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core import coalitions as co
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError

__all__ = ["MAX_EXACT_PLAYERS", "Game", "Interaction", "OrderShare", "players_of"]

#: The most players whose ``2^n`` coalitions a :class:`Game` enumerates.
MAX_EXACT_PLAYERS = co.MAX_EXACT_PLAYERS

Coalition = int | Iterable[int]


@dataclass(frozen=True)
class Interaction:
    """One coalition ``S`` and its Harsanyi dividend ``I(S)``."""

    players: tuple[int, ...]
    dividend: float

    @property
    def order(self) -> int:
        """``|S|``."""
        return len(self.players)


@dataclass(frozen=True)
class OrderShare:
    """The dividends of one order ``|S| = k`` summed: signed, positive, negative and absolute.

    ``share`` is this order's part of the total absolute dividend mass (orders sum to 1);
    ``output_share`` is ``total / (F(x) - F(b))`` (orders sum to 1; NaN if the output does not
    change).
    """

    order: int
    total: float
    positive: float
    negative: float
    absolute: float
    share: float
    output_share: float


def players_of(mask: int) -> tuple[int, ...]:
    """The players of coalition number ``mask`` (bit ``i`` = player ``i``)."""
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


def _mask_of(c: Coalition, n: int) -> int:
    if isinstance(c, int):
        m = int(c)
    else:
        m = 0
        for i in c:
            if not 0 <= int(i) < n:
                raise InputError(f"player {i} does not exist; players are 0 .. {n - 1}.")
            m |= 1 << int(i)
    if not 0 <= m < 1 << n:
        raise InputError(f"coalition {c!r} is out of range for {n} players.")
    return m


def _in_float64(model: Callable[..., Tensor], layer: nn.Module | None, inputs: Tensor,
                forward_args: Sequence[Tensor] | None, baseline: Any
                ) -> tuple[Callable[..., Tensor], nn.Module | None, Tensor,
                           Sequence[Tensor] | None, Any]:
    """A float64 copy of ``model`` (and the layer in it) with its float tensors in float64."""
    if not isinstance(model, nn.Module) or all(
            prm.dtype == torch.float64 for prm in model.parameters() if prm.is_floating_point()):
        return model, layer, inputs, forward_args, baseline
    path = None
    if layer is not None:
        path = next((name for name, mod in model.named_modules() if mod is layer), None)
        if path is None:
            raise InputError("layer= is not a sub-module of the model.")
    twin = copy.deepcopy(model).double()

    def f64(t: Any) -> Any:
        return t.double() if isinstance(t, Tensor) and t.is_floating_point() else t

    return (twin, twin.get_submodule(path) if path is not None else None, f64(inputs),
            None if forward_args is None else [f64(a) for a in forward_args], f64(baseline))


class Game:
    """The game ``v(S) = F(x_S, b_rest)`` of one prediction, with cached coalition values.

    Parameters
    ----------
    model
        Any callable from a batch to outputs ``(N,)`` or ``(N, C)``.
    inputs
        One example, ``(1, ...)`` (or ``(...)``, to which a batch axis is added).
    baseline
        The baseline (see :mod:`attribkit.core.baselines`; default zeros).
    target
        The scalar explained (see :mod:`attribkit.core.targets`; default the predicted class).
    players
        Integer group id per feature, shaped like one example: ids ``0 .. n - 1`` are players and
        a negative id marks a feature that is no player (it keeps the input's value). ``None``:
        every feature is its own player.
    batch_size
        Coalitions per model call (default 256).
    progress
        Show a progress bar while evaluating.
    forward_args
        Extra per-example tensors passed to the model after the inputs.
    layer
        Play the game on the output of this sub-module (e.g. the token embedding of a text
        model, with ``inputs`` as token ids and ``baseline`` as ``[PAD]`` ids or embeddings);
        ``players`` is then shaped like one example of that output (``(tokens, dim)``).
    precision
        ``"float64"`` (default): coalition values of an ``nn.Module`` with lower-precision
        parameters are computed on a float64 copy of it (the model itself is not changed), because
        the Moebius transform turns rounding noise of ``2^|S|`` values into spurious high-order
        dividends (``docs/benchmarks-harsanyi.md`` measures it); ``"model"``: in the model's own
        precision (faster, and the only choice for a model that is not an ``nn.Module``).

    Raises
    ------
    InputError
        With more than :data:`MAX_EXACT_PLAYERS` players (group the features into fewer players,
        e.g. with :func:`attribkit.core.coalitions.patch_group_ids`), or several examples.
    """

    def __init__(self, model: Callable[..., Tensor], inputs: Tensor, *, baseline: Any = None,
                 target: Any = None, players: Tensor | None = None, batch_size: int | None = None,
                 progress: bool = False, forward_args: Sequence[Tensor] | None = None,
                 layer: nn.Module | None = None, precision: str = "float64") -> None:
        if precision not in ("float64", "model"):
            raise InputError(f"precision must be 'float64' or 'model', got {precision!r}.")
        if not isinstance(inputs, Tensor):
            raise InputError("inputs must be a torch.Tensor holding one example.")
        if inputs.dim() == 0 or inputs.shape[0] != 1:
            inputs = inputs.unsqueeze(0)
        if inputs.shape[0] != 1:
            raise InputError("a Game explains one example; pass inputs of shape (1, ...).")
        if precision == "float64":
            model, layer, inputs, forward_args, baseline = _in_float64(
                model, layer, inputs, forward_args, baseline)
        #: The precision the coalition values were computed in.
        self.precision = precision
        self.model = model
        self.inputs = inputs.detach()
        self.target = target
        self.layer = layer
        self.forward_args = tuple(forward_args or ())
        self.batch_size = int(batch_size) if batch_size is not None else 256
        self.progress = progress
        with prepare(model, self.inputs, target=target, baseline=baseline, needs_baseline=True,
                     batch_size=self.batch_size, forward_args=self.forward_args,
                     allow_multi_target=False, layer=layer) as p:
            assert p.baseline is not None and p.output is not None
            space = p.inputs
            self.baseline = p.baseline
            rt = p.target
            self._target_arg: Any = rt.fn if rt.fn is not None else (
                rt.indices if rt.indices is not None else target)
            self.target_label = rt.label
            self.output = float(p.output[0])
            self.baseline_output = float(p.baseline_output[0]) if p.baseline_output is not None \
                else float("nan")
        ids, n = co.check_group_ids(players, space)
        if n > MAX_EXACT_PLAYERS:
            raise InputError(
                f"the game has {n} players, but at most {MAX_EXACT_PLAYERS} can be enumerated "
                f"exactly (2^{n} coalitions). Group the features into fewer players: pass "
                "players= a mask of group ids (e.g. attribkit.core.coalitions.patch_group_ids("
                "shape, window) for image patches, or one id per token/atom/column).")
        self.players = players
        self.group_ids = ids[0]
        self.n_players = n
        self._cache: dict[int, float] = {0: self.baseline_output, (1 << n) - 1: self.output}
        self._all: Tensor | None = None
        #: The number of model evaluations spent on coalitions so far.
        self.evaluations = 0

    # -- values ---------------------------------------------------------------------------------
    def _evaluate(self, memb: Tensor | None) -> Tensor:
        with prepare(self.model, self.inputs, target=self._target_arg, baseline=self.baseline,
                     needs_baseline=True, batch_size=self.batch_size, progress=self.progress,
                     forward_args=self.forward_args, allow_multi_target=False,
                     layer=self.layer) as p:
            out = co.coalition_values(p, self.players, coalitions=memb, n_players=self.n_players)
        self.evaluations += int(out.shape[-1])
        return out[0].detach().to(torch.float64)

    def value(self, coalition: Coalition) -> float:
        """``v(S)`` of one coalition: a mask number (bit ``i`` = player ``i``) or players."""
        return float(self.value_of([coalition])[0])

    def value_of(self, coalitions: Sequence[Coalition]) -> Tensor:
        """``v(S)`` of several coalitions (float64 ``(M,)``); new ones are evaluated in batches.

        Parameters
        ----------
        coalitions
            Mask numbers, or iterables of player indices.
        """
        masks = [_mask_of(c, self.n_players) for c in coalitions]
        if self._all is not None:
            return self._all[torch.tensor(masks, dtype=torch.long)].clone()
        missing = sorted({m for m in masks if m not in self._cache})
        if missing:
            ids = torch.tensor(missing, dtype=torch.long)
            memb = ((ids[:, None] >> torch.arange(self.n_players)) & 1).bool()
            vals = self._evaluate(memb.to(self.inputs.device))
            self._cache.update(zip(missing, vals.tolist(), strict=True))
        return torch.tensor([self._cache[m] for m in masks], dtype=torch.float64)

    def __repr__(self) -> str:
        return (f"Game(players={self.n_players}, target={self.target_label}, "
                f"F(x)={self.output:.4g}, F(b)={self.baseline_output:.4g}, "
                f"evaluations={self.evaluations})")

    def values(self) -> Tensor:
        """All ``2^n`` values ``v(S)`` in mask order (float64), evaluated once and cached."""
        if self._all is None:
            self._all = self._evaluate(None)
        return self._all

    # -- dividends and values of the players -----------------------------------------------------
    def dividends(self) -> Tensor:
        """The Harsanyi dividends ``I(S)`` of all ``2^n`` coalitions (fast Moebius transform)."""
        return co.moebius(self.values())

    def shapley(self) -> Tensor:
        """Shapley values ``sum_{S contains i} I(S) / |S|`` of the ``n`` players."""
        return co.shapley_from_dividends(self.dividends())

    def banzhaf(self) -> Tensor:
        """Banzhaf values ``sum_{S contains i} I(S) / 2^{|S| - 1}`` of the ``n`` players."""
        return co.banzhaf_from_dividends(self.dividends())

    # -- summaries ------------------------------------------------------------------------------
    def strongest(self, k: int = 10, *, min_order: int = 1) -> list[Interaction]:
        """The ``k`` coalitions of ``|S| >= min_order`` with the largest ``|I(S)|``."""
        div = self.dividends()
        sizes = co.coalition_sizes(self.n_players)
        mag = torch.where(sizes >= max(1, min_order), div.abs(), torch.full_like(div, -1.0))
        k = min(int(k), int((sizes >= max(1, min_order)).sum()))
        top = torch.topk(mag, k).indices.tolist()
        return [Interaction(players_of(m), float(div[m])) for m in top]

    def order_shares(self) -> list[OrderShare]:
        """The dividends summed by order ``|S| = 1 .. n`` (signed, positive, negative, absolute)."""
        div = self.dividends()
        sizes = co.coalition_sizes(self.n_players)
        mass = float(div[1:].abs().sum())
        change = float(div[1:].sum())
        rows = []
        for k in range(1, self.n_players + 1):
            d = div[sizes == k]
            pos, neg = float(d.clamp_min(0).sum()), float(d.clamp_max(0).sum())
            rows.append(OrderShare(k, pos + neg, pos, neg, pos - neg,
                                   (pos - neg) / mass if mass > 0 else 0.0,
                                   (pos + neg) / change if change != 0 else float("nan")))
        return rows

    def positive_negative(self) -> tuple[float, float]:
        """Sums of the positive and of the negative dividends of non-empty coalitions."""
        div = self.dividends()[1:]
        return float(div.clamp_min(0).sum()), float(div.clamp_max(0).sum())

    def interaction_index(self) -> dict[tuple[int, ...], float]:
        """Every non-zero dividend by its coalition (players tuple)."""
        div = self.dividends()
        nz = torch.nonzero(div != 0).flatten().tolist()
        return {players_of(m): float(div[m]) for m in nz if m}
