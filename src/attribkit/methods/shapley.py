"""Shapley values of features or groups of features (Shapley 1953; Deng et al. 2023, Table 1).

The game is ``v(S) = F(x_S, b_rest)``: the players in ``S`` take the input's values, the others
the baseline's. Two ways to compute ``phi``:

* **exact**: evaluate all ``2^n`` coalitions in batches, take the Harsanyi dividends with the fast
  Moebius transform and share each dividend equally among its members,
  ``phi_i = sum_{S contains i} I(S) / |S|`` (``O(n 2^n)`` after the model evaluations). The
  dividends come back in ``extras["dividends"]``.
* **sampling**: random permutations in antithetic pairs (a permutation and its reverse); each
  permutation's marginal contributions sum to ``v(N) - v(0)``, so efficiency holds exactly for
  the estimate too. ``extras["stderr"]`` is the standard error of each player's estimate (from
  the spread of the pair means).

``mode="auto"`` (the default) is exact when there are at most :data:`AUTO_EXACT_PLAYERS` players
and samples otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.checks import count
from attribkit.core.coalitions import (
    MAX_EXACT_PLAYERS,
    coalition_values,
    moebius,
    shapley_from_dividends,
)
from attribkit.core.cost import announce, photo_players
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import InputError
from attribkit.core.masks import group_to_features, pick_mask, resolve_mask
from attribkit.core.multi import several_inputs
from attribkit.core.probes import forward_rows
from attribkit.methods.registry import register

__all__ = ["AUTO_EXACT_PLAYERS", "shapley_values", "spread_to_features"]

#: ``mode="auto"`` enumerates all coalitions up to this many players (65,536 evaluations).
AUTO_EXACT_PLAYERS = 16


def spread_to_features(phi: Tensor, ids: Tensor, shape: Sequence[int]) -> Tensor:
    """Per-feature values from per-player values: each player's value split equally.

    Parameters
    ----------
    phi
        ``(N, n)`` or ``(N, K, n)`` player values.
    ids
        ``(N, D)`` group id of each feature (negative: no player, value 0).
    shape
        The inputs' shape ``(N, ...)``.

    Returns
    -------
    Tensor
        ``(N, ...)`` (or ``(N, K, ...)``) values that sum to the players' values per example.
    """
    return group_to_features(phi, ids, shape, split=True)



def _exact(p: Problem, ids: Tensor, n: int, rows: int) -> tuple[Tensor, Tensor, Tensor]:
    values = coalition_values(p, ids.reshape(p.inputs.shape), n_players=n, batch_size=rows,
                              desc="coalitions")
    dividends = moebius(values.to(torch.float64))
    phi = shapley_from_dividends(dividends)
    return phi.to(p.inputs.dtype), dividends, values[..., 0]


def _permutations(n: int, pairs: int, generator: torch.Generator) -> Tensor:
    """``(2 * pairs, n)`` permutations: each random one followed by its reverse."""
    perms = torch.argsort(torch.rand((pairs, n), generator=generator), dim=1)
    return torch.stack([perms, perms.flip(1)], dim=1).reshape(2 * pairs, n)


def _sampling(p: Problem, ids: Tensor, n: int, n_samples: int, seed: int,
              rows: int) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    pairs = max(1, n_samples // 2)
    perms = _permutations(n, pairs, gen).to(p.inputs.device)
    m = perms.shape[0]
    # prefix j of permutation r holds its first j players (j = 1 .. n - 1); the empty and the
    # full coalition are shared by every permutation
    rank = torch.empty_like(perms)
    rank.scatter_(1, perms, torch.arange(n, device=perms.device).expand(m, n))
    j = torch.arange(1, n, device=perms.device)
    prefixes = (rank[:, None, :] < j[None, :, None]).reshape(-1, n)
    ends = torch.stack([torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)])
    coalitions = torch.cat([ends.to(prefixes.device), prefixes])
    v = coalition_values(p, ids.reshape(p.inputs.shape), coalitions=coalitions, n_players=n,
                         batch_size=rows, desc="permutations")
    lead = v.shape[:-1]
    inner = v[..., 2:].reshape(*lead, m, n - 1)
    chain = torch.cat([v[..., :1, None].expand(*lead, m, 1), inner,
                       v[..., 1:2, None].expand(*lead, m, 1)], dim=-1)
    marg_in_order = chain[..., 1:] - chain[..., :-1]  # (.., m, n): contribution of perm[r, k]
    idx = perms.expand(*lead, m, n)
    contrib = torch.zeros_like(marg_in_order).scatter_(-1, idx, marg_in_order)
    pair_means = contrib.reshape(*lead, pairs, 2, n).mean(dim=-2)
    phi = pair_means.mean(dim=-2)
    if pairs > 1:
        stderr = pair_means.std(dim=-2, unbiased=True) / math.sqrt(pairs)
    else:
        stderr = torch.full_like(phi, math.inf)
    return phi, stderr, v[..., 0]


@register(
    "shapley_values",
    aliases=("shapley", "shapley_value", "shap"),
    family="perturbation",
    needs_baseline=True,
    complete=True,
    axioms={"completeness", "sensitivity_b", "linearity", "symmetry"},
    stochastic=True,
    summary="Shapley values of features or groups: exact (all coalitions + Moebius) or "
            "antithetic permutation sampling.",
)
@several_inputs()
@shared_parameters("model", "inputs", "target", "baseline:absent", "groups", "batch_size",
                   "progress", "forward_args")
def shapley_values(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    feature_mask: Tensor | None = None,
    groups: Tensor | None = None,
    mode: str = "auto",
    n_samples: int = 256,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Shapley values of the game ``v(S) = F(x_S, b_rest)`` over features or groups.

    Parameters
    ----------
    feature_mask
        Integer player id of each feature, shaped like one example, like the inputs, or any
        shape that broadcasts to them (grids and superpixels: :mod:`attribkit.masks`; tokens,
        atoms: any labelling); ids need not be contiguous (players are numbered in increasing
        id order, ``extras["group_labels"]``); negative ids mark features that always keep the
        input's value. ``None``: every feature is a player.
    mode
        ``"exact"`` (all ``2^n`` coalitions; at most
        :data:`~attribkit.core.coalitions.MAX_EXACT_PLAYERS` players), ``"sampling"``
        (permutations), or ``"auto"``: exact when ``n <= AUTO_EXACT_PLAYERS`` (16), else sampling.
    n_samples
        Permutations in sampling mode (rounded down to pairs, at least one pair); each costs
        ``n - 1`` model evaluations per example.
    seed
        Seed of the local random generator (sampling mode).

    Returns
    -------
    Attribution
        ``values`` shaped like the inputs: each player's value split equally over its features
        (so the values sum to ``F(x) - F(x')`` per example); ``extras["players"]`` ``(N, n)``
        (``(N, K, n)`` with several targets) the players' values; with non-player features the
        recorded baseline keeps their input values (so ``gap`` is still zero);
        ``extras["dividends"]`` the ``2^n`` Harsanyi dividends (exact mode, float64, coalition
        ``S`` at index ``sum_{i in S} 2^i``); ``extras["stderr"]`` per player (sampling mode).
    """
    if mode not in ("auto", "exact", "sampling"):
        raise InputError(f"mode must be 'auto', 'exact' or 'sampling', got {mode!r}.")
    n_samples = count(n_samples, "n_samples (at least one antithetic pair)", minimum=2)
    mask = pick_mask(feature_mask, groups)
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, black_box=True) as p:
        mask = photo_players(p.inputs, mask, "shapley_values")
        ids, n, labels = resolve_mask(mask, p.inputs)
        if mode == "exact" and n > MAX_EXACT_PLAYERS:
            raise InputError(
                f"exact Shapley values enumerate 2^n coalitions; {n} players exceed the limit of "
                f"{MAX_EXACT_PLAYERS}. Use mode='sampling' (or 'auto'), or fewer, larger groups.")
        use_exact = mode == "exact" or (mode == "auto" and n <= AUTO_EXACT_PLAYERS) or n == 1
        rows = forward_rows(p, batch_size)
        announce("shapley_values", p.n * ((1 << n) if use_exact else n_samples * (n + 1)),
                 progress, "or fewer players (feature_mask=)")
        params: dict[str, Any] = {"mode": "exact" if use_exact else "sampling", "players": n,
                                  "feature_mask": mask is not None}
        extras: dict[str, Any] = {}
        if use_exact:
            phi, dividends, empty = _exact(p, ids, n, rows)
            extras["dividends"] = dividends
        else:
            phi, stderr, empty = _sampling(p, ids, n, n_samples, seed, rows)
            extras["stderr"] = stderr
            params.update(n_samples=2 * max(1, n_samples // 2), seed=seed)
        extras["players"] = phi
        extras["group_ids"] = ids.reshape(p.inputs.shape)
        extras["group_labels"] = labels
        params.update(forward_evaluations=p.forward_evaluations)
        values = spread_to_features(phi, ids, tuple(p.inputs.shape))
        if bool((ids < 0).any()):  # the empty coalition keeps the non-players' input values
            assert p.baseline is not None
            p.baseline = torch.where(ids.reshape(p.inputs.shape) < 0, p.inputs, p.baseline)
            p.baseline_output = empty
        return p.result(values, "shapley_values", params, extras=extras)
