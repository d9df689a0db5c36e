"""The theory: Harsanyi interactions, Taylor interactions and how each method allocates them.

* :class:`Game`: the cooperative game of one prediction (players are features or groups), its
  Harsanyi dividends, Shapley and Banzhaf values and summaries.
* :func:`polynomial_terms` / :func:`taylor_terms`: exact Taylor terms ``phi(kappa)`` /
  ``I(kappa)`` of polynomial models, and terms up to an order of any differentiable model with
  the residual.
* :func:`allocation_report`: how does a method allocate the interactions of this prediction?
  (Deng et al. 2023, Understanding and Unifying Fourteen Attribution Methods with Taylor
  Interactions, the three criteria), with :func:`audit_polynomial`,
  :func:`audit_game` and :func:`audit_blocks` behind it; the reports and verdicts are defined in
  :mod:`attribkit.theory.criteria`, Table 1's rules in :mod:`attribkit.theory.rules`.
* :func:`first_order_audit`, :func:`relevance_audit`, :func:`audit_background`
  (:mod:`attribkit.theory.frames`): the criteria in a method's own frame (first-order terms at
  the input, the relevance of ``F(x)``, the average over a background set).
* :mod:`attribkit.theory.unification`: the audit of every registered method
  (:mod:`attribkit.theory.suite`), rendered as ``docs/unification.md``
  (``python -m attribkit.theory.unification --out docs/unification.md``).
"""

from __future__ import annotations

from attribkit.theory.allocation import (
    CRITERIA,
    RULES,
    AllocationReport,
    CriterionVerdict,
    EffectAllocation,
    ShiftedPolynomial,
    allocation_report,
    audit_blocks,
    audit_game,
    audit_polynomial,
    rule_allocation,
    run_method,
)
from attribkit.theory.frames import (
    BackgroundAudit,
    audit_background,
    first_order_audit,
    relevance_audit,
)
from attribkit.theory.games import MAX_EXACT_PLAYERS, Game, Interaction, OrderShare, players_of
from attribkit.theory.taylor import (
    TaylorDecomposition,
    TaylorTerm,
    polynomial_terms,
    taylor_terms,
)

__all__ = [
    "CRITERIA",
    "MAX_EXACT_PLAYERS",
    "RULES",
    "AllocationReport",
    "BackgroundAudit",
    "CriterionVerdict",
    "EffectAllocation",
    "Game",
    "Interaction",
    "OrderShare",
    "ShiftedPolynomial",
    "TaylorDecomposition",
    "TaylorTerm",
    "allocation_report",
    "audit_background",
    "audit_blocks",
    "audit_game",
    "audit_polynomial",
    "first_order_audit",
    "players_of",
    "polynomial_terms",
    "relevance_audit",
    "rule_allocation",
    "run_method",
    "taylor_terms",
]
