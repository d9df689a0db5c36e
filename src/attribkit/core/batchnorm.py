"""An eval-mode BatchNorm as a fixed affine map, and merged into the linear layer before it.

Written once for the two places that merge BatchNorm: the propagation family's canonizers
(a *virtual* merge: the rule of a linear layer is applied with the merged parameters) and the
forward-only fast path (:mod:`attribkit.core.fastgraph`: a folded copy of the convolution).
With ``s = gamma / sqrt(var + eps)``, ``bn(z) = s z + (beta - s mu)``, so
``bn(W x + b) = (s W) x + s (b - mu) + beta``.
"""

from __future__ import annotations

from torch import Tensor, nn

from attribkit.core.errors import UnsupportedModelError

__all__ = ["BATCHNORMS", "CONV_TYPES", "LINEAR_TYPES", "bn_affine", "merge_params",
           "merge_tensors"]

#: Convolutions: their output's channel axis (axis 1) is the axis a BatchNorm normalises.
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: The linear layers a BatchNorm may be merged into.
LINEAR_TYPES = (nn.Linear, *CONV_TYPES)
#: The BatchNorm modules.
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def bn_affine(bn: nn.Module, name: str) -> tuple[Tensor, Tensor]:
    """``(scale, shift)`` of an eval-mode BatchNorm: ``bn(z) = scale * z + shift`` per channel.

    Parameters
    ----------
    bn
        The BatchNorm.
    name
        Its name, for messages.
    """
    assert isinstance(bn, BATCHNORMS)
    if bn.running_mean is None or bn.running_var is None:
        raise UnsupportedModelError(
            f"BatchNorm '{name}' has no running statistics (track_running_stats=False), so it "
            "is not a fixed affine map in eval mode; it cannot be merged.")
    scale = 1.0 / (bn.running_var + bn.eps).sqrt()
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
    if not isinstance(linear, LINEAR_TYPES) or not isinstance(bn, BATCHNORMS):
        return None
    return merge_tensors(linear.weight, linear.bias, bn, name)


def merge_tensors(weight: Tensor, bias: Tensor | None, bn: nn.Module,
                  name: str) -> tuple[Tensor, Tensor] | None:
    """:func:`merge_params` for a weight ``(out, ...)`` and bias given as tensors.

    Parameters
    ----------
    weight
        The linear layer's weight, output channels first.
    bias
        Its bias, or ``None``.
    bn
        The BatchNorm applied to its output.
    name
        The BatchNorm's name, for messages.
    """
    w = weight.detach()
    if not isinstance(bn, BATCHNORMS) or w.shape[0] != bn.num_features:
        return None
    scale, shift = bn_affine(bn, name)
    new_w = w * scale.reshape((-1,) + (1,) * (w.dim() - 1))
    new_b = shift if bias is None else bias.detach() * scale + shift
    return new_w, new_b
