"""Composites: LRP rules assigned to modules by name or by type, and named presets.

A :class:`Composite` is data: an ordered list of ``(module types, rule)`` pairs (the first match
wins), exact names that override them, and an optional rule for the first linear layer (z-box,
w^2). Activations, softmax, dropout and flatten get :data:`~.rules.PASS` (relevance unchanged) and
max pooling :data:`~.rules.GRADIENT` (winner takes all) unless the composite says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from attribkit.core.errors import InputError, UnsupportedModelError
from attribkit.methods.propagation import rules as R
from attribkit.methods.propagation.canonizers import LINEAR_TYPES, units

__all__ = [
    "ACTIVATIONS",
    "AVG_POOLS",
    "CONV_TYPES",
    "MAX_POOLS",
    "PADDING",
    "PASS_THROUGH",
    "PRESETS",
    "Composite",
    "preset",
]

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
             nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d,
             nn.AdaptiveMaxPool2d)
#: Element-wise nonlinearities (DeepLIFT rescales them; LRP passes relevance through).
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.ELU, nn.SiLU, nn.GELU,
               nn.Softplus, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh)
#: Constant padding: linear, zero relevance on the padded entries (gradient rule everywhere).
PADDING = (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d)
#: Modules that leave values (or structure only) unchanged in eval mode: not hooked.
PASS_THROUGH = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                nn.Dropout3d, nn.AlphaDropout)


@dataclass(frozen=True)
class Composite:
    """Rules for the linear layers of a model.

    Attributes
    ----------
    name
        For the record.
    by_type
        ``(types, rule)`` pairs; the first whose types match a module gives its rule.
    by_name
        Qualified module name -> rule; overrides ``by_type``.
    first
        Rule for the first linear layer (the one that sees the input), or ``None``.
    """

    name: str
    by_type: tuple[tuple[tuple[type[nn.Module], ...], R.Rule], ...]
    by_name: Mapping[str, R.Rule] = field(default_factory=dict)
    first: R.Rule | None = None

    def assign(self, model: nn.Module) -> dict[nn.Module, R.Rule]:
        """The rule of every leaf module that needs a hook.

        Parameters
        ----------
        model
            The model.

        Returns
        -------
        dict
            Module -> rule. Pass-through modules are left out.
        """
        out: dict[nn.Module, R.Rule] = {}
        first_done = False
        for name, m in units(model):
            if isinstance(m, PASS_THROUGH):
                continue
            rule: R.Rule | None = self.by_name.get(name)
            if rule is None and isinstance(m, (*LINEAR_TYPES, *AVG_POOLS)):
                if self.first is not None and not first_done and isinstance(m, LINEAR_TYPES):
                    rule = self.first
                else:
                    rule = next((r for t, r in self.by_type if isinstance(m, t)), None)
                    if rule is None:
                        rule = R.epsilon(1e-9)
            if isinstance(m, LINEAR_TYPES):
                first_done = True
            if rule is None:
                if isinstance(m, (*ACTIVATIONS, nn.Softmax)):
                    rule = R.PASS
                elif isinstance(m, (*MAX_POOLS, *PADDING)):
                    rule = R.GRADIENT
                elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                    continue  # merged by the canonizer, or reported there
                elif not any(True for _ in m.parameters(recurse=False)) and not m._buffers:
                    continue  # parameter-free leaf: the graph check will catch real operations
                else:
                    raise UnsupportedModelError(
                        f"module '{name}' ({type(m).__name__}) has no LRP rule; supported: "
                        "Linear, Conv1d/2d, pooling, activations, BatchNorm (merged), Flatten, "
                        "Dropout. Give it one with Composite(by_name={...}).")
            out[m] = rule
        return out


def preset(name: str, *, epsilon: float = 1e-6, gamma: float = 0.25,
           low: Any = None, high: Any = None, signed_gamma: bool = True) -> Composite:
    """A named composite.

    Parameters
    ----------
    name
        One of :data:`PRESETS`.
    epsilon
        The epsilon of epsilon rules (``epsilon_plus`` etc. use it for dense layers).
    gamma
        The gamma of gamma rules.
    low
        Lower bound of the inputs for z-box (``z_box``, ``epsilon_gamma_box``, ``deep_taylor``).
    high
        Upper bound of the inputs.
    signed_gamma
        The sign-aware gamma rule (default) or the classic ``w + gamma w+``
        (see :func:`~.rules.gamma`).

    Returns
    -------
    Composite
        The composite.
    """
    eps = R.epsilon(epsilon)
    box = None if low is None or high is None else R.z_box(low, high)
    lin: tuple[type[nn.Module], ...] = (nn.Linear,)
    conv: tuple[type[nn.Module], ...] = CONV_TYPES
    pools: tuple[type[nn.Module], ...] = AVG_POOLS
    table: dict[str, tuple[tuple[tuple[type[nn.Module], ...], R.Rule], ...]] = {
        "epsilon": ((lin + conv + pools, eps),),
        "gamma": ((lin + conv, R.gamma(gamma, epsilon, signed=signed_gamma)), (pools, eps)),
        "alpha2_beta1": ((lin + conv, R.alpha_beta(2.0, 1.0)), (pools, eps)),
        "alpha1_beta0": ((lin + conv, R.alpha_beta(1.0, 0.0)), (pools, eps)),
        "z_plus": ((lin + conv, R.z_plus()), (pools, eps)),
        "epsilon_plus": ((conv, R.z_plus()), (lin + pools, eps)),
        "epsilon_alpha2_beta1": ((conv, R.alpha_beta(2.0, 1.0)), (lin + pools, eps)),
        "epsilon_gamma_box": ((conv, R.gamma(gamma, epsilon, signed=signed_gamma)),
                              (lin + pools, eps)),
        "z_box": ((lin + conv + pools, eps),),
        "deep_taylor": ((lin + conv, R.z_plus()), (pools, eps)),
    }
    if name not in table:
        raise InputError(f"unknown LRP preset {name!r}; use one of {sorted(table)} or a "
                         "Composite / Rule.")
    first: R.Rule | None = None
    if name in ("z_box", "epsilon_gamma_box"):
        if box is None:
            raise InputError(f"preset {name!r} needs the input bounds low= and high=.")
        first = box
    elif name == "deep_taylor":
        first = box if box is not None else R.w_square()
    return Composite(name, table[name], first=first)


PRESETS = ("alpha1_beta0", "alpha2_beta1", "deep_taylor", "epsilon", "epsilon_alpha2_beta1",
           "epsilon_gamma_box", "epsilon_plus", "gamma", "z_box", "z_plus")
