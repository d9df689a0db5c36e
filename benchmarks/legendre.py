"""Gauss-Legendre nodes: attribkit's linear-time Newton method against numpy's eigenvalue solve.

numpy.polynomial.legendre.leggauss builds and diagonalises an n x n matrix (cubic time, quadratic
memory); attribkit.core.legendre.gauss_legendre finds each node by Newton's method from an
asymptotic guess (linear). Also reported: how exactly each rule integrates the Legendre
polynomials up to degree 2n - 1 (a Gauss rule integrates them exactly).

Run: ``python benchmarks/legendre.py``; writes its table into docs/benchmarks.md.
"""

from __future__ import annotations

import numpy as np

from _common import machine, median_time, write_section
from attribkit.core.legendre import gauss_legendre


def exactness(x: np.ndarray, w: np.ndarray, degree: int) -> float:
    p0, p1 = np.ones_like(x), x.copy()
    worst = max(abs(float(w.sum()) - 2.0), abs(float(w @ p1)))
    for j in range(2, degree + 1):
        p0, p1 = p1, ((2 * j - 1) * x * p1 - (j - 1) * p0) / j
        worst = max(worst, abs(float(w @ p1)))
    return worst


def main() -> None:
    rows = ["| n | numpy leggauss | attribkit | exactness numpy | exactness attribkit |",
            "|---|---|---|---|---|"]
    for n in (64, 512, 2048, 10_000, 100_000, 1_000_000):
        ours = median_time(lambda n=n: gauss_legendre(n), repeats=3 if n < 10**5 else 1)
        x, w = gauss_legendre(n)
        if n <= 2048:
            theirs = median_time(lambda n=n: np.polynomial.legendre.leggauss(n), repeats=3)
            xr, wr = np.polynomial.legendre.leggauss(n)
            t_np, e_np = f"{theirs * 1e3:.1f} ms", f"{exactness(xr, wr, 2 * n - 1):.1e}"
        else:
            t_np, e_np = "not run (cubic: minutes; 74 GB at 100 000)", "-"
        e_ours = f"{exactness(x, w, 2 * n - 1):.1e}" if n <= 10_000 else "-"
        rows.append(f"| {n:,} | {t_np} | {ours * 1e3:.1f} ms | {e_np} | {e_ours} |")
    body = "\n".join([
        "## Gauss-Legendre nodes",
        "",
        f"Machine: {machine()}, shared with other jobs (times are noisy; the ratios are the point). "
        "Medians of 3 runs (one at 100 000 and 1 000 000 nodes). "
        "Exactness: the largest error integrating P_0 ... P_(2n-1) over [-1, 1]. Script: "
        "`benchmarks/legendre.py`.",
        "",
        *rows,
    ])
    write_section("legendre", body)


if __name__ == "__main__":
    main()
