"""What the metric families share: the result type and the attribution plumbing.

Conventions (those of Quantus 0.6, so that scores can be compared with it): a *feature* is one
element of the inputs; attributions are broadcast to the inputs' shape (a ``(N, 1, H, W)`` map
covers every channel of its pixel); features are ranked by their signed attribution, most
relevant first, with ties kept in index order; perturbed features take the baseline's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError

__all__ = ["MetricResult", "as_inputs", "broadcast_values", "generator", "pearson"]


@dataclass(frozen=True)
class MetricResult:
    """The score of a metric for each example.

    Attributes
    ----------
    name
        The metric.
    scores
        ``(N,)`` one score per example (float64).
    higher_is_better
        The direction in which the score is better.
    curve
        ``(N, S)`` the curve the score summarises, where there is one (pixel flipping, ROAD...).
    params
        The metric's settings, for the record.
    """

    name: str
    scores: Tensor
    higher_is_better: bool
    curve: Tensor | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """The mean score over the examples (NaN scores left out)."""
        return float(self.scores.to(torch.float64).nanmean())

    def __repr__(self) -> str:
        arrow = "higher" if self.higher_is_better else "lower"
        return f"MetricResult({self.name}, mean={self.mean:.4g}, {arrow} is better)"


def as_inputs(inputs: object) -> Tensor:
    """The inputs as a tensor (NumPy arrays are accepted, as for black-box models)."""
    if isinstance(inputs, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(inputs))
    if not isinstance(inputs, Tensor) or inputs.dim() < 2:
        raise InputError("inputs must be a tensor (N, ...) with a batch axis.")
    return inputs.detach()


def broadcast_values(attributions: Attribution | Tensor | np.ndarray[Any, Any],
                     inputs: Tensor) -> Tensor:
    """Attributions broadcast to the inputs' shape, float64, ``(N, ...)``."""
    v: Any = attributions.values if isinstance(attributions, Attribution) else attributions
    if isinstance(v, np.ndarray):
        v = torch.from_numpy(v)
    if not isinstance(v, Tensor):
        raise InputError("attributions must be an Attribution, a tensor or a NumPy array.")
    if isinstance(attributions, Attribution) and attributions.multi_target:
        raise InputError("this attribution has several targets; pick one with "
                         "attribution.for_target(k).")
    try:
        out = v.detach().to(torch.float64).to(inputs.device).expand_as(inputs)
    except RuntimeError as err:
        raise InputError(f"attributions {tuple(v.shape)} do not broadcast to the inputs "
                         f"{tuple(inputs.shape)}.") from err
    return out


def generator(seed: int) -> torch.Generator:
    """A local CPU random generator (metrics never touch global random state)."""
    return torch.Generator(device="cpu").manual_seed(int(seed))


def pearson(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of the rows of ``a`` and ``b`` ``(N, R)`` -> ``(N,)`` (NaN where a
    row is constant, as ``scipy.stats.pearsonr``)."""
    a = a.to(torch.float64) - a.to(torch.float64).mean(-1, keepdim=True)
    b = b.to(torch.float64) - b.to(torch.float64).mean(-1, keepdim=True)
    den = a.norm(dim=-1) * b.norm(dim=-1)
    r = (a * b).sum(-1) / den
    return torch.where(den > 0, r.clamp(-1, 1), torch.full_like(r, float("nan")))
