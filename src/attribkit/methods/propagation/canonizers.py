"""Canonizers: rewrite a model into an equivalent one the rules handle, without touching it.

:func:`merge_batchnorm` finds each BatchNorm that directly follows a ``Linear`` or ``Conv``
layer (in module order) and computes the merged parameters ``W' = s W``, ``b' = s (b - mu) +
beta`` with ``s = gamma / sqrt(var + eps)``. The merge is *virtual*: the rules evaluate the
linear layer with the merged parameters and the BatchNorm passes its input through, so the
user's parameters are never written (they are bit-for-bit the same afterwards by construction,
and two threads may explain the same weights). The check that the BatchNorm really consumes the
linear layer's output happens during the forward pass (see ``hooks``).

Residual additions are handled in the graph (``hooks._residual_hooks``): an addition of two
module outputs splits relevance in proportion to the operands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from attribkit.core.errors import UnsupportedModelError

__all__ = ["LINEAR_TYPES", "Canonized", "canonized", "merge_batchnorm"]

LINEAR_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass
class Canonized:
    """The result of canonizing: merged parameters and absorbed BatchNorms.

    Attributes
    ----------
    params
        Linear layer -> its (merged) ``(weight, bias)``; every linear layer of the model.
    absorbed
        BatchNorm -> the linear layer it is merged into.
    """

    params: dict[nn.Module, tuple[Tensor, Tensor | None]] = field(default_factory=dict)
    absorbed: dict[nn.Module, nn.Module] = field(default_factory=dict)


def _bn_scale(bn: nn.Module, name: str) -> tuple[Tensor, Tensor]:
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


def merge_batchnorm(model: nn.Module, merge: bool = True) -> Canonized:
    """Merged parameters of every ``Linear``/``Conv`` layer followed by a BatchNorm.

    Parameters
    ----------
    model
        The model (not modified).
    merge
        When ``False``, only the plain parameters are listed (and BatchNorms are left alone).

    Returns
    -------
    Canonized
        The parameters to use for each linear layer and the absorbed BatchNorms.
    """
    out = Canonized()
    prev: tuple[str, nn.Module] | None = None
    for name, m in model.named_modules():
        if len(list(m.children())) > 0:
            continue
        if isinstance(m, LINEAR_TYPES):
            out.params[m] = (m.weight.detach(), None if m.bias is None else m.bias.detach())
        elif merge and isinstance(m, _BN) and prev is not None and isinstance(prev[1],
                                                                            LINEAR_TYPES):
            lin = prev[1]
            w, b = out.params[lin]
            if w.shape[0] != m.num_features:
                prev = (name, m)
                continue
            scale, shift = _bn_scale(m, name)
            shape = (-1,) + (1,) * (w.dim() - 1)
            new_w = w * scale.reshape(shape)
            new_b = shift if b is None else b * scale + shift
            out.params[lin] = (new_w, new_b)
            out.absorbed[m] = lin
        prev = (name, m)
    return out


@contextlib.contextmanager
def canonized(model: nn.Module, merge: bool = True) -> Iterator[Canonized]:
    """Context manager form of :func:`merge_batchnorm`; the model's state is checked on exit.

    Parameters
    ----------
    model
        The model.
    merge
        Whether to merge BatchNorms.
    """
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        yield merge_batchnorm(model, merge)
    finally:
        after = model.state_dict()
        if any(not torch.equal(before[k], after[k]) for k in before):
            raise RuntimeError("internal error: a canonizer changed the model's parameters")
