"""Neuron targets: explain one unit (or one channel, averaged) of an inner layer.

``target=neuron(layer, index)`` makes the explained scalar the value of one unit of ``layer``'s
output instead of a class score. The index is

* an ``int``: a position in the layer's output flattened without the batch axis
  (``out.flatten(1)[:, index]``; negative indices count from the end);
* a ``tuple`` of ints: a position in the output without the batch axis
  (``out[:, i, j, k]``; one int per axis);
* with ``average=True``, an ``int`` channel: the mean of that channel over the remaining axes
  (``out[:, c].mean()``, e.g. one feature map of a convolution; Captum's
  ``neuron_selector=lambda a: a[:, c].mean((1, 2))``).

The gradient and path methods take a neuron target through :func:`attribkit.core.engine.prepare`:
the model is wrapped (:class:`NeuronModel`) so that it returns the unit's value, one scalar per
example, and every method explains that scalar with its own checks (completeness then reads
``n(x) - n(x')``); so do the perturbation methods and Grad-CAM. The methods that rewrite the
backward pass of the whole model (LRP, Deep Taylor, DeepLIFT, DeepSHAP, guided backprop,
DeconvNet, Guided Grad-CAM) refuse it with one line naming the others (:func:`refuse_neuron`).

The user's model is only called, never changed: the hook that reads the unit is removed after
every forward pass.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from attribkit.core.errors import TargetError
from attribkit.core.guard import this_thread

__all__ = ["Neuron", "NeuronModel", "neuron", "refuse_neuron", "wrap_neuron"]

@dataclass(frozen=True, eq=False)
class Neuron:
    """One unit (or one averaged channel) of ``module``'s output; build it with :func:`neuron`.

    Attributes
    ----------
    module
        The sub-module whose output holds the unit.
    index
        An int (flattened position, or the channel with ``average``) or a tuple of ints.
    average
        Average channel ``index`` over the remaining axes.
    """

    module: nn.Module
    index: int | tuple[int, ...]
    average: bool = False

    @property
    def label(self) -> str:
        """A short description for results and messages."""
        what = f"channel {self.index} (mean)" if self.average else f"unit {self.index}"
        return f"neuron {type(self.module).__name__} {what}"

    def select(self, out: Tensor) -> Tensor:
        """The unit's value per row of the layer output ``out`` ``(B, ...)``: ``(B,)``."""
        shape = tuple(out.shape[1:])
        if self.average:
            c = int(self.index)  # type: ignore[arg-type]
            if out.dim() < 2 or not -shape[0] <= c < shape[0]:
                raise TargetError(f"{self.label}: the layer output {shape} (without the batch "
                                  f"axis) has {shape[0] if shape else 0} channels.")
            return out[:, c].reshape(out.shape[0], -1).mean(dim=1)
        if isinstance(self.index, tuple):
            if len(self.index) != len(shape) or any(
                    not -s <= i < s for i, s in zip(self.index, shape, strict=True)):
                raise TargetError(f"{self.label}: the index must give one position per axis of "
                                  f"the layer output {shape} (without the batch axis).")
            key: tuple[slice | int, ...] = (slice(None), *self.index)
            return out[key]
        flat = out.reshape(out.shape[0], -1)
        if not -flat.shape[1] <= self.index < flat.shape[1]:
            raise TargetError(f"{self.label} is out of range: the layer output {shape} has "
                              f"{flat.shape[1]} units (valid flat indices 0..{flat.shape[1] - 1}).")
        return flat[:, self.index]


def neuron(module: nn.Module, index: int | tuple[int, ...], *, average: bool = False) -> Neuron:
    """A neuron target: one unit of ``module``'s output (see the module docstring).

    Parameters
    ----------
    module
        A sub-module of the model (e.g. ``model.features[3]``).
    index
        An int into the flattened output, a tuple of ints into the output without the batch
        axis, or (with ``average=True``) a channel.
    average
        Explain the mean of channel ``index`` instead of one unit.

    Returns
    -------
    Neuron
        Pass it as ``target=``.
    """
    if not isinstance(module, nn.Module):
        raise TargetError(f"neuron() needs the layer as an nn.Module, got {type(module).__name__}.")
    if isinstance(index, bool) or not (
            isinstance(index, numbers.Integral)
            or (isinstance(index, tuple) and index
                and all(isinstance(i, numbers.Integral) and not isinstance(i, bool)
                        for i in index))):
        raise TargetError(f"neuron index must be an int or a non-empty tuple of ints, got "
                          f"{index!r}.")
    if average and not isinstance(index, numbers.Integral):
        raise TargetError("neuron(..., average=True) takes one channel index (an int).")
    idx = tuple(int(i) for i in index) if isinstance(index, tuple) else int(index)
    return Neuron(module, idx, bool(average))


class NeuronModel(nn.Module):
    """The user's model seen through a neuron: returns the unit's value ``(B,)``.

    Only the wrapper is new; the wrapped model is called as it is and the reading hook is
    removed after each call (also when the call fails).
    """

    def __init__(self, model: nn.Module, target: Neuron) -> None:
        super().__init__()
        self.inner = model
        self.neuron = target
        self.training = model.training  # the wrapper's own flag only; children untouched

    def forward(self, x: Tensor, *extra: Any) -> Tensor:
        """Run the model and return the selected unit of the neuron's layer."""
        seen: list[Tensor] = []

        def grab(_m: nn.Module, _a: Any, out: Any) -> None:
            if not isinstance(out, Tensor):
                raise TargetError(f"{self.neuron.label}: the layer returns "
                                  f"{type(out).__name__}, not one tensor.")
            seen.append(out)

        handle = self.neuron.module.register_forward_hook(this_thread(grab))
        try:
            self.inner(x, *extra)
        finally:
            handle.remove()
        if len(seen) != 1:
            raise TargetError(f"{self.neuron.label}: the layer ran {len(seen)} times in one "
                              "forward pass; a neuron target needs a layer that runs once.")
        out = seen[0]
        if out.dim() < 2 or out.shape[0] != x.shape[0]:
            raise TargetError(f"{self.neuron.label}: the layer output {tuple(out.shape)} has no "
                              "batch axis matching the inputs.")
        return self.neuron.select(out)


def wrap_neuron(model: Callable[..., Tensor], target: object) -> tuple[Callable[..., Tensor],
                                                                       object]:
    """``(NeuronModel(model, target), None)`` for a neuron target, else ``(model, target)``."""
    if not isinstance(target, Neuron):
        return model, target
    if not isinstance(model, nn.Module):
        raise TargetError("a neuron target needs a torch nn.Module model (it reads an inner "
                          "layer).")
    if not any(m is target.module for m in model.modules()):
        raise TargetError(f"{target.label}: that layer is not a sub-module of the model.")
    return NeuronModel(model, target), None


def refuse_neuron(model: object, method: str, can: Sequence[str]) -> None:
    """Refuse a neuron target for ``method`` (one that replaces the backward pass); ``can``
    names the methods that take one."""
    if isinstance(model, (NeuronModel, Neuron)):
        raise TargetError(f"{method} cannot explain a neuron target (it rewrites the backward "
                          f"pass of the whole model); use one of {', '.join(can)}.")


def is_neuron_model(model: object) -> bool:
    """Whether ``model`` is a model seen through a neuron target."""
    return isinstance(model, NeuronModel)

