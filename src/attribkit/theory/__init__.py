"""The theory: Harsanyi interactions, Taylor interactions and how each method allocates them.

* :class:`~attribkit.theory.games.Game`: the cooperative game of one prediction (players are
  features or groups), its Harsanyi dividends, Shapley and Banzhaf values and summaries.
* :mod:`~attribkit.theory.taylor`: exact Taylor terms ``phi(kappa)`` / ``I(kappa)`` of polynomial
  models, and terms up to an order of any differentiable model with the residual.
* :mod:`~attribkit.theory.allocation`: the allocation audit of a method (REFERENCE.md section 4,
  the three criteria) and :func:`allocation_report` for a user's own prediction.
* :mod:`~attribkit.theory.unification`: the audit of every registered method, rendered as
  ``docs/unification.md`` (``python -m attribkit.theory.unification --out docs/unification.md``).
"""

from __future__ import annotations

from attribkit.theory.games import MAX_EXACT_PLAYERS, Game, Interaction, OrderShare, players_of

__all__ = ["MAX_EXACT_PLAYERS", "Game", "Interaction", "OrderShare", "players_of"]
