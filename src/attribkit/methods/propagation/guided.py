"""DeconvNet (Zeiler & Fergus 2014) and Guided Backpropagation (Springenberg et al. 2015).

Both are the gradient with a modified backward pass through ReLU-like units: DeconvNet rectifies
the backward signal (``ReLU(g)``, ignoring the forward input; for ReLU6, Hardtanh and LeakyReLU
too: only the rectification, never the unit's own clipping, so the map scales with the logit);
Guided
Backpropagation keeps the gradient only where both the forward input and the backward signal
are positive (``max(0, g) * 1[x > 0]``). Other layers use their exact gradients. No baseline;
neither is complete, and both break Sensitivity(a).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.methods.propagation.deeplift import gradient_plan
from attribkit.methods.propagation.hooks import Call, State, propagate, require_module, vjp
from attribkit.methods.registry import register

__all__ = ["deconvnet", "guided_backprop"]


def _exact(call: Call, grad: Tensor, state: State) -> Tensor:
    return vjp(call.module.forward, call.x, grad)


def _guided(call: Call, grad: Tensor, state: State) -> Tensor:
    return vjp(call.module.forward, call.x, grad).clamp(min=0)


def _deconv(call: Call, grad: Tensor, state: State) -> Tensor:
    # only the rectification: running the unit itself on the signal (ReLU6 clips at 6, Hardtanh
    # at +-1, LeakyReLU leaks) would make the map depend on the scale of the logit
    return grad.clamp(min=0)


def _run(model: nn.Module, inputs: Tensor, target: Any, batch_size: int | None, progress: bool,
         forward_args: Sequence[Tensor] | None, method: str) -> Attribution:
    module = require_module(model, method)
    with prepare(module, inputs, target=target, needs_baseline=False, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, allow_multi_target=False) as p:
        rule = _guided if method == "guided_backprop" else _deconv
        plan = gradient_plan(module, method, _exact, relu_family=rule)
        g, _ = propagate(p, plan, p.inputs, None, p.examples)
        return p.result(g, method, {})


_DOC = """

    Returns
    -------
    Attribution
        Values shaped like the inputs (a modified gradient: not multiplied by the input).
"""


@register("guided_backprop", aliases=("guided_backpropagation",), family="propagation",
          needs_baseline=False, complete=False, axioms=set(), needs_module=True,
          summary="Guided Backpropagation: gradients with negative signals stopped at ReLUs.")
def guided_backprop(model: nn.Module, inputs: Tensor, *, target: Any = None,
                    batch_size: int | None = None, progress: bool = False,
                    forward_args: Sequence[Tensor] | None = None) -> Attribution:
    return _run(model, inputs, target, batch_size, progress, forward_args, "guided_backprop")


@register("deconvnet", aliases=("deconvolution",), family="propagation", needs_baseline=False,
          complete=False, axioms=set(), needs_module=True,
          summary="DeconvNet: the backward signal rectified at ReLU-like units.")
def deconvnet(model: nn.Module, inputs: Tensor, *, target: Any = None,
              batch_size: int | None = None, progress: bool = False,
              forward_args: Sequence[Tensor] | None = None) -> Attribution:
    return _run(model, inputs, target, batch_size, progress, forward_args, "deconvnet")


guided_backprop.__doc__ = ("Guided Backpropagation: ``max(0, g) * 1[x > 0]`` at ReLU-like "
                           "units." + _DOC)
deconvnet.__doc__ = ("DeconvNet: the backward signal rectified, ``max(0, g)``, at ReLU-like "
                     "units." + _DOC)
for _method in (guided_backprop, deconvnet):
    shared_parameters("model:propagation", "inputs", "target:single", "batch_size:backward",
                      "progress", "forward_args")(_method)
