"""AttnLRP's rules for transformers, as data (Achtibat et al., ICML 2024).

AttnLRP runs in the *gradient x input* form of LRP: every tensor ``t`` of the forward pass
carries a modified gradient ``g_t`` with ``relevance(t) = t * g_t``, so one backward pass from
the target logit (seeded with 1) gives ``relevance(inputs_embeds) = inputs_embeds * g``.
Operations whose plain gradient already is their LRP rule need nothing:

* linear layers and rotary embeddings (linear in their input): the plain gradient is the
  epsilon rule with ``epsilon -> 0`` (the bias absorbs its share); a positive ``epsilon`` scales
  the gradient at each linear output by ``z / (z + epsilon sign(z))`` (:data:`EPSILON`);
* softmax: the plain gradient times the input is the paper's linearisation rule
  ``R_i = x_i (R_i^out - s_i sum_j R_j^out)`` (Proposition 3.1);
* additions (residual streams, attention masks): the gradient splits relevance in proportion to
  the operands.

The rest are :class:`TransformerRule` s attached to modules:

* :data:`UNIFORM` (the uniform rule, Eq. 7): a product of ``n`` traced factors (the bilinear
  ``Q K^T`` and ``A V``, the gate ``act(gate) * up``) gives each factor ``1/n`` of its relevance;
  its gradient is divided by ``n``. The query and key pass two such products (``Q K^T`` then
  ``A V``) and get ``1/4``, the value ``1/2``, the gate's two factors ``1/2`` each. The shares
  are set on the projections that make the factors (:data:`BLOCKS`).
* :data:`IDENTITY` (the identity rule, Eq. 9) on element-wise activations (SiLU, GELU, tanh):
  relevance passes unchanged, ``g_in = g_out * act(x) / x``.
* :data:`CONSTANT_NORM` on RMSNorm / LayerNorm: the division by the standard deviation is held
  constant, so the normalisation is linear (the identity rule for RMSNorm, the epsilon rule of
  the centring for LayerNorm).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.methods.propagation.rules import stabilize

__all__ = [
    "BLOCKS",
    "CONSTANT_NORM",
    "EPSILON",
    "IDENTITY",
    "UNIFORM",
    "Block",
    "TransformerRule",
    "constant_norm",
    "identity_rule",
    "is_activation",
    "norm_kind",
    "scale_gradient",
]


@dataclass(frozen=True)
class TransformerRule:
    """One AttnLRP rule: its name, the paper's equation and what it does to the gradient.

    Attributes
    ----------
    name
        ``"uniform"``, ``"identity"``, ``"constant_norm"`` or ``"epsilon"``.
    equation
        Where the paper states it.
    gradient
        How the modified gradient is formed, in words.
    """

    name: str
    equation: str
    gradient: str


UNIFORM = TransformerRule("uniform", "Eq. 7 (bilinear and element-wise products)",
                          "divided by the number of traced factors")
IDENTITY = TransformerRule("identity", "Eq. 9 (element-wise activations)",
                           "g_out * act(x) / (x + 1e-10 sign(x))")
CONSTANT_NORM = TransformerRule("constant_norm", "Section 3.3.2 (normalisation layers)",
                                "the standard deviation held constant (detached)")
EPSILON = TransformerRule("epsilon", "Eq. 3 (linear layers, rotary embeddings)",
                          "g_out * z / (z + epsilon sign(z)); plain gradient at epsilon = 0")


@dataclass(frozen=True)
class Block:
    """Where the uniform rule's shares go in one kind of transformer block.

    A module matches when its class name ends with ``suffix`` and it has every child named in
    ``shares``. Each child's output gradient is multiplied by its share (a tuple: the output is
    split into equal parts along its last axis, one share each, as GPT-2's fused ``c_attn``).

    Attributes
    ----------
    name
        For messages and docs.
    suffix
        The end of the block's class name.
    shares
        Child name -> share(s).
    products
        The traced products one call of the block holds (checked against the autograd graph).
    """

    name: str
    suffix: str
    shares: Mapping[str, float | tuple[float, ...]] = field(default_factory=dict)
    products: int = 0

    def matches(self, module: nn.Module) -> bool:
        """Whether ``module`` is such a block."""
        kids = dict(module.named_children())
        return type(module).__name__.endswith(self.suffix) and all(k in kids
                                                                    for k in self.shares)


#: The blocks AttnLRP knows, first match wins: Llama-style attention (Llama, Mistral, Qwen2,
#: SmolLM2...), BERT self-attention, GPT-2 attention (fused ``c_attn``), gated MLPs.
BLOCKS: tuple[Block, ...] = (
    Block("attention (q_proj, k_proj, v_proj)", "Attention",
          {"q_proj": 0.25, "k_proj": 0.25, "v_proj": 0.5}, products=2),
    Block("BERT self-attention (query, key, value)", "SelfAttention",
          {"query": 0.25, "key": 0.25, "value": 0.5}, products=2),
    Block("GPT-2 attention (fused c_attn)", "Attention", {"c_attn": (0.25, 0.25, 0.5)},
          products=2),
    Block("gated MLP (act_fn(gate_proj) * up_proj)", "MLP",
          {"gate_proj": 1.0, "up_proj": 0.5, "act_fn": 0.5}, products=1),
)

_ACTIVATION_TYPES = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.ELU, nn.SiLU, nn.GELU,
                     nn.Softplus, nn.Mish, nn.Hardswish, nn.Hardtanh)


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is an element-wise activation (torch's or transformers')."""
    if isinstance(module, _ACTIVATION_TYPES):
        return True
    return (type(module).__module__ == "transformers.activations"
            and not any(True for _ in module.parameters()))


def norm_kind(module: nn.Module) -> str | None:
    """``"layer"`` for a LayerNorm, ``"rms"`` for an RMSNorm, ``None`` otherwise."""
    if isinstance(module, nn.LayerNorm):
        return "layer"
    if isinstance(module, nn.RMSNorm) or (type(module).__name__.endswith("RMSNorm")
                                          and isinstance(getattr(module, "weight", None), Tensor)):
        return "rms"
    return None


def norm_eps(module: nn.Module) -> float:
    """The stabiliser under the square root of a norm layer."""
    for attr in ("variance_epsilon", "eps", "epsilon"):
        v = getattr(module, attr, None)
        if isinstance(v, (int, float)):
            return float(v)
    if isinstance(module, nn.RMSNorm):
        return float(torch.finfo(torch.float32).eps)
    return 1e-6


class _Scale(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``factor`` (a number or a last-axis vector)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, factor: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(factor)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (factor,) = ctx.saved_tensors
        return grad * factor, None


def scale_gradient(x: Tensor, share: float | tuple[float, ...]) -> Tensor:
    """``x`` unchanged, with its gradient multiplied by ``share`` (uniform rule's share).

    Parameters
    ----------
    x
        A traced tensor.
    share
        One factor, or one per equal part of the last axis.
    """
    if isinstance(share, tuple):
        n = x.shape[-1] // len(share)
        factor = torch.cat([x.new_full((n,), s) for s in share])
    else:
        if share == 1.0:
            return x
        factor = x.new_tensor(share)
    out: Tensor = _Scale.apply(x, factor)  # type: ignore[no-untyped-call]
    return out


class _Ratio(torch.autograd.Function):
    """Value ``y``; the gradient reaching ``x`` is ``grad * ratio`` (``ratio`` precomputed)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor, ratio: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(ratio)
        return y.view_as(y)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (ratio,) = ctx.saved_tensors
        return grad * ratio, None, None


def identity_rule(x: Tensor, y: Tensor, share: float = 1.0) -> Tensor:
    """The identity rule on ``y = act(x)``: ``g_x = share * g_y * y / (x + 1e-10 sign(x))``.

    Parameters
    ----------
    x
        The activation's input (traced).
    y
        Its output.
    share
        An extra gradient factor (the uniform rule's share when ``y`` is a factor of a product).
    """
    yd = y.detach()
    ratio = yd / stabilize(x.detach(), 1e-10)
    if share != 1.0:
        ratio = ratio * share
    out: Tensor = _Ratio.apply(x, yd, ratio)  # type: ignore[no-untyped-call]
    return out


class _ConstantNorm(torch.autograd.Function):
    """Value ``y``; the gradient of the norm with its standard deviation held constant."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor, scale: Tensor,  # type: ignore[override]
                centred: bool) -> Tensor:
        ctx.save_for_backward(scale)
        ctx.centred = centred
        return y.view_as(y)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:  # type: ignore[override]
        (scale,) = ctx.saved_tensors
        g = grad * scale
        if ctx.centred:
            g = g - g.mean(dim=-1, keepdim=True)
        return g, None, None, None


def constant_norm(module: nn.Module, x: Tensor, y: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    """The norm layer's output ``y`` with the constant-deviation gradient, and ``y`` recomputed.

    ``y = w (x - mean x) / s + b`` (LayerNorm) or ``w x / s`` (RMSNorm) with ``s`` held constant:
    ``g_x = P(g_y w / s)``, ``P`` the centring (LayerNorm) or the identity (RMSNorm).

    Parameters
    ----------
    module
        The norm layer.
    x
        Its input (traced).
    y
        Its output.
    kind
        ``"layer"`` or ``"rms"``.

    Returns
    -------
    out
        ``y`` with the rule's gradient.
    expected
        The output recomputed from the formula (the caller checks it equals ``y``).
    """
    with torch.no_grad():
        xd = x.detach()
        eps = norm_eps(module)
        centred = kind == "layer"
        xc = xd - xd.mean(dim=-1, keepdim=True) if centred else xd
        inv = torch.rsqrt((xc * xc).mean(dim=-1, keepdim=True) + eps)
        w = getattr(module, "weight", None)
        scale = inv if w is None else inv * w.detach()
        expected = xc * scale
        b = getattr(module, "bias", None)
        if isinstance(b, Tensor):
            expected = expected + b.detach()
    out: Tensor = _ConstantNorm.apply(x, y.detach(), scale, centred)  # type: ignore[no-untyped-call]
    return out, expected


class _Epsilon(torch.autograd.Function):
    """Value ``z``; gradient ``grad * z / (z + eps sign(z))`` (the epsilon rule of a linear map)."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, eps: float) -> Tensor:  # type: ignore[override]
        zd = z.detach()
        ctx.save_for_backward(zd / stabilize(zd, eps))
        return z.view_as(z)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (ratio,) = ctx.saved_tensors
        return grad * ratio, None


def epsilon_rule(z: Tensor, eps: float) -> Tensor:
    """A linear layer's output ``z`` with the epsilon rule's gradient."""
    out: Tensor = _Epsilon.apply(z, eps)  # type: ignore[no-untyped-call]
    return out
