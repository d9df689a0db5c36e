"""Sanity checks by model-parameter randomisation (Adebayo et al. 2018).

The model is deep-copied (the user's model is never touched); the parameters of its layers are
re-initialised, from the top layer down (cascading) or one layer at a time (independent), and the
attributions of the randomised model are compared with the original ones by Spearman rank
correlation. A method that explains the model should lose its correlation as weights are
destroyed; one that only reflects the input (an edge detector) keeps it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.errors import InputError
from attribkit.core.progress import progress_bar
from attribkit.core.signs import DEFAULT_SIGN, apply_sign, resolve_sign
from attribkit.core.summary import summary_repr
from attribkit.evaluate._features import spearman
from attribkit.methods.registry import get

__all__ = ["RandomisationResult", "model_randomisation", "parameter_layers", "randomise_layers"]

Method = str | Callable[..., Attribution]


@dataclass(frozen=True)
class RandomisationResult:
    """Rank correlations between original and randomised-model attributions.

    Attributes
    ----------
    mode
        ``"cascading"`` or ``"independent"``.
    steps
        The layer randomised at each step (cascading: cumulative, top layer first).
    correlations
        ``(S, N)`` Spearman correlation per step and example.
    original
        The attribution of the untouched model.
    randomised
        ``(S, N, ...)`` the attribution values after each step.
    """

    mode: str
    steps: tuple[str, ...]
    correlations: Tensor
    original: Attribution
    randomised: Tensor

    __repr__ = summary_repr

    @property
    def mean_correlation(self) -> Tensor:
        """``(S,)`` the correlation per step, averaged over examples."""
        return self.correlations.nanmean(dim=1)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, for JSON and the report."""
        return {"mode": self.mode, "steps": list(self.steps),
                "mean_correlation": self.mean_correlation.tolist(),
                "correlations": self.correlations.tolist()}


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of the sub-modules that own parameters directly, in definition order."""
    return [name for name, m in model.named_modules()
            if any(True for _ in m.parameters(recurse=False))]


@shared_parameters("seed:reinit")
def randomise_layers(model: nn.Module, names: Sequence[str], seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with the parameters of ``names`` re-initialised.

    Modules with ``reset_parameters`` use their own initialisation (with a seeded, local random
    state); other parameters are drawn from a normal with the original tensor's spread.

    Parameters
    ----------
    model
        The model; it is not changed.
    names
        Sub-module names (see :func:`parameter_layers`).
    """
    clone = copy.deepcopy(model)
    for i, name in enumerate(names):
        module = clone.get_submodule(name)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed * 1000 + i)
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            else:
                for p in module.parameters(recurse=False):
                    std = float(p.std()) if p.numel() > 1 else 0.0
                    p.copy_(torch.randn_like(p) * (std if std > 0 else 1.0))
    return clone


@shared_parameters("inputs", "seed:reinit")
def model_randomisation(
    model: nn.Module,
    inputs: Tensor,
    method: Method = "integrated_gradients",
    *,
    mode: str = "cascading",
    layers: Sequence[str] | None = None,
    target: Any = None,
    seed: int = 0,
    sign: str = DEFAULT_SIGN,
    absolute: bool | None = None,
    progress: bool = False,
    **options: Any,
) -> RandomisationResult:
    """Cascading or independent parameter randomisation with rank correlations.

    Parameters
    ----------
    model
        An ``nn.Module``; randomisation happens on deep copies.
    method
        A registered method name or a function ``(model, inputs, **options) -> Attribution``.
    mode
        ``"cascading"`` (top layer first, cumulative) or ``"independent"`` (one at a time).
    layers
        The layers to randomise, input to output (default :func:`parameter_layers`).
    target
        The explained class; default the predicted class of the original model, kept fixed for
        the randomised models.
    sign
        ``"absolute"``: correlate magnitudes (as Adebayo et al.'s main figures); ``"all"``: the
        signed attributions; ``"positive"`` / ``"negative"``: one part only.
    absolute
        Deprecated: ``True`` is ``sign="absolute"``, ``False`` is ``sign="all"``.
    progress
        Show a progress bar over the steps.
    **options
        Passed to the method (``baseline``, ``steps``, ...).
    """
    sign = resolve_sign(sign, absolute, where="model_randomisation")
    if mode not in ("cascading", "independent"):
        raise InputError(f"mode must be 'cascading' or 'independent', got {mode!r}.")
    if not isinstance(model, nn.Module):
        raise InputError("model randomisation needs an nn.Module (its parameters are re-drawn).")
    fn = get(method).fn if isinstance(method, str) else method
    names = list(layers) if layers is not None else parameter_layers(model)
    if not names:
        raise InputError("the model has no layers with parameters to randomise.")
    original = fn(model, inputs, target=target, **options)
    fixed = original.target if original.target is not None else target
    order = names[::-1]
    values, corr = [], []
    with progress_bar(len(order), f"randomisation ({mode})", progress, unit="layer") as bar:
        for i, name in enumerate(order):
            chosen = order[: i + 1] if mode == "cascading" else [name]
            randomised = randomise_layers(model, chosen, seed=seed)
            attr = fn(randomised, inputs, target=fixed, **options)
            a, b = apply_sign(original.values, sign), apply_sign(attr.values, sign)
            values.append(attr.values)
            corr.append(spearman(a, b))
            bar.update(1)
    return RandomisationResult(mode=mode, steps=tuple(order), correlations=torch.stack(corr),
                               original=original, randomised=torch.stack(values))
