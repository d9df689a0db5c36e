"""The allocation audit: how a method shares each independent and interaction effect.

Deng et al. 2023, Understanding and Unifying Fourteen Attribution Methods with Taylor Interactions
writes every attribution as ``a_i = sum_j w_{i,j} psi(j) + sum_S w_{i,S} J(S)``: methods differ only
in the weights. For a model whose decomposition is known this module
*measures* the weights of a registered method and decides the three criteria with the evidence:

1. *low approximation error*: every effect reaches its members in full (``sum_{i in S} w_{i,S}
   >= 1``, up to the tolerance); an effect a method leaves out or shrinks is an approximation
   error (Gradient x Input gives nothing to the saturated effect ``2 x - x^2`` at ``x = 1``);
2. *no unrelated allocation*: ``w_{i,S} = 0`` for ``i`` outside ``S``;
3. *complete allocation*: ``sum_i w_{i,S} = 1`` for every effect.

Measured weights (:func:`audit_polynomial`): the model is a
:class:`~attribkit.toys.Polynomial`; its exact Taylor terms at the baseline are grouped by support
into effects, each effect becomes its own small model, and the method is run on each one (so
``w_{i,S} = a_i(J_S) / J(S)``); the method's attribution of the whole model is compared with the
sum of the effect shares (additivity).

Any model (:func:`audit_game`, used by :func:`allocation_report`): the effects are the Harsanyi
dividends of the game of players; the method's attribution is compared with the allocations of
Table 1 computed from the dividends (the closest rule is named), completeness decides criterion 3,
and features with no effect at all (dummies) decide criterion 2; criterion 1 needs Taylor terms
and is left undecided there.

The criteria, effects and reports are defined in :mod:`attribkit.theory.criteria` and Table 1's
rules in :mod:`attribkit.theory.rules`; their names are importable from here too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core import coalitions as co
from attribkit.core.errors import InputError
from attribkit.methods.registry import MethodInfo, get
from attribkit.theory.criteria import (
    CRITERIA,
    AllocationReport,
    CriterionVerdict,
    EffectAllocation,
    decide_criteria,
)
from attribkit.theory.games import Game, players_of
from attribkit.theory.rules import (
    RULES,
    dividend_rule,
    implied_weight,
    rule_allocation,
    rule_distance,
)
from attribkit.theory.taylor import polynomial_terms
from attribkit.toys import Polynomial

__all__ = [
    "CRITERIA",
    "RULES",
    "AllocationReport",
    "CriterionVerdict",
    "EffectAllocation",
    "ShiftedPolynomial",
    "allocation_report",
    "audit_blocks",
    "audit_game",
    "audit_polynomial",
    "rule_allocation",
    "run_method",
]


class ShiftedPolynomial(nn.Module):
    """``F(x) = sum_t c_t prod_i (x_i - center_i)^kappa[t, i]``: one effect as its own model.

    Parameters
    ----------
    exponents
        ``(T, n)`` degree vectors.
    coefficients
        ``(T,)`` coefficients.
    center
        ``(n,)`` the expansion point (the baseline).
    """

    kappa: Tensor
    coef: Tensor
    center: Tensor

    def __init__(self, exponents: Tensor, coefficients: Tensor, center: Tensor) -> None:
        super().__init__()
        self.register_buffer("kappa", torch.as_tensor(exponents, dtype=torch.long))
        self.register_buffer("coef", torch.as_tensor(coefficients, dtype=torch.float64))
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float64).reshape(-1))

    def forward(self, x: Tensor) -> Tensor:
        """Evaluate on ``(N, n)`` inputs."""
        d = x - self.center.to(x.dtype)
        return (d[:, None, :] ** self.kappa.to(x.dtype)).prod(dim=2) @ self.coef.to(x.dtype)


def run_method(method: str | MethodInfo, model: Callable[..., Tensor], inputs: Tensor,
               baseline: Tensor, *, target: Any = None,
               options: dict[str, Any] | None = None) -> Tensor:
    """Run a registered method on one example; return its attribution flattened ``(D,)``.

    The baseline is passed when the method uses one; stochastic methods get ``seed=0`` unless
    ``options`` says otherwise.
    """
    info = method if isinstance(method, MethodInfo) else get(method)
    kw: dict[str, Any] = dict(options or {})
    accepted = _accepted(info.fn)
    if info.needs_baseline and (accepted is None or "baseline" in accepted):
        kw.setdefault("baseline", baseline)
    if info.stochastic and (accepted is None or "seed" in accepted):
        kw.setdefault("seed", 0)
    if target is not None:
        kw.setdefault("target", target)
    attr = info.fn(model, inputs, **kw)
    vals = attr.values
    if vals.shape[0] != 1:
        raise InputError(f"{info.name} returned {vals.shape[0]} attribution rows for one example.")
    return vals.detach().reshape(-1).to(torch.float64)


def _accepted(fn: Callable[..., Any]) -> set[str] | None:
    """The keyword names ``fn`` accepts (``None`` if it takes ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def audit_polynomial(method: str | MethodInfo, model: Polynomial, inputs: Tensor,
                     baseline: Tensor | None = None, *, options: dict[str, Any] | None = None,
                     tolerance: float = 1e-3) -> AllocationReport:
    """Measure how ``method`` allocates each effect of a polynomial at ``inputs``.

    Parameters
    ----------
    method
        A registered method name (or its :class:`MethodInfo`).
    model
        The polynomial; its Taylor terms at the baseline are known exactly.
    inputs
        One example ``(1, n)``.
    baseline
        ``(1, n)``; default zeros.
    options
        Extra options for the method.
    tolerance
        Relative tolerance of the verdicts.

    Returns
    -------
    AllocationReport
        With measured shares for every effect.
    """
    info = method if isinstance(method, MethodInfo) else get(method)
    x = inputs.detach().to(torch.float64).reshape(1, -1)
    n = x.shape[1]
    b = (torch.zeros_like(x) if baseline is None
         else baseline.detach().to(torch.float64).reshape(1, -1))
    dec = polynomial_terms(model, x, b)
    groups: dict[tuple[int, ...], list[tuple[tuple[int, ...], float]]] = {}
    for t in dec.terms:
        groups.setdefault(t.support, []).append((t.kappa, t.value))
    effects = []
    for sup, terms in sorted(groups.items(), key=lambda kv: (len(kv[0]), kv[0])):
        kap = torch.tensor([k for k, _ in terms], dtype=torch.long)
        # coefficient of (x - b)^kappa: the term's value divided by the monomial at x
        d = (x - b)[0]
        coef = torch.tensor([v / float(torch.prod(d ** torch.tensor(k, dtype=torch.float64)))
                             for k, v in terms], dtype=torch.float64)
        sub = ShiftedPolynomial(kap, coef, b[0])
        shares = run_method(info, sub, x, b, options=options)
        effects.append(EffectAllocation(sup, sum(v for _, v in terms),
                                        tuple(shares.tolist())))
    a = run_method(info, model, x, b, options=options)
    summed = torch.tensor([e.shares for e in effects], dtype=torch.float64).sum(0) if effects \
        else torch.zeros(n, dtype=torch.float64)
    scale = max(float(a.abs().max()), abs(dec.output - dec.baseline_output), 1e-12)
    additivity = float((a - summed).abs().max()) / scale
    dist = {r: rule_distance(a, rule_allocation(r, dec)) for r in RULES}
    notes = []
    if additivity > tolerance:
        notes.append(f"the attribution of the whole model differs from the sum of the effect "
                     f"shares by {additivity:.3g} (relative): the method is not additive here")
    return AllocationReport(info.name, dict(options or {}), "taylor", tuple(a.tolist()),
                            dec.output - dec.baseline_output, tuple(effects),
                            decide_criteria(effects, tolerance), dist, additivity, tolerance,
                            tuple(notes))


def audit_game(method: str | MethodInfo, model: Callable[..., Tensor], inputs: Tensor,
               baseline: Tensor | None = None, *, target: Any = None,
               players: Tensor | None = None, options: dict[str, Any] | None = None,
               tolerance: float = 1e-3, top: int = 32) -> AllocationReport:
    """Compare ``method`` with the Table 1 allocations of the game's Harsanyi dividends.

    Parameters
    ----------
    method
        A registered method name (or its :class:`MethodInfo`).
    model
        Any model (a callable from ``(N, ...)`` to ``(N,)`` or ``(N, C)``).
    inputs
        One example ``(1, ...)``.
    baseline
        The baseline (default zeros).
    target
        The scalar explained.
    players
        Group ids per feature (see :class:`~attribkit.theory.games.Game`); attributions are
        summed over each group.
    options
        Extra options for the method.
    tolerance
        Relative tolerance of the verdicts.
    top
        How many of the strongest dividends are listed as effects (with the shares the closest
        rule implies).

    Returns
    -------
    AllocationReport
        Criterion 2 is decided on dummy players (no non-zero dividend), criterion 3 on
        completeness, criterion 1 only with a single player (whose one effect is the output
        change).
    """
    info = method if isinstance(method, MethodInfo) else get(method)
    x = inputs.detach()
    if x.dim() == 0 or x.shape[0] != 1:
        x = x.unsqueeze(0)
    b = torch.zeros_like(x) if baseline is None else torch.as_tensor(baseline).to(x).reshape(
        x.shape)
    game = Game(model, x, baseline=b, target=target, players=players)
    div = game.dividends()
    n = game.n_players
    raw = run_method(info, model, x, b, target=target, options=options)
    ids = game.group_ids.to(raw.device)
    keep = ids >= 0
    a = torch.zeros(n, dtype=torch.float64).index_add_(0, ids[keep], raw[keep])
    change = game.output - game.baseline_output
    dist = {}
    for r in RULES:
        ref = dividend_rule(r, div)
        if ref is not None:
            dist[r] = rule_distance(a, ref)
    scale = max(float(div[1:].abs().sum()), abs(change), float(a.abs().max()), 1e-12)
    # criterion 2: players in no non-zero dividend
    memb = co.coalition_masks(0, 1 << n, n)
    live = div.abs() > 1e-12 * scale
    involved = (memb & live[:, None]).any(0)
    dummies = [i for i in range(n) if not bool(involved[i])]
    if dummies:
        worst = max(abs(float(a[i])) for i in dummies) / scale
        c2 = CriterionVerdict(CRITERIA[1], worst <= tolerance, worst,
                              f"largest attribution to a player in no effect (players "
                              f"{[d + 1 for d in dummies]}): {worst:.3g} of the effect scale")
    else:
        c2 = CriterionVerdict(CRITERIA[1], None, 0.0, "every player is in some effect")
    gap = abs(float(a.sum()) - change) / scale
    c3 = CriterionVerdict(CRITERIA[2], gap <= tolerance, gap,
                          f"sum of attributions {float(a.sum()):.4g} vs F(x) - F(b) = "
                          f"{change:.4g} (sum of all dividends)")
    if n == 1 and abs(float(div[1])) > 1e-12 * scale:
        # one player: its independent effect is the whole output change
        cover = float(a[0]) / float(div[1])
        c1 = CriterionVerdict(CRITERIA[0], cover >= 1.0 - tolerance, 1.0 - cover,
                              f"the only effect psi(x1) = {float(div[1]):.4g} reaches x1 with "
                              f"{cover:.4g} of it")
    else:
        c1 = CriterionVerdict(CRITERIA[0], None, 0.0,
                              "needs Taylor terms; not decided from Harsanyi dividends")
    rule = min(dist, key=lambda k: dist[k]) if dist else "shapley"
    order = torch.argsort(div.abs(), descending=True).tolist()
    effects = []
    for m in order[: int(top) + 1]:
        if m == 0 or abs(float(div[m])) <= 1e-12 * scale:
            continue
        s = players_of(m)
        w = implied_weight(rule, len(s))
        shares = [w if i in s else 0.0 for i in range(n)]
        effects.append(EffectAllocation(s, float(div[m]), tuple(v * float(div[m])
                                                                for v in shares), False))
    notes = (f"shares of the listed effects are implied by the closest rule ({rule}), not "
             "measured",)
    return AllocationReport(info.name, dict(options or {}), "harsanyi", tuple(a.tolist()), change,
                            tuple(effects), (c1, c2, c3), dist, 0.0, tolerance, notes)


def audit_blocks(method: str | MethodInfo, model: Callable[..., Tensor],
                 parts: Sequence[Callable[..., Tensor]], blocks: Sequence[Sequence[int]],
                 inputs: Tensor, baseline: Tensor | None = None, *,
                 options: dict[str, Any] | None = None,
                 tolerance: float = 1e-3) -> AllocationReport:
    """Criteria 2 and 3 on a separable model ``F = sum_B F_B``, ``F_B`` reading block ``B`` only.

    Every effect of ``F`` lies inside one block, so a method that gives no effect to unrelated
    features attributes the features of ``B`` in ``F`` exactly as in ``F_B`` alone; the largest
    difference (relative) is the evidence for criterion 2. Criteria 1 and 3 are left undecided
    (the completeness gap is reported in the evidence of criterion 3).

    Parameters
    ----------
    method
        A registered method name (or its :class:`MethodInfo`).
    model
        The separable model ``F`` on ``(1, n)`` inputs.
    parts
        The models ``F_B`` (same inputs, the other blocks removed), one per block.
    blocks
        The features of each block (disjoint).
    inputs
        One example ``(1, n)``.
    baseline
        ``(1, n)``; default zeros.
    options
        Extra options for the method.
    tolerance
        Relative tolerance of the verdicts.
    """
    info = method if isinstance(method, MethodInfo) else get(method)
    x = inputs.detach().reshape(1, -1)
    b = torch.zeros_like(x) if baseline is None else baseline.detach().reshape(1, -1).to(x)
    a = run_method(info, model, x, b, options=options)
    with torch.no_grad():
        fx, fb = float(torch.as_tensor(model(x)).reshape(-1)[0]), float(
            torch.as_tensor(model(b)).reshape(-1)[0])
        part_changes = [float(torch.as_tensor(p(x)).reshape(-1)[0] - torch.as_tensor(p(b)).reshape(
            -1)[0]) for p in parts]
    change = fx - fb
    scale = max(abs(change), float(a.abs().max()), max(abs(c) for c in part_changes), 1e-12)
    worst, where = 0.0, ""
    effects = []
    for part, blk, pc in zip(parts, blocks, part_changes, strict=True):
        ap = run_method(info, part, x, b, options=options)
        idx = torch.tensor(list(blk), dtype=torch.long)
        diff = float((a[idx] - ap[idx]).abs().max()) / scale
        if diff >= worst:
            worst, where = diff, ", ".join(f"x{i + 1}" for i in blk)
        effects.append(EffectAllocation(tuple(blk), pc, tuple(ap.tolist())))
    c2 = CriterionVerdict(CRITERIA[1], worst <= tolerance, worst,
                          f"attributions of block ({where}) change by {worst:.3g} (relative) when "
                          "the other blocks' effects are added")
    gap = abs(float(a.sum()) - change) / scale
    c3 = CriterionVerdict(CRITERIA[2], None, gap,
                          f"not decided here (sum of attributions {float(a.sum()):.4g} vs "
                          f"F(x) - F(b) = {change:.4g})")
    c1 = CriterionVerdict(CRITERIA[0], None, 0.0, "needs Taylor terms; not decided here")
    return AllocationReport(info.name, dict(options or {}), "blocks", tuple(a.tolist()), change,
                            tuple(effects), (c1, c2, c3), {}, 0.0, tolerance,
                            ("effects listed are the blocks; shares are the method's attribution "
                             "of each block alone",))


def allocation_report(model: Callable[..., Tensor], inputs: Tensor, method: str, *,
                      baseline: Tensor | None = None, target: Any = None,
                      players: Tensor | None = None, options: dict[str, Any] | None = None,
                      tolerance: float = 1e-3) -> AllocationReport:
    """How does ``method`` allocate the interactions of this prediction?

    For a :class:`~attribkit.toys.Polynomial` (and no grouping) the shares of every effect are
    measured exactly (:func:`audit_polynomial`); for any other model the method's attribution is
    set against the Harsanyi dividends of the game of players (:func:`audit_game`, at most
    :data:`~attribkit.theory.games.MAX_EXACT_PLAYERS` players: group features with ``players``).

    Parameters
    ----------
    model
        The model.
    inputs
        One example ``(1, ...)``.
    method
        A registered method name or alias.
    baseline
        The baseline (default zeros).
    target
        The scalar explained (ignored for polynomials).
    players
        Group ids per feature (see :class:`~attribkit.theory.games.Game`).
    options
        Extra options for the method.
    tolerance
        Relative tolerance of the verdicts.

    Returns
    -------
    AllocationReport
        Attribution, effects with their shares, the three verdicts, distances to Table 1's rules.
    """
    if isinstance(model, Polynomial) and players is None:
        return audit_polynomial(method, model, inputs, baseline, options=options,
                                tolerance=tolerance)
    return audit_game(method, model, inputs, baseline, target=target, players=players,
                      options=options, tolerance=tolerance)
