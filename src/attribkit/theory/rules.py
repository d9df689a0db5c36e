"""Table 1's allocation rules: what each rule gives from Taylor terms or Harsanyi dividends.

:data:`RULES` names the rules that can be computed from effects; :func:`rule_allocation` applies
one to a Taylor decomposition, :func:`dividend_rule` to a game's dividends,
:func:`implied_weight` is the share a rule gives each member of an effect and
:func:`rule_distance` how far an attribution is from a rule's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from attribkit.core import coalitions as co
from attribkit.core.errors import InputError
from attribkit.theory.taylor import TaylorDecomposition

__all__ = ["RULES", "dividend_rule", "implied_weight", "rule_allocation", "rule_distance"]

#: Table 1 allocation rules that can be computed from effects: name -> description.
RULES = {
    "shapley": "J(S) / |S| to each member (Shapley value, DeepSHAP)",
    "integrated_gradients": "kappa_i / |kappa| of each Taylor term (IG, DeepLIFT Rescale)",
    "occlusion": "every effect whole to every member (Occlusion-1)",
    "gradient_x_input": "kappa_i times each Taylor term at a zero baseline (x . grad F(x))",
    "banzhaf": "J(S) / 2^(|S| - 1) to each member (Banzhaf value)",
}


def rule_allocation(rule: str, decomposition: TaylorDecomposition) -> Tensor:
    """The attribution Table 1's ``rule`` (a key of :data:`RULES`) gives from Taylor terms."""
    n = decomposition.n_features
    out = torch.zeros(n, dtype=torch.float64)
    for t in decomposition.terms:
        sup = t.support
        for i in sup:
            if rule == "shapley":
                out[i] += t.value / len(sup)
            elif rule == "integrated_gradients":
                out[i] += t.value * t.kappa[i] / t.degree
            elif rule == "occlusion":
                out[i] += t.value
            elif rule == "gradient_x_input":
                out[i] += t.value * t.kappa[i]
            elif rule == "banzhaf":
                out[i] += t.value / 2 ** (len(sup) - 1)
            else:
                raise InputError(f"unknown rule {rule!r}; use one of {sorted(RULES)}.")
    return out


def dividend_rule(rule: str, div: Tensor) -> Tensor | None:
    """The attribution Table 1's ``rule`` gives from Harsanyi dividends ``div`` (``(2^n,)``,
    indexed by coalition bit mask); ``None`` for rules the dividends cannot show (the Taylor
    refinements of Integrated Gradients and Gradient x Input)."""
    if rule == "shapley":
        return co.shapley_from_dividends(div)
    if rule == "banzhaf":
        return co.banzhaf_from_dividends(div)
    if rule == "occlusion":
        n = co.n_players_of(div)
        return torch.stack([div.view(-1, 2, 1 << i)[:, 1, :].sum() for i in range(n)])
    return None  # the Taylor refinements are not visible in dividends


def rule_distance(a: Tensor, r: Tensor) -> float:
    """Relative L2 distance between an attribution ``a`` and a rule's allocation ``r``."""
    den = max(float(r.norm()), float(a.norm()), 1e-12)
    return float((a - r).norm()) / den


def implied_weight(rule: str, order: int) -> float:
    """The weight ``w_{i,S}`` that ``rule`` gives each member of an effect of ``order`` players
    (1 for occlusion, ``2^(1 - |S|)`` for Banzhaf, ``1 / |S|`` otherwise)."""
    if rule == "occlusion":
        return 1.0
    if rule == "banzhaf":
        return float(0.5 ** (order - 1))
    return 1.0 / order

