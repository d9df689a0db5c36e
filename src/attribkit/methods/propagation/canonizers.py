"""Canonizers: rewrite a model into an equivalent one the rules handle, without touching it.

A BatchNorm whose input is the output of a ``Linear`` or ``Conv`` layer (found in the autograd
graph during the forward pass, whatever the module order) is merged with it:
:func:`~attribkit.core.batchnorm.merge_params` (written once in core, shared with the
forward-only fast path) gives ``W' = s W``, ``b' = s (b - mu) + beta`` with
``s = gamma / sqrt(var + eps)``. The merge is *virtual*: the rule of the pair is applied to
the linear layer's input with the merged parameters, so the user's parameters are never written
(they are bit-for-bit the same afterwards by construction, and two threads may explain the same
weights).

Residual additions are handled in the graph (``hooks._residual_hooks``): an addition of two
module outputs splits relevance in proportion to the operands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from attribkit.core.batchnorm import BATCHNORMS, LINEAR_TYPES, bn_affine, merge_params

__all__ = ["LINEAR_TYPES", "batchnorms", "bn_affine", "canonized", "merge_params", "units"]


def units(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The modules a method hooks: leaves, and Linear/Conv layers as a whole.

    A ``Conv2d`` subclass with children (``Conv2dStaticSamePadding`` pads with a child module and
    calls ``F.conv2d``) is one unit; its children are not visited.
    """
    inside: str | None = None
    for name, m in model.named_modules():
        if inside is not None and name.startswith(inside + "."):
            continue
        inside = None
        if isinstance(m, LINEAR_TYPES):
            if len(list(m.children())) > 0:
                inside = name
            yield name, m
        elif len(list(m.children())) == 0:
            yield name, m


def batchnorms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every BatchNorm of ``model`` with its name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BATCHNORMS)]


@contextlib.contextmanager
def canonized(model: nn.Module) -> Iterator[nn.Module]:
    """Scope of a canonized attribution; on exit, checks that the state dict is unchanged.

    The merge itself is virtual (see the module docstring), so there is nothing to restore; the
    check guards against a future canonizer that writes parameters.

    Parameters
    ----------
    model
        The model.
    """
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        yield model
    finally:
        after = model.state_dict()
        if any(not torch.equal(before[k], after[k]) for k in before):
            raise RuntimeError("internal error: a canonizer changed the model's parameters")
