"""Layer-wise Relevance Propagation (Bach et al. 2015) and Deep Taylor decomposition
(Montavon et al. 2017).

The relevance of the target output, ``R = F(x)`` at the target, is passed backwards layer by
layer; each linear layer splits it onto its inputs by its rule (:mod:`.rules`), activations pass
it unchanged, max pooling gives it to the winner, and residual additions split it in proportion
to their operands. Each BatchNorm is merged into the linear layer that feeds it
(:mod:`.canonizers`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import UnsupportedModelError
from attribkit.methods.propagation import rules as R
from attribkit.methods.propagation.canonizers import (
    LINEAR_TYPES,
    batchnorms,
    canonized,
    merge_params,
)
from attribkit.methods.propagation.composites import Composite, preset
from attribkit.methods.propagation.hooks import (
    Backward,
    Call,
    Plan,
    State,
    propagate,
    require_module,
    vjp,
)
from attribkit.methods.registry import register

__all__ = ["deep_taylor", "lrp", "lrp_plan"]



def _terms(rule: R.Rule, weight: Tensor | None, bias: Tensor | None, call: Call, grad: Tensor,
           state: State) -> Tensor:
    return R.linear_relevance(rule, call.module, call.x, grad, weight, bias)


def _pass(call: Call, grad: Tensor, state: State) -> Tensor:
    if grad.shape != call.x.shape:
        raise UnsupportedModelError(f"module '{call.name}' changes the shape of its input; it "
                                    "cannot pass relevance through unchanged.")
    return grad


def _gradient(call: Call, grad: Tensor, state: State) -> Tensor:
    return vjp(call.module.forward, call.x, grad)


def _merge_backward(assigned: dict[nn.Module, R.Rule], bn: nn.Module, name: str,
                    src: Call) -> Backward | None:
    rule = assigned.get(src.module)
    params = merge_params(src.module, bn, name)
    if rule is None or rule.kind != "terms" or params is None:
        return None
    return partial(_terms, rule, *params)


def lrp_plan(model: nn.Module, composite: Composite, canonize: bool, residual_eps: float,
             method: str = "lrp") -> Plan:
    """The hook plan of LRP for ``model``.

    Parameters
    ----------
    model
        The model.
    composite
        Rules of the linear layers.
    canonize
        Merge each BatchNorm into the Linear/Conv layer that feeds it.
    residual_eps
        Stabiliser of the residual-addition split.
    method
        Name for messages.
    """
    names = {m: n for n, m in model.named_modules()}
    assigned = composite.assign(model)
    backward: dict[nn.Module, Backward] = {}
    for m, rule in assigned.items():
        if rule.kind == "pass":
            backward[m] = _pass
        elif rule.kind == "gradient":
            backward[m] = _gradient
        else:
            w = m.weight.detach() if isinstance(m, LINEAR_TYPES) else None
            b = m.bias.detach() if isinstance(m, LINEAR_TYPES) and m.bias is not None else None
            backward[m] = partial(_terms, rule, w, b)
    merges: dict[nn.Module, Callable[[Call], Backward | None]] = {}
    for n, m in batchnorms(model):
        if not canonize:
            raise UnsupportedModelError(
                f"{method}: the model has a BatchNorm ('{n}') and canonize=False; LRP has no "
                "rule for a lone BatchNorm. Use canonize=True to merge it into its linear layer.")
        merges[m] = partial(_merge_backward, assigned, m, n)
    return Plan(method, backward, names, batchnorms=merges, residual_eps=residual_eps,
                last_only=frozenset(m for m in assigned if isinstance(m, nn.Softmax)))


def _composite(rule: str | R.Rule | Composite, epsilon: float, gamma: float, low: Any,
               high: Any, signed_gamma: bool = True) -> Composite:
    if isinstance(rule, Composite):
        return rule
    if isinstance(rule, R.Rule):
        return Composite(rule.name, ((tuple(LINEAR_TYPES), rule),))
    return preset(rule, epsilon=epsilon, gamma=gamma, low=low, high=high,
                  signed_gamma=signed_gamma)


def _run(model: Any, inputs: Tensor, target: Any, composite: Composite, canonize: bool,
         epsilon: float, batch_size: int | None, progress: bool,
         forward_args: Sequence[Tensor] | None, method: str,
         params: dict[str, Any]) -> Attribution:
    module = require_module(model, method)
    with prepare(module, inputs, target=target, baseline=None, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, allow_multi_target=False) as p:
        with canonized(module):
            plan = lrp_plan(module, composite, canonize, epsilon, method)
            values, layers = propagate(p, plan, p.inputs, None, p.examples, scale_by_score=True)
        return p.result(values, method, params, extras={"relevance": layers})


@register(
    "lrp",
    aliases=("layerwise_relevance_propagation",),
    family="propagation",
    needs_baseline=False,
    complete=False,
    axioms=set(),
    needs_module=True,
    summary="Layer-wise Relevance Propagation with epsilon, gamma, alpha-beta, z+ and z-box "
            "rules (composites and presets).",
)
@shared_parameters("inputs", "target:single", "batch_size:backward", "progress", "forward_args")
def lrp(
    model: nn.Module,
    inputs: Tensor,
    *,
    target: Any = None,
    rule: str | R.Rule | Composite = "epsilon",
    epsilon: float = 1e-6,
    gamma: float = 0.25,
    signed_gamma: bool = True,
    low: Any = None,
    high: Any = None,
    canonize: bool = True,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Layer-wise Relevance Propagation of the target output ``F(x)``.

    Parameters
    ----------
    model
        An ``nn.Module`` built from supported modules (Linear, Conv1d/2d, pooling, activations,
        BatchNorm after a linear layer, Flatten, Dropout, residual additions, Softmax last).
    rule
        A preset name (``"epsilon"``, ``"gamma"``, ``"alpha2_beta1"``, ``"alpha1_beta0"``,
        ``"z_plus"``, ``"z_box"``, ``"epsilon_plus"``, ``"epsilon_alpha2_beta1"``,
        ``"epsilon_gamma_box"``, ``"deep_taylor"``), a :class:`~.rules.Rule` for every linear
        layer, or a :class:`~.composites.Composite`.
    epsilon
        The stabiliser of epsilon rules and of residual splits.
    gamma
        The gamma of gamma rules.
    signed_gamma
        Gamma rules boost the contributions of each output's own sign (default; equal to the
        classic rule on non-negative inputs and positive outputs), or, with ``False``, apply the
        classic ``w + gamma w+`` whatever the signs (Captum's ``GammaRule``). See
        :func:`~.rules.gamma`.
    low
        Lower bound of the inputs (z-box presets).
    high
        Upper bound of the inputs (z-box presets).
    canonize
        Merge each BatchNorm into the Linear/Conv layer that feeds it (virtually; the model is
        unchanged).

    Returns
    -------
    Attribution
        Relevance shaped like the inputs; ``baseline_output`` is ``F(0)``, so ``gap`` measures
        how far relevance is from conservation (zero for epsilon -> 0 without biases).
        ``extras["relevance"]`` holds the total relevance reaching each hooked module's input.
    """
    comp = _composite(rule, epsilon, gamma, low, high, signed_gamma)
    return _run(model, inputs, target, comp, canonize, epsilon, batch_size, progress,
                forward_args, "lrp", {"rule": comp.name, "epsilon": epsilon, "gamma": gamma,
                                      "signed_gamma": signed_gamma, "canonize": canonize})


@register(
    "deep_taylor",
    family="propagation",
    needs_baseline=False,
    complete=False,
    axioms=set(),
    needs_module=True,
    summary="Deep Taylor decomposition: z+ rule in hidden layers, z-box or w^2 at the input.",
)
@shared_parameters("model:propagation", "inputs", "batch_size:backward", "progress",
                   "forward_args")
def deep_taylor(
    model: nn.Module,
    inputs: Tensor,
    *,
    target: Any = None,
    low: Any = None,
    high: Any = None,
    canonize: bool = True,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Deep Taylor decomposition (LRP with z+ in hidden layers; z-box or w^2 first).

    Parameters
    ----------
    target
        As for :func:`lrp`.
    low
        Lower bound of the inputs: with ``high``, the first layer uses z-box, else w^2.
    high
        Upper bound of the inputs.
    canonize
        Merge BatchNorms.

    Returns
    -------
    Attribution
        Relevance shaped like the inputs.
    """
    comp = preset("deep_taylor", low=low, high=high)
    return _run(model, inputs, target, comp, canonize, 1e-9, batch_size, progress,
                forward_args, "deep_taylor", {"rule": comp.name, "canonize": canonize,
                                              "first": comp.first.name if comp.first else None})
