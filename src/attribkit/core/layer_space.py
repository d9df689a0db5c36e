"""A layer's activations and the target's gradient with respect to them, at given input points.

Layer methods that follow the *input* path (conductance) need, at each input point, the layer's
natural activation ``a(x)`` (its output, or its first positional input) and ``dF/da`` there, from
one forward and one backward pass. :func:`layer_gradients` gives both, chunk by chunk, with the
problem's target, extra arguments, guard and progress bar. :func:`layer_side` reads the
``attribute_to`` option shared by the layer methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError, NonFiniteError
from attribkit.core.guard import this_thread

if TYPE_CHECKING:
    from attribkit.core.problem import Problem

__all__ = ["ATTRIBUTE_TO", "layer_gradients", "layer_side", "layer_values"]

#: The values of ``attribute_to``.
ATTRIBUTE_TO = ("layer_output", "layer_input")


def layer_side(attribute_to: str, layer: object) -> bool:
    """Whether ``attribute_to`` asks for the layer's input (``True``) or output (``False``)."""
    if attribute_to not in ATTRIBUTE_TO:
        raise InputError(f"attribute_to must be 'layer_output' or 'layer_input', got "
                         f"{attribute_to!r}.")
    if layer is None and attribute_to == "layer_input":
        raise InputError("attribute_to='layer_input' needs layer= (the module whose input is "
                         "attributed).")
    return attribute_to == "layer_input"


def layer_gradients(p: Problem, layer: nn.Module, points: Callable[[slice], Tensor],
                    example: Tensor, *, layer_input: bool = False,
                    desc: str = "layer gradients") -> Iterator[tuple[slice, Tensor, Tensor]]:
    """Yield ``(rows, activations, gradients)`` for chunks of input points.

    Parameters
    ----------
    p
        A :class:`~attribkit.core.engine.Problem` prepared in the input space (no ``layer``).
    layer
        The sub-module whose output (or first positional input) is read.
    points
        Input rows by slice (rows of ``p.inputs``' space).
    example
        ``(M,)`` the example of each row.
    layer_input
        Read the layer's input instead of its output.
    desc
        Progress bar label.

    Yields
    ------
    rows
        The slice of rows.
    activations
        ``(B, ...)`` the layer's activations at those rows.
    gradients
        ``(B, ...)`` the gradient of each row's target score with respect to them.
    """
    seen: list[Tensor] = []

    def swap(_m: nn.Module, args: Any, out: Any = None) -> Any:
        act = args[0] if layer_input and args else out
        if not isinstance(act, Tensor) or not act.is_floating_point():
            side = "first input" if layer_input else "output"
            raise InputError(f"layer {type(layer).__name__}'s {side} is not one floating "
                             "tensor; choose a layer whose activation is a float tensor.")
        if seen:
            raise InputError("the layer runs more than once per forward pass; choose a "
                             "layer that runs once.")
        leaf = act.detach().requires_grad_(True)
        seen.append(leaf)
        # a fresh tensor: an in-place op after the layer must not write into the leaf
        return (leaf.clone(), *args[1:]) if layer_input else leaf.clone()

    hook = this_thread(swap)
    handle = p.guard.add_handle(layer.register_forward_pre_hook(hook) if layer_input
                                else layer.register_forward_hook(hook))
    try:
        yield from _chunks(p, layer, points, example, desc, seen)
    finally:
        handle.remove()


def _chunks(p: Problem, layer: nn.Module, points: Callable[[slice], Tensor], example: Tensor,
            desc: str, seen: list[Tensor]) -> Iterator[tuple[slice, Tensor, Tensor]]:
    for sl in p.chunks(int(example.shape[0]), desc):
        x, ex = points(sl), example[sl]
        seen.clear()
        with torch.enable_grad():
            extra = tuple(a[ex] for a in p.forward_args)
            out = p.model(x.detach(), *extra)
            if not seen:
                raise InputError(f"layer {type(layer).__name__} did not run in the forward "
                                 "pass; is it part of the model?")
            score = p.target.select(out, ex)
            g: Tensor | None = None
            if score.requires_grad:
                (g,) = torch.autograd.grad(score.sum(), seen[0], allow_unused=True)
        if g is None:
            p.disconnected()
            g = torch.zeros_like(seen[0])
        if not bool(torch.isfinite(g).all()) or not bool(torch.isfinite(score).all()):
            raise NonFiniteError("the model output or its gradients at the layer contain NaN or "
                                 "inf; float64 inputs and model often help.")
        p.gradient_evaluations += int(ex.shape[0])
        yield sl, seen[0].detach(), g.detach()


def layer_values(p: Problem, layer: nn.Module, x: Tensor, layer_input: bool = False) -> Tensor:
    """The layer's activations (output, or first positional input) at input rows ``x``
    (one per example), without gradients."""
    seen: list[Tensor] = []

    def grab(_m: nn.Module, args: Any, out: Any = None) -> None:
        act = args[0] if layer_input and args else out
        if isinstance(act, Tensor):
            seen.append(act.detach().clone())

    hook = this_thread(grab)
    handle = p.guard.add_handle(layer.register_forward_pre_hook(hook) if layer_input
                                else layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            p.model(x, *p.forward_args)
    finally:
        handle.remove()
    if len(seen) != 1:
        raise InputError(f"layer {type(layer).__name__} ran {len(seen)} times in one forward "
                         "pass; choose a layer that runs exactly once.")
    return seen[0]
