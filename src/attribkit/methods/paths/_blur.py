"""Gaussian blur as a matrix on each spatial axis, with zero padding outside the signal.

The kernel is the sampled Gaussian ``exp(-t^2 / (2 sigma^2))`` on ``|t| <= int(4 sigma + 0.5)``,
normalised to sum 1 over those taps (the convention of ``scipy.ndimage.gaussian_filter`` with
``mode="constant"``); ``sigma = 0`` leaves the signal unchanged. As a banded ``L x L`` matrix per
axis, blurring is two matrix products, exact for any width (even wider than the image) and
batched over examples and widths.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["blur", "blur_matrix"]


def blur_matrix(sigma: float, size: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The ``(size, size)`` matrix of a 1-D Gaussian blur of width ``sigma`` (zero padding)."""
    if sigma == 0:
        return torch.eye(size, dtype=dtype)
    radius = int(4.0 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 / (sigma * sigma) * taps * taps)
    kernel = kernel / kernel.sum()
    offset = torch.arange(size)[None, :] - torch.arange(size)[:, None]
    inside = offset.abs() <= radius
    m = torch.where(inside, kernel[(offset + radius).clamp(0, 2 * radius)], 0.0)
    return m.to(dtype)


def blur(x: Tensor, sigmas: Tensor | list[float]) -> Tensor:
    """Blur ``x`` ``(R, C, *spatial)`` (one or two spatial axes), row ``r`` with ``sigmas[r]``."""
    sig = [float(s) for s in sigmas]
    axes = list(range(2, x.dim()))
    cache: dict[tuple[float, int], Tensor] = {}

    def mats(size: int) -> Tensor:
        for s in sig:
            if (s, size) not in cache:
                cache[(s, size)] = blur_matrix(s, size, x.dtype).to(x.device)
        stack = torch.stack([cache[(s, size)] for s in sig])  # (R, L, L)
        return stack[:, None] if x.dim() == 4 else stack

    out = x
    if len(axes) == 2:
        out = mats(x.shape[2]) @ out
    return out @ mats(x.shape[-1]).transpose(-1, -2)
