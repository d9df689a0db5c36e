"""Shapley values: closed forms, the permutation definition, efficiency, sampling, oracles."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

import attribkit
from attribkit.core.coalitions import (
    MAX_EXACT_PLAYERS,
    coalition_values,
    patch_group_ids,
)
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError
from attribkit.methods.shapley import shapley_values
from attribkit.toys import Polynomial


def _value(model, x, b, groups, coalition, target):
    """v(S) computed directly: features of players in S from x, the rest from b."""
    keep = torch.zeros_like(groups, dtype=torch.bool)
    for i in coalition:
        keep |= groups == i
    keep |= groups < 0
    pt = torch.where(keep, x, b)[None]
    with torch.no_grad():
        out = model(pt)
    return float(out[0] if out.dim() == 1 else out[0, target])


def _permutation_shapley(model, x, b, groups, n, target):
    """The definition: mean marginal contribution over all n! orders."""
    phi = [0.0] * n
    perms = list(itertools.permutations(range(n)))
    for order in perms:
        prev = _value(model, x, b, groups, (), target)
        for k, i in enumerate(order):
            cur = _value(model, x, b, groups, order[: k + 1], target)
            phi[i] += cur - prev
            prev = cur
    return torch.tensor([p / len(perms) for p in phi], dtype=torch.float64)


def test_closed_form_x1_squared_x2():
    a = shapley_values(Polynomial([[2, 1]]), torch.ones(1, 2, dtype=torch.float64))
    torch.testing.assert_close(a.values, torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    torch.testing.assert_close(a.extras["dividends"],
                               torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64))
    assert a.params["mode"] == "exact"


def test_exact_matches_permutation_definition(make_mlp, rng):
    model = make_mlp(n_in=5, hidden=7, n_out=3, seed=3)
    x = torch.randn(2, 5, generator=rng, dtype=torch.float64)
    b = torch.randn(2, 5, generator=rng, dtype=torch.float64)
    a = shapley_values(model, x, baseline=b, target=2, mode="exact")
    ids = torch.arange(5)
    for e in range(2):
        ref = _permutation_shapley(model, x[e], b[e], ids, 5, 2)
        torch.testing.assert_close(a.values[e], ref, rtol=0, atol=1e-12)
    # efficiency: the values sum to v(N) - v(empty)
    torch.testing.assert_close(a.total(), model(x)[:, 2] - model(b)[:, 2], rtol=0, atol=1e-12)
    torch.testing.assert_close(a.gap, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)


def test_groups_match_permutation_definition(make_mlp, rng):
    model = make_mlp(n_in=7, hidden=6, n_out=2, seed=4)
    x = torch.randn(1, 7, generator=rng, dtype=torch.float64)
    groups = torch.tensor([0, 0, 1, 2, 2, -1, 3])
    a = shapley_values(model, x, target=0, groups=groups)
    ref = _permutation_shapley(model, x[0], torch.zeros(7, dtype=torch.float64), groups, 4, 0)
    torch.testing.assert_close(a.extras["players"][0], ref, rtol=0, atol=1e-12)
    # each player's value is split equally over its features; the non-player gets 0
    torch.testing.assert_close(a.values[0, :2], ref[0].expand(2) / 2, rtol=0, atol=1e-12)
    assert float(a.values[0, 5]) == 0.0
    # efficiency against the empty coalition, in which the non-player keeps its input value
    empty = x.clone()
    empty[:, [0, 1, 2, 3, 4, 6]] = 0.0
    torch.testing.assert_close(a.total(), model(x)[:, 0] - model(empty)[:, 0], rtol=0,
                               atol=1e-12)
    torch.testing.assert_close(a.gap, torch.zeros(1, dtype=torch.float64), rtol=0, atol=1e-12)


class _Products(nn.Module):
    """``F(x) = sum_t c_t prod_{i in idx_t} x_i`` (indices may repeat: powers)."""

    def __init__(self, terms: list[list[int]], coef: torch.Tensor) -> None:
        super().__init__()
        self.terms = terms
        self.coef = coef

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(c * x[:, t].prod(dim=1) for c, t in zip(self.coef, self.terms, strict=True))


def test_twenty_players_closed_form():
    """20 players, exact: a polynomial's dividends are its terms (baseline 0), so each term's
    value is shared equally by the variables it contains."""
    g = torch.Generator().manual_seed(7)
    n = 20
    terms = []
    for t in range(8):
        members = torch.randperm(n, generator=g)[: 1 + t % 4].tolist()
        terms.append(members + members[:1])  # the first member squared
    coef = torch.randn(8, generator=g, dtype=torch.float64)
    model = _Products(terms, coef)
    x = torch.rand(1, n, generator=g, dtype=torch.float64) + 0.5
    a = shapley_values(model, x, mode="exact")
    assert a.params["mode"] == "exact" and a.extras["dividends"].shape == (1, 1 << n)
    expected = torch.zeros(n, dtype=torch.float64)
    div = torch.zeros(1 << n, dtype=torch.float64)
    for c, t in zip(coef, terms, strict=True):
        term = c * x[0, t].prod()
        members = sorted(set(t))
        expected[members] += term / len(members)
        div[sum(1 << i for i in members)] += term
    torch.testing.assert_close(a.values[0], expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(a.extras["dividends"][0], div, rtol=0, atol=1e-10)


def test_twenty_players_mlp_efficiency():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.Tanh(), nn.Linear(16, 1)).double().eval()
    x = torch.randn(1, 20, dtype=torch.float64)
    a = shapley_values(model, x, mode="exact")
    assert a.params["forward_evaluations"] == 1 << 20
    torch.testing.assert_close(a.gap, torch.zeros(1, dtype=torch.float64), rtol=0, atol=1e-10)


def test_dividends_reproduce_the_game(make_mlp, rng):
    model = make_mlp(n_in=6, seed=5)
    x = torch.randn(1, 6, generator=rng, dtype=torch.float64)
    a = shapley_values(model, x, target=1)
    div = a.extras["dividends"][0]
    for mask in (0, 5, 22, 63):
        members = [i for i in range(6) if mask >> i & 1]
        v = _value(model, x[0], torch.zeros(6, dtype=torch.float64), torch.arange(6), members, 1)
        subsets = [t for t in range(64) if t & mask == t]
        assert float(div[subsets].sum()) == pytest.approx(v, abs=1e-12)


def test_sampling_converges_with_stderr(make_mlp, rng):
    model = make_mlp(n_in=6, seed=6)
    x = torch.randn(2, 6, generator=rng, dtype=torch.float64)
    exact = shapley_values(model, x, target=0, mode="exact")
    est = shapley_values(model, x, target=0, mode="sampling", n_samples=400, seed=1)
    err = (est.values - exact.values).abs()
    se = est.extras["stderr"]
    assert bool((err <= 4 * se + 1e-12).all())
    # efficiency holds exactly for every permutation, hence for the estimate
    torch.testing.assert_close(est.gap, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)
    # the standard error falls like 1 / sqrt(samples)
    more = shapley_values(model, x, target=0, mode="sampling", n_samples=1600, seed=2)
    ratio = float(more.extras["stderr"].mean() / se.mean())
    assert 0.35 < ratio < 0.7


def test_sampling_coverage_rate(make_mlp, rng):
    """Over seeds, |est - exact| <= 2 stderr about 95% of the time (here: at least 85%)."""
    model = make_mlp(n_in=5, seed=8)
    x = torch.randn(1, 5, generator=rng, dtype=torch.float64)
    exact = shapley_values(model, x, target=2).values
    hits, total = 0, 0
    for seed in range(30):
        est = shapley_values(model, x, target=2, mode="sampling", n_samples=60, seed=seed)
        hits += int(((est.values - exact).abs() <= 2 * est.extras["stderr"]).sum())
        total += exact.numel()
    assert hits / total >= 0.85


def test_sampling_is_seeded_and_leaves_global_rng(make_mlp, rng):
    model = make_mlp(n_in=5, seed=9)
    x = torch.randn(1, 5, generator=rng, dtype=torch.float64)
    state = torch.get_rng_state()
    a = shapley_values(model, x, mode="sampling", n_samples=10, seed=3)
    b = shapley_values(model, x, mode="sampling", n_samples=10, seed=3)
    c = shapley_values(model, x, mode="sampling", n_samples=10, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.values, b.values) and not torch.equal(a.values, c.values)


def test_auto_rule():
    x = torch.ones(1, 17, dtype=torch.float64)
    poly = Polynomial(torch.eye(17, dtype=torch.long))
    assert shapley_values(poly, x, n_samples=4).params["mode"] == "sampling"
    x16 = torch.ones(1, 16, dtype=torch.float64)
    poly16 = Polynomial(torch.eye(16, dtype=torch.long))
    assert shapley_values(poly16, x16).params["mode"] == "exact"


def test_several_targets_match_single(make_mlp, rng):
    model = make_mlp(n_in=4, seed=10)
    x = torch.randn(2, 4, generator=rng, dtype=torch.float64)
    both = shapley_values(model, x, target=attribkit.classes([0, 2]))
    assert both.values.shape == (2, 2, 4)
    for k, t in enumerate((0, 2)):
        torch.testing.assert_close(both.values[:, k], shapley_values(model, x, target=t).values)


def test_captum_shapley_oracle(make_cnn, rng):
    captum = pytest.importorskip("captum.attr")
    model = make_cnn(seed=2)
    x = torch.randn(1, 3, 8, 8, generator=rng, dtype=torch.float64)
    groups = patch_group_ids((3, 8, 8), (4, 4))  # 4 patch players over all channels
    ours = shapley_values(model, x, target=3, groups=groups, baseline=0.25)
    ref = captum.ShapleyValues(model).attribute(x, baselines=0.25, target=3,
                                                feature_mask=groups[None])
    # Captum gives every feature of a group the group's value; we split it over the features
    per_feature = ours.extras["players"][0][groups]
    torch.testing.assert_close(per_feature, ref[0].detach().double(), rtol=0, atol=1e-6)


def test_coalition_values_given_coalitions(make_mlp, rng):
    model = make_mlp(n_in=4, seed=12)
    x = torch.randn(2, 4, generator=rng, dtype=torch.float64)
    with prepare(model, x, target=1) as p:
        every = coalition_values(p)
        some = torch.tensor([[True, False, True, False], [False, False, False, False]])
        sub = coalition_values(p, coalitions=some, batch_size=1)
        per_ex = coalition_values(p, coalitions=some[None].expand(2, -1, -1))
    assert every.shape == (2, 16)
    torch.testing.assert_close(sub, every[:, [5, 0]])
    torch.testing.assert_close(per_ex, sub)


def test_patch_group_ids():
    ids = patch_group_ids((2, 4, 6), (2, 3))
    assert ids.shape == (2, 4, 6)
    assert torch.equal(ids[0], ids[1])
    assert ids[0, 0, 0] == 0 and ids[0, 0, 3] == 1 and ids[0, 2, 0] == 2 and ids[0, 3, 5] == 3
    # an int cuts the last axis only, like the occlusion window
    assert patch_group_ids((2, 6), 3).tolist() == [[0, 0, 0, 1, 1, 1]] * 2


def test_errors(make_mlp):
    model = make_mlp(n_in=MAX_EXACT_PLAYERS + 1, seed=0)
    x = torch.zeros(1, MAX_EXACT_PLAYERS + 1, dtype=torch.float64)
    with pytest.raises(InputError, match="exceed the limit"):
        shapley_values(model, x, mode="exact")
    with pytest.raises(InputError, match="mode must be"):
        shapley_values(model, x, mode="fast")
    with pytest.raises(InputError, match="does not broadcast to the inputs"):
        shapley_values(model, x, groups=torch.zeros(3, dtype=torch.long))
    with pytest.raises(InputError, match="integer"):
        shapley_values(model, x, groups=torch.zeros(MAX_EXACT_PLAYERS + 1))
    with pytest.raises(InputError, match="n_samples"):
        shapley_values(model, x, mode="sampling", n_samples=1)


def test_registered_and_reachable():
    info = attribkit.methods()["shapley_values"]
    assert info.complete and info.stochastic and info.family == "perturbation"
    assert {"completeness", "sensitivity_b", "linearity", "symmetry"} <= info.axioms
    a = attribkit.explain(Polynomial([[2, 1]]), torch.ones(1, 2, dtype=torch.float64),
                          method="shapley")
    assert math.isclose(float(a.values[0, 0]), 0.5)
