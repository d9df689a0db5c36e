"""Table 2 in each method's own frame, and the background-set methods audited as averages.

:mod:`attribkit.theory.unification` scores every method against one quantity, the decomposition
of ``F(x) - F(b)`` at the baseline (the *baseline frame*). Deng et al. 2023 (*Understanding and
Unifying Fourteen Attribution Methods with Taylor Interactions*, arXiv:2303.01506) read some methods
in the frame of their own expansion instead; this module measures them there.

* **First-order frame** (Gradient x Input, LRP-epsilon, Grad-CAM): the quantity explained is the
  first-order Taylor expansion at the input toward zero, ``F(x) - F(0) ~ sum_j phi_j`` with
  ``phi_j = x_j dF/dx_j(x)`` (for Grad-CAM the features are the positions ``p`` of the feature
  map ``A``: ``phi_p = sum_c A_cp dF/dA_cp``). Each first-order term becomes its own model (a
  linear layer on the input, or the network up to ``A`` followed by the term's linear read-out)
  and the method is run on it, so its shares are measured as in the baseline frame. Criterion 1
  asks whether the terms the method considers cover ``F(x) - F(0)`` (the higher-order remainder is
  the approximation error); criterion 2 whether a term reaches features other than its own;
  criterion 3 whether the shares of each term add up to it and the method's attribution of ``F``
  is the sum of its shares (additivity: otherwise the frame does not describe the method). For
  feature-map positions, criteria 2 and 3 compare the map with the terms position by position
  and in sum (the per-term models are kept as evidence of where gradient pooling moves a term).
* **Relevance frame** (LRP-alpha-beta, Deep Taylor): the quantity is ``F(x)`` itself, conserved
  layer by layer with root points inside the sign groups. Criterion 1 asks that no relevance of
  ``F(x)`` is lost on the way (``sum_i a_i >= (1 - tol) F(x)``), criterion 2 that an input in no
  effect receives nothing (dummy inputs; the separable networks of the baseline frame), criterion
  3 that ``sum_i a_i = F(x)`` (conservation).
* **Background sets** (Expected Gradients, DeepSHAP, Prediction Difference): the decomposition is
  the average over the background rows of each row's decomposition (the paper's Table 1); the
  method's attribution with the whole set is checked to be the average of its one-row runs, and
  the averaged per-effect shares decide the criteria.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.methods.registry import MethodInfo, get
from attribkit.theory.allocation import audit_polynomial, run_method
from attribkit.theory.criteria import (
    CRITERIA,
    AllocationReport,
    CriterionVerdict,
    EffectAllocation,
    decide_criteria,
)
from attribkit.theory.games import Game

__all__ = [
    "FIRST_ORDER",
    "OWN_FRAME",
    "RELEVANCE",
    "BackgroundAudit",
    "PositionTerm",
    "audit_background",
    "first_order_audit",
    "relevance_audit",
]

FIRST_ORDER = "first-order terms at x"
RELEVANCE = "relevance of F(x)"
#: The frame the paper reads each Table 2 row in, when it is not the baseline frame.
OWN_FRAME: dict[str, str] = {
    "Gradient x Input": FIRST_ORDER,
    "LRP-epsilon": FIRST_ORDER,
    "Grad-CAM": FIRST_ORDER,
    "LRP-alpha-beta": RELEVANCE,
    "Deep Taylor": RELEVANCE,
}


class PositionTerm(nn.Module):
    """``A -> sum W * A``: one first-order term of a feature map as a read-out (``(N, 1)``)."""

    weight: Tensor

    def __init__(self, weight: Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach().clone())

    def forward(self, a: Tensor) -> Tensor:
        """Weighted sum over every axis but the batch."""
        return (a * self.weight.to(a.dtype)).flatten(1).sum(1, keepdim=True)


def _scalar(model: nn.Module, x: Tensor) -> Tensor:
    return torch.as_tensor(model(x)).reshape(x.shape[0], -1)[:, 0]


def _split(model: nn.Module, layer: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
    if not isinstance(model, nn.Sequential):
        raise TypeError("the feature-map frame needs an nn.Sequential model")
    mods = list(model)
    k = next(i for i, m in enumerate(mods) if m is layer)
    return mods[:k + 1], mods[k + 1:]


def first_order_audit(method: str | MethodInfo, model: nn.Module, inputs: Tensor, *,
                      layer: nn.Module | None = None, options: dict[str, Any] | None = None,
                      tolerance: float = 1e-3) -> AllocationReport:
    """The three criteria in the first-order frame at ``inputs`` (expansion toward zero).

    Parameters
    ----------
    method
        A registered method name (or its :class:`MethodInfo`).
    model
        A model of one example ``(1, n)`` (or, with ``layer``, an ``nn.Sequential`` containing
        ``layer``).
    inputs
        One example.
    layer
        ``None``: the features are the inputs. Otherwise the features are the spatial positions
        of ``layer``'s output (Grad-CAM's frame; run the method with ``upsample=False``).
    options
        Extra options for the method.
    tolerance
        Relative tolerance of the verdicts.
    """
    info = method if isinstance(method, MethodInfo) else get(method)
    x = inputs.detach().to(torch.float64)
    zero = torch.zeros_like(x)
    if layer is None:
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(_scalar(model, xg).sum(), xg)
        feat, grad = x.reshape(-1), g.reshape(-1)
        phi = feat * grad
        n = phi.numel()
        with torch.no_grad():
            f0 = float(_scalar(model, zero)[0])
        models: list[nn.Module] = []
        for j in range(n):
            lin = nn.Linear(n, 1, bias=False).double()
            with torch.no_grad():
                lin.weight.zero_()
                lin.weight[0, j] = grad[j]
            models.append(lin)
    else:
        trunk, head = _split(model, layer)
        with torch.no_grad():
            a_map = nn.Sequential(*trunk)(x)
        ag = a_map.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(_scalar(nn.Sequential(*head), ag).sum(), ag)
        per_pos = (a_map * g).sum(1)[0].reshape(-1)  # sum over channels
        phi, n = per_pos, per_pos.numel()
        with torch.no_grad():
            f0 = float(_scalar(nn.Sequential(*head), torch.zeros_like(a_map))[0])
        models = []
        for p in range(n):
            mask = torch.zeros(n, dtype=torch.float64)
            mask[p] = 1.0
            w = g * mask.reshape(1, 1, *a_map.shape[2:])
            models.append(nn.Sequential(*trunk, PositionTerm(w)).eval())
    with torch.no_grad():
        fx = float(_scalar(model, x)[0])
    a = run_method(info, model, x, zero, options=options)
    effects = []
    for j, sub in enumerate(models):
        if abs(float(phi[j])) <= 1e-12:
            continue
        shares = run_method(info, sub, x, zero, options=options)
        effects.append(EffectAllocation((j,), float(phi[j]), tuple(shares.tolist())))
    scale = max(abs(fx - f0), float(phi.abs().sum()), float(a.abs().max()), 1e-12)
    summed = (torch.tensor([e.shares for e in effects], dtype=torch.float64).sum(0)
              if effects else torch.zeros_like(a))
    additivity = float((a - summed).abs().max()) / scale
    # terms below 1e-3 of the scale are not judged: LRP's epsilon dominates their shares
    judged = [e for e in effects if abs(e.effect) > 1e-3 * scale] or effects
    c1, c2, c3 = decide_criteria(judged, tolerance)
    rem = (fx - f0) - float(phi.sum())
    if layer is not None:
        # each position must receive its own first-order term: the map against phi, position
        # by position; the per-term models show where pooling moves each term
        diag = float((a - phi).abs().max()) / scale
        c2 = CriterionVerdict(
            CRITERIA[1], diag <= tolerance, diag,
            f"map minus each position's own first-order term: {diag:.3g} (relative); each term "
            f"written as its own model: {c2.evidence}")
        tot = abs(float(a.sum()) - float(phi.sum())) / scale
        c3 = CriterionVerdict(
            CRITERIA[2], tot <= tolerance, tot,
            f"map sums to {float(a.sum()):.4g}, first-order terms to {float(phi.sum()):.4g}")
        c1 = CriterionVerdict(CRITERIA[0], abs(rem) <= tolerance * scale, abs(rem) / scale,
                              f"F(x) - F(A = 0) = {fx - f0:.4g}, first-order terms sum to "
                              f"{float(phi.sum()):.4g}: remainder {rem:.4g} left out")
        return AllocationReport(info.name, dict(options or {}), FIRST_ORDER,
                                tuple(a.tolist()), fx - f0, tuple(effects), (c1, c2, c3), {},
                                additivity, tolerance, ("features: feature-map positions",))
    c1 = CriterionVerdict(
        CRITERIA[0], bool(c1.holds is not False and abs(rem) <= tolerance * scale),
        max(abs(rem) / scale, c1.worst),
        f"F(x) - F(0) = {fx - f0:.4g}, first-order terms sum to {float(phi.sum()):.4g}: "
        f"remainder {rem:.4g} left out; {c1.evidence}")
    c3 = CriterionVerdict(
        CRITERIA[2], bool(c3.holds is not False and additivity <= tolerance),
        max(c3.worst, additivity),
        f"{c3.evidence}; the method on F minus the sum of its shares: {additivity:.3g} "
        "(relative)")
    return AllocationReport(info.name, dict(options or {}), FIRST_ORDER, tuple(a.tolist()),
                            fx - f0, tuple(effects), (c1, c2, c3), {}, additivity, tolerance,
                            ("features: inputs",))


def relevance_audit(method: str | MethodInfo, model: nn.Module, inputs: Tensor, *,
                    options: dict[str, Any] | None = None,
                    tolerance: float = 1e-3) -> AllocationReport:
    """The three criteria in the relevance frame: the method distributes ``F(x)`` itself.

    Criterion 2 is decided on dummy inputs (no non-zero Harsanyi dividend at the zero baseline),
    criterion 1 on the relevance lost, criterion 3 on conservation ``sum_i a_i = F(x)``.
    """
    info = method if isinstance(method, MethodInfo) else get(method)
    x = inputs.detach().to(torch.float64)
    zero = torch.zeros_like(x)
    a = run_method(info, model, x, zero, options=options)
    game = Game(model, x, baseline=zero)
    div = game.dividends()
    fx = game.output
    n = game.n_players
    scale = max(abs(fx), float(a.abs().max()), 1e-12)
    total = float(a.sum())
    c1 = CriterionVerdict(CRITERIA[0], total >= fx - tolerance * scale,
                          max(0.0, (fx - total) / scale),
                          f"relevance reaching the inputs {total:.4g} of F(x) = {fx:.4g}")
    involved = [False] * n
    for m in range(1, 1 << n):
        if abs(float(div[m])) > 1e-12 * scale:
            for i in range(n):
                if m >> i & 1:
                    involved[i] = True
    dummies = [i for i in range(n) if not involved[i]]
    if dummies:
        worst = max(abs(float(a[i])) for i in dummies) / scale
        c2 = CriterionVerdict(CRITERIA[1], worst <= tolerance, worst,
                              f"largest relevance given to an input in no effect (x"
                              f"{', x'.join(str(d + 1) for d in dummies)}): {worst:.3g} of F(x)")
    else:
        c2 = CriterionVerdict(CRITERIA[1], None, 0.0, "every input is in some effect")
    gap = abs(total - fx) / scale
    c3 = CriterionVerdict(CRITERIA[2], gap <= tolerance, gap,
                          f"sum of relevances {total:.4g} vs F(x) = {fx:.4g} (F(0) = "
                          f"{game.baseline_output:.4g})")
    return AllocationReport(info.name, dict(options or {}), RELEVANCE, tuple(a.tolist()),
                            fx, (), (c1, c2, c3), {}, 0.0, tolerance, ())


@dataclass(frozen=True)
class BackgroundAudit:
    """A background-set method on one function: the averaged decomposition and the verdicts.

    Attributes
    ----------
    criteria
        The three verdicts on the decomposition averaged over the background rows.
    average_gap
        ``max_i |a_i(whole set) - mean_k a_i(row k)|`` relative: is the method the average of
        its one-row runs (the premise of the averaged frame)?
    completeness_gap
        ``|sum_i a_i - mean_k (F(x) - F(b_k))|`` relative.
    rule_distances
        Relative L2 distance of the attribution to each rule averaged over the rows.
    rows
        Number of background rows.
    """

    criteria: tuple[CriterionVerdict, ...]
    average_gap: float
    completeness_gap: float
    rule_distances: dict[str, float]
    rows: int


def _rel(a: Tensor, r: Tensor) -> float:
    return float((a - r).norm()) / max(float(r.norm()), float(a.norm()), 1e-12)


def audit_background(method: str | MethodInfo, model: nn.Module, inputs: Tensor,
                     background: Tensor, *, options: dict[str, Any] | None = None,
                     tolerance: float = 1e-3) -> BackgroundAudit:
    """Audit a background-set method with several rows as the average of per-row decompositions.

    Polynomials (:class:`~attribkit.toys.Polynomial`) get measured per-effect shares (each row's
    effects are measured with that row alone and averaged by support); other models are set
    against the averaged Harsanyi dividends (criterion 2 on dummies, 3 on completeness).
    """
    from attribkit.toys import Polynomial

    info = method if isinstance(method, MethodInfo) else get(method)
    x = inputs.detach().to(torch.float64)
    bg = background.detach().to(torch.float64)
    opts = dict(options or {})
    k = bg.shape[0]
    full = run_method(info, model, x, bg[:1], options={**opts, "background": bg})
    singles = [run_method(info, model, x, bg[r:r + 1], options={**opts, "background": bg[r:r + 1]})
               for r in range(k)]
    mean_single = torch.stack(singles).mean(0)
    games = [Game(model, x, baseline=bg[r:r + 1]) for r in range(k)]
    divs = torch.stack([gm.dividends() for gm in games]).mean(0)
    change = sum(gm.output - gm.baseline_output for gm in games) / k
    scale = max(float(divs[1:].abs().sum()), abs(change), float(full.abs().max()), 1e-12)
    avg_gap = float((full - mean_single).abs().max()) / scale
    comp_gap = abs(float(full.sum()) - change) / scale
    rules = {
        "shapley": torch.stack([gm.shapley() for gm in games]).mean(0),
        "banzhaf": torch.stack([gm.banzhaf() for gm in games]).mean(0),
        "occlusion": torch.stack([
            torch.stack([gm.dividends().view(-1, 2, 1 << i)[:, 1, :].sum()
                         for i in range(gm.n_players)]) for gm in games]).mean(0),
    }
    dist = {r: _rel(full, v) for r, v in rules.items()}
    if isinstance(model, Polynomial):
        reps = [audit_polynomial(info, model, x, bg[r:r + 1],
                                 options={**opts, "background": bg[r:r + 1]},
                                 tolerance=tolerance) for r in range(k)]
        acc: dict[tuple[int, ...], tuple[float, Tensor]] = {}
        for rep in reps:
            for e in rep.effects:
                v, s = acc.get(e.players, (0.0, torch.zeros(len(e.shares), dtype=torch.float64)))
                acc[e.players] = (v + e.effect / k, s + torch.tensor(e.shares) / k)
        effects = [EffectAllocation(p, v, tuple(s.tolist())) for p, (v, s) in sorted(acc.items())]
        crit = decide_criteria(effects, tolerance)
        summed = torch.stack([torch.tensor(e.shares) for e in effects]).sum(0)
        add = float((full - summed).abs().max()) / scale
        c3 = crit[2]
        crit = (crit[0], crit[1], CriterionVerdict(
            CRITERIA[2], bool(c3.holds and add <= tolerance), max(c3.worst, add),
            f"{c3.evidence} (averaged over {k} rows); whole-set attribution minus the summed "
            f"shares: {add:.3g}"))
    else:
        n = games[0].n_players
        involved = [any(abs(float(divs[m])) > 1e-12 * scale for m in range(1, 1 << n)
                        if m >> i & 1) for i in range(n)]
        dummies = [i for i in range(n) if not involved[i]]
        c1 = CriterionVerdict(CRITERIA[0], None, 0.0, "needs Taylor terms")
        if n == 1 and abs(float(divs[1])) > 1e-12:
            cover = float(full[0]) / float(divs[1])
            c1 = CriterionVerdict(CRITERIA[0], cover >= 1.0 - tolerance, 1.0 - cover,
                                  f"the only averaged effect psi(x1) = {float(divs[1]):.4g} "
                                  f"reaches x1 with {cover:.4g} of it")
        if dummies:
            w = max(abs(float(full[i])) for i in dummies) / scale
            c2 = CriterionVerdict(CRITERIA[1], w <= tolerance, w,
                                  f"largest attribution to an input in no averaged effect: {w:.3g}")
        else:
            c2 = CriterionVerdict(CRITERIA[1], None, 0.0, "every input is in some effect")
        c3 = CriterionVerdict(CRITERIA[2], comp_gap <= tolerance, comp_gap,
                              f"sum {float(full.sum()):.4g} vs mean_k F(x) - F(b_k) = "
                              f"{change:.4g} over {k} rows")
        crit = (c1, c2, c3)
    return BackgroundAudit(crit, avg_gap, comp_gap, dist, k)

