"""What every command shares: the usage error, the parser class, one-line reasons."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = ["Parser", "UsageError", "num", "one_line"]


class UsageError(Exception):
    """The command line cannot be right (exit code 2)."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> Any:  # exit 2 with one line, no usage dump on stdout
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def one_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none.

    A TorchScript interpreter error starts with a generic line and ends with the real reason
    (``RuntimeError: mat1 and mat2 shapes cannot be multiplied ...``): that last line is used.
    """
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    if lines[0].startswith("The following operation failed in the TorchScript") and len(lines) > 1:
        return lines[-1]
    return lines[0]


def num(x: Any) -> float | None:
    """A finite float for JSON, or None."""
    if x is None:
        return None
    f = float(x)
    return f if math.isfinite(f) else None
