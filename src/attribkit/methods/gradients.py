"""Plain gradients (saliency; Simonyan, Vedaldi & Zisserman 2014) and Gradient x Input
(Shrikumar et al. 2016).

* ``saliency``: ``dF/dx_i`` (signed, or its absolute value). It breaks Sensitivity(a): on
  ``F(x) = 1 - ReLU(1 - x)`` at ``x = 2`` the gradient is 0 although ``F`` changed
  (Sundararajan et al. 2017).
* ``gradient_x_input``: ``x_i dF/dx_i``, the first-order Taylor term only (Deng et al. 2023,
  Table 1), so it is complete for linear models without bias but not in general.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import InputError
from attribkit.core.layer_space import layer_side
from attribkit.core.multi import several_inputs
from attribkit.methods.registry import register

__all__ = ["gradient_x_input", "saliency"]


def _gradients(p: Problem) -> Tensor:
    _, grads = p.gradients(p.inputs, p.examples, desc="gradients")
    return grads


def _like_values(p: Problem, t: Tensor) -> Tensor:
    """``t`` (shaped like the inputs) with a target axis when there are several targets."""
    return t.unsqueeze(1) if p.target.multi else t


@register(
    "saliency",
    aliases=("gradient", "gradients", "vanilla_gradient"),
    family="gradient",
    needs_baseline=False,
    complete=False,
    axioms={"sensitivity_b", "implementation_invariance", "linearity", "symmetry"},
    summary="Saliency: the gradient of the target score with respect to the inputs.",
)
@several_inputs()
@shared_parameters("model", "inputs", "target", "baseline:unused", "batch_size", "progress",
                   "attribute_to", "forward_args")
def saliency(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    absolute: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
    layer: nn.Module | None = None,
    attribute_to: str = "layer_output",
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """The gradient of the target score, ``dF/dx``, signed or absolute.

    Parameters
    ----------
    absolute
        Return ``|dF/dx|`` (the saliency map of Simonyan et al.) instead of the signed gradient.
    layer
        Take the gradient with respect to this sub-module's output instead of the inputs.

    Returns
    -------
    Attribution
        The gradients, shaped like the inputs (``(N, K, ...)`` with several targets).
    """
    _no_baseline(baseline, "saliency")
    with prepare(model, inputs, target=target, needs_baseline=False, batch_size=batch_size,
                 progress=progress, layer=layer,
                 layer_input=layer_side(attribute_to, layer), forward_args=forward_args) as p:
        grads = _gradients(p)
        values = grads.abs() if absolute else grads
        return p.result(values, "saliency", {"absolute": bool(absolute)})


@register(
    "gradient_x_input",
    aliases=("input_x_gradient", "grad_x_input", "gxi"),
    family="gradient",
    needs_baseline=False,
    complete=False,
    axioms={"sensitivity_b", "implementation_invariance", "linearity", "symmetry"},
    summary="Gradient x Input: each input times the gradient of the target score.",
)
@several_inputs()
@shared_parameters("model", "inputs", "target", "baseline:unused", "batch_size", "progress",
                   "layer:output", "attribute_to", "forward_args")
def gradient_x_input(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    batch_size: int | None = None,
    progress: bool = False,
    layer: nn.Module | None = None,
    attribute_to: str = "layer_output",
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """``x_i * dF/dx_i``: the first-order Taylor term of each feature.

    Returns
    -------
    Attribution
        The products, shaped like the inputs (``(N, K, ...)`` with several targets).
    """
    _no_baseline(baseline, "gradient_x_input")
    with prepare(model, inputs, target=target, needs_baseline=False, batch_size=batch_size,
                 progress=progress, layer=layer,
                 layer_input=layer_side(attribute_to, layer), forward_args=forward_args) as p:
        values = _like_values(p, p.inputs) * _gradients(p)
        return p.result(values, "gradient_x_input", {})


def _no_baseline(baseline: Any, name: str) -> None:
    if baseline is not None:
        raise InputError(f"{name} uses no baseline; leave baseline=None (for a path from a "
                         "baseline use integrated_gradients).")
