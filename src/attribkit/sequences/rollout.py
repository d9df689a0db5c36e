"""Attention rollout (Abnar & Zuidema 2020) for :func:`attribkit.explain_generation`.

Per layer ``l`` the attention weights are averaged over the heads, the identity is added for the
residual connection and each row is normalised: ``A_l = (mean_h W_lh + I) / 2`` (the rows of a
softmax attention sum to one). The rollout multiplies them through the layers,
``R = A_L ... A_2 A_1``; its row at the position that predicts generated token ``t`` (position
``Lp - 1 + t`` of ``prompt + generated[:-1]``), restricted to the prompt's columns, is the
attribution of token ``t``. Rows of ``R`` sum to one, so a row's prompt part is the share of the
predicting position's "attention flow" that comes from the prompt (the rest comes from the
generated tokens before ``t``).

Attention weights need the model's eager attention (SDPA and flash kernels do not return them):
the model's attention implementation is switched to ``"eager"`` for one forward pass and set back
to what it was, also when the pass fails; the weights are read with forward hooks that are
removed afterwards. Causal LMs only (GPT-2, Llama, ...); the rollout does
not depend on the target's value, only on the attention pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.errors import NonFiniteError, UnsupportedModelError
from attribkit.sequences.scoring import Scorer

__all__ = ["attention_rollout", "rollout_matrix"]


def attention_rollout(attentions: Sequence[Tensor]) -> Tensor:
    """The rollout ``A_L ... A_1`` of per-layer attention weights, ``(L, L)`` in float64.

    Parameters
    ----------
    attentions
        One ``(H, L, L)`` (or ``(1, H, L, L)``) tensor of attention weights per layer, first
        layer first; row ``i`` holds the weights position ``i`` gives every position.

    Returns
    -------
    Tensor
        ``(L, L)``; row ``i`` is how much of position ``i``'s top-layer state flows from each
        input position. Every row sums to one.
    """
    if not attentions:
        raise UnsupportedModelError("the model returned no attention weights; attention rollout "
                                    "needs a model that supports output_attentions=True.")
    out: Tensor | None = None
    for att in attentions:
        w = att.detach().to(torch.float64)
        w = w[0] if w.dim() == 4 else w
        mixed = w.mean(dim=0) + torch.eye(w.shape[-1], dtype=w.dtype, device=w.device)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        out = mixed if out is None else mixed @ out
    assert out is not None
    return out


def _set_attention(model: Any, name: str) -> None:
    setter = getattr(model, "set_attn_implementation", None)
    if callable(setter):
        setter(name)
    else:  # older transformers: the config field is read at every forward pass
        model.config._attn_implementation = name


def _attention_modules(model: nn.Module) -> list[nn.Module]:
    """The innermost modules whose class name says attention (one per layer), in order."""
    def is_attention(m: nn.Module) -> bool:
        return "attention" in type(m).__name__.lower()

    return [m for m in model.modules()
            if is_attention(m) and not any(is_attention(c) for c in m.modules() if c is not m)]


def rollout_matrix(scorer: Scorer) -> tuple[Tensor, Tensor]:
    """Attention rollout of every generated token to the prompt.

    The attention weights are read with forward hooks on the model's attention modules (eager
    attention returns them as the second output); the hooks are removed afterwards, and
    transformers' own ``output_attentions`` machinery, which would leave hooks behind, is not used.

    Parameters
    ----------
    scorer
        The generation's scorer (a causal LM; its prompt embeddings are the model's own).

    Returns
    -------
    matrix
        ``(T, Lp)`` the rollout rows of the positions that predict the generated tokens, at the
        prompt's columns (float64).
    logprobs
        ``(T,)`` the tokens' log-probabilities (from the same forward pass).
    """
    model = scorer.model
    if scorer.encoder_decoder:
        raise UnsupportedModelError("attention rollout is implemented for causal LMs (GPT-2, "
                                    "Llama, ...); use another method for encoder-decoders.")
    weights: list[Tensor] = []

    def keep(_m: nn.Module, _a: Any, out: Any) -> None:
        if isinstance(out, tuple) and len(out) > 1 and isinstance(out[1], Tensor) \
                and out[1].dim() == 4:
            weights.append(out[1].detach()[0])

    handles = [scorer.guard.add_handle(m.register_forward_hook(keep))
               for m in _attention_modules(model)]
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    try:
        if before != "eager":
            _set_attention(model, "eager")
        with torch.no_grad():
            logprobs = scorer(scorer.prompt_embeds[None])[0]
    finally:
        for h in handles:
            h.remove()
        if before is not None and before != "eager":
            _set_attention(model, before)
    n = scorer.n_prompt + scorer.n_target - 1
    if not weights or any(w.shape[-2:] != (n, n) for w in weights):
        raise UnsupportedModelError("could not read the attention weights of this model; "
                                    "attention rollout needs eager attention modules that return "
                                    "them (GPT-2, Llama, ...).")
    rollout = attention_rollout(weights)
    if not bool(torch.isfinite(rollout).all()):
        raise NonFiniteError("the attention rollout contains NaN or inf; try a float64 model "
                             "(model.double()).")
    lp, t = scorer.n_prompt, scorer.n_target
    rows = torch.arange(lp - 1, lp - 1 + t)
    return rollout[rows][:, :lp], logprobs.detach()
