"""Grad-CAM (Selvaraju et al. 2017).

At a convolutional layer with feature maps ``A^c`` (channels ``c``, spatial positions ``u``), the
channel weights are the spatially averaged gradients ``w_c = mean_u dF/dA^c_u`` and the map is
``ReLU(sum_c w_c A^c)``; it is then up-sampled (bilinear) to the input's spatial size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError, UnsupportedModelError
from attribkit.methods.registry import register

__all__ = ["grad_cam", "resolve_layer"]


def resolve_layer(model: object, layer: nn.Module | str) -> nn.Module:
    """The sub-module ``layer`` of ``model``, given as a module or a dotted name (``"features.3"``).

    Parameters
    ----------
    model
        The model (an ``nn.Module``).
    layer
        A sub-module or its name as in ``model.named_modules()``.

    Returns
    -------
    nn.Module
        The sub-module.
    """
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError("this method hooks a layer, so the model must be an "
                                    f"nn.Module; got {type(model).__name__}.")
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise InputError(f"layer {type(layer).__name__} is not part of the model.")
        return layer
    if isinstance(layer, str):
        names = dict(model.named_modules())
        if layer not in names:
            convs = [n for n, m in names.items() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
            hint = f" Convolutional layers: {', '.join(convs[-5:])}." if convs else ""
            raise InputError(f"the model has no layer named {layer!r}.{hint} Names are those of "
                             "model.named_modules().")
        found: nn.Module = names[layer]
        return found
    raise InputError(f"layer must be an nn.Module or a dotted name, got {type(layer).__name__}.")


@register(
    "grad_cam",
    aliases=("gradcam", "grad-cam"),
    family="cam",
    needs_baseline=False,
    complete=False,
    axioms=set(),
    needs_module=True,
    summary="Grad-CAM: feature maps weighted by their averaged gradients, up-sampled.",
)
@shared_parameters("target", "baseline:unused", "batch_size", "progress", "forward_args")
def grad_cam(
    model: nn.Module,
    inputs: Tensor,
    *,
    layer: nn.Module | str,
    target: Any = None,
    baseline: Any = None,
    relu: bool = True,
    upsample: bool = True,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Grad-CAM at ``layer``, up-sampled to the input's spatial size.

    Parameters
    ----------
    model
        An ``nn.Module`` from a batch ``(B, C, [H,] W)`` to outputs ``(B,)`` or ``(B, C)``.
    inputs
        ``(N, C, H, W)`` images (or ``(N, C, L)`` sequences).
    layer
        The convolutional layer (a module or a dotted name); its output must be ``(N, C', h, w)``
        (or ``(N, C', l)``) and it must run once per forward pass.
    relu
        Keep only the positive part of the map (as in the paper).
    upsample
        Up-sample the map to the input's size (bilinear, or linear for sequences); else keep the
        layer's resolution.

    Returns
    -------
    Attribution
        ``values`` ``(N, 1, H, W)`` (``(N, K, 1, H, W)`` with several targets) with ``inputs`` the
        images; ``extras["layer_map"]`` the map at the layer's resolution and
        ``extras["channel_weights"]`` the ``w_c``.
    """
    if baseline is not None:
        raise InputError("grad_cam uses no baseline; leave baseline=None.")
    module = resolve_layer(model, layer)
    with prepare(model, inputs, target=target, needs_baseline=False, batch_size=batch_size,
                 progress=progress, layer=module, forward_args=forward_args) as p:
        acts = p.inputs
        if acts.dim() not in (3, 4):
            raise InputError(
                f"Grad-CAM needs feature maps (N, C, h, w) or (N, C, l) at the layer; "
                f"{type(module).__name__} returns {tuple(acts.shape)}. Choose a convolutional "
                "layer.")
        _, grads = p.gradients(acts, p.examples, desc="grad-cam")
        spatial = tuple(range(-(acts.dim() - 2), 0))
        weights = grads.mean(dim=spatial, keepdim=True)
        a = acts.unsqueeze(1) if p.target.multi else acts
        cam = (weights * a).sum(dim=-(acts.dim() - 1), keepdim=True)
        if relu:
            cam = torch.relu(cam)
        layer_map = cam
        raw = p.raw_inputs
        if upsample:
            size = tuple(raw.shape[-(acts.dim() - 2):])
            flat = cam.reshape(-1, 1, *cam.shape[-(acts.dim() - 2):])
            mode = "bilinear" if acts.dim() == 4 else "linear"
            up = F.interpolate(flat, size=size, mode=mode, align_corners=False)
            cam = up.reshape(*cam.shape[:-(acts.dim() - 2)], *size)
        params = {"layer": layer if isinstance(layer, str) else type(module).__name__,
                  "relu": relu, "upsample": upsample}
        res = p.result(cam, "grad_cam", params,
                       extras={"layer_map": layer_map.detach(),
                               "channel_weights": weights.flatten(-(acts.dim() - 1)).detach()})
        # the attribution lives on the input grid: record the inputs, not the activations
        return replace(res, inputs=raw) if upsample else res
