"""Scoped changes to a user's model, always undone.

:class:`ModelGuard` records everything attribkit may touch on an ``nn.Module`` (the training flag
of every sub-module, ``requires_grad`` of every parameter, every hook dictionary) and restores it
in ``finally``, after success and after an exception. Hooks that attribkit adds go through
:meth:`ModelGuard.add_handle` so that they are removed even when the forward pass raises.
"""

from __future__ import annotations

import warnings
from types import TracebackType
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["HOOK_DICTS", "ModelGuard", "hook_state", "warn_if_training"]

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

_BATCH_DEPENDENT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                    nn.modules.batchnorm._BatchNorm)


def hook_state(model: nn.Module) -> dict[str, dict[str, tuple[Any, ...]]]:
    """The keys of every hook dictionary of every sub-module (for before/after comparisons)."""
    return {
        name: {d: tuple(getattr(m, d, {}).keys()) for d in HOOK_DICTS}
        for name, m in model.named_modules()
    }


def warn_if_training(model: object) -> None:
    """Warn when ``model`` is in training mode with dropout or batch-norm (batch-dependent)."""
    if not isinstance(model, nn.Module):
        return
    for name, m in model.named_modules():
        if m.training and isinstance(m, _BATCH_DEPENDENT):
            warnings.warn(
                f"the model is in training mode and has {type(m).__name__} ({name or 'root'}): "
                "its output depends on the batch and on chance, so attributions will too. "
                "Call model.eval() first.",
                RuntimeWarning,
                stacklevel=3,
            )
            return


class ModelGuard:
    """Context manager that leaves a model exactly as it found it.

    Parameters
    ----------
    model
        The user's model; anything that is not an ``nn.Module`` is left alone.
    freeze_parameters
        Turn off ``requires_grad`` of the parameters while inside (gradients are only needed with
        respect to the inputs, so this saves memory and time); restored on exit.
    """

    def __init__(self, model: object, *, freeze_parameters: bool = True) -> None:
        self.model = model if isinstance(model, nn.Module) else None
        self.freeze_parameters = freeze_parameters
        self._handles: list[RemovableHandle] = []
        self._training: list[tuple[nn.Module, bool]] = []
        self._requires_grad: list[tuple[nn.Parameter, bool]] = []
        self._tensors: list[tuple[nn.Module, str, bool, Any]] = []

    def use_channels_last(self) -> None:
        """Lay the model's 4-D parameters and buffers out channels-last until exit.

        The original tensors are kept and put back on exit (the same storage, bit for bit).
        """
        if self.model is None or self._tensors:
            return
        for m in self.model.modules():
            for name, p in m._parameters.items():
                if p is not None and p.dim() == 4:
                    self._tensors.append((m, name, True, p.data))
                    p.data = p.data.contiguous(memory_format=torch.channels_last)
            for name, b in m._buffers.items():
                if b is not None and b.dim() == 4:
                    self._tensors.append((m, name, False, b))
                    m._buffers[name] = b.contiguous(memory_format=torch.channels_last)

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
            self._requires_grad = [(p, p.requires_grad) for p in self.model.parameters()]
            if self.freeze_parameters:
                for p, _ in self._requires_grad:
                    p.requires_grad_(False)
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
            while self._tensors:
                m, name, is_param, t = self._tensors.pop()
                if is_param:
                    m._parameters[name].data = t  # type: ignore[union-attr]
                else:
                    m._buffers[name] = t
            for p, flag in self._requires_grad:
                p.requires_grad_(flag)
            for m, flag in self._training:
                m.training = flag
