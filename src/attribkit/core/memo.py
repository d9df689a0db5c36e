"""Per-model memory of checks that passed, so repeated calls on the same model do not repeat them.

:func:`prepare` probes a model before an attribution (is each row's output independent of its
batch-mates? how many rows fit the memory budget?). Those probes cost forward passes, which a
user explaining one photo after another pays on every call. Their outcome depends on the model
and on the shape of what it is given, not on the values, so it is remembered per model (weakly:
a model that is deleted takes its memory with it) under a key of input shape, dtype, device and
options, together with a *fingerprint* of the model. A model edited between calls (a parameter
replaced or written in place, a hook added, a module's mode, a flag or ``forward`` changed, a
sub-module added) has another fingerprint, and is checked again. What no fingerprint sees (state
kept in a container or a global that ``forward`` reads) is not; :func:`forget` clears the memory.

Only ``nn.Module`` models are remembered: a plain function may close over state that no
fingerprint sees.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable
from typing import Any

from torch import nn

__all__ = ["fingerprint", "forget", "recall", "remember", "stamp"]

_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
          "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks")

_MEMORY: weakref.WeakKeyDictionary[nn.Module, dict[Hashable, tuple[tuple[Any, ...], Any]]] = (
    weakref.WeakKeyDictionary())
_LOCK = threading.Lock()


def fingerprint(model: nn.Module) -> tuple[Any, ...]:
    """What a check's outcome could depend on, cheaply: modules, modes, hooks and tensors.

    Each module contributes its identity, class, an instance-level ``forward`` (a patched one),
    the keys of its hook dictionaries and its plain attributes (``training``, flags, numbers,
    strings); each parameter and buffer its identity,
    storage address, version counter (bumped by every in-place write), shape and dtype.
    """
    parts: list[Any] = []
    for m in model.modules():
        hooks = tuple(tuple(getattr(m, d, {}).keys()) for d in _HOOKS)
        flags = tuple((k, v) for k, v in m.__dict__.items()
                      if isinstance(v, (bool, int, float, str)) and not k.startswith("_"))
        parts.append((id(m), type(m), id(m.__dict__.get("forward")), hooks, flags))
        for group in (m._parameters, m._buffers):
            for name, t in group.items():
                if t is None:
                    parts.append((name, None))
                else:
                    parts.append((name, id(t), _address(t), t._version, tuple(t.shape),
                                  t.dtype))
    return tuple(parts)


def _address(t: Any) -> int:
    try:
        return int(t.data_ptr())
    except RuntimeError:  # no storage (a sparse or functional tensor): identity and version only
        return -1


def stamp(model: object) -> tuple[Any, ...] | None:
    """The model's fingerprint, or ``None`` for a model that is not remembered (not a module)."""
    return fingerprint(model) if isinstance(model, nn.Module) else None


def recall(model: object, key: Hashable, now: tuple[Any, ...] | None) -> Any:
    """The value remembered for ``(model, key)`` if its fingerprint is ``now``, else ``None``."""
    if now is None or not isinstance(model, nn.Module):
        return None
    with _LOCK:
        entry = _MEMORY.get(model, {}).get(key)
    if entry is None:
        return None
    then, value = entry
    return value if then == now else None


def remember(model: object, key: Hashable, now: tuple[Any, ...] | None, value: Any) -> None:
    """Remember ``value`` for ``(model, key)`` under the fingerprint ``now`` (see ``stamp``)."""
    if now is None or not isinstance(model, nn.Module) or value is None:
        return
    with _LOCK:
        _MEMORY.setdefault(model, {})[key] = (now, value)


def forget(model: object | None = None) -> None:
    """Drop what is remembered about ``model`` (every model with ``None``)."""
    with _LOCK:
        if model is None:
            _MEMORY.clear()
        elif isinstance(model, nn.Module):
            _MEMORY.pop(model, None)
