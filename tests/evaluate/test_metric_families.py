"""The metric families in use: closed forms, directions, seeds, black boxes and compare()."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import attribkit
from attribkit import evaluate
from attribkit.core.errors import InputError

W = torch.tensor([3.0, -2.0, 1.0, 0.5, 0.0, 0.0], dtype=torch.float64)


def linear(x: torch.Tensor) -> torch.Tensor:
    return x @ W


X = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [2.0, -1.0, 0.5, 1.0, 3.0, -2.0]],
                 dtype=torch.float64)


def test_closed_forms_on_a_linear_model() -> None:
    exact = W * X  # the true contributions from a zero baseline
    # faithful attributions: subset sums equal the drops, so the correlation is 1
    fc = evaluate.faithfulness_correlation(linear, X, exact, subset_size=2, n_runs=30, seed=0)
    torch.testing.assert_close(fc.scores, torch.ones(2, dtype=torch.float64))
    # ... and the infidelity 0 (unnormalised), whatever the perturbations
    inf = evaluate.infidelity(linear, X, W.expand_as(X), n_perturb=16, seed=1)
    torch.testing.assert_close(inf.scores, torch.zeros(2, dtype=torch.float64), atol=1e-20,
                               rtol=0)
    # a single non-zero feature is as sparse and as simple as it gets
    one = torch.zeros(1, 6, dtype=torch.float64)
    one[0, 2] = 4.0
    assert float(evaluate.sparseness(one).scores[0]) == pytest.approx(5 / 6, abs=1e-6)
    assert float(evaluate.complexity(one).scores[0]) == pytest.approx(0.0, abs=1e-10)
    flat = torch.ones(1, 6, dtype=torch.float64)
    assert float(evaluate.sparseness(flat).scores[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(evaluate.complexity(flat).scores[0]) == pytest.approx(math.log(6), rel=1e-9)


def test_pixel_flipping_orders_by_relevance() -> None:
    exact = W * X
    good = evaluate.pixel_flipping(linear, X, exact, target=None)
    bad = evaluate.pixel_flipping(linear, X, -exact, target=None)
    assert not good.higher_is_better
    assert bool((good.scores < bad.scores).all())
    # the curve after k removals is F(x) minus the k largest contributions
    contrib = exact[0].sort(descending=True).values
    expect = linear(X[:1]) - contrib.cumsum(0)
    torch.testing.assert_close(good.curve[0], expect)


def test_black_box_models_and_seeds() -> None:
    def f(a: np.ndarray) -> np.ndarray:
        assert isinstance(a, np.ndarray)
        return np.stack([np.tanh(a.sum(1)), -np.tanh(a.sum(1))], 1)

    bb = attribkit.black_box(f)
    x = np.random.default_rng(0).normal(size=(3, 8))
    attr = attribkit.kernel_shap(bb, x, target=0)
    r1 = evaluate.faithfulness_correlation(bb, x, attr, subset_size=3, n_runs=10, seed=4)
    r2 = evaluate.faithfulness_correlation(bb, x, attr, subset_size=3, n_runs=10, seed=4)
    r3 = evaluate.faithfulness_correlation(bb, x, attr, subset_size=3, n_runs=10, seed=5)
    assert torch.equal(r1.scores, r2.scores) and not torch.equal(r1.scores, r3.scores)
    inf = evaluate.infidelity(bb, x, attr, n_perturb=8, seed=0)
    assert inf.scores.shape == (3,) and bool(torch.isfinite(inf.scores).all())
    with pytest.raises(InputError, match="images"):
        evaluate.road(bb, x, attr)


def test_compare_joins_every_metric_with_its_direction() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 3)).double().eval()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    names = list(evaluate.metrics.METRICS)
    table = evaluate.compare(net, x, ["gradient_x_input", "random"], measures=names,
                             region=(1, 1, 5, 5), steps=8)
    for m in names:
        assert evaluate.MEASURES[m][1] == evaluate.metrics.METRICS[m].higher_is_better
        assert table.values[("gradient_x_input", m)].shape == (2,)
    assert math.isnan(table.mean("random", "max_sensitivity"))
    assert "faithfulness_correlation ↑" in table.to_markdown()
