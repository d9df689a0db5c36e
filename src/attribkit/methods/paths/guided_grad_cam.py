"""Guided Grad-CAM (Selvaraju et al. 2017, section 3.1): Guided Backpropagation multiplied
pointwise by the Grad-CAM map up-sampled to the input's resolution.

The Grad-CAM map (one value per position of the layer, shared by all input channels) is
up-sampled bilinearly, as in the paper; ``interpolation="nearest"`` gives Captum's choice. The
target is resolved once and both factors explain the same class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.errors import InputError
from attribkit.methods.cam import grad_cam
from attribkit.methods.propagation.guided import guided_backprop
from attribkit.methods.registry import register

__all__ = ["guided_grad_cam"]

_MODES = {"bilinear": "bilinear", "nearest": "nearest"}


@register(
    "guided_grad_cam",
    aliases=("guided_gradcam", "guided-grad-cam"),
    family="cam",
    needs_baseline=False,
    complete=False,
    axioms=set(),
    needs_module=True,
    summary="Guided Grad-CAM: guided backpropagation times the up-sampled Grad-CAM map.",
)
@shared_parameters("inputs:images", "target:single", "baseline:unused", "batch_size:rows",
                   "progress", "forward_args")
def guided_grad_cam(
    model: nn.Module,
    inputs: Tensor,
    *,
    layer: nn.Module | str,
    target: Any = None,
    baseline: Any = None,
    interpolation: str = "bilinear",
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Guided Grad-CAM at ``layer``.

    Parameters
    ----------
    model
        An ``nn.Module`` from images ``(B, C, H, W)`` (or sequences ``(B, C, L)``) to outputs.
    layer
        The convolutional layer of Grad-CAM (a module or a dotted name).
    interpolation
        How the map is up-sampled: ``"bilinear"`` (the paper; linear for sequences) or
        ``"nearest"`` (Captum's ``GuidedGradCam``).

    Returns
    -------
    Attribution
        Values shaped like the inputs; ``extras["grad_cam"]`` the up-sampled map
        ``(N, 1, H, W)`` and ``extras["guided_backprop"]`` the other factor.
    """
    if baseline is not None:
        raise InputError("guided_grad_cam uses no baseline; leave baseline=None.")
    if interpolation not in _MODES:
        raise InputError(f"interpolation must be one of {sorted(_MODES)}, got "
                         f"{interpolation!r}.")
    cam = grad_cam(model, inputs, layer=layer, target=target, upsample=False,
                   batch_size=batch_size, progress=progress, forward_args=forward_args)
    fixed = cam.target if cam.target is not None else target
    guided = guided_backprop(model, inputs, target=fixed, batch_size=batch_size,
                             progress=progress, forward_args=forward_args)
    spatial = inputs.dim() - 2
    mode = interpolation
    if mode == "bilinear" and spatial == 1:
        mode = "linear"
    kw: dict[str, Any] = {} if mode == "nearest" else {"align_corners": False}
    up = F.interpolate(cam.values, size=tuple(inputs.shape[2:]), mode=mode, **kw)
    values = guided.values * up
    params = {**cam.params, "interpolation": interpolation}
    return replace(guided, values=values.detach(), method="guided_grad_cam", params=params,
                   extras={"grad_cam": up.detach(), "guided_backprop": guided.values})
