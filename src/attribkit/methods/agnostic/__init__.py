"""Model-agnostic methods for black-box models (NumPy in and out): LIME and KernelSHAP."""

from __future__ import annotations

from attribkit.methods.agnostic.kernel_shap import kernel_shap
from attribkit.methods.agnostic.lime import lime

__all__ = ["kernel_shap", "lime"]
