"""Where a result object finds the function that writes it to a file.

Result objects (:mod:`attribkit.core.attribution`) know nothing of file formats, and the module
that knows the format (:mod:`attribkit.core.saving`) imports the results. So
:meth:`Attribution.save <attribkit.core.attribution.Attribution.save>` looks its writer up here
(:func:`writer_for`), and :mod:`attribkit.core.saving` registers it with :func:`register` when
it is imported (``attribkit.core`` imports it, so the writer is in place before any result
exists).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

__all__ = ["Writer", "register", "writer_for"]

#: ``writer(result, path) -> the path written``.
Writer = Callable[[Any, str | os.PathLike[str]], pathlib.Path]

_WRITERS: dict[type, Writer] = {}


def register(kind: type, writer: Writer) -> None:
    """Make ``writer`` the function that saves results of class ``kind`` (and its subclasses)."""
    _WRITERS[kind] = writer


def writer_for(result: object) -> Writer:
    """The writer registered for the class of ``result`` (or the nearest base class).

    The caller calls it itself, so that a warning the writer raises points at the caller's
    caller (the user's ``attribution.save(path)``) as it would without this lookup.

    Raises
    ------
    TypeError
        When no writer is registered for the result's class (``attribkit.core.saving`` was not
        imported: import ``attribkit`` rather than a single module of it).
    """
    for kind in type(result).__mro__:
        writer = _WRITERS.get(kind)
        if writer is not None:
            return writer
    raise TypeError(f"no writer is registered for {type(result).__name__}; import attribkit "
                    "(attribkit.core.saving registers it).")
