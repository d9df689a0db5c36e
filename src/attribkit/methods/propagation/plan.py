"""What a propagation method tells the hooks: a :class:`Plan` of replacement backward passes.

A *plan* says, for each hooked module, how its backward pass is replaced: a :data:`Backward`
function of the module's :class:`Call` (its input and output during the attributed forward pass,
and on the reference rows for DeepLIFT) and the gradient arriving at its output. All that one
pass remembers lives in a :class:`State` built per chunk: nothing is stored on modules or
classes, so attributions of different models may run in parallel threads.
:mod:`attribkit.methods.propagation.hooks` runs a plan.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.errors import UnsupportedModelError

__all__ = ["Backward", "Call", "Plan", "State", "require_module", "vjp"]


@dataclass
class Call:
    """One call of a hooked module during the attributed forward pass.

    Attributes
    ----------
    name
        The module's qualified name in the model.
    module
        The module.
    x
        Its input (detached).
    y
        Its output (detached).
    ref
        ``(x', y')``: the same call's input and output on the reference rows, or ``None``.
    source
        The call of the linear layer whose output is ``x`` (for RevealCancel pairs), if any.
    x_graph
        The input as it sits in the autograd graph (to re-route a merged BatchNorm).
    """

    name: str
    module: nn.Module
    x: Tensor
    y: Tensor
    ref: tuple[Tensor, Tensor] | None = None
    source: Call | None = None
    x_graph: Tensor | None = None


#: ``backward(call, grad, state) -> grad of the input``.
Backward = Callable[[Call, Tensor, "State"], Tensor]


@dataclass
class Plan:
    """How one method treats a model.

    Attributes
    ----------
    method
        The method's name (for messages).
    backward
        The replacement backward of each hooked module.
    names
        Module -> qualified name.
    batchnorms
        BatchNorm -> a function from the call of the layer that feeds it to the backward of the
        merged pair (``None`` when they cannot be merged).
    needs_reference
        Whether reference rows are run first (DeepLIFT).
    residual_eps
        When set, additions of two traced tensors split relevance in proportion to the
        operands (LRP); otherwise additions pass gradients unchanged.
    last_only
        Modules that must be the last operation before the target (Softmax).
    """

    method: str
    backward: dict[nn.Module, Backward]
    names: dict[nn.Module, str]
    batchnorms: dict[nn.Module, Callable[[Call], Backward | None]] = field(default_factory=dict)
    needs_reference: bool = False
    residual_eps: float | None = None
    last_only: frozenset[nn.Module] = frozenset()


@dataclass
class State:
    """Everything one forward/backward pass of one chunk remembers (never shared)."""

    plan: Plan
    refs: dict[nn.Module, list[tuple[Tensor, Tensor]]]
    counts: dict[nn.Module, int] = field(default_factory=lambda: defaultdict(int))
    node_call: dict[Any, Call] = field(default_factory=dict)
    pairs: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)
    relevance: dict[str, Tensor] = field(default_factory=dict)
    thread: int = field(default_factory=threading.get_ident)
    stash: dict[nn.Module, list[Tensor]] = field(default_factory=lambda: defaultdict(list))
    sums: dict[int, Tensor] = field(default_factory=dict)
    input: Tensor | None = None


def require_module(model: object, method: str) -> nn.Module:
    """Check that ``model`` is an ``nn.Module`` (hooks need one)."""
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(
            f"{method} replaces the backward pass of each layer, so it needs an nn.Module; got "
            f"{type(model).__name__}. Wrap the function in an nn.Module made of supported "
            "layers, or use a model-agnostic method (integrated_gradients, occlusion...).")
    return model


def vjp(fn: Callable[[Tensor], Tensor], x: Tensor, grad: Tensor) -> Tensor:
    """``(d fn / d x)^T grad`` at ``x`` (``fn`` may work in place: it gets a copy)."""
    xd = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = fn(xd.clone())
        (g,) = torch.autograd.grad(out, xd, grad, allow_unused=True)
    return torch.zeros_like(x) if g is None else g
