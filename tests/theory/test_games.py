"""Game: dividends of polynomials, Shapley / Banzhaf against their definitions, transforms."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from attribkit.core.coalitions import patch_group_ids, zeta
from attribkit.core.errors import InputError
from attribkit.theory import Game
from attribkit.theory.taylor import polynomial_terms
from attribkit.toys import Polynomial


def _random_poly(seed: int, n: int) -> Polynomial:
    g = torch.Generator().manual_seed(seed)
    exps = torch.randint(0, 3, (7, n), generator=g)
    exps[exps.sum(1) == 0, 0] = 1
    coefs = torch.randn(7, generator=g, dtype=torch.float64)
    return Polynomial(exps, coefs)


def test_dividends_equal_interaction_effects_of_a_polynomial_at_zero_baseline() -> None:
    model = _random_poly(0, 4)
    x = torch.tensor([[0.7, -1.2, 1.5, 0.4]], dtype=torch.float64)
    game = Game(model, x)
    # independent: J(S) = sum of the monomials whose support is exactly S, evaluated at x
    expected = torch.zeros(16, dtype=torch.float64)
    for kap, c in zip(model.kappa.tolist(), model.coef.tolist(), strict=True):
        mask = sum(1 << i for i, k in enumerate(kap) if k)
        expected[mask] += c * math.prod(float(x[0, i]) ** k for i, k in enumerate(kap))
    torch.testing.assert_close(game.dividends(), expected, atol=1e-12, rtol=1e-12)


def test_dividends_equal_taylor_effects_at_a_shifted_baseline() -> None:
    model = _random_poly(1, 3)
    x = torch.tensor([[1.1, -0.6, 0.9]], dtype=torch.float64)
    b = torch.tensor([[0.3, 0.5, -0.2]], dtype=torch.float64)
    div = Game(model, x, baseline=b).dividends()
    effects = polynomial_terms(model, x, b).effects()
    for mask in range(1, 8):
        sup = tuple(i for i in range(3) if mask >> i & 1)
        assert float(div[mask]) == pytest.approx(effects.get(sup, 0.0), abs=1e-12)


def test_shapley_from_dividends_equals_the_permutation_definition(
        make_mlp: Callable[..., nn.Sequential]) -> None:
    model = make_mlp(n_in=4, n_out=3, seed=3)
    x = torch.tensor([[0.5, -1.0, 2.0, 0.3]], dtype=torch.float64)
    game = Game(model, x, target=1, baseline=torch.full_like(x, 0.1))
    n = 4
    phi = torch.zeros(n, dtype=torch.float64)
    for perm in itertools.permutations(range(n)):
        before: list[int] = []
        for i in perm:
            phi[i] += game.value([*before, i]) - game.value(before)
            before.append(i)
    phi /= math.factorial(n)
    torch.testing.assert_close(game.shapley(), phi, atol=1e-12, rtol=1e-10)
    assert float(phi.sum()) == pytest.approx(game.output - game.baseline_output, abs=1e-12)


def test_banzhaf_equals_mean_marginal_contribution(
        make_mlp: Callable[..., nn.Sequential]) -> None:
    model = make_mlp(n_in=3, n_out=2, seed=5)
    x = torch.tensor([[1.0, -0.4, 0.8]], dtype=torch.float64)
    game = Game(model, x, target=0)
    expected = []
    for i in range(3):
        others = [j for j in range(3) if j != i]
        tot = 0.0
        for r in range(3):
            for sub in itertools.combinations(others, r):
                tot += game.value([*sub, i]) - game.value(list(sub))
        expected.append(tot / 4)
    torch.testing.assert_close(game.banzhaf(), torch.tensor(expected, dtype=torch.float64))


def test_moebius_then_zeta_returns_the_values(make_mlp: Callable[..., nn.Sequential]) -> None:
    model = make_mlp(n_in=5, n_out=2, seed=1)
    game = Game(model, torch.randn(1, 5, dtype=torch.float64,
                                   generator=torch.Generator().manual_seed(0)), target=0)
    torch.testing.assert_close(zeta(game.dividends()), game.values(), atol=1e-12, rtol=1e-12)
    # v(T) = F(x_T, b_rest) for a coalition checked by hand
    x = game.inputs.clone()
    x[0, [1, 3, 4]] = 0.0
    with torch.no_grad():
        direct = float(model(x)[0, 0])
    assert game.value([0, 2]) == pytest.approx(direct, abs=1e-12)
    assert float(game.values()[0b00101]) == pytest.approx(direct, abs=1e-12)


def test_summaries_add_up(make_mlp: Callable[..., nn.Sequential]) -> None:
    model = make_mlp(n_in=4, n_out=1, seed=2)
    game = Game(model, torch.ones(1, 4, dtype=torch.float64))
    change = game.output - game.baseline_output
    shares = game.order_shares()
    assert sum(s.total for s in shares) == pytest.approx(change, abs=1e-12)
    assert sum(s.share for s in shares) == pytest.approx(1.0)
    assert sum(s.output_share for s in shares) == pytest.approx(1.0)
    pos, neg = game.positive_negative()
    assert pos >= 0 >= neg and pos + neg == pytest.approx(change, abs=1e-12)
    top = game.strongest(3, min_order=2)
    div = game.dividends()
    assert all(t.order >= 2 for t in top)
    big = sorted((abs(float(div[m])) for m in range(16) if bin(m).count("1") >= 2), reverse=True)
    assert [abs(t.dividend) for t in top] == pytest.approx(big[:3])


def test_patch_players_and_caching(make_cnn: Callable[..., nn.Sequential]) -> None:
    model = make_cnn(channels=3, classes=4, seed=0)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ids = patch_group_ids((3, 8, 8), (4, 4))
    game = Game(model, x, players=ids, target=2, batch_size=5)
    assert game.n_players == 4
    v = game.value_of([0b0011, 0b0011, 0b1000])
    assert game.evaluations == 2  # duplicates and cached coalitions are not re-evaluated
    xb = torch.where(ids[None] < 2, x, torch.zeros_like(x))
    with torch.no_grad():
        assert float(v[0]) == pytest.approx(float(model(xb)[0, 2]), abs=1e-12)
    assert float(game.shapley().sum()) == pytest.approx(game.output - game.baseline_output,
                                                        abs=1e-12)


def test_too_many_players_says_to_group() -> None:
    model = Polynomial([[1] * 21])
    with pytest.raises(InputError, match=r"[Gg]roup"):
        Game(model, torch.ones(1, 21, dtype=torch.float64))


def test_grouped_shapley_matches_the_registered_method(
        make_cnn: Callable[..., nn.Sequential]) -> None:
    from attribkit.methods.registry import methods

    model = make_cnn(channels=3, classes=4, seed=1)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    ids = patch_group_ids((3, 8, 8), (4, 8))  # two players: top and bottom halves
    game = Game(model, x, players=ids, target=1)
    v = game.values()
    # two players: phi_0 = (v({0}) - v({}) + v({0,1}) - v({1})) / 2, written here
    phi0 = (float(v[1] - v[0]) + float(v[3] - v[2])) / 2
    assert float(game.shapley()[0]) == pytest.approx(phi0, abs=1e-12)
    if "shapley_values" in methods():
        attr = methods()["shapley_values"].fn(model, x, target=1, groups=ids, mode="exact")
        per_group = torch.zeros(2, dtype=torch.float64).index_add_(
            0, ids.reshape(-1), attr.values.reshape(-1))
        # the method splits each group's value equally over its features
        torch.testing.assert_close(per_group, game.shapley(), atol=1e-10, rtol=1e-10)


def test_token_players_at_the_embedding_layer() -> None:
    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4).double()
            self.head = nn.Linear(4, 2).double()

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.head(torch.tanh(self.emb(ids)).prod(dim=1))

    model = Tiny().eval()
    ids = torch.tensor([[3, 7, 1]])
    pad = torch.zeros_like(ids)
    players = torch.arange(3)[:, None].expand(3, 4)  # one player per token
    game = Game(model, ids, baseline=pad, target=1, layer=model.emb, players=players)
    assert game.n_players == 3
    with torch.no_grad():
        mixed = torch.tensor([[3, 0, 1]])  # tokens 0 and 2 present, token 1 padded
        direct = float(model(mixed)[0, 1])
    assert game.value([0, 2]) == pytest.approx(direct, abs=1e-12)
    assert float(game.shapley().sum()) == pytest.approx(game.output - game.baseline_output,
                                                        abs=1e-12)


def test_float32_model_game_is_evaluated_in_float64_without_changing_the_model() -> None:
    """Issue 21: dividends of a float32 model come from float64 values (no spurious high orders)."""
    torch.manual_seed(0)
    model32 = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2)).eval()
    before = {k: v.clone() for k, v in model32.state_dict().items()}
    x = torch.randn(1, 8)
    game = Game(model32, x, target=1)
    twin = copy.deepcopy(model32).double()
    reference = Game(twin, x.double(), target=1)
    assert game.precision == "float64"
    torch.testing.assert_close(game.dividends(), reference.dividends(), rtol=0, atol=1e-15)
    for k, v in model32.state_dict().items():  # the model itself stays float32 and unchanged
        assert v.dtype == before[k].dtype and torch.equal(v, before[k])
    # In the model's own float32 the order-8 dividend (zero for this tanh network only up to the
    # network's true interactions) differs from the float64 one by rounding noise.
    noisy = Game(model32, x, target=1, precision="model")
    gap = (noisy.dividends() - reference.dividends()).abs().max()
    assert gap > 1e-9


def test_game_precision_is_validated() -> None:
    """An unknown precision is refused with the choices named."""
    model = nn.Linear(3, 2).double()
    with pytest.raises(InputError, match="float64' or 'model'"):
        Game(model, torch.zeros(1, 3, dtype=torch.float64), target=0, precision="half")
