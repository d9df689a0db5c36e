"""The vocabulary of the allocation audit: the three criteria, effects, verdicts and reports.

Deng et al. 2023, Understanding and Unifying Fourteen Attribution Methods with Taylor Interactions
writes every attribution as ``a_i = sum_j w_{i,j} psi(j) + sum_S w_{i,S} J(S)``. An
:class:`EffectAllocation` records how one effect was shared, a
:class:`CriterionVerdict` one criterion decided with its evidence (:func:`decide_criteria`
decides all three from measured shares), and an :class:`AllocationReport` one method's audit of
one prediction. The audits that fill them are in :mod:`attribkit.theory.allocation` and
:mod:`attribkit.theory.frames`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attribkit.core.summary import summary_repr

__all__ = [
    "CRITERIA",
    "AllocationReport",
    "CriterionVerdict",
    "EffectAllocation",
    "decide_criteria",
]

#: The three criteria of Deng et al. 2023 (Understanding and Unifying Fourteen Attribution
#: Methods with Taylor Interactions), in order.
CRITERIA = ("low_approximation_error", "no_unrelated_allocation", "complete_allocation")

@dataclass(frozen=True)
class EffectAllocation:
    """How one effect (``psi(j)`` or ``J(S)``) is shared among the features.

    Attributes
    ----------
    players
        The effect's support ``S`` (one feature for an independent effect).
    effect
        Its value ``J(S)``.
    shares
        What each of the ``n`` features receives from it.
    measured
        ``True`` when the shares were measured (method run on this effect alone); ``False`` when
        implied by the closest Table 1 rule.
    """

    players: tuple[int, ...]
    effect: float
    shares: tuple[float, ...]
    measured: bool = True

    @property
    def order(self) -> int:
        """``|S|``."""
        return len(self.players)

    @property
    def weights(self) -> tuple[float, ...]:
        """``w_{i,S} = share_i / J(S)`` (zeros if the effect is zero)."""
        if self.effect == 0.0:
            return tuple(0.0 for _ in self.shares)
        return tuple(s / self.effect for s in self.shares)

    @property
    def inside(self) -> float:
        """``sum_{i in S} w_{i,S}``: how much of the effect reaches its members."""
        w = self.weights
        return sum(w[i] for i in self.players)

    @property
    def outside(self) -> float:
        """``max_{i not in S} |w_{i,S}|``: the largest share given to an unrelated feature."""
        w = self.weights
        rest = [abs(v) for i, v in enumerate(w) if i not in self.players]
        return max(rest) if rest else 0.0

    @property
    def total(self) -> float:
        """``sum_i w_{i,S}``: 1 for a complete allocation."""
        return sum(self.weights)


@dataclass(frozen=True)
class CriterionVerdict:
    """One criterion decided on one model (``holds is None``: could not be decided)."""

    criterion: str
    holds: bool | None
    worst: float
    evidence: str


@dataclass(frozen=True)
class AllocationReport:
    """How ``method`` allocated the effects of one prediction: weights, criteria, evidence.

    Attributes
    ----------
    method
        The registered method name (with options, if any, in ``options``).
    options
        Options passed to the method.
    source
        ``"taylor"`` (measured per effect) or ``"harsanyi"`` (from the game's dividends).
    attribution
        The method's attribution of the whole model, one value per feature (or player).
    output_change
        ``F(x) - F(b)``.
    effects
        Every effect and its shares.
    criteria
        The three :class:`CriterionVerdict` in the order of :data:`CRITERIA`.
    rule_distances
        Relative L2 distance between the attribution and each Table 1 rule (see :data:`RULES`).
    additivity_error
        ``max_i |a_i - sum_S share_{i,S}| / scale`` (measured reports; 0 for implied shares).
    tolerance
        The relative tolerance used for the verdicts.
    notes
        Free-form remarks (e.g. why a criterion is undecided).
    """

    method: str
    options: dict[str, Any]
    source: str
    attribution: tuple[float, ...]
    output_change: float
    effects: tuple[EffectAllocation, ...]
    criteria: tuple[CriterionVerdict, ...]
    rule_distances: dict[str, float]
    additivity_error: float
    tolerance: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    __repr__ = summary_repr

    def _headline(self) -> list[str]:
        return ["verdicts=" + "/".join(f"{c.criterion}:{c.holds}" for c in self.criteria)]

    @property
    def closest_rule(self) -> str | None:
        """The Table 1 rule nearest the attribution (``None`` if none was computed)."""
        if not self.rule_distances:
            return None
        return min(self.rule_distances, key=lambda k: self.rule_distances[k])

    def verdict(self, criterion: str) -> CriterionVerdict:
        """The verdict on ``criterion`` (one of :data:`CRITERIA`)."""
        for v in self.criteria:
            if v.criterion == criterion:
                return v
        raise KeyError(criterion)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for plots and reports): effects, weights, verdicts, rules."""
        return {
            "method": self.method,
            "options": {k: (v if isinstance(v, (int, float, str, bool)) or v is None
                            else repr(v)) for k, v in self.options.items()},
            "source": self.source,
            "attribution": list(self.attribution),
            "output_change": self.output_change,
            "effects": [{"players": list(e.players), "effect": e.effect,
                         "shares": list(e.shares), "weights": list(e.weights),
                         "measured": e.measured} for e in self.effects],
            "criteria": [{"criterion": v.criterion, "holds": v.holds, "worst": v.worst,
                          "evidence": v.evidence} for v in self.criteria],
            "rule_distances": dict(self.rule_distances),
            "closest_rule": self.closest_rule,
            "additivity_error": self.additivity_error,
            "tolerance": self.tolerance,
            "notes": list(self.notes),
        }

    def weight_matrix(self) -> Tensor:
        """``(n_effects, n)`` allocation weights, rows in the order of :attr:`effects`."""
        return torch.tensor([e.weights for e in self.effects], dtype=torch.float64)


def decide_criteria(effects: Sequence[EffectAllocation], tol: float
                    ) -> tuple[CriterionVerdict, ...]:
    """Decide the three criteria from measured per-effect shares.

    Parameters
    ----------
    effects
        Every effect with the shares the method gave it (measured, not implied).
    tol
        Relative tolerance of the verdicts.

    Returns
    -------
    tuple of CriterionVerdict
        One verdict per criterion, in the order of :data:`CRITERIA`, each with the effect that
        decided it as evidence (all undecided when no effect is non-zero).
    """
    live = [e for e in effects if abs(e.effect) > 1e-12]
    if not live:
        return tuple(CriterionVerdict(c, None, 0.0, "no non-zero effect") for c in CRITERIA)

    def name(e: EffectAllocation) -> str:
        return ("psi" if e.order == 1 else "J") + "(" + ", ".join(f"x{i + 1}" for i in
                                                                   e.players) + ")"

    cov = min(live, key=lambda e: e.inside)
    out = max(live, key=lambda e: e.outside)
    com = max(live, key=lambda e: abs(e.total - 1.0))
    c1 = CriterionVerdict(
        CRITERIA[0], cov.inside >= 1.0 - tol, 1.0 - cov.inside,
        f"least covered effect {name(cov)} = {cov.effect:.4g}: its members receive "
        f"{cov.inside:.4g} of it")
    c2 = CriterionVerdict(
        CRITERIA[1], out.outside <= tol, out.outside,
        f"largest share to a non-member: {out.outside:.4g} of {name(out)} = {out.effect:.4g}")
    c3 = CriterionVerdict(
        CRITERIA[2], abs(com.total - 1.0) <= tol, abs(com.total - 1.0),
        f"shares of {name(com)} = {com.effect:.4g} add up to {com.total:.4g} of it")
    return (c1, c2, c3)
