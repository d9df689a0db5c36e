"""Checks of user-given options and conversions of user data, written once for every method.

* :func:`count` validates a count (``steps``, ``n_samples``...): a Python or NumPy integer, at
  least ``minimum``, at most ``maximum``; a bool, a float such as ``2.5`` or a string is refused
  with the option's name.
* :func:`as_tensor` turns a NumPy array into a tensor once, at the door, so that every method
  accepts arrays wherever it accepts tensors (lists are not converted: a list may be a tuple of
  inputs one day).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.errors import InputError

__all__ = ["MAX_STEPS", "as_tensor", "count", "plain_index"]

#: The most path points (or samples) per example any method accepts: a sanity bound. A million
#: gradient evaluations per example is hours of work for any real model; a larger number is a
#: typo far more often than a wish.
MAX_STEPS = 1_000_000


def plain_index(value: object) -> int | None:
    """``value`` as an ``int`` if it is an integer (Python or NumPy, not a bool); else ``None``."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, Tensor) and value.dim() == 0 and not value.is_floating_point() \
            and value.dtype != torch.bool:
        return int(value)
    return None


def count(value: object, name: str, *, minimum: int = 1, maximum: int | None = MAX_STEPS) -> int:
    """Validate a count option and return it as an ``int``.

    Parameters
    ----------
    value
        What the user passed.
    name
        The option's name, for the message.
    minimum
        The smallest accepted value.
    maximum
        The largest accepted value (``None``: no bound).

    Returns
    -------
    int
        The count.
    """
    n = plain_index(value)
    if n is None:
        kind = "a bool" if isinstance(value, (bool, np.bool_)) else type(value).__name__
        raise InputError(f"{name} must be an integer, got {value!r} ({kind}).")
    if n < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {n}.")
    if maximum is not None and n > maximum:
        raise InputError(f"{name}={n:,} is above the sanity bound of {maximum:,} (each one costs "
                         "a model evaluation per example); use fewer, or tolerance= for "
                         "integrated_gradients.")
    return n


def as_tensor(value: Any, what: str, dtype: torch.dtype | None = None,
              device: torch.device | None = None) -> Any:
    """A NumPy array as a tensor; anything else unchanged.

    Parameters
    ----------
    value
        The user's value.
    what
        Its name, for messages.
    dtype
        Cast floating arrays to this dtype (NumPy's default float64 meets float32 models).
    device
        Put the tensor there.
    """
    if isinstance(value, np.ndarray):
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise InputError(f"{what} is a NumPy array of {arr.dtype}; give numbers.")
        t = torch.from_numpy(np.array(arr, copy=True, order="C"))
    else:
        return value
    if dtype is not None and t.is_floating_point():
        t = t.to(dtype)
    return t if device is None else t.to(device)

