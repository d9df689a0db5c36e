"""What to install when a package of the ``vision`` extra is missing."""

from __future__ import annotations

__all__ = ["EXTRA_HINT", "missing"]

EXTRA_HINT = "install the vision extra: pip install 'attribkit[vision]'"
"""How to get what the vision zoo needs (for error messages)."""


def missing(package: str, err: ImportError) -> ImportError:
    """The error to raise when ``package`` (part of the ``vision`` extra) cannot be imported."""
    return ImportError(f"attribkit.zoo.vision needs {package!r}; {EXTRA_HINT}. ({err})")
