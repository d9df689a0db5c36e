"""Gauss-Legendre nodes and weights in linear time and memory, without an eigenvalue solve.

NumPy's ``leggauss`` solves an ``n x n`` eigenvalue problem: cubic time and quadratic memory
(10 000 nodes took minutes, 100 000 asked for 74 GB). Here each node ``x = cos(theta)`` of one
half of the (symmetric) rule is found by Newton's method in ``theta``, and the weight is
``2 / ((1 - x^2) P_n'(x)^2) = 2 / (dP_n/dtheta)^2``:

* up to ``n = 200``, ``P_n`` comes from the three-term recurrence at every node, starting from
  Tricomi's guess ``x_k ~ (1 - 1/(8n^2) + 1/(8n^3)) cos(pi (4k - 1) / (4n + 2))``;
* beyond, interior nodes (``(n + 1/2) sin(theta) >= 25``) evaluate ``P_n`` with Stieltjes'
  asymptotic series, at most 30 terms per node (its smallest term there is below ``1e-17``),

      P_n(cos t) = C_n sum_m h_m cos((n + m + 1/2) t - (m + 1/2) pi/2) / (2 sin t)^(m + 1/2),
      h_0 = 1,  h_m = h_(m-1) (m - 1/2)^2 / (m (n + m + 1/2)),  C_n = sqrt(4/pi) G(n+1)/G(n+3/2);

* the few nodes nearest the ends (about eight, where the series is not accurate; guessed at
  ``j_(0,k) / (n + 1/2)`` with McMahon's approximation of the Bessel zeros) use the recurrence
  rewritten in ``delta = 1 - x = 2 sin^2(theta/2)`` and ``d_j = P_j - P_(j-1)``, which does not
  cancel near ``x = 1``; its ``n`` steps are multiplied out as a product of 2 x 2 matrices by
  pairwise (tree) reduction, vectorised, so the work stays linear without a Python step per
  degree.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gauss_legendre"]

_SERIES_TERMS = 30
_SERIES_FROM = 25.0  # (n + 1/2) sin(theta) from which the series is used
_SMALL = 200
_BLOCK = 1 << 15
_NEWTON = 10

Array = np.ndarray


def gauss_legendre(n: int) -> tuple[Array, Array]:
    """Nodes (ascending) and weights of the ``n``-point Gauss-Legendre rule on ``[-1, 1]``."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if n == 1:
        return np.zeros(1), np.full(1, 2.0)
    half = (n + 1) // 2
    k = np.arange(1, half + 1, dtype=np.float64)
    x0 = (1 - 1 / (8 * n**2) + 1 / (8 * n**3)) * np.cos(np.pi * (4 * k - 1) / (4 * n + 2))
    theta = np.arccos(x0)
    t = np.empty(half)
    w = np.empty(half)
    if n <= _SMALL:
        t[:], w[:] = _newton(n, theta, _recurrence)
    else:
        rho = n + 0.5
        inner = rho * np.sin(theta) >= _SERIES_FROM
        beta = (k[~inner] - 0.25) * np.pi
        t[inner], w[inner] = _newton(n, theta[inner], _series)
        t[~inner], w[~inner] = _newton(n, (beta + 1 / (8 * beta)) / rho, _near_one)
    x = np.cos(t)  # descending, x >= 0
    if n % 2:  # the middle node is exactly 0
        x[-1] = 0.0
    xs = np.concatenate([-x, x[::-1][n % 2:]])
    ws = np.concatenate([w, w[::-1][n % 2:]])
    return xs, ws


def _newton(n: int, theta: Array, evaluate: object) -> tuple[Array, Array]:
    """Roots of ``P_n(cos theta)`` near ``theta`` and their weights ``2 / (dP/dtheta)^2``."""
    assert callable(evaluate)
    t = theta.copy()
    for _ in range(_NEWTON):  # quadratic convergence from these guesses: 2-5 steps
        f, df = evaluate(n, t)
        step = f / df
        t = t - step
        if np.all(np.abs(step) <= 1e-15 * t):
            break  # the derivative at the last point is exact to rounding for the weight
    return t, 2.0 / (df * df)


def _recurrence(n: int, theta: Array) -> tuple[Array, Array]:
    """``P_n(cos theta)`` and its ``theta`` derivative by the three-term recurrence."""
    x = np.cos(theta)
    p0, p1 = np.ones_like(x), x.copy()
    for j in range(2, n + 1):
        p0, p1 = p1, ((2 * j - 1) * x * p1 - (j - 1) * p0) / j
    # dP/dx = n (x P_n - P_(n-1)) / (x^2 - 1); dP/dtheta = -sin(theta) dP/dx
    return p1, n * (x * p1 - p0) / np.sin(theta)


def _near_one(n: int, theta: Array) -> tuple[Array, Array]:
    """``P_n(cos theta)`` and its ``theta`` derivative for ``theta`` near 0 (see module doc).

    ``d_j = ((j - 1) d_(j-1) - (2j - 1) delta P_(j-1)) / j`` and ``P_j = P_(j-1) + d_j``: one
    2 x 2 matrix per degree acting on ``(P, d)``, multiplied out block by block.
    """
    delta = 2.0 * np.sin(theta / 2) ** 2
    p, d = 1.0 - delta, -delta
    for start in range(2, n + 1, _BLOCK):
        j = np.arange(start, min(n, start + _BLOCK - 1) + 1, dtype=np.float64)
        # [[a, b], [c, dd]] per node (rows) and degree (columns, contiguous)
        c = -((2 * j - 1) / j) * delta[:, None]
        a = 1.0 + c
        b = np.broadcast_to((j - 1) / j, c.shape)
        dd = b
        while a.shape[1] > 1:
            if a.shape[1] % 2:  # an identity keeps the pairs aligned
                one, zero = np.ones((a.shape[0], 1)), np.zeros((a.shape[0], 1))
                a, b = np.hstack([a, one]), np.hstack([b, zero])
                c, dd = np.hstack([c, zero]), np.hstack([dd, one])
            a1, b1, c1, d1 = a[:, 1::2], b[:, 1::2], c[:, 1::2], dd[:, 1::2]  # later ...
            a0, b0, c0, d0 = a[:, 0::2], b[:, 0::2], c[:, 0::2], dd[:, 0::2]  # ... times earlier
            a, b, c, dd = (a1 * a0 + b1 * c0, a1 * b0 + b1 * d0,
                           c1 * a0 + d1 * c0, c1 * b0 + d1 * d0)
        p, d = a[:, 0] * p + b[:, 0] * d, c[:, 0] * p + dd[:, 0] * d
    # x P_n - P_(n-1) = d_n - delta P_n and 1 - x^2 = sin^2(theta)
    return p, n * (d - delta * p) / np.sin(theta)


def _series(n: int, theta: Array) -> tuple[Array, Array]:
    """``P_n(cos theta)`` and its ``theta`` derivative by Stieltjes' series (interior nodes).

    The phase of term ``m`` is that of term 0 plus ``m (theta - pi/2)``, so its cosine and sine
    follow by rotation, and ``(2 sin theta)^-(m + 1/2)`` by repeated division: no
    transcendental function inside the loop.
    """
    sin = np.sin(theta)
    inv = 1.0 / (2.0 * sin)
    cot = np.cos(theta) / sin
    phase = (n + 0.5) * theta - np.pi / 4
    c, s = np.cos(phase), np.sin(phase)
    rot_c, rot_s = np.cos(theta - np.pi / 2), np.sin(theta - np.pi / 2)
    scale = np.sqrt(inv)
    f = np.zeros_like(theta)
    df = np.zeros_like(theta)
    h = 1.0
    for m in range(_SERIES_TERMS):
        if m:
            h *= (m - 0.5) ** 2 / (m * (n + m + 0.5))
            scale = scale * inv
            c, s = c * rot_c - s * rot_s, s * rot_c + c * rot_s
        term = h * scale
        f += term * c
        df -= term * ((n + m + 0.5) * s + (m + 0.5) * cot * c)
        if h * float(np.max(scale)) < 1e-18:
            break
    # C_n = sqrt(4/pi) G(n + 1) / G(n + 3/2) and G(n + 1) / G(n + 3/2) is
    # (2 / sqrt(pi)) prod_j j / (j + 1/2): its log summed pairwise (accurate to a few ulps)
    j = np.arange(1, n + 1, dtype=np.float64)
    cn = 4.0 / math.pi * math.exp(float(np.sum(np.log1p(-0.5 / (j + 0.5)))))
    return cn * f, cn * df
