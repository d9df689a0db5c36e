"""What LIME and KernelSHAP share: coalition samples, their game values, weighted regressions."""

from __future__ import annotations

import torch
from torch import Tensor

from attribkit.core.coalitions import coalition_values
from attribkit.core.engine import Problem
from attribkit.core.errors import InputError
from attribkit.core.probes import forward_rows

__all__ = ["check_samples", "forward_rows", "sample_values", "weighted_r2"]


def check_samples(samples: object, n_ex: int, n: int) -> Tensor:
    """Injected coalition samples as boolean ``(N, M, n)`` (``(M, n)`` is shared)."""
    if not isinstance(samples, Tensor):
        raise InputError(f"samples must be a boolean tensor (M, {n}) or ({n_ex}, M, {n}).")
    s = samples.bool() if samples.dtype != torch.bool else samples
    if samples.dtype not in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32,
                             torch.int64) or (samples.dtype != torch.bool and bool(
                                 ((samples != 0) & (samples != 1)).any())):
        raise InputError("samples must hold 0/1 (present/absent) for each interpretable feature.")
    if s.dim() == 2:
        s = s[None].expand(n_ex, *s.shape)
    if s.dim() != 3 or s.shape[0] != n_ex or s.shape[2] != n or s.shape[1] < 1:
        raise InputError(f"samples of shape {tuple(samples.shape)} do not fit {n} interpretable "
                         f"features: give (M, {n}) or ({n_ex}, M, {n}).")
    return s


def sample_values(p: Problem, ids: Tensor, n: int, samples: Tensor, rows: int,
                  desc: str) -> Tensor:
    """Target scores of the coalitions ``samples`` ``(N, M, n)``: ``(N, M)`` or ``(N, K, M)``.

    Players that are present keep the input's values, absent ones take the baseline's
    (``v(S) = F(x_S, b_rest)``).
    """
    return coalition_values(p, ids.reshape(p.inputs.shape), coalitions=samples, n_players=n,
                            batch_size=rows, desc=desc)


def weighted_r2(y: Tensor, pred: Tensor, w: Tensor) -> Tensor:
    """The weighted coefficient of determination over the last axis (as scikit-learn's
    ``r2_score`` with ``sample_weight``): ``1 - sum w (y - pred)^2 / sum w (y - mean_w y)^2``."""
    mean = (w * y).sum(-1, keepdim=True) / w.sum(-1, keepdim=True)
    ss_res = (w * (y - pred) ** 2).sum(-1)
    ss_tot = (w * (y - mean) ** 2).sum(-1)
    r2 = 1.0 - ss_res / ss_tot
    return torch.where(ss_tot > 0, r2, torch.where(ss_res > 0, torch.zeros_like(r2),
                                                   torch.ones_like(r2)))
