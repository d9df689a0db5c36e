"""LRP rules as data: which modified copies of a layer are evaluated and how relevance is split.

A linear layer (``Linear``, ``Conv1d/2d``, average pooling) redistributes the relevance ``R`` of
its outputs onto its inputs. A :class:`Rule` lists groups of :class:`Term` s; each term is the
layer evaluated on a modified input (input modifier) with modified parameters (parameter
modifiers). For each group,

    z = sum_t sign_t * layer_t(input_t(x)),   s = R / (z + eps * sign(z)),
    R_in += coefficient * sum_t sign_t * input_t(x) * (d layer_t / d input)^T s

(the gradient mapper is ``R / stabilised z``; the reducer multiplies by the modified input). So
LRP-epsilon is one group with one term, alpha-beta two groups of two terms each, and z-box one
group whose bound terms are subtracted. Activations use :data:`PASS` (relevance unchanged) and
max pooling :data:`GRADIENT` (winner takes all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.stateless import _reparametrize_module

from attribkit.core.errors import InputError, UnsupportedModelError

_PLAIN_FORWARDS = (nn.Linear.forward, nn.Conv1d.forward, nn.Conv2d.forward, nn.Conv3d.forward)

__all__ = [
    "GRADIENT",
    "PASS",
    "Modifier",
    "Rule",
    "Term",
    "alpha_beta",
    "epsilon",
    "flat",
    "gamma",
    "layer_forward",
    "linear_relevance",
    "stabilize",
    "w_square",
    "z_box",
    "z_plus",
]


@dataclass(frozen=True)
class Modifier:
    """A named tensor transformation (of an input, a weight or a bias).

    Attributes
    ----------
    name
        For listings and ``repr``.
    fn
        The transformation.
    on_pooling
        What it means for a layer without weights whose implicit weights are positive (average
        pooling): ``"keep"`` the layer as is, ``"drop"`` the term (it is zero), or ``"error"``.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    on_pooling: str = "keep"


def _ident(t: Tensor) -> Tensor:
    return t


def _pos(t: Tensor) -> Tensor:
    return t.clamp(min=0)


def _neg(t: Tensor) -> Tensor:
    return t.clamp(max=0)


IDENTITY = Modifier("identity", _ident)
POSITIVE = Modifier("positive", _pos)
NEGATIVE = Modifier("negative", _neg, on_pooling="drop")


@dataclass(frozen=True)
class Term:
    """One modified copy of the layer: ``layer(input(x); weight(W), bias(b))``.

    Attributes
    ----------
    input
        Input modifier.
    weight
        Weight modifier.
    bias
        Bias modifier, or ``None`` to leave the bias out of this term.
    sign
        +1 or -1: how the term enters ``z`` and the relevance.
    """

    input: Modifier = IDENTITY
    weight: Modifier = IDENTITY
    bias: Modifier | None = IDENTITY
    sign: float = 1.0


@dataclass(frozen=True)
class Rule:
    """A propagation rule: data, not code.

    Attributes
    ----------
    name
        The rule's name (``"epsilon"``, ``"alpha2_beta1"``, ``"pass"`` ...).
    kind
        ``"terms"`` (a linear-layer rule made of ``groups``), ``"pass"`` (relevance goes through
        unchanged, for activations) or ``"gradient"`` (the exact vector-Jacobian product, e.g.
        winner-takes-all for max pooling).
    groups
        ``(coefficient, terms)`` pairs; see the module docstring.
    eps
        The stabiliser added to ``z`` in the direction of its sign.
    by_sign
        Two groups, the first explaining the outputs ``z_j >= 0`` of the unmodified layer and
        the second the outputs ``z_j < 0`` (the signed gamma rule).
    """

    name: str
    kind: str = "terms"
    groups: tuple[tuple[float, tuple[Term, ...]], ...] = ()
    eps: float = 1e-9
    by_sign: bool = False


PASS = Rule("pass", kind="pass")
GRADIENT = Rule("gradient", kind="gradient")


def epsilon(eps: float = 1e-6) -> Rule:
    """LRP-epsilon: ``R_i = sum_j x_i w_ij / (z_j + eps sign(z_j)) R_j`` (bias in ``z``).

    Parameters
    ----------
    eps
        The stabiliser; ``0 < eps``. Small values conserve relevance (without biases).
    """
    _check_positive(eps, "eps")
    return Rule(f"epsilon({eps:g})", groups=((1.0, (Term(),)),), eps=eps)


def gamma(g: float = 0.25, eps: float = 1e-6, *, signed: bool = True) -> Rule:
    """LRP-gamma: contributions of the output's own sign are boosted by ``1 + g``.

    With ``signed=True`` (the default; the sign-aware generalisation, as zennit's ``Gamma``
    describes it) an output ``z_j >= 0`` is explained with ``z_ij + g (z_ij)+`` and an output
    ``z_j < 0`` with ``z_ij + g (z_ij)-``, where ``z_ij = x_i w_ij`` (the bias is the
    contribution of an input 1). With ``signed=False`` the weights are ``w + g w+`` and the bias
    ``b + g b+`` whatever the signs (Montavon et al. 2019, Captum's ``GammaRule``). The two agree
    when the inputs are non-negative and the outputs positive (a ReLU network's hidden layers);
    elsewhere the classic rule boosts *negative* contributions ``x- w+`` of mixed-sign inputs
    and pushes a negative ``z_j`` towards zero (a small or sign-flipped denominator), which is
    why the signed rule is the default.

    Parameters
    ----------
    g
        ``gamma >= 0``; 0 is LRP-epsilon.
    eps
        Stabiliser.
    signed
        The sign-aware rule (default) or the classic ``w + g w+``.
    """
    if isinstance(g, bool) or not isinstance(g, (int, float)) or not g >= 0:
        raise InputError(f"gamma must be a number >= 0, got {g!r}.")
    if not signed:
        def boost(t: Tensor) -> Tensor:
            return t + g * t.clamp(min=0)

        mod = Modifier(f"gamma({g:g})", boost)
        return Rule(f"gamma({g:g},classic)", groups=((1.0, (Term(weight=mod, bias=mod),)),),
                    eps=eps)

    def up(t: Tensor) -> Tensor:
        return g * t.clamp(min=0)

    def down(t: Tensor) -> Tensor:
        return g * t.clamp(max=0)

    gpos = Modifier(f"{g:g}*positive", up, on_pooling="error")
    gneg = Modifier(f"{g:g}*negative", down, on_pooling="error")
    rise = (Term(), Term(POSITIVE, gpos, gpos), Term(NEGATIVE, gneg, None))
    fall = (Term(), Term(POSITIVE, gneg, gneg), Term(NEGATIVE, gpos, None))
    return Rule(f"gamma({g:g})", groups=((1.0, rise), (1.0, fall)), eps=eps, by_sign=True)


def alpha_beta(alpha: float = 2.0, beta: float = 1.0, eps: float = 1e-9) -> Rule:
    """LRP-alpha-beta: ``R_i = sum_j (alpha z+_ij / z+_j - beta z-_ij / z-_j) R_j``.

    Positive contributions (``x+ w+``, ``x- w-`` and ``b+``) and negative ones (``x+ w-``,
    ``x- w+`` and ``b-``) are normalised separately. Conservative when ``alpha - beta = 1``.

    Parameters
    ----------
    alpha
        Weight of the positive part.
    beta
        Weight of the negative part.
    eps
        Stabiliser (guards empty groups).
    """
    if alpha - beta != 1 or beta < 0:
        raise InputError(f"alpha-beta needs alpha - beta = 1 and beta >= 0; got alpha={alpha}, "
                         f"beta={beta}.")
    pos = (Term(POSITIVE, POSITIVE, POSITIVE), Term(NEGATIVE, NEGATIVE, None))
    neg = (Term(POSITIVE, NEGATIVE, NEGATIVE), Term(NEGATIVE, POSITIVE, None))
    groups: tuple[tuple[float, tuple[Term, ...]], ...] = ((alpha, pos),)
    if beta:
        groups = (*groups, (-beta, neg))
    return Rule(f"alpha{alpha:g}_beta{beta:g}", groups=groups, eps=eps)


def z_plus(eps: float = 1e-9) -> Rule:
    """The z+ rule of Deep Taylor decomposition: only positive contributions, no bias.

    Parameters
    ----------
    eps
        Stabiliser.
    """
    return Rule("z_plus", groups=((1.0, (Term(POSITIVE, POSITIVE, None),
                                         Term(NEGATIVE, NEGATIVE, None))),), eps=eps)


def z_box(low: float | Tensor, high: float | Tensor, eps: float = 1e-9) -> Rule:
    """The z-box rule for a first layer whose inputs lie in ``[low, high]`` (bias ignored).

    ``z_j = sum_i x_i w_ij - l_i w+_ij - h_i w-_ij``; ``R_i = sum_j (x_i w_ij - l_i w+_ij -
    h_i w-_ij) / z_j R_j``.

    Parameters
    ----------
    low
        Lower bound of the inputs (a number or a tensor broadcastable to one example).
    high
        Upper bound.
    eps
        Stabiliser.
    """
    def lo(x: Tensor) -> Tensor:
        return torch.as_tensor(low, dtype=x.dtype, device=x.device).expand_as(x)

    def hi(x: Tensor) -> Tensor:
        return torch.as_tensor(high, dtype=x.dtype, device=x.device).expand_as(x)

    terms = (Term(bias=None), Term(Modifier("low", lo), POSITIVE, None, -1.0),
             Term(Modifier("high", hi), NEGATIVE, None, -1.0))
    return Rule("z_box", groups=((1.0, terms),), eps=eps)


def _ones(t: Tensor) -> Tensor:
    return torch.ones_like(t)


def _square(t: Tensor) -> Tensor:
    return t * t


def w_square(eps: float = 1e-9) -> Rule:
    """The w^2 rule (Deep Taylor, unbounded inputs): ``R_i = sum_j w_ij^2 / sum_i w_ij^2 R_j``.

    Parameters
    ----------
    eps
        Stabiliser.
    """
    term = Term(Modifier("ones", _ones), Modifier("square", _square, "error"), None)
    return Rule("w_square", groups=((1.0, (term,)),), eps=eps)


def flat(eps: float = 1e-9) -> Rule:
    """The flat rule: relevance spread uniformly over each output's receptive field.

    Parameters
    ----------
    eps
        Stabiliser.
    """
    term = Term(Modifier("ones", _ones), Modifier("ones", _ones, "error"), None)
    return Rule("flat", groups=((1.0, (term,)),), eps=eps)


def _check_positive(v: float, name: str) -> None:
    if not v > 0:
        raise InputError(f"{name} must be > 0, got {v!r}.")


def stabilize(z: Tensor, eps: float) -> Tensor:
    """``z + eps * sign(z)`` with ``sign(0) = +1``: never zero for ``eps > 0``."""
    return z + eps * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def layer_forward(module: nn.Module, x: Tensor, weight: Tensor | None,
                  bias: Tensor | None) -> Tensor:
    """Evaluate a linear layer on ``x`` with the given parameters (the module is not changed).

    Parameters
    ----------
    module
        ``Linear``, ``Conv1d/2d/3d`` or a pooling layer (``weight`` ignored).
    x
        The layer input.
    weight
        The (modified) weight.
    bias
        The (modified) bias or ``None``.
    """
    if weight is None:
        out: Tensor = module.forward(x)
        return out
    if type(module).forward not in _PLAIN_FORWARDS:
        # a subclass with its own forward (e.g. static "same" padding): run that forward with
        # the parameters swapped for the duration of the call (restored on exit)
        cur = getattr(module, "bias", None)
        zero = None if bias is not None or not isinstance(cur, Tensor) else \
            torch.zeros_like(cur)
        swapped = {"weight": weight, "bias": bias if bias is not None else zero}
        params = {k: v for k, v in swapped.items() if v is not None}
        with _reparametrize_module(module, params):
            out = module.forward(x)
        return out
    if isinstance(module, nn.Linear):
        return F.linear(x, weight, bias)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        out = module._conv_forward(x, weight, bias)
        return out
    raise UnsupportedModelError(f"{type(module).__name__} is not a linear layer LRP knows.")


def linear_relevance(rule: Rule, module: nn.Module, x: Tensor, relevance: Tensor,
                     weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """The relevance of ``x`` given the relevance of the layer's output, by ``rule``.

    Parameters
    ----------
    rule
        A ``"terms"`` rule.
    module
        The layer (``Linear``, ``Conv``, average pooling).
    x
        The layer input (detached).
    relevance
        The relevance of the layer output.
    weight
        The layer's weight (merged with a BatchNorm by a canonizer), ``None`` for pooling.
    bias
        The layer's bias or ``None``.

    Returns
    -------
    Tensor
        The relevance of ``x``.
    """
    total = torch.zeros_like(x)
    shares: list[Tensor] = [relevance] * len(rule.groups)
    if rule.by_sign:
        with torch.no_grad():
            rising = layer_forward(module, x, weight, bias) >= 0
        shares = [torch.where(rising, relevance, 0.0), torch.where(rising, 0.0, relevance)]
    for (coefficient, terms), share in zip(rule.groups, shares, strict=True):
        evaluated = []
        z: Tensor | None = None
        for term in terms:
            if weight is None and term.weight.on_pooling != "keep":
                if term.weight.on_pooling == "drop":
                    continue
                raise UnsupportedModelError(
                    f"rule {rule.name} modifies weights ({term.weight.name}), but "
                    f"{type(module).__name__} has none; assign it another rule (epsilon).")
            xin = term.input.fn(x).detach().requires_grad_(True)
            w = None if weight is None else term.weight.fn(weight)
            b = None if bias is None or term.bias is None else term.bias.fn(bias)
            out = layer_forward(module, xin, w, b)
            evaluated.append((term, xin, out))
            z = term.sign * out if z is None else z + term.sign * out
        if z is None:
            continue
        s = share / stabilize(z, rule.eps)
        for term, xin, out in evaluated:
            (g,) = torch.autograd.grad(out, xin, s, retain_graph=False, allow_unused=True)
            if g is not None:
                total = total + coefficient * term.sign * xin.detach() * g
    return total
