"""The exceptions attribkit raises. Each message says what was wrong and how to fix it."""

from __future__ import annotations

__all__ = [
    "AttribkitError",
    "BaselineError",
    "InputError",
    "ModelCallError",
    "ModelOutputError",
    "NonFiniteError",
    "OptionError",
    "TargetError",
    "UnsupportedModelError",
]


class AttribkitError(Exception):
    """Base class of every error attribkit raises on purpose."""


class InputError(AttribkitError, ValueError):
    """The inputs (or an option) cannot be attributed as given."""


class OptionError(InputError, TypeError):
    """An option the method does not take (a misspelt keyword): a ``TypeError`` as Python's own."""


class ModelCallError(InputError, RuntimeError):
    """The model raised when first called on the inputs (the message says what to check)."""


class BaselineError(InputError):
    """The baseline does not match the inputs in shape, dtype or device."""


class TargetError(InputError, IndexError):
    """The target does not select one scalar per example of the model output."""


class ModelOutputError(AttribkitError, ValueError):
    """The model returned something other than ``(N,)`` or ``(N, C)`` floats."""


class NonFiniteError(AttribkitError, FloatingPointError):
    """NaN or inf appeared in inputs, outputs or gradients."""


class UnsupportedModelError(AttribkitError, TypeError):
    """The method cannot handle this model (a module type, a functional call, ...)."""
