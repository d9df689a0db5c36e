"""The unification audit: every method run on a suite of functions whose decomposition is known.

:func:`default_suite` builds the test functions (monomials, a saturated effect, random sparse
polynomials, ReLU networks, separable networks, the saturated unit as ReLU layers, a tiny CNN);
:func:`audit_suite` audits each row of the table on each of them
(:func:`~attribkit.theory.allocation.audit_polynomial`,
:func:`~attribkit.theory.allocation.audit_game`, :func:`~attribkit.theory.allocation.audit_blocks`)
and :func:`run_unification` does both for :data:`~attribkit.theory.paper_table.PAPER_TABLE` and
every other registered method. :mod:`attribkit.theory.unification` renders the result.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.errors import UnsupportedModelError
from attribkit.core.summary import summary_repr
from attribkit.methods.registry import MethodInfo, get, methods
from attribkit.theory.allocation import (
    AllocationReport,
    CriterionVerdict,
    audit_blocks,
    audit_game,
    audit_polynomial,
)
from attribkit.theory.examples import relu_net, saturated_unit, separable_net, sparse_poly, tiny_cnn
from attribkit.theory.paper_table import BASELINE, LAST_CONV, PAPER_TABLE, Row
from attribkit.toys import Polynomial

__all__ = [
    "MethodAudit",
    "TestFunction",
    "UnificationResult",
    "audit_suite",
    "default_suite",
    "run_unification",
]


@dataclass(frozen=True)
class TestFunction:
    """A function of the suite: a model, one input, a baseline and how it is audited."""

    name: str
    model: nn.Module
    inputs: Tensor
    baseline: Tensor
    kind: str  # "taylor" (Polynomial) or "harsanyi"
    tolerance: float
    players: Tensor | None = None
    parts: tuple[nn.Module, ...] = ()
    blocks: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class MethodAudit:
    """One row's audit: a report per function (or the reason it could not run)."""

    row: Row
    reports: dict[str, AllocationReport]
    skipped: dict[str, str]
    seconds: float

    __repr__ = summary_repr

    def _headline(self) -> list[str]:
        return [f"row={self.row.label!r}"]

    def verdict(self, k: int) -> bool | None:
        """Criterion ``k`` (0, 1, 2): holds on every function where it was decided."""
        got = [r.criteria[k].holds for r in self.reports.values()
               if r.criteria[k].holds is not None]
        return None if not got else all(got)

    def worst(self, k: int) -> tuple[str, CriterionVerdict] | None:
        """The function and verdict that decided criterion ``k`` (a failure, else the worst)."""
        cands = [(n, r.criteria[k]) for n, r in self.reports.items()
                 if r.criteria[k].holds is not None]
        if not cands:
            return None
        fails = [c for c in cands if c[1].holds is False]
        pool = fails or cands
        return max(pool, key=lambda c: abs(c[1].worst))


@dataclass(frozen=True)
class UnificationResult:
    """The audits of every row on the suite."""

    suite: tuple[TestFunction, ...]
    audits: tuple[MethodAudit, ...]
    seconds: float

    __repr__ = summary_repr


def _poly(name: str, exps: Sequence[Sequence[int]], coefs: Sequence[float] | None,
          x: Sequence[float], b: Sequence[float] | None = None,
          tol: float = 1e-3) -> TestFunction:
    xt = torch.tensor([x], dtype=torch.float64)
    bt = torch.zeros_like(xt) if b is None else torch.tensor([b], dtype=torch.float64)
    return TestFunction(name, Polynomial(exps, coefs), xt, bt, "taylor", tol)


def default_suite(*, relu: bool = True) -> tuple[TestFunction, ...]:
    """The test functions: monomials, a saturated effect, sparse polynomials, ReLU networks."""
    suite = [
        _poly("x1^2 x2 at (1, 1)", [[2, 1]], None, [1.0, 1.0]),
        _poly("x1 x2 x3 (x4 dummy)", [[1, 1, 1, 0]], None, [1.5, -0.5, 2.0, 0.8]),
        _poly("x1^3 x2 x3^2 (x4 dummy)", [[3, 1, 2, 0]], [0.5], [0.7, 1.3, -1.1, 0.9]),
        _poly("x1 + x2^2 + x1 x2", [[1, 0], [0, 2], [1, 1]], [1.0, -0.5, 2.0], [0.8, 1.2]),
        _poly("saturated 2 x1 - x1^2 + x2 at x1 = 1", [[1, 0], [2, 0], [0, 1]],
              [2.0, -1.0, 1.0], [1.0, 0.5]),
    ]
    for seed, base in ((0, None), (1, [0.2, -0.3, 0.1, 0.4, 0.0])):
        exps, coefs = sparse_poly(seed)
        g = torch.Generator().manual_seed(100 + seed)
        x = ((torch.rand(5, generator=g, dtype=torch.float64) + 0.3)
             * torch.where(torch.rand(5, generator=g) < 0.3, -1.0, 1.0)).tolist()
        tag = "baseline 0" if base is None else "shifted baseline"
        suite.append(_poly(f"random sparse polynomial {seed} ({tag})", exps, coefs,
                           [round(v, 3) for v in x], base))
    if relu:
        for seed in (0, 1):
            g = torch.Generator().manual_seed(200 + seed)
            xr = torch.randn(1, 5, generator=g, dtype=torch.float64)
            suite.append(TestFunction(f"ReLU network {seed} (5 inputs, x5 dummy)",
                                      relu_net(seed), xr, torch.zeros_like(xr), "harsanyi", 2e-2))
        for seed in (0, 1):
            net, parts = separable_net(seed)
            g = torch.Generator().manual_seed(400 + seed)
            xs = torch.randn(1, 4, generator=g, dtype=torch.float64)
            name = f"separable ReLU network {seed} (blocks x1, x2 and x3, x4)"
            suite.append(TestFunction(name, net, xs,
                                      torch.zeros_like(xs), "blocks", 1e-3, None, parts,
                                      ((0, 1), (2, 3))))
        sat = saturated_unit()
        x1 = torch.tensor([[2.0]], dtype=torch.float64)
        suite.append(TestFunction("saturated unit 1 - ReLU(1 - x) at x = 2 (ReLU layers)", sat,
                                  x1, torch.zeros_like(x1), "harsanyi", 1e-3))
        g = torch.Generator().manual_seed(300)
        xc = torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64)
        ids = (torch.arange(4)[:, None] // 2 * 2 + torch.arange(4)[None, :] // 2)[None]
        suite.append(TestFunction("tiny CNN (4 x 4 image, 2 x 2 patch players)", tiny_cnn(),
                                  xc, torch.zeros_like(xc), "harsanyi", 2e-2, ids))
    return tuple(suite)


def _last_conv(model: nn.Module) -> nn.Module:
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if not convs:
        raise UnsupportedModelError("this function has no convolution layer: Grad-CAM needs a "
                                    "feature map")
    return convs[-1]


def _resolve(options: dict[str, Any], fn: TestFunction) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in options.items():
        if isinstance(v, str) and v == BASELINE:
            out[k] = fn.baseline
        elif isinstance(v, str) and v == LAST_CONV:
            out[k] = _last_conv(fn.model)
        else:
            out[k] = v
    return out


def _audit_one(info: MethodInfo, row: Row, fn: TestFunction) -> AllocationReport:
    opts = _resolve(row.options, fn)
    tol = max(fn.tolerance, 0.05) if info.stochastic else fn.tolerance
    if fn.kind == "taylor":
        assert isinstance(fn.model, Polynomial)
        return audit_polynomial(info, fn.model, fn.inputs, fn.baseline, options=opts,
                                tolerance=tol)
    if fn.kind == "blocks":
        return audit_blocks(info, fn.model, fn.parts, fn.blocks, fn.inputs, fn.baseline,
                            options=opts, tolerance=tol)
    return audit_game(info, fn.model, fn.inputs, fn.baseline, options=opts, tolerance=tol,
                      players=fn.players)


def _unit_method(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` requires ``layer=`` or ``neuron=``: it allocates among a layer's units (or
    through one unit), not among the input players of these games (see the page's prose)."""
    params = inspect.signature(fn).parameters
    return any(k in params and params[k].default is inspect.Parameter.empty
               for k in ("layer", "neuron"))


def _rows(include: Sequence[str] | None) -> list[Row]:
    registered = methods()
    rows: list[Row] = []
    covered: set[str] = set()
    for row in PAPER_TABLE:
        rows.append(row)
        covered.add(row.method)
    for name, info in registered.items():
        if name not in covered and not _unit_method(info.fn):
            rows.append(Row(name.replace("_", " ").capitalize(), name, {}, None))
    if include is not None:
        keep = set(include)
        rows = [r for r in rows if r.label in keep or r.method in keep]
    return rows


def audit_suite(rows: Sequence[Row], suite: Sequence[TestFunction]) -> list[MethodAudit]:
    """Audit each row on each function; a row whose method is not registered has no reports."""
    out = []
    for row in rows:
        t0 = time.perf_counter()
        reports: dict[str, AllocationReport] = {}
        skipped: dict[str, str] = {}
        try:
            info = get(row.method)
        except Exception:  # an absent method is recorded, not raised
            out.append(MethodAudit(row, {}, {"*": "not registered in attribkit yet"}, 0.0))
            continue
        for fn in suite:
            try:
                reports[fn.name] = _audit_one(info, row, fn)
            except Exception as exc:  # a method that cannot run is a finding
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                skipped[fn.name] = f"{type(exc).__name__}: {msg[:160]}"
        out.append(MethodAudit(row, reports, skipped, time.perf_counter() - t0))
    return out


def run_unification(include: Sequence[str] | None = None, *, relu: bool = True
                    ) -> UnificationResult:
    """Audit the rows of :data:`PAPER_TABLE` and every other registered method on the suite.

    Parameters
    ----------
    include
        Only these rows (labels or registered names); ``None``: all.
    relu
        Include the ReLU networks (Harsanyi dividends) in the suite.
    """
    t0 = time.perf_counter()
    suite = default_suite(relu=relu)
    audits = audit_suite(_rows(include), suite)
    return UnificationResult(suite, tuple(audits), time.perf_counter() - t0)
