"""Layer and neuron conductance (Dhamdhere, Sundararajan & Yan 2018, "How important is a neuron?").

* ``layer_conductance``: the conductance of each unit ``j`` of a layer with activations ``a(x)``
  along the straight *input* path ``x(alpha) = x' + alpha (x - x')``:
  ``Cond_j = integral_0^1 dF/da_j (x(alpha)) * d a_j(x(alpha)) / d alpha  d alpha``, a
  Riemann-Stieltjes sum over path nodes ``alpha_0 < ... < alpha_S``:
  ``sum_k g_j(alpha_k) (a_j(alpha_{k+1}) - a_j(alpha_k))`` (``gradient="left"``, Captum's sum) or
  with ``(g_j(alpha_k) + g_j(alpha_{k+1})) / 2`` (``gradient="mean"``, second order). With nodes
  that include 0 and 1 (``riemann_trapezoid``, the default) the units' conductances sum to
  ``F(x) - F(x')`` up to the quadrature error (completeness over the layer). Captum's
  ``LayerConductance`` default is ``rule="gauss_legendre", gradient="left"`` (its nodes are the
  ``steps + 1`` Gauss-Legendre nodes, which miss 0 and 1 by a little).
* ``neuron_conductance``: the conductance of each input feature *through* one neuron:
  ``(x_i - x'_i) integral dF/dn * dn/dx_i d alpha``. It is Integrated Gradients of the model in
  which every other unit of the neuron's layer is held out of the backward pass (its forward value
  unchanged), so all of IG's rules apply; summed over all the units of the layer it gives IG.
  For ``average=True`` (a channel) it is the conductance through all units of the channel
  (the sum of theirs); Captum's ``NeuronConductance`` with an averaging selector multiplies the
  averaged gradients instead, which is not a conductance, so only single units are matched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core import paths
from attribkit.core.attribution import Attribution
from attribkit.core.checks import count
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import InputError, TargetError
from attribkit.core.guard import this_thread
from attribkit.core.layer_space import layer_gradients, layer_side, layer_values
from attribkit.core.multi import refuse_several
from attribkit.core.neurons import Neuron, NeuronModel
from attribkit.methods.integrated import integrated_gradients
from attribkit.methods.registry import register

__all__ = ["layer_conductance", "neuron_conductance"]

_GRADIENTS = ("mean", "left")


def _path(p: Problem, alpha: Tensor, example: Tensor) -> Callable[[slice], Tensor]:
    assert p.baseline is not None
    x, b = p.inputs, p.baseline

    def make(sl: slice) -> Tensor:
        ex = example[sl]
        a = alpha[sl].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return b[ex] + a * (x[ex] - b[ex])

    return make


def _conductance(p: Problem, layer: nn.Module, alphas: Tensor, gradient: str,
                 layer_input: bool) -> Tensor:
    """The Stieltjes sums per example, carried across chunk boundaries row by row."""
    m = int(alphas.shape[0])
    alpha = alphas.repeat(p.n)
    example = p.examples.repeat_interleave(m)
    total: Tensor | None = None
    prev: tuple[Tensor, Tensor, Tensor] | None = None
    for sl, act, g in layer_gradients(p, layer, _path(p, alpha, example), example,
                                      layer_input=layer_input, desc="layer conductance"):
        ex = example[sl]
        if prev is not None:
            act, g, ex = (torch.cat([prev[0], act]), torch.cat([prev[1], g]),
                          torch.cat([prev[2], ex]))
        prev = (act[-1:], g[-1:], ex[-1:])
        if total is None:
            total = act.new_zeros((p.n, *act.shape[1:]))
        same = ex[1:] == ex[:-1]
        weight = g[:-1] if gradient == "left" else 0.5 * (g[:-1] + g[1:])
        step = weight * (act[1:] - act[:-1])
        total.index_add_(0, ex[1:][same], step[same])
    assert total is not None
    return total


@register(
    "layer_conductance",
    aliases=("conductance",),
    family="path",
    needs_baseline=True,
    complete=True,
    axioms={"completeness"},
    needs_module=True,
    summary="Layer conductance: each unit of a layer's share of F(x) - F(x') along the input "
            "path (needs layer=).",
)
@shared_parameters("inputs", "batch_size:rows", "progress", "forward_args")
def layer_conductance(
    model: nn.Module,
    inputs: Tensor,
    *,
    layer: nn.Module,
    target: Any = None,
    baseline: Any = None,
    steps: int = 50,
    rule: str = "riemann_trapezoid",
    gradient: str = "mean",
    attribute_to: str = "layer_output",
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """The conductance of every unit of ``layer`` (see the module docstring).

    Parameters
    ----------
    model
        An ``nn.Module`` from a batch ``(B, ...)`` to ``(B,)`` or ``(B, C)``.
    layer
        The sub-module whose units are attributed (required).
    target
        ``None`` (predicted class), an int, one index per example, a callable, or a neuron
        (:func:`attribkit.neuron`) of a later layer.
    baseline
        The input baseline ``x'`` (as for :func:`~attribkit.integrated_gradients`).
    steps
        Path cells: ``steps + 1`` nodes, one gradient each.
    rule
        Node placement (``riemann_trapezoid``: ``linspace(0, 1, steps + 1)``; or any fixed rule
        of :mod:`attribkit.core.paths`, placed on ``steps + 1`` nodes as Captum does).
    gradient
        ``"mean"`` (the gradient averaged over each cell's two ends; second order) or ``"left"``
        (the gradient at the cell's start; Captum's sum).
    attribute_to
        ``"layer_output"`` or ``"layer_input"`` (the layer's first positional input).

    Returns
    -------
    Attribution
        Values shaped like the layer's activation ``(N, ...)``; ``inputs`` and ``baselines`` are
        the activations at ``x`` and ``x'``, ``output`` and ``baseline_output`` ``F(x)`` and
        ``F(x')``, so ``gap`` is the completeness gap over the layer.
    """
    if not isinstance(layer, nn.Module):
        raise InputError("layer_conductance needs layer= (the sub-module whose units are "
                         "attributed), e.g. layer=model.features[3].")
    to_input = layer_side(attribute_to, layer)
    steps = count(steps, "steps")
    rule = paths.canonical_rule(rule)
    if rule == "adaptive":
        raise InputError("layer_conductance takes a fixed rule (riemann_*, gauss_legendre); the "
                         "adaptive rule is integrated_gradients' own.")
    if gradient not in _GRADIENTS:
        raise InputError(f"gradient must be 'mean' or 'left', got {gradient!r}.")
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, allow_multi_target=False) as p:
        if not any(m is layer for m in model.modules()):
            raise InputError("layer is not a sub-module of the model.")
        a, _ = paths.nodes(rule, steps + 1)
        alphas = torch.as_tensor(a, dtype=p.inputs.dtype, device=p.inputs.device)
        values = _conductance(p, layer, alphas, gradient, to_input)
        assert p.baseline is not None
        act_x = layer_values(p, layer, p.inputs, to_input)
        act_b = layer_values(p, layer, p.baseline, to_input)
        params = {"steps": steps, "rule": rule, "gradient": gradient,
                  "attribute_to": attribute_to, "gradient_evaluations": p.gradient_evaluations}
        attr = p.result(values, "layer_conductance", params)
        return dataclasses.replace(attr, inputs=act_x, baselines=act_b)


class _ThroughNeuron(nn.Module):
    """The model with every unit of the neuron's layer but the neuron held out of the backward."""

    def __init__(self, model: nn.Module, through: Neuron) -> None:
        super().__init__()
        self.inner = model
        self.through = through
        self.training = model.training

    def forward(self, x: Tensor, *extra: Any) -> Tensor:
        """Run the model; the neuron's layer passes gradients through the neuron only."""
        nrn = self.through

        def keep(_m: nn.Module, _a: Any, out: Any) -> Tensor:
            if not isinstance(out, Tensor):
                raise TargetError(f"{nrn.label}: the layer returns {type(out).__name__}, not "
                                  "one tensor.")
            ones = torch.ones(out.shape[0], dtype=out.dtype, device=out.device)
            probe = out.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                (sel,) = torch.autograd.grad(nrn.select(probe), probe, ones)
            mask = sel != 0
            return torch.where(mask, out, out.detach())

        handle = nrn.module.register_forward_hook(this_thread(keep))
        try:
            result: Tensor = self.inner(x, *extra)
        finally:
            handle.remove()
        return result


@register(
    "neuron_conductance",
    family="path",
    needs_baseline=True,
    complete=False,
    axioms={"sensitivity_b"},
    needs_module=True,
    summary="Neuron conductance: each input feature's conductance through one neuron "
            "(needs neuron=).",
)
@shared_parameters("inputs")
def neuron_conductance(
    model: nn.Module,
    inputs: Tensor,
    *,
    neuron: Neuron,
    target: Any = None,
    baseline: Any = None,
    steps: int = 50,
    rule: str = "gauss_legendre",
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Input features' conductance through ``neuron`` to the target score.

    Parameters
    ----------
    model
        An ``nn.Module``.
    neuron
        The neuron (:func:`attribkit.neuron`) the conductance flows through (required).
    target
        The output score (``None``: predicted class, an int, ...), as for Integrated Gradients.
    baseline
        The input baseline ``x'``.
    steps, rule
        The quadrature (as for :func:`~attribkit.integrated_gradients`). Captum's
        ``NeuronConductance`` default (trapezoid, ``n`` = 50 nodes) has weights that sum to
        ``(n - 1) / n``, so its values are ``(n - 1) / n`` of these (measured: 49/50).
    batch_size, progress, forward_args
        As for :func:`~attribkit.integrated_gradients`.

    Returns
    -------
    Attribution
        Values shaped like the inputs. They do not sum to ``F(x) - F(x')`` (only the
        conductances through all units of the layer together do), so ``gap`` is not a check here.
    """
    refuse_several(inputs)  # IG below takes tuples; the neuron path does not (yet)
    if not isinstance(neuron, Neuron):
        raise InputError("neuron_conductance needs neuron=attribkit.neuron(layer, index), the "
                         "unit the conductance flows through.")
    if isinstance(target, Neuron):
        raise TargetError("neuron_conductance explains an output target through neuron=; give "
                          "the neuron as neuron= and the class as target=.")
    if not isinstance(model, nn.Module) or isinstance(model, NeuronModel):
        raise InputError("neuron_conductance needs a torch nn.Module model.")
    if not any(m is neuron.module for m in model.modules()):
        raise TargetError(f"{neuron.label}: that layer is not a sub-module of the model.")
    attr = integrated_gradients(_ThroughNeuron(model, neuron), inputs, target=target,
                                baseline=baseline, steps=steps, rule=rule, batch_size=batch_size,
                                progress=progress, forward_args=forward_args)
    params = {**attr.params, "neuron": neuron.label}
    return dataclasses.replace(attr, method="neuron_conductance", params=params)
