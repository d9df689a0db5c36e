"""Shapley interaction indices as allocations of Harsanyi dividends (the theory's view).

The computations live in :mod:`attribkit.core.interaction_indices` (so that methods can use
them); this module names them for the theory: each index is its weight table ``W[t, s]``, the
share of a ``t``-coalition's dividend passed to each of its ``s``-subsets (docs/interactions.md).
"""

from __future__ import annotations

from attribkit.core.interaction_indices import (
    INDICES,
    coalitions_up_to,
    dividend_weights,
    index_weight,
    indices_from_dividends,
    indices_from_sparse,
    indices_from_values,
    value_weights,
)

__all__ = [
    "INDICES",
    "coalitions_up_to",
    "dividend_weights",
    "index_weight",
    "indices_from_dividends",
    "indices_from_sparse",
    "indices_from_values",
    "value_weights",
]
