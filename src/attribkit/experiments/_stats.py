"""Small statistics shared by the experiments: a seeded percentile bootstrap of a mean."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from attribkit.core.errors import InputError

__all__ = ["bootstrap_ci"]


def bootstrap_ci(values: Tensor | Sequence[float], *, level: float = 0.95, n_boot: int = 10_000,
                 seed: int = 0) -> tuple[float, float, float]:
    """The mean of ``values`` and a percentile bootstrap confidence interval for it.

    Resamples the values (e.g. one per photo) with replacement ``n_boot`` times with a seeded
    generator and takes the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles (linear
    interpolation) of the resampled means. For paired comparisons pass the per-item differences.

    Returns
    -------
    tuple of float
        ``(mean, low, high)``.
    """
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if v.numel() == 0:
        raise InputError("bootstrap_ci needs at least one value.")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}.")
    if n_boot < 1:
        raise InputError(f"n_boot must be >= 1, got {n_boot}.")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, v.numel(), (n_boot, v.numel()), generator=g)
    means = v[idx].mean(dim=1)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    low, high = torch.quantile(means, q).tolist()
    return float(v.mean()), float(low), float(high)
