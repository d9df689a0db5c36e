"""Shapley interaction indices of a prediction: which features (or groups) act together.

The game is the one of :func:`~attribkit.methods.shapley.shapley_values`,
``v(S) = F(x_S, b_rest)``. Up to :data:`~attribkit.core.coalitions.MAX_EXACT_PLAYERS` players
all ``2^n`` coalitions are evaluated, the fast Moebius transform gives the Harsanyi dividends,
and the index is the allocation of the dividends by its weight table
(:mod:`attribkit.core.interaction_indices`). With ``budget=`` the index is estimated from that
many coalitions (:mod:`attribkit.core.interaction_sampling`), with standard errors.

The result is an :class:`~attribkit.core.interactions_result.Interactions` (one value per
coalition, not per input element), so this is a public function beside the registry's
attribution methods rather than one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.checks import count
from attribkit.core.coalitions import MAX_EXACT_PLAYERS, coalition_values
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import InputError
from attribkit.core.interaction_indices import (
    coalitions_up_to,
    indices_from_values,
    normalise_index,
)
from attribkit.core.interaction_sampling import minimum_budget, sample_index
from attribkit.core.interactions_result import Interactions
from attribkit.core.masks import resolve_mask

__all__ = ["interactions"]

_MAX_FORWARD_ROWS = 16384
_CHUNK_BYTES = 8 << 20


def _rows(p: Problem, batch_size: int | None) -> int:
    """Rows per forward-only call: the user's, else about 8 MiB of inputs."""
    if batch_size is not None:
        return batch_size
    per_row = max(1, p.inputs[:1].numel() * p.inputs.element_size())
    return max(1, min(_MAX_FORWARD_ROWS, 8 * p.batch_size, _CHUNK_BYTES // per_row))


def _refuse_holes(ids: Tensor, n: int, labels: Tensor) -> None:
    """Every player must own a feature in every example (else it is a silent dummy)."""
    for e in range(int(ids.shape[0])):
        present = torch.zeros(n, dtype=torch.bool, device=ids.device)
        present[ids[e][ids[e] >= 0]] = True
        if not bool(present.all()):
            missing = int(labels[int((~present).nonzero()[0, 0])])
            raise InputError(f"feature_mask has a hole: group {missing} has no feature in "
                             f"example {e}; give every example every group (or explain the "
                             "examples separately).")


def interactions(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    index: str = "SII",
    order: int = 2,
    target: Any = None,
    baseline: Any = None,
    feature_mask: Any = None,
    budget: int | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Interactions:
    """Interaction indices of the features (or groups) of each example, up to an order.

    Parameters
    ----------
    model
        A torch model, or any callable from a batch to scores (NumPy functions, a scikit-learn
        ``predict_proba``; see :mod:`attribkit.core.blackbox`).
    inputs
        ``(N, ...)`` examples (a tensor or a NumPy array).
    index
        ``"SII"`` (Shapley interaction index), ``"STII"`` (Shapley-Taylor), ``"FSII"``
        (Faithful Shapley), ``"k-SII"``, ``"BII"`` (Banzhaf) or ``"Moebius"`` (the Harsanyi
        dividends themselves); see ``docs/interactions.md``.
    order
        The largest coalition reported (2: pairs, 3: triples), at most the number of players.
    target
        ``None`` (predicted class), an int, one index per example, a callable, or a MultiTarget.
    baseline
        The value of an absent player's features: ``None`` (zeros), a number, a name, a Baseline
        or a tensor.
    feature_mask
        Integer player id of each feature (shaped like one example, like the inputs, or
        broadcasting to them; :mod:`attribkit.masks`); negative ids keep the input's value.
        ``None``: every feature is a player.
    budget
        Model evaluations per example for an estimate (with standard errors). ``None``: exact,
        from all ``2^n`` coalitions (at most 20 players). A budget of ``2^n`` or more is exact.
    seed
        Seed of the sampler's local random generator (``None``: 0).
    batch_size
        Rows per model call; ``None`` chooses it from the inputs' size.
    progress
        Show a progress bar.
    forward_args
        Extra per-example tensors passed to the model after the inputs.

    Returns
    -------
    Interactions
        Values per coalition up to ``order``, ``top(k)``, ``matrix()``, the cost, ``F(x)`` and
        ``v(empty)``, and standard errors when estimated.
    """
    name = normalise_index(index)
    order = count(order, "order", minimum=1, maximum=None)
    if budget is not None:
        budget = count(budget, "budget", minimum=1, maximum=None)
    seed = 0 if seed is None else int(seed)
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, black_box=True) as p:
        ids, n, labels = resolve_mask(feature_mask, p.inputs)
        if order > n:
            raise InputError(f"order={order} is above the number of players ({n}); use "
                             f"order<={n} or more players.")
        if feature_mask is not None:
            _refuse_holes(ids, n, labels)
        exact = budget is None or (n <= MAX_EXACT_PLAYERS and budget >= 1 << n)
        if exact and n > MAX_EXACT_PLAYERS:
            raise InputError(
                f"exact {name} needs all 2^{n} = {1 << n:,} coalition values per example ({n} "
                f"players, the exact limit is {MAX_EXACT_PLAYERS}); pass budget= (e.g. "
                f"budget={max(minimum_budget(n), 4096)}) to estimate it, or fewer, larger "
                "groups with feature_mask=.")
        if not exact and budget is not None and budget < minimum_budget(n):
            raise InputError(f"budget={budget} is too small for {n} players: the sampler needs "
                             f"at least {minimum_budget(n)} evaluations.")
        rows = _rows(p, batch_size)
        shaped = ids.reshape(p.inputs.shape)
        stderr: Tensor | None = None
        if exact:
            game = coalition_values(p, shaped, n_players=n, batch_size=rows, desc="coalitions")
            game = game.to(torch.float64)
            values = indices_from_values(game, name, order)
            empty, full, spent = game[..., 0], game[..., -1], 1 << n
        else:
            assert budget is not None

            def play(coal: Tensor) -> Tensor:
                return coalition_values(p, shaped, coalitions=coal.to(p.inputs.device),
                                        n_players=n, batch_size=rows, desc="coalitions")

            est = sample_index(play, n, name, order, budget, seed=seed)
            values, stderr = est.values, est.stderr
            empty, full, spent = est.empty, est.full, est.evaluations
        params = {"index": name, "order": order, "players": n, "budget": budget, "seed": seed,
                  "feature_mask": feature_mask is not None,
                  "forward_evaluations": p.forward_evaluations}
        return Interactions(
            values=values, coalitions=coalitions_up_to(n, order), index=name, order=order,
            n_players=n, output=full, baseline_output=empty, evaluations=spent, exact=exact,
            stderr=stderr, labels=labels, params=params, target=p.target.indices)
