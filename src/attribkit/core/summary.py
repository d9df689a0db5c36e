"""Short printed summaries of result objects: shapes instead of hundreds of lines of tensors.

A result class opts in with ``__repr__ = summary_repr`` in its body (a dataclass keeps a
``__repr__`` defined there), and may add a ``_headline()`` method returning a few key numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

__all__ = ["brief", "summary_repr"]

#: The longest printed summary, in characters (a few lines).
MAX_CHARS = 400
_ITEMS = 4
_TEXT = 40


def brief(value: Any, depth: int = 0) -> str:
    """A one-line description of ``value``: tensors and arrays by shape and dtype, long
    containers by their length, long strings cut."""
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return f"{value.item():.4g}" if value.is_floating_point() else str(value.item())
        dtype = str(value.dtype).removeprefix("torch.")
        return f"Tensor{tuple(value.shape)} {dtype}"
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape} {value.dtype}"
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    if isinstance(value, str):
        return repr(value if len(value) <= _TEXT else value[:_TEXT - 3] + "...")
    if isinstance(value, dict):
        if len(value) > _ITEMS or depth > 1:
            return f"{{{len(value)} items}}"
        return "{" + ", ".join(f"{brief(k, depth + 1)}: {brief(v, depth + 1)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list | tuple | set | frozenset):
        kind = type(value).__name__
        if len(value) > _ITEMS or depth > 1:
            return f"{kind}[{len(value)} items]"
        inner = ", ".join(brief(v, depth + 1) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner}{',' if len(value) == 1 else ''})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if depth > 0:
            return f"{type(value).__name__}(...)"
        return summary_repr(value)
    text = repr(value)
    return text if len(text) <= 60 else f"<{type(value).__name__}>"


def summary_repr(self: Any) -> str:
    """The short repr of a result object: its headline numbers, then each field in brief.

    Uses ``self._headline()`` (a list of ``"name=value"`` strings) where the class defines one;
    the result is cut at :data:`MAX_CHARS` characters.
    """
    parts: list[str] = []
    head = getattr(self, "_headline", None)
    if callable(head):
        parts.extend(head())
    if dataclasses.is_dataclass(self):
        parts.extend(f"{f.name}={brief(getattr(self, f.name))}"
                     for f in dataclasses.fields(self) if f.repr)
    text = f"{type(self).__name__}({', '.join(parts)})"
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 5] + " ...)"
