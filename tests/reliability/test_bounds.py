"""Bounds: Gauss-Legendre nodes for any step count, and the validation of counts (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import mlp, rows

import attribkit
from attribkit.core import paths
from attribkit.core.legendre import gauss_legendre


def legendre_moments(x: np.ndarray, w: np.ndarray, degree: int) -> float:
    """The largest ``|sum_k w_k P_j(x_k) - integral P_j|`` for ``j <= degree`` (recurrence)."""
    p0, p1 = np.ones_like(x), x.copy()
    worst = max(abs(float(w.sum()) - 2.0), abs(float(w @ p1)))
    for j in range(2, degree + 1):
        p0, p1 = p1, ((2 * j - 1) * x * p1 - (j - 1) * p0) / j
        worst = max(worst, abs(float(w @ p1)))
    return worst


@case("bounds", "Gauss-Legendre nodes and weights for every n from 1 to 100",
      "computed by Newton's method (no eigenvalue solve); equal to numpy's leggauss to 1e-14 "
      "(nodes) and 2e-11 relative (weights: ours integrate Legendre polynomials up to degree "
      "2n - 1 to 1e-14, numpy's eigenvalue-based weights only to about 1e-13)")
def test_gauss_legendre_matches_numpy_up_to_100() -> None:
    for n in range(1, 101):
        x, w = gauss_legendre(n)
        xr, wr = np.polynomial.legendre.leggauss(n)
        np.testing.assert_allclose(x, xr, rtol=0, atol=1e-14)
        np.testing.assert_allclose(w, wr, rtol=2e-11, atol=0)
        assert legendre_moments(x, w, 2 * n - 1) < 1e-14


@pytest.mark.parametrize("n", [201, 2500, 40000])
@case("bounds", "Gauss-Legendre with 201, 2 500 and 40 000 nodes (the asymptotic-series branch "
      "and the tree-multiplied recurrence near the ends)",
      "integrates every Legendre polynomial up to degree 2n - 1 exactly (to 1e-13) for 201 and "
      "2 500 nodes, and moments up to degree 200 for 40 000; linear time and memory (the old "
      "eigenvalue solve was cubic: minutes at 10 000 nodes, 74 GB at 100 000)")
def test_gauss_legendre_is_exact_for_large_n(n: int) -> None:
    x, w = gauss_legendre(n)
    assert np.all(np.diff(x) > 0) and np.all(w > 0)
    assert legendre_moments(x, w, 2 * n - 1 if n <= 2500 else 200) < 1e-13


@case("bounds", "integrated_gradients(steps=10000) with the default Gauss-Legendre rule",
      "runs (the nodes take well under a second) and matches the closed form of a quadratic "
      "model")
def test_ten_thousand_steps_run() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return (x**2).sum(1)

    x = rows(1, d=3)
    attr = attribkit.integrated_gradients(f, x, steps=10000, batch_size=10000)
    torch.testing.assert_close(attr.values, x**2, atol=1e-12, rtol=1e-10)


BAD_COUNTS = [(True, "bool"), (2.5, "integer"), (0, "at least 1"), (-3, "at least 1"),
              ("10", "integer"), (10**7, "sanity bound"), (None, "integer")]


@pytest.mark.parametrize(("value", "message"), BAD_COUNTS)
@case("bounds", "steps=True, 2.5, 0, -3, '10', 10**7 and None for integrated_gradients",
      "InputError naming steps and what is wrong (a bool, not an integer, below 1, above the "
      "sanity bound of 1 000 000)")
def test_bad_steps_are_refused(value: object, message: str) -> None:
    with pytest.raises(attribkit.InputError, match=message):
        attribkit.integrated_gradients(mlp(), rows(2), steps=value)


@pytest.mark.parametrize("method", ["smoothgrad", "expected_gradients", "shapley_values"])
@case("bounds", "n_samples=True, 2.5 and 0 for SmoothGrad, expected gradients and Shapley "
      "sampling", "InputError naming n_samples")
def test_bad_sample_counts_are_refused(method: str) -> None:
    extra = {"background": rows(4, seed=1)} if method == "expected_gradients" else {}
    for value in (True, 2.5, 0):
        with pytest.raises(attribkit.InputError, match="n_samples"):
            attribkit.explain(mlp(), rows(2), method=method, n_samples=value, target=0, **extra)


@case("bounds", "steps=numpy.int64(16) and steps=torch.tensor(16)",
      "accepted as 16 (the same result as steps=16)")
def test_numpy_and_tensor_steps_work() -> None:
    ref = attribkit.integrated_gradients(mlp(), rows(2), steps=16, target=0).values
    for steps in (np.int64(16), torch.tensor(16)):
        got = attribkit.integrated_gradients(mlp(), rows(2), steps=steps, target=0).values
        torch.testing.assert_close(got, ref, atol=0, rtol=0)


@pytest.mark.parametrize("max_steps", [0, 5, -1, 2.0])
@case("bounds", "tolerance mode with max_steps=0, 5, -1 and 2.0",
      "InputError: max_steps must be an integer of at least 9 (the first nested level)")
def test_bad_max_steps_are_refused(max_steps: object) -> None:
    with pytest.raises(attribkit.InputError, match="max_steps"):
        attribkit.integrated_gradients(mlp(), rows(2), tolerance=0.01, max_steps=max_steps)


@pytest.mark.parametrize("batch_size", [0, -2, True, 1.5])
@case("bounds", "batch_size=0, -2, True and 1.5", "InputError naming batch_size", "held")
def test_bad_batch_sizes_are_refused(batch_size: object) -> None:
    with pytest.raises(attribkit.InputError, match="batch_size"):
        attribkit.integrated_gradients(mlp(), rows(2), batch_size=batch_size)


@case("bounds", "the trapezoid rule with steps=1", "InputError: at least 2 for that rule", "held")
def test_trapezoid_needs_two_steps() -> None:
    with pytest.raises(attribkit.InputError, match="at least 2"):
        attribkit.integrated_gradients(mlp(), rows(2), steps=1, rule="riemann_trapezoid")
    assert paths.nodes("riemann_trapezoid", 2)[1].sum() == pytest.approx(1.0)
