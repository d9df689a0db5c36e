"""Interaction indices from dividends: shapiq 1.4.1 as the oracle, closed forms, identities,
and the sampler's unbiasedness and standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapiq
import torch
from shapiq.game_theory.moebius_converter import MoebiusConverter

from attribkit.core.coalitions import banzhaf_from_dividends, moebius, shapley_from_dividends
from attribkit.core.errors import InputError
from attribkit.core.interaction_design import draw_design, plan_strata, row_weights
from attribkit.core.interaction_indices import (
    INDICES,
    coalitions_up_to,
    indices_from_sparse,
    indices_from_values,
)
from attribkit.core.interaction_sampling import sample_index


def _game(n: int, seed: int) -> np.ndarray:
    """A model written here: a small tanh network of the coalition's indicator vector."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(n, 6)), rng.normal(size=6)
    masks = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(float)
    return np.tanh(masks @ w1 + 0.3) @ w2


def _as_shapiq(values: np.ndarray):
    def game(coalitions: np.ndarray) -> np.ndarray:
        c = np.atleast_2d(np.asarray(coalitions, dtype=bool))
        return values[(c.astype(np.int64) << np.arange(c.shape[1])).sum(axis=1)]
    return game


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("index", INDICES)
def test_every_index_matches_shapiq_exactly(index: str, order: int) -> None:
    n = 7
    values = _game(n, seed=order)
    computer = shapiq.ExactComputer(_as_shapiq(values), n_players=n)
    if index == "FSII":  # shapiq's ExactComputer solves a big-M regression (about 1e-10 off):
        # its closed form from the Moebius coefficients is the oracle to 1e-10
        ref = MoebiusConverter(computer("Moebius"))("FSII", order=order)
        regression = computer("FSII", order=order)
        assert max(abs(ref[c] - regression[c]) for c in coalitions_up_to(n, order)) < 1e-8
    else:
        ref = computer(index, order=order)
    mine = indices_from_values(torch.tensor(values), index, order)
    for i, c in enumerate(coalitions_up_to(n, order)):
        if c == () and index in ("SII", "BII") and order == 1:
            continue  # shapiq reports v(empty) for the empty set of first-order SII / BII
        assert float(mine[i]) == pytest.approx(ref[c], abs=1e-10), (index, c)


def test_batched_games_and_the_shapley_and_banzhaf_values() -> None:
    n = 6
    values = torch.tensor(np.stack([_game(n, 1), _game(n, 2)]))
    div = moebius(values)
    sii = indices_from_values(values, "SII", 1)[:, 1:]
    bii = indices_from_values(values, "BII", 1)[:, 1:]
    torch.testing.assert_close(sii, shapley_from_dividends(div), rtol=0, atol=1e-12)
    torch.testing.assert_close(bii, banzhaf_from_dividends(div), rtol=0, atol=1e-12)


@pytest.mark.parametrize("index", ["FSII", "STII", "k-SII"])
def test_efficient_indices_sum_to_the_full_coalition(index: str) -> None:
    values = torch.tensor(_game(8, 3))
    for order in (1, 2, 3):
        total = indices_from_values(values, index, order).sum()
        assert float(total) == pytest.approx(float(values[-1]), abs=1e-10)
    moeb = indices_from_values(values, "Moebius", 8)
    assert float(moeb.sum()) == pytest.approx(float(values[-1]), abs=1e-10)


@pytest.mark.parametrize("index", INDICES)
def test_a_pure_pair_term_lands_on_its_pair(index: str) -> None:
    # v(S) = 2.5 [0 in S][3 in S]: one dividend on {0, 3}
    n = 5
    masks = torch.arange(1 << n)
    values = 2.5 * ((masks & 1) > 0).double() * ((masks & 8) > 0).double()
    out = indices_from_values(values, index, 2)
    coals = coalitions_up_to(n, 2)
    pair = coals.index((0, 3))
    assert float(out[pair]) == pytest.approx(2.5, abs=1e-12)
    others = [i for i, c in enumerate(coals) if len(c) == 2 and i != pair]
    assert float(out[others].abs().max()) == pytest.approx(0.0, abs=1e-12)


def test_sparse_and_dense_paths_agree_on_a_polynomial_game() -> None:
    n = 9
    terms = [(0,), (1, 2), (2, 5, 7), (0, 3, 4, 8), (6,), (1, 6)]
    coefs = torch.tensor([0.5, -1.0, 2.0, 0.7, 1.5, -0.3], dtype=torch.float64)
    masks = torch.arange(1 << n)
    values = sum(c * torch.stack([(masks >> p) & 1 for p in t]).prod(0).double()
                 for t, c in zip(terms, coefs, strict=True))
    for index in INDICES:
        dense = indices_from_values(values, index, 3)
        sparse = indices_from_sparse(terms, coefs, n, index, 3)
        torch.testing.assert_close(dense, sparse, rtol=0, atol=1e-12)


def test_bad_orders_are_refused() -> None:
    with pytest.raises(InputError, match="order=4"):
        indices_from_values(torch.zeros(8, dtype=torch.float64), "SII", 4)
    with pytest.raises(InputError, match="unknown interaction index"):
        indices_from_values(torch.zeros(8, dtype=torch.float64), "XII", 1)


def _poly(n: int, seed: int) -> tuple[list[tuple[int, ...]], torch.Tensor]:
    rng = np.random.default_rng(seed)
    terms = []
    for deg, k in ((1, n), (2, 2 * n), (3, n), (4, n // 2)):
        terms += [tuple(sorted(rng.choice(n, deg, replace=False).tolist())) for _ in range(k)]
    terms = list(dict.fromkeys(terms))
    return terms, torch.tensor(rng.normal(size=len(terms)))


def _play(terms: list[tuple[int, ...]], coefs: torch.Tensor, n: int):
    member = torch.zeros((len(terms), n), dtype=torch.bool)
    for i, t in enumerate(terms):
        member[i, list(t)] = True

    def game(c: torch.Tensor) -> torch.Tensor:
        hit = (c[:, None, :] | ~member[None]).all(-1).double()
        return hit @ coefs
    return game


@pytest.mark.parametrize(("index", "budget", "method"), [
    ("SII", 1500, "cross-fitted"), ("FSII", 1500, "regression"), ("FSII", 300, "cross-fitted")])
def test_sampler_is_unbiased_and_its_errors_cover(index: str, budget: int, method: str) -> None:
    n, reps = 14, 40
    terms, coefs = _poly(n, 0)
    exact = indices_from_sparse(terms, coefs, n, index, 2)
    game = _play(terms, coefs, n)
    runs = [sample_index(game, n, index, 2, budget, seed=s) for s in range(reps)]
    assert {r.method for r in runs} == {method}
    est = torch.stack([r.values for r in runs])
    err = torch.stack([r.stderr for r in runs])
    z = (est - exact) / err
    # coverage of +-1.96 standard errors over all coalitions and seeds: near 95 %
    cover = float((z.abs() < 1.96).double().mean())
    assert 0.90 < cover < 0.985
    # unbiased: the mean over seeds is within 4 standard errors of the mean of every coalition
    mean_err = (est.mean(0) - exact).abs()
    assert bool((mean_err <= 4 * est.std(0) / math.sqrt(reps) + 1e-12).float().mean() > 0.98)
    one = runs[0]
    assert float(one.empty) == pytest.approx(float(game(torch.zeros(1, n, dtype=torch.bool))[0]))
    assert one.evaluations <= budget


def test_fsii_regression_recovers_a_game_of_the_order_from_any_sample() -> None:
    # a game with dividends of at most 2 players is its own FSII of order 2: zero residual,
    # so every sample gives it exactly, with zero standard error
    n = 30
    rng = np.random.default_rng(4)
    terms = list(dict.fromkeys([(int(i),) for i in range(n)] + [
        tuple(sorted(rng.choice(n, 2, replace=False).tolist())) for _ in range(40)]))
    coefs = torch.tensor(rng.normal(size=len(terms)))
    exact = indices_from_sparse(terms, coefs, n, "FSII", 2)
    game = _play(terms, coefs, n)
    for seed in (0, 1):
        est = sample_index(game, n, "FSII", 2, 2500, seed=seed)
        assert est.method == "regression"
        torch.testing.assert_close(est.values, exact, rtol=0, atol=1e-8)
        assert float(est.stderr.max()) < 1e-6


def test_row_weights_reproduce_the_kernel_mass_of_every_stratum() -> None:
    n = 16
    design = draw_design(n, 900, seed=2)
    w = row_weights(design)
    sizes = design.coalitions.sum(dim=1)
    exact_t, pairs = plan_strata(n, 900)
    assert exact_t and pairs  # both kinds of strata occur
    for u in range(1, n):
        mass = float(w[sizes == u].sum())
        # sum over all C(n, u) coalitions of 1 / (C(n, u) u (n - u))
        assert mass == pytest.approx(1.0 / (u * (n - u)), rel=1e-12), u
