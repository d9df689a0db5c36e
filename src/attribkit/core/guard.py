"""Scoped changes to a user's model, always undone, and safe when threads share the model.

:class:`ModelGuard` records what attribkit may touch on an ``nn.Module`` and restores it in
``finally``, after success and after an exception:

* hooks: attribkit's own hooks go through :meth:`ModelGuard.add_handle` and are removed on exit;
  a hook made with :func:`this_thread` acts only on the forward passes of the thread that
  registered it, so another thread's plain inference on the same model is untouched;
* parameters: never written. Input gradients are taken with ``torch.autograd.grad`` with
  respect to the inputs only, so ``requires_grad`` stays as given (freezing it used to be done
  for speed, but saved nothing measurable and two threads restoring each other's flags left a
  model frozen);
* the channels-last layout (``use_channels_last``): the first guard on a model converts its 4-D
  weights and the last one to leave puts the originals back (reference-counted per tensor under
  one lock), so overlapping calls from several threads restore the model exactly;
* buffers of modules in training mode (running statistics, counters) are copied on entry and
  written back on exit, bit for bit; a BatchNorm in training mode is refused before anything
  runs (see :func:`refuse_batch_statistics`).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from attribkit.core.errors import InputError

__all__ = ["HOOK_DICTS", "ModelGuard", "hook_state", "refuse_batch_statistics", "this_thread",
           "warn_if_training"]

#: The hook dictionaries of ``nn.Module`` that attribkit checks and restores.
HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)

_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_BATCHNORM = nn.modules.batchnorm._BatchNorm

#: Tensors laid out channels-last on behalf of running guards: key -> [users, module, original].
_LAYOUT: dict[tuple[int, str, bool], list[Any]] = {}
#: Buffers of training-mode modules saved by running guards: id -> [users, buffer, saved copy].
_SAVED: dict[int, list[Any]] = {}
_LAYOUT_LOCK = threading.Lock()


def hook_state(model: nn.Module) -> dict[str, dict[str, tuple[Any, ...]]]:
    """The keys of every hook dictionary of every sub-module (for before/after comparisons)."""
    return {
        name: {d: tuple(getattr(m, d, {}).keys()) for d in HOOK_DICTS}
        for name, m in model.named_modules()
    }


def this_thread(hook: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a module hook so that it acts only in the thread that created it.

    Other threads' forward passes through the same module see the hook return ``None`` (no
    change), so a model may serve plain inference while it is being explained.
    """
    owner = threading.get_ident()

    def scoped(*args: Any) -> Any:
        if threading.get_ident() != owner:
            return None
        return hook(*args)

    return scoped


def warn_if_training(model: object) -> bool:
    """Warn when ``model`` is in training mode with dropout (random); return whether it warned."""
    if not isinstance(model, nn.Module):
        return False
    for name, m in model.named_modules():
        if m.training and isinstance(m, _DROPOUT) and getattr(m, "p", 0.0) > 0:
            warnings.warn(
                f"the model is in training mode and has {type(m).__name__} ({name or 'root'}): "
                "its output is random, so attributions will be too. Call model.eval() first.",
                RuntimeWarning,
                stacklevel=3,
            )
            return True
    return False


def refuse_batch_statistics(model: object) -> None:
    """Refuse a model whose BatchNorm layers are in training mode, before anything runs.

    In training mode a BatchNorm normalises each row with the statistics of its batch (for a
    path method, the batch of interpolation points), so a score would depend on its batch-mates,
    and every forward pass would overwrite ``running_mean`` / ``running_var``.
    """
    if not isinstance(model, nn.Module):
        return
    for name, m in model.named_modules():
        if isinstance(m, _BATCHNORM) and m.training:
            raise InputError(
                f"the model is in training mode and has {type(m).__name__} ('{name or 'root'}'): "
                "each score would depend on the other rows of its batch and its running "
                "statistics would be overwritten. Call model.eval() first (nothing was changed).")


class ModelGuard:
    """Context manager that leaves a model exactly as it found it.

    Parameters
    ----------
    model
        The user's model; anything that is not an ``nn.Module`` is left alone.
    """

    def __init__(self, model: object) -> None:
        self.model = model if isinstance(model, nn.Module) else None
        self._handles: list[RemovableHandle] = []
        self._training: list[tuple[nn.Module, bool]] = []
        self._buffers: list[int] = []
        self._layout: list[tuple[int, str, bool]] = []

    def use_channels_last(self) -> None:
        """Lay the model's 4-D parameters and buffers out channels-last until exit.

        The original tensors are kept and put back when the last guard using the layout on
        this model exits (the same storage, bit for bit).
        """
        if self.model is None or self._layout:
            return
        with _LAYOUT_LOCK:
            for m in self.model.modules():
                for name, p in m._parameters.items():
                    if p is not None and p.dim() == 4:
                        self._acquire(m, name, True, p)
                for name, b in m._buffers.items():
                    if b is not None and b.dim() == 4:
                        self._acquire(m, name, False, b)

    def _acquire(self, m: nn.Module, name: str, is_param: bool, t: Tensor) -> None:
        key = (id(m), name, is_param)
        entry = _LAYOUT.get(key)
        if entry is None:
            original = t.data if is_param else t
            _LAYOUT[key] = [1, m, original]
            converted = original.contiguous(memory_format=torch.channels_last)
            if is_param:
                t.data = converted
            else:
                m._buffers[name] = converted
        else:
            entry[0] += 1
        self._layout.append(key)

    def _release_layout(self) -> None:
        with _LAYOUT_LOCK:
            while self._layout:
                key = self._layout.pop()
                entry = _LAYOUT[key]
                entry[0] -= 1
                if entry[0] == 0:
                    del _LAYOUT[key]
                    _, m, original = entry
                    if key[2]:
                        m._parameters[key[1]].data = original
                    else:
                        m._buffers[key[1]] = original

    def add_handle(self, handle: RemovableHandle) -> RemovableHandle:
        """Remember a hook handle; it is removed on exit."""
        self._handles.append(handle)
        return handle

    def remove_handles(self) -> None:
        """Remove every hook added through :meth:`add_handle` so far."""
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> ModelGuard:
        if self.model is not None:
            self._training = [(m, m.training) for m in self.model.modules()]
            # the first guard on a buffer keeps its copy, the last one writes it back, so calls
            # overlapping in several threads restore the values from before the first began
            with _LAYOUT_LOCK:
                for m in self.model.modules():
                    if not m.training:
                        continue
                    for b in m._buffers.values():
                        if b is None:
                            continue
                        entry = _SAVED.get(id(b))
                        if entry is None:
                            _SAVED[id(b)] = [1, b, b.detach().clone()]
                        else:
                            entry[0] += 1
                        self._buffers.append(id(b))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.remove_handles()
        finally:
            try:
                self._release_layout()
            finally:
                with _LAYOUT_LOCK, torch.no_grad():
                    while self._buffers:
                        key = self._buffers.pop()
                        entry = _SAVED[key]
                        entry[0] -= 1
                        if entry[0] == 0:
                            del _SAVED[key]
                            if not torch.equal(entry[1], entry[2]):
                                entry[1].copy_(entry[2])
                for m, flag in self._training:
                    if m.training != flag:
                        m.training = flag
