"""Canonizers: rewrite a model into an equivalent one the rules handle, without touching it.

A BatchNorm whose input is the output of a ``Linear`` or ``Conv`` layer (found in the autograd
graph during the forward pass, whatever the module order) is merged with it: :func:`merge_params`
gives ``W' = s W``, ``b' = s (b - mu) + beta`` with ``s = gamma / sqrt(var + eps)``. The merge
is *virtual*: the rule of the pair is applied to the linear layer's input with the merged
parameters, so the user's parameters are never written (they are
bit-for-bit the same afterwards by construction, and two threads may explain the same
weights).

Residual additions are handled in the graph (``hooks._residual_hooks``): an addition of two
module outputs splits relevance in proportion to the operands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from attribkit.core.errors import UnsupportedModelError

__all__ = ["LINEAR_TYPES", "batchnorms", "bn_affine", "canonized", "merge_params", "units"]

LINEAR_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


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


def bn_affine(bn: nn.Module, name: str) -> tuple[Tensor, Tensor]:
    """``(scale, shift)`` of an eval-mode BatchNorm: ``bn(z) = scale * z + shift`` per channel.

    Parameters
    ----------
    bn
        The BatchNorm.
    name
        Its name, for messages.
    """
    assert isinstance(bn, _BN)
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedModelError(
            f"BatchNorm '{name}' has no running statistics (track_running_stats=False), so it "
            "is not a fixed affine map in eval mode; it cannot be merged.")
    scale = 1.0 / torch.sqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    if bn.weight is not None:
        scale = scale * bn.weight
        shift = shift * bn.weight
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale.detach(), shift.detach()


def merge_params(linear: nn.Module, bn: nn.Module, name: str) -> tuple[Tensor, Tensor] | None:
    """The parameters of ``bn(linear(x))`` as one linear layer, or ``None`` if they do not fit.

    Parameters
    ----------
    linear
        A ``Linear`` or ``Conv`` layer.
    bn
        The BatchNorm applied to its output.
    name
        The BatchNorm's name, for messages.
    """
    if not isinstance(linear, LINEAR_TYPES) or not isinstance(bn, _BN):
        return None
    w = linear.weight.detach()
    if w.shape[0] != bn.num_features:
        return None
    scale, shift = bn_affine(bn, name)
    new_w = w * scale.reshape((-1,) + (1,) * (w.dim() - 1))
    new_b = shift if linear.bias is None else linear.bias.detach() * scale + shift
    return new_w, new_b


def batchnorms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every BatchNorm of ``model`` with its name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _BN)]


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
