"""What attribkit's own processes set first: Ctrl-C while the command starts, and malloc.

Ctrl-C while the ``attribkit`` command starts: one line and exit code 130, no traceback.

``import attribkit`` imports torch, which takes a few seconds; a Ctrl-C in that time would end the
command with a traceback, before :func:`attribkit.cli.main` can catch anything. When (and only
when) this process is the ``attribkit`` command (the console script, or ``python -m
attribkit.cli``), :func:`guard` (run when this module is imported, first thing in
``attribkit/__init__.py``) makes SIGINT end it with ``attribkit: interrupted`` until
:func:`release` (called by ``main``) gives Ctrl-C back to Python, whose KeyboardInterrupt
``main`` turns into the same line.

:func:`keep_freed_memory` asks glibc's malloc to keep freed memory for reuse instead of handing
it back to the system: by default blocks above an adaptive threshold go back at once, so each
gradient pass pages its activations in again (on EfficientNet-Lite0, Integrated Gradients of a
photo in a fresh process took 330,000-395,000 page faults and 1.1-1.4 s of system time per 3
photos, 1.2-1.4x the time with memory kept; how often it happens depends on the order of
allocations, so it also made timings erratic). It is applied to processes attribkit owns: the
``attribkit`` command (here, before torch is imported), the local engine's worker processes
and the Ray actors; ``ATTRIBKIT_KEEP_MEMORY=0`` turns it off. A library user's ``import
attribkit`` is left alone: call :func:`keep_freed_memory` (or set ``MALLOC_MMAP_THRESHOLD_``
and ``MALLOC_TRIM_THRESHOLD_``) to have the same in your own process. This module imports
nothing of attribkit's.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import sys
from types import FrameType

__all__ = ["guard", "is_command", "keep_freed_memory", "release"]

#: Freed memory malloc keeps for reuse (and the size up to which blocks come from its heap).
KEEP_BYTES = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


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


def keep_freed_memory(limit: int = KEEP_BYTES) -> bool:
    """Have glibc's malloc keep up to ``limit`` bytes of freed memory for reuse.

    Blocks up to ``limit`` bytes then come from malloc's heap (not a fresh mapping each time)
    and freed memory goes back to the system only beyond ``limit``. The process keeps its peak
    memory (up to ``limit`` more) in exchange for not paging it in again.

    Parameters
    ----------
    limit
        Bytes (default 1 GiB).

    Returns
    -------
    bool
        Whether malloc took the settings (``False`` on other C libraries and systems, or when
        ``ATTRIBKIT_KEEP_MEMORY=0``).
    """
    if os.environ.get("ATTRIBKIT_KEEP_MEMORY", "1") == "0" or not sys.platform.startswith(
            "linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    big = min(int(limit), 2**31 - 1)
    trim = mallopt(_M_TRIM_THRESHOLD, big) == 1
    # glibc may refuse a threshold above half its heap size (32 MiB): then take that
    mmap = mallopt(_M_MMAP_THRESHOLD, big) == 1 or mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    return bool(trim and mmap)


def guard() -> None:
    """In the ``attribkit`` command, keep freed memory and end quietly on Ctrl-C while it
    starts."""
    if is_command():
        keep_freed_memory()
    if is_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGINT, _interrupted)


def release() -> None:
    """Give Ctrl-C back to Python (a KeyboardInterrupt that ``main`` handles)."""
    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)


guard()
