"""Taylor interactions: the terms ``phi(kappa)`` and ``I(kappa)`` of a model expanded at a point.

``F(x) = F(b) + sum_kappa (1 / kappa!) d^kappa F(b) (x - b)^kappa``. A term whose degree vector
``kappa`` has one non-zero entry is an independent term ``phi(kappa)``; with several it is an
interaction term ``I(kappa)``. Grouping terms by their support ``S`` gives the independent effects
``psi(j)`` and the interaction effects ``J(S)`` of Deng et al. 2023, Understanding and Unifying
Fourteen Attribution Methods with Taylor Interactions.

* :func:`polynomial_terms`: exact, for :class:`attribkit.toys.Polynomial` models (any baseline).
* :func:`taylor_terms`: for any differentiable model, the terms up to ``order`` by nested
  autograd, with the residual ``F(x) - F(b) - sum(terms)`` that criterion 1 is about.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit.core.engine import prepare
from attribkit.core.errors import InputError, UnsupportedModelError
from attribkit.core.summary import summary_repr
from attribkit.toys import Polynomial

__all__ = ["MAX_TAYLOR_FEATURES", "TaylorDecomposition", "TaylorTerm", "polynomial_terms",
           "taylor_terms"]

#: The most features :func:`taylor_terms` expands (its cost grows like ``n^order``).
MAX_TAYLOR_FEATURES = 64


@dataclass(frozen=True)
class TaylorTerm:
    """One Taylor term: degree vector ``kappa`` and its value at the input."""

    kappa: tuple[int, ...]
    value: float

    @property
    def support(self) -> tuple[int, ...]:
        """The features ``S`` the term involves (non-zero entries of ``kappa``)."""
        return tuple(i for i, k in enumerate(self.kappa) if k)

    @property
    def degree(self) -> int:
        """``|kappa|``."""
        return sum(self.kappa)

    @property
    def independent(self) -> bool:
        """Whether the term involves one feature only (a ``phi(kappa)``)."""
        return len(self.support) == 1


@dataclass(frozen=True)
class TaylorDecomposition:
    """``F(x) - F(b) = sum(terms) + residual`` at one input.

    Attributes
    ----------
    terms
        The non-constant terms, in increasing degree.
    output
        ``F(x)``.
    baseline_output
        ``F(b)``.
    order
        The highest degree expanded (``None``: all, exact).
    """

    terms: tuple[TaylorTerm, ...]
    output: float
    baseline_output: float
    order: int | None

    __repr__ = summary_repr

    def _headline(self) -> list[str]:
        return [f"residual={self.residual:.4g}"]

    @property
    def n_features(self) -> int:
        """The number of features."""
        return len(self.terms[0].kappa) if self.terms else 0

    @property
    def residual(self) -> float:
        """``F(x) - F(b) - sum(terms)``: the part of the output change the terms do not cover."""
        return self.output - self.baseline_output - sum(t.value for t in self.terms)

    def independent(self) -> dict[int, float]:
        """``psi(j)``: every independent term of feature ``j`` summed."""
        out: dict[int, float] = {}
        for t in self.terms:
            if t.independent:
                out[t.support[0]] = out.get(t.support[0], 0.0) + t.value
        return out

    def interactions(self) -> dict[tuple[int, ...], float]:
        """``J(S)`` for ``|S| >= 2``: every interaction term with support ``S`` summed."""
        out: dict[tuple[int, ...], float] = {}
        for t in self.terms:
            if len(t.support) > 1:
                out[t.support] = out.get(t.support, 0.0) + t.value
        return out

    def effects(self) -> dict[tuple[int, ...], float]:
        """Every effect by support: ``psi(j)`` under ``(j,)`` and ``J(S)`` under ``S``."""
        out: dict[tuple[int, ...], float] = {}
        for t in self.terms:
            out[t.support] = out.get(t.support, 0.0) + t.value
        return out

    def by_order(self) -> dict[int, float]:
        """The terms summed by degree ``|kappa|``."""
        out: dict[int, float] = {}
        for t in self.terms:
            out[t.degree] = out.get(t.degree, 0.0) + t.value
        return out


def _one_example(t: Tensor, name: str) -> Tensor:
    t = t.detach()
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2 or t.shape[0] != 1:
        raise InputError(f"{name} must be one example of n features, shape (1, n) or (n,); got "
                         f"{tuple(t.shape)}.")
    return t.to(torch.float64)


def polynomial_terms(model: Polynomial, inputs: Tensor, baseline: Tensor | None = None
                     ) -> TaylorDecomposition:
    """The exact Taylor terms of a :class:`~attribkit.toys.Polynomial` expanded at ``baseline``.

    Each monomial ``c prod_i x_i^k_i`` is ``c prod_i sum_{j <= k_i} C(k_i, j) b_i^(k_i - j)
    (x_i - b_i)^j``; terms with the same degree vector are added.

    Parameters
    ----------
    model
        The polynomial.
    inputs
        One example ``(1, n)`` or ``(n,)``.
    baseline
        The expansion point (default zeros, where the terms are the monomials themselves).

    Returns
    -------
    TaylorDecomposition
        Exact: the residual is zero up to rounding.
    """
    if not isinstance(model, Polynomial):
        raise UnsupportedModelError("polynomial_terms needs an attribkit.toys.Polynomial; use "
                                    "taylor_terms(model, inputs, baseline, order=...) otherwise.")
    x = _one_example(inputs, "inputs")[0]
    n = model.n_features
    b = torch.zeros(n, dtype=torch.float64) if baseline is None else _one_example(
        baseline, "baseline")[0]
    if x.shape[0] != n or b.shape[0] != n:
        raise InputError(f"the polynomial has {n} features; inputs and baseline must have {n}.")
    d = (x - b).tolist()
    bl = b.tolist()
    acc: dict[tuple[int, ...], float] = {}
    for kap, c in zip(model.kappa.tolist(), model.coef.tolist(), strict=True):
        ranges = [range(k + 1) for k in kap]
        for sub in itertools.product(*ranges):
            if not any(sub):
                continue
            v = float(c)
            for i, (k, j) in enumerate(zip(kap, sub, strict=True)):
                v *= math.comb(k, j) * bl[i] ** (k - j) * d[i] ** j
            acc[sub] = acc.get(sub, 0.0) + v
    terms = tuple(TaylorTerm(k, v) for k, v in sorted(acc.items(), key=lambda kv: (
        sum(kv[0]), kv[0])) if v != 0.0)
    with torch.no_grad():
        fx = float(model(x[None].to(model.coef.dtype))[0])
        fb = float(model(b[None].to(model.coef.dtype))[0])
    return TaylorDecomposition(terms, fx, fb, None)


def taylor_terms(model: Callable[..., Tensor], inputs: Tensor, baseline: Any = None, *,
                 order: int = 2, target: Any = None) -> TaylorDecomposition:
    """Taylor terms up to ``order`` of any twice-differentiable model, at the baseline.

    The derivative tensors ``d^k F(b)`` are computed by nested autograd (``n^(k-1)`` backward
    passes for order ``k``), contracted with ``(x - b)`` and grouped by degree vector. The
    remainder, which criterion 1 of Deng et al. 2023, Understanding and Unifying Fourteen
    Attribution Methods with Taylor Interactions is about, is
    :attr:`TaylorDecomposition.residual`.

    Parameters
    ----------
    model
        A differentiable callable from ``(N, ...)`` to ``(N,)`` or ``(N, C)``.
    inputs
        One example ``(1, ...)``; its features are its flattened entries.
    baseline
        The expansion point (see :mod:`attribkit.core.baselines`; default zeros).
    order
        The highest degree ``|kappa|`` (1 .. 6).
    target
        The scalar explained (see :mod:`attribkit.core.targets`).

    Returns
    -------
    TaylorDecomposition
        Terms of degree ``1 .. order`` and the residual.
    """
    if not 1 <= int(order) <= 6:
        raise InputError(f"order must be between 1 and 6, got {order}.")
    if inputs.dim() == 0 or inputs.shape[0] != 1:
        inputs = inputs.unsqueeze(0)
    with prepare(model, inputs, target=target, baseline=baseline, needs_baseline=True,
                 allow_multi_target=False) as p:
        assert p.baseline is not None and p.output is not None and p.baseline_output is not None
        shape = p.inputs.shape
        n = int(p.inputs[0].numel())
        if n > MAX_TAYLOR_FEATURES and order > 1:
            raise InputError(f"{n} features are too many for order {order} (at most "
                             f"{MAX_TAYLOR_FEATURES}); group features or use order=1.")
        ex = p.examples
        b = p.baseline.reshape(-1).clone().requires_grad_(True)
        d = (p.inputs - p.baseline).reshape(-1).detach()
        acc: dict[tuple[int, ...], float] = {}
        with torch.enable_grad():
            score = p.target.select(p.call(b.reshape(shape), ex), ex)[0]
            # derivative tensors flattened: level k holds d^k F(b) as (n^(k-1), n)
            level = [score]
            for k in range(1, int(order) + 1):
                nxt = []
                for f in level:
                    if not f.requires_grad:
                        nxt.append(torch.zeros(n, dtype=b.dtype))
                        continue
                    (g,) = torch.autograd.grad(f, b, create_graph=k < order, retain_graph=True,
                                               allow_unused=True)
                    nxt.append(torch.zeros(n, dtype=b.dtype) if g is None else g)
                full = torch.stack(nxt).reshape(*([n] * k))
                _collect(full.detach().to(torch.float64), d.to(torch.float64), k, acc)
                level = list(full.reshape(-1)) if k < order else []
        out, base = float(p.output[0]), float(p.baseline_output[0])
    terms = tuple(TaylorTerm(kap, v) for kap, v in sorted(acc.items(), key=lambda kv: (
        sum(kv[0]), kv[0])) if v != 0.0)
    return TaylorDecomposition(terms, out, base, int(order))


def _collect(deriv: Tensor, d: Tensor, k: int, acc: dict[tuple[int, ...], float]) -> None:
    """Add ``(1/k!) sum_{i1..ik} D[i1..ik] d_i1 .. d_ik`` to ``acc`` grouped by multiset."""
    n = d.shape[0]
    contrib = deriv
    for _ in range(k):
        contrib = contrib * d.reshape(*([1] * (contrib.dim() - 1)), n)
        contrib = contrib.movedim(-1, 0)
    contrib = contrib / math.factorial(k)
    nz = torch.nonzero(contrib)
    for idx in nz.tolist():
        kap = [0] * n
        for i in idx:
            kap[i] += 1
        key = tuple(kap)
        acc[key] = acc.get(key, 0.0) + float(contrib[tuple(idx)])
