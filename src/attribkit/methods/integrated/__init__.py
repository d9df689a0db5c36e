"""Integrated Gradients and its family: the straight path, tolerance mode, interior gradients.

Importing this package registers ``integrated_gradients``. The modules: :mod:`.ig` (the method
and interior gradients), :mod:`._path` (the path built chunk by chunk for the engine) and
:mod:`.tolerance` (the nested rule run to a requested accuracy).
"""

from __future__ import annotations

from attribkit.methods.integrated.ig import (
    InteriorGradients,
    integrated_gradients,
    interior_gradients,
)

__all__ = ["InteriorGradients", "integrated_gradients", "interior_gradients"]
