"""Complexity metrics: how concentrated is an attribution? No model calls.

* :func:`sparseness` (Chalasani et al. 2020): the Gini index of ``|a|``; higher is sparser.
* :func:`complexity` (Bhatt, Weller & Moura 2020): the entropy of the fractional contributions
  ``|a_i| / sum |a|``; lower is simpler.

Both follow Quantus 0.6's defaults exactly: absolute values, each example divided by its
largest magnitude, ``1e-7`` added before the Gini index (so an all-zero map scores 0, not NaN)
and ``1e-12`` inside the logarithm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.evaluate._metric import MetricResult

__all__ = ["complexity", "sparseness"]


def _magnitudes(attributions: Attribution | Tensor | np.ndarray[Any, Any]) -> Tensor:
    v: Any = attributions.values if isinstance(attributions, Attribution) else attributions
    t = torch.as_tensor(v).detach().to(torch.float64).cpu()
    flat = t.reshape(t.shape[0], -1).abs()
    top = flat.max(dim=1, keepdim=True).values
    return torch.where(top > 0, flat / torch.where(top > 0, top, torch.ones_like(top)), flat)


def sparseness(attributions: Attribution | Tensor | np.ndarray[Any, Any]) -> MetricResult:
    """The Gini index of each example's attribution magnitudes (higher: sparser).

    ``G = sum_i (2 i - d - 1) a_(i) / (d sum_i a_(i))`` over the sorted magnitudes ``a_(1) <=
    ... <= a_(d)``: 0 for a uniform map, ``1 - 1/d`` for a single feature.
    """
    a = torch.sort(_magnitudes(attributions) + 1e-7, dim=1).values
    d = a.shape[1]
    i = torch.arange(1, d + 1, dtype=torch.float64)
    gini = ((2 * i - d - 1) * a).sum(1) / (d * a.sum(1))
    return MetricResult("sparseness", gini, True)


def complexity(attributions: Attribution | Tensor | np.ndarray[Any, Any]) -> MetricResult:
    """The entropy of each example's fractional contributions (lower: simpler); at most
    ``log d``."""
    a = _magnitudes(attributions)
    total = a.sum(1, keepdim=True)
    p = a / torch.where(total > 0, total, torch.ones_like(total))
    return MetricResult("complexity", -(p * torch.log(p + 1e-12)).sum(1), False)
