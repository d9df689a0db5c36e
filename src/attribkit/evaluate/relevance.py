"""Localisation against a ground-truth mask (Arras, Osman & Samek 2022, CLEVR-XAI). No model
calls.

* :func:`relevance_mass_accuracy`: the share of the (signed) attribution mass inside the mask,
  ``sum_{i in s} a_i / sum_i a_i``; higher is better.
* :func:`relevance_rank_accuracy`: with ``K`` features in the mask, the share of the ``K``
  highest-attributed features that lie inside it; higher is better.

As in Quantus 0.6, attributions are used signed (pass ``a.abs()`` for magnitudes) and the mask
is broadcast to the attributions; an empty mask gives NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.evaluate._metric import MetricResult

__all__ = ["relevance_mass_accuracy", "relevance_rank_accuracy"]

Values = Attribution | Tensor | np.ndarray[Any, Any]


def _pair(attributions: Values, mask: Tensor | np.ndarray[Any, Any]) -> tuple[Tensor, Tensor]:
    v: Any = attributions.values if isinstance(attributions, Attribution) else attributions
    a = torch.as_tensor(v).detach().to(torch.float64).cpu()
    s = torch.as_tensor(mask).detach().cpu()
    try:
        s = s.to(torch.bool).expand_as(a) if s.dim() == a.dim() else (
            s.to(torch.bool).reshape(*([1] * (a.dim() - s.dim())), *s.shape).expand_as(a))
    except RuntimeError as err:
        raise InputError(f"mask {tuple(s.shape)} does not broadcast to the attributions "
                         f"{tuple(a.shape)}.") from err
    return a.reshape(a.shape[0], -1), s.reshape(a.shape[0], -1)


def relevance_mass_accuracy(attributions: Values,
                            mask: Tensor | np.ndarray[Any, Any]) -> MetricResult:
    """The share of the attribution mass inside ``mask`` per example (higher is better)."""
    a, s = _pair(attributions, mask)
    score = (a * s).sum(1) / a.sum(1)
    score = torch.where(s.any(1), score, torch.full_like(score, float("nan")))
    return MetricResult("relevance_mass_accuracy", score, True)


def relevance_rank_accuracy(attributions: Values,
                            mask: Tensor | np.ndarray[Any, Any]) -> MetricResult:
    """The share of the ``K = |mask|`` top-ranked features inside ``mask`` (higher is better;
    ties keep the index order)."""
    a, s = _pair(attributions, mask)
    k = s.sum(1)
    order = torch.sort(-a, dim=1, stable=True).indices
    hits = s.gather(1, order).to(torch.float64)
    top = torch.arange(a.shape[1])[None, :] < k[:, None]
    score = (hits * top).sum(1) / k.clamp_min(1)
    score = torch.where(k > 0, score, torch.full_like(score, float("nan")))
    return MetricResult("relevance_rank_accuracy", score, True)
