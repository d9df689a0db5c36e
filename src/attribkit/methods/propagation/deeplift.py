"""DeepLIFT (Shrikumar, Greenside & Kundaje 2017) with the Rescale and RevealCancel rules, and
DeepSHAP (Lundberg & Lee 2017): DeepLIFT averaged over a background set.

Every hooked module's backward carries *multipliers* ``m = C / delta``: linear layers, average
pooling and BatchNorm use their exact Jacobian (they are linear, so ``delta`` maps exactly);
an element-wise nonlinearity uses ``delta y / delta x`` (Rescale; the gradient where
``|delta x| < 1e-10``); RevealCancel splits the input of a nonlinearity that directly follows a
Linear/Conv layer into its positive and negative contributions ``delta x+`` and ``delta x-`` and
gives each its own multiplier (averaged over the two orders in which they can be added). The
attribution is ``(x - x') * m``; it sums to ``F(x) - F(x')`` (summation-to-delta).

Max pooling gives a window's ``delta y`` to the winner at ``x`` (output rose) or at ``x'``
(output fell), or with ``maxpool="shared"`` shares it between both; Softmax (last layer
only) uses its Jacobian at the midpoint ``(x + x') / 2`` rescaled to preserve ``delta y``.
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
from attribkit.core.errors import BaselineError, InputError, UnsupportedModelError
from attribkit.core.layer_space import layer_side, layer_values
from attribkit.core.multi import several_inputs
from attribkit.methods.propagation.canonizers import LINEAR_TYPES, units
from attribkit.methods.propagation.composites import (
    ACTIVATIONS,
    AVG_POOLS,
    MAX_POOLS,
    PADDING,
    PASS_THROUGH,
)
from attribkit.methods.propagation.hooks import (
    Backward,
    Call,
    Plan,
    State,
    propagate,
    require_module,
    vjp,
)
from attribkit.methods.propagation.rules import layer_forward
from attribkit.methods.registry import register

__all__ = ["TOLERANCE", "deeplift", "deepshap", "gradient_plan"]

#: Below this ``|delta x|`` the multiplier falls back to the gradient.
TOLERANCE = 1e-10
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: The docstring entries of the two methods' ``rule`` and ``maxpool``.
_RULE = "``\"rescale\"`` or ``\"reveal_cancel\"``."
_MAXPOOL = (
    "``\"single\"`` (default; Captum's rule): a window's ``delta y`` goes to the winner at ``x`` "
    "when the output rose and to the winner at ``x'`` when it fell; that winner moved by at "
    "least ``|delta y|``, so the multiplier is bounded by the gradient and the window always "
    "sums to ``delta y``. ``\"shared\"``: one multiplier ``delta y / (delta x_a + delta x_b)`` "
    "for both winners, which credits both but explodes when the denominator nears 0 (and loses "
    "``delta y`` where it vanishes). See ``docs/propagation.md``.")


def _ref(call: Call) -> tuple[Tensor, Tensor]:
    assert call.ref is not None
    return call.ref


def _gradient(call: Call, grad: Tensor, state: State) -> Tensor:
    return vjp(call.module.forward, call.x, grad)


def _safe_div(num: Tensor, den: Tensor, fallback: Tensor) -> Tensor:
    small = den.abs() < TOLERANCE
    return torch.where(small, fallback, num / torch.where(small, torch.ones_like(den), den))


def _rescale(call: Call, grad: Tensor, state: State) -> Tensor:
    xr, yr = _ref(call)
    return _safe_div(grad * (call.y - yr), call.x - xr, _gradient(call, grad, state))


def _split(call: Call) -> tuple[Tensor, Tensor]:
    """``delta x+`` and ``delta x-`` of the linear layer ``call`` (bias differences are 0)."""
    m, w = call.module, call.module.weight
    assert isinstance(w, Tensor)
    da = call.x - _ref(call)[0]
    pos = (layer_forward(m, da.clamp(min=0), w.clamp(min=0), None)
           + layer_forward(m, da.clamp(max=0), w.clamp(max=0), None))
    neg = (layer_forward(m, da.clamp(max=0), w.clamp(min=0), None)
           + layer_forward(m, da.clamp(min=0), w.clamp(max=0), None))
    return pos, neg


def _reveal_cancel(call: Call, grad: Tensor, state: State) -> Tensor:
    src = call.source
    if src is None or not isinstance(src.module, LINEAR_TYPES) or src.ref is None:
        return _rescale(call, grad, state)
    def f(t: Tensor) -> Tensor:
        out: Tensor = call.module.forward(t.clone())  # the module may work in place
        return out

    xr = _ref(call)[0]
    with torch.no_grad():
        dp, dn = _split(src)
        f0 = f(xr)
        up = 0.5 * (f(xr + dp) - f0) + 0.5 * (f(xr + dp + dn) - f(xr + dn))
        un = 0.5 * (f(xr + dn) - f0) + 0.5 * (f(xr + dp + dn) - f(xr + dp))
    zero = torch.zeros_like(grad)
    state.pairs[id(src)] = (grad * _safe_div(up, dp, zero), grad * _safe_div(un, dn, zero))
    return torch.zeros_like(call.x)


def _linear_rc(call: Call, grad: Tensor, state: State) -> Tensor:
    plain = _gradient(call, grad, state)
    pair = state.pairs.pop(id(call), None)
    if pair is None:
        return plain
    gp, gn = pair
    m, w = call.module, call.module.weight
    assert isinstance(w, Tensor)
    wp, wn = w.clamp(min=0), w.clamp(max=0)

    def through(weight: Tensor, g: Tensor) -> Tensor:
        return vjp(lambda t: layer_forward(m, t, weight, None), call.x, g)

    up = through(wp, gp) + through(wn, gn)
    down = through(wn, gp) + through(wp, gn)
    da = call.x - _ref(call)[0]
    return plain + torch.where(da > 0, up, torch.where(da < 0, down, 0.5 * (up + down)))


def _pool_indices(module: nn.Module, x: Tensor) -> Tensor:
    """The flat spatial index of each window's maximum, ``(N, C, out...)``."""
    d = x.dim() - 2
    if isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        fn = getattr(F, f"adaptive_max_pool{d}d")
        _, idx = fn(x, module.output_size, return_indices=True)
    else:
        assert isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d))
        fn = getattr(F, f"max_pool{d}d")
        _, idx = fn(x, module.kernel_size, module.stride, module.padding, module.dilation,
                    ceil_mode=module.ceil_mode, return_indices=True)
    out: Tensor = idx
    return out


def _maxpool(call: Call, grad: Tensor, state: State) -> Tensor:
    """Rescale on the window's two winners: ``a`` (max at ``x``) and ``b`` (max at ``x'``).

    ``delta y = x_a - x'_b`` is shared by ``a`` and ``b`` with one multiplier
    ``delta y / (delta x_a + delta x_b)`` (``delta y / delta x_a`` when ``a = b``). The
    denominator can be far smaller than ``delta y`` (x = (3, 2), x' = (1, 3.99): multiplier 99,
    contributions -198 and +197 for a change of -0.99) and where it vanishes the gradient is
    used and ``delta y`` is lost; hence ``maxpool="single"`` is the default.
    """
    xr, yr = _ref(call)
    ia = _pool_indices(call.module, call.x).flatten(2)
    ib = _pool_indices(call.module, xr).flatten(2)
    dx = (call.x - xr).flatten(2)
    dy = (call.y - yr).flatten(2)
    g = grad.flatten(2)
    other = (ia != ib).to(dx.dtype)
    den = dx.gather(2, ia) + other * dx.gather(2, ib)
    small = den.abs() < TOLERANCE
    mult = torch.where(small, torch.zeros_like(den), g * dy / torch.where(small, 1.0, den))
    out = torch.zeros_like(dx)
    out.scatter_add_(2, ia, mult + torch.where(small, g, torch.zeros_like(g)))
    out.scatter_add_(2, ib, mult * other)
    return out.reshape(call.x.shape)


def _maxpool_single(call: Call, grad: Tensor, state: State) -> Tensor:
    """Captum's rule: a window's ``delta y`` goes to one winner.

    When the window's output rose (``y >= y'``) its ``delta y`` is given to the winner at ``x``,
    when it fell to the winner at ``x'``; each position's multiplier is what it received over its
    own ``delta x`` (the gradient at ``x`` where ``|delta x| < 1e-10``). Complete as well (the
    receiving winner always moved by at least ``|delta y|``), but a window's change is credited
    to one position even when both winners moved.
    """
    xr, yr = _ref(call)
    ia = _pool_indices(call.module, call.x).flatten(2)
    ib = _pool_indices(call.module, xr).flatten(2)
    dx = (call.x - xr).flatten(2)
    dy = (call.y - yr).flatten(2)
    g = grad.flatten(2)
    rose = dy >= 0
    got = torch.zeros_like(dx)
    got.scatter_add_(2, ia, torch.where(rose, g * dy, 0.0))
    got.scatter_add_(2, ib, torch.where(rose, 0.0, g * dy))
    plain = torch.zeros_like(dx).scatter_add_(2, ia, g)
    out = _safe_div(got, dx, plain)
    return out.reshape(call.x.shape)


_MAXPOOL_RULES = {"shared": _maxpool, "single": _maxpool_single}


def _softmax(call: Call, grad: Tensor, state: State) -> Tensor:
    xr, yr = _ref(call)
    mid = vjp(call.module.forward, 0.5 * (call.x + xr), grad)
    num = (grad * (call.y - yr)).flatten(1).sum(1)
    den = (mid * (call.x - xr)).flatten(1).sum(1)
    c = _safe_div(num, den, torch.ones_like(num))
    return mid * c.reshape(-1, *([1] * (mid.dim() - 1)))


def gradient_plan(model: nn.Module, method: str, activation: Backward, *,
                  linear: Backward = _gradient, maxpool: Backward = _gradient,
                  softmax: Backward = _gradient, needs_reference: bool = False,
                  relu_family: Backward | None = None) -> Plan:
    """A plan for the gradient-style methods (DeepLIFT, guided backprop, DeconvNet).

    Parameters
    ----------
    model
        The model.
    method
        Name for messages.
    activation
        Backward of element-wise nonlinearities.
    linear
        Backward of Linear/Conv layers (average pooling and BatchNorm use the gradient).
    maxpool
        Backward of max pooling.
    softmax
        Backward of a final Softmax.
    needs_reference
        Record the reference rows' activations first.
    relu_family
        Backward of ReLU, LeakyReLU, ReLU6 and Hardtanh when it differs from ``activation``.
    """
    names = {m: n for n, m in model.named_modules()}
    backward: dict[nn.Module, Backward] = {}
    for name, m in units(model):
        if isinstance(m, PASS_THROUGH):
            continue
        if isinstance(m, LINEAR_TYPES):
            backward[m] = linear
        elif isinstance(m, (*AVG_POOLS, *_BN, *PADDING)):
            if isinstance(m, _BN) and m.running_mean is None:
                raise UnsupportedModelError(f"{method}: BatchNorm '{name}' has no running "
                                            "statistics, so it is not a fixed map in eval mode.")
            backward[m] = _gradient
        elif isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.Hardtanh)) and relu_family:
            backward[m] = relu_family
        elif isinstance(m, ACTIVATIONS):
            backward[m] = activation
        elif isinstance(m, MAX_POOLS):
            backward[m] = maxpool
        elif isinstance(m, nn.Softmax):
            backward[m] = softmax
        elif any(True for _ in m.parameters(recurse=False)) or m._buffers:
            raise UnsupportedModelError(
                f"{method}: module '{name}' ({type(m).__name__}) is not supported; supported: "
                "Linear, Conv1d/2d, pooling, BatchNorm, element-wise activations, Softmax (last),"
                " Flatten, Dropout.")
    last = frozenset(m for m in backward if isinstance(m, nn.Softmax))
    return Plan(method, backward, names, needs_reference=needs_reference, last_only=last)


def _plan(model: nn.Module, rule: str, method: str, maxpool: str = "single") -> Plan:
    if maxpool not in _MAXPOOL_RULES:
        raise InputError(f"unknown max-pooling rule {maxpool!r}; use 'single' (the default, "
                         "Captum's) or 'shared'.")
    pool = _MAXPOOL_RULES[maxpool]
    if rule == "rescale":
        return gradient_plan(model, method, _rescale, maxpool=pool, softmax=_softmax,
                             needs_reference=True)
    if rule == "reveal_cancel":
        return gradient_plan(model, method, _reveal_cancel, linear=_linear_rc,
                             maxpool=pool, softmax=_softmax, needs_reference=True)
    raise InputError(f"unknown DeepLIFT rule {rule!r}; use 'rescale' or 'reveal_cancel'.")


@register(
    "deeplift",
    aliases=("deep_lift",),
    family="propagation",
    needs_baseline=True,
    complete=True,
    axioms={"completeness", "sensitivity_a"},
    needs_module=True,
    summary="DeepLIFT: multipliers of differences from a reference (Rescale or RevealCancel).",
)
@several_inputs()
@shared_parameters("model:propagation", "inputs", "target:single", "batch_size:backward",
                   "progress", "forward_args", rule=_RULE, maxpool=_MAXPOOL)
def deeplift(
    model: nn.Module,
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    rule: str = "rescale",
    maxpool: str = "single",
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
    layer: nn.Module | None = None,
    attribute_to: str = "layer_output",
) -> Attribution:
    """DeepLIFT attributions ``(x - x') * m`` with multipliers ``m`` from the chosen rule.

    Parameters
    ----------
    baseline
        The reference ``x'``: ``None`` (zeros), a number, a name, a Baseline or a tensor.
    layer
        Attribute to this sub-module's units instead of the inputs (Captum's LayerDeepLift):
        ``(a(x) - a(x')) * m_a`` with ``m_a`` the multipliers that reach the layer.
    attribute_to
        With ``layer``: ``"layer_output"`` (default) or ``"layer_input"`` (its first positional
        input).

    Returns
    -------
    Attribution
        Values summing to ``F(x) - F(x')`` (see ``gap``), shaped like the inputs, or like the
        layer's activations with ``layer``.
    """
    module = require_module(model, "deeplift")
    if layer is not None:
        return _layer_deeplift(module, inputs, target, baseline, rule, maxpool, batch_size,
                               progress, forward_args, layer, attribute_to)
    with prepare(module, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, allow_multi_target=False) as p:
        plan = _plan(module, rule, "deeplift", maxpool)
        assert p.baseline is not None
        m, _ = propagate(p, plan, p.inputs, p.baseline, p.examples)
        return p.result((p.inputs - p.baseline) * m, "deeplift", {"rule": rule,
                                                                   "maxpool": maxpool})


def _layer_deeplift(module: nn.Module, inputs: Tensor, target: Any, baseline: Any, rule: str,
                    maxpool: str, batch_size: int | None, progress: bool,
                    forward_args: Sequence[Tensor] | None, layer: nn.Module,
                    attribute_to: str) -> Attribution:
    side = layer_side(attribute_to, layer)
    with prepare(module, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, allow_multi_target=False) as p:
        plan = _plan(module, rule, "deeplift", maxpool)
        assert p.baseline is not None
        found: list[Tensor] = []
        propagate(p, plan, p.inputs, p.baseline, p.examples, at_layer=(layer, side, found))
        act = layer_values(p, layer, p.inputs, side)
        ref = layer_values(p, layer, p.baseline, side)
        values = (act - ref) * torch.cat(found)
        a = p.result(values, "deeplift", {"rule": rule, "maxpool": maxpool,
                                          "attribute_to": attribute_to})
        return replace(a, inputs=act, baselines=ref)


@register(
    "deepshap",
    aliases=("deep_shap", "deeplift_shap"),
    family="propagation",
    needs_baseline=True,
    complete=True,
    axioms={"completeness", "sensitivity_a"},
    needs_module=True,
    summary="DeepSHAP: DeepLIFT averaged over a background set of references.",
)
@shared_parameters("model:propagation", "inputs", "progress", "forward_args", rule=_RULE,
                   maxpool=_MAXPOOL)
def deepshap(
    model: nn.Module,
    inputs: Tensor,
    *,
    background: Tensor,
    target: Any = None,
    rule: str = "rescale",
    maxpool: str = "single",
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """DeepLIFT against each row of ``background``, averaged.

    Parameters
    ----------
    background
        ``(K, ...)`` reference rows shared by all examples (a sample of the data).
    target
        As for :func:`deeplift`.
    batch_size
        Rows (example, reference pairs) per backward pass.

    Returns
    -------
    Attribution
        Values summing to ``F(x) - mean_k F(b_k)``; ``baselines`` is the background mean and
        ``baseline_output`` the mean of ``F(b_k)``.
    """
    module = require_module(model, "deepshap")
    with prepare(module, inputs, target=target, baseline=None, needs_baseline=False,
                 batch_size=batch_size, progress=progress, forward_args=forward_args,
                 allow_multi_target=False) as p:
        bg = _background(background, p.inputs)
        k = int(bg.shape[0])
        example = p.examples.repeat_interleave(k)
        rows = p.inputs.repeat_interleave(k, dim=0)
        refs = bg.repeat(p.n, *([1] * (bg.dim() - 1)))
        plan = _plan(module, rule, "deepshap", maxpool)
        m, _ = propagate(p, plan, rows, refs, example)
        values = ((rows - refs) * m).reshape(p.n, k, *p.inputs.shape[1:]).mean(1)
        base = p.scores(refs, example, desc="background").reshape(p.n, k).mean(1)
        attr = p.result(values, "deepshap", {"rule": rule, "maxpool": maxpool,
                                             "background_size": k})
        return replace(attr, baselines=bg.mean(0, keepdim=True).expand_as(p.inputs),
                       baseline_output=base)


def _background(background: object, inputs: Tensor) -> Tensor:
    if not isinstance(background, Tensor):
        raise BaselineError("background must be a tensor (K, ...) of reference rows.")
    bg = background.detach()
    if bg.dim() == inputs.dim() - 1:
        bg = bg.unsqueeze(0)
    if bg.shape[1:] != inputs.shape[1:] or bg.shape[0] == 0:
        raise BaselineError(f"background {tuple(bg.shape)} must be (K, ...) with rows shaped "
                            f"like one input {tuple(inputs.shape[1:])}.")
    if bg.dtype != inputs.dtype or bg.device != inputs.device:
        raise BaselineError(f"background is {bg.dtype} on {bg.device}; the inputs are "
                            f"{inputs.dtype} on {inputs.device}.")
    return bg
