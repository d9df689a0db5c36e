"""One-line notes to the user: a warning that points at the user's own line.

A default chosen for the user (a layer, occlusion windows, a colour's value) is said once per
call with :func:`note`, which warns at the first frame outside attribkit, however deep in the
library the choice was made.
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
import warnings

__all__ = ["note", "user_stacklevel"]

_PACKAGE = str(pathlib.Path(__file__).resolve().parents[1])
_SKIP = (_PACKAGE, str(pathlib.Path(contextlib.__file__).resolve()))


def user_stacklevel() -> int:
    """The ``stacklevel`` of the first caller outside attribkit (for the caller of this)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        name = str(pathlib.Path(frame.f_code.co_filename).resolve())
        if not name.startswith(_SKIP):
            return level
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def note(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn ``message`` at the user's line."""
    warnings.warn(message, category, stacklevel=user_stacklevel())
