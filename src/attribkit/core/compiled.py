"""``compile=True``: the model's forward and backward compiled by ``torch.compile``, once per model.

The compiled module is kept per model (weakly: it goes with the model) so that its warm-up, the
compilation on the first batch of each shape, is paid once across calls; the compilation is
done with static shapes and the engine pads a short last chunk to the chunk size
(:func:`pad_rows`) so that one shape serves a whole call. Where compiling fails (no C compiler,
an operation the compiler does not support), the failure is remembered, ONE warning says so, and
the call and every later one on that model run the model as given.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError

__all__ = ["compiled_model", "forget", "pad_rows", "report_failure"]

_COMPILED: weakref.WeakKeyDictionary[nn.Module, Callable[..., Any]] = weakref.WeakKeyDictionary()
_FAILED: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def compiled_model(model: object, layer: object = None) -> Callable[..., Any] | None:
    """The compiled version of ``model`` (made once and kept), or ``None`` where not possible.

    ``None`` for what is not an ``nn.Module``, for attribution at a layer (its hook would
    break the compiled graph) and for a model whose compilation failed before.
    """
    if not isinstance(model, nn.Module):
        raise InputError("compile=True needs an nn.Module model (torch.compile of a plain "
                         "function is not kept across calls); pass compile=False.")
    if layer is not None:
        raise InputError("compile=True does not combine with layer= (the layer's hook would "
                         "break the compiled graph); pass compile=False.")
    with _LOCK:
        if model in _FAILED:
            return None
        fn = _COMPILED.get(model)
        if fn is None:
            fn = torch.compile(model, dynamic=False)
            _COMPILED[model] = fn
    return fn


def report_failure(model: object, error: BaseException) -> None:
    """Remember that compiling ``model`` failed and warn once per model."""
    if not isinstance(model, nn.Module):
        return
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    with _LOCK:
        seen = model in _FAILED
        _FAILED[model] = first
        _COMPILED.pop(model, None)
    if not seen:
        warnings.warn(f"compile=True: torch.compile failed on this model ({type(error).__name__}: "
                      f"{first}); running it uncompiled, now and in later calls.",
                      RuntimeWarning, stacklevel=4)


def forget(model: object | None = None) -> None:
    """Drop the compiled module and any remembered failure of ``model`` (of all with ``None``)."""
    with _LOCK:
        if model is None:
            _COMPILED.clear()
            _FAILED.clear()
        elif isinstance(model, nn.Module):
            _COMPILED.pop(model, None)
            _FAILED.pop(model, None)


def pad_rows(points: Tensor, rows: int) -> Tensor:
    """``points`` with copies of its last row (outside the autograd graph) up to ``rows`` rows."""
    extra = rows - int(points.shape[0])
    if extra <= 0:
        return points
    tail = points[-1:].detach().expand(extra, *points.shape[1:])
    return torch.cat([points, tail.contiguous(memory_format=_layout(points))])


def _layout(t: Tensor) -> torch.memory_format:
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
