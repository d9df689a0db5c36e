"""Ctrl-C while the ``attribkit`` command starts: one line and exit code 130, no traceback.

``import attribkit`` imports torch, which takes a few seconds; a Ctrl-C in that time would end the
command with a traceback, before :func:`attribkit.cli.main` can catch anything. When (and only
when) this process is the ``attribkit`` command (the console script, or ``python -m
attribkit.cli``), :func:`guard` (run when this module is imported, first thing in
``attribkit/__init__.py``) makes SIGINT end it with ``attribkit: interrupted`` until
:func:`release` (called by ``main``) gives Ctrl-C back to Python, whose KeyboardInterrupt
``main`` turns into the same line. A library user's ``import attribkit`` is left alone.
This module imports nothing of attribkit's.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
from types import FrameType

__all__ = ["guard", "is_command", "release"]


def is_command() -> bool:
    """Whether this process is the ``attribkit`` command."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv else ""
    if argv0 in ("attribkit", "attribkit.exe", "attribkit-script.py"):
        return True
    orig = list(getattr(sys, "orig_argv", []))
    return any(a == "-m" and b in ("attribkit.cli", "attribkit.cli.__main__")
               for a, b in itertools.pairwise(orig))


def _interrupted(signum: int, frame: FrameType | None) -> None:
    try:
        sys.stderr.write("attribkit: interrupted\n")
        sys.stderr.flush()
    finally:
        os._exit(130)


def guard() -> None:
    """In the ``attribkit`` command, end quietly on Ctrl-C while it starts."""
    if is_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGINT, _interrupted)


def release() -> None:
    """Give Ctrl-C back to Python (a KeyboardInterrupt that ``main`` handles)."""
    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)


guard()
