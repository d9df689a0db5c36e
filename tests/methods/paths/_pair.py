"""Helpers for the PAIR ``saliency`` oracle: its call-back protocol over a torch model, and a
shim for ``np.quantile(..., interpolation=)``, which NumPy 2 renamed ``method=`` (PAIR 0.2.1's
Guided IG still passes the old keyword)."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np
import saliency.core as pair
import saliency.core.guided_ig as pair_guided
import torch
from torch import Tensor, nn

__all__ = ["call_model", "chw", "hwc", "pair"]


def _quantile(a: Any, q: Any, interpolation: str | None = None, **kw: Any) -> Any:
    if interpolation is not None:
        kw["method"] = interpolation
    return np.quantile(a, q, **kw)


if int(np.__version__.split(".")[0]) >= 2:  # NumPy 2 dropped the keyword
    _np = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    _np.quantile = _quantile
    pair_guided.np = _np  # type: ignore[assignment]


def hwc(t: Tensor) -> np.ndarray:
    """One example ``(C, H, W)`` as PAIR's channels-last array (1-D features unchanged)."""
    return (t.permute(1, 2, 0) if t.dim() == 3 else t).detach().numpy()


def chw(a: np.ndarray) -> Tensor:
    """PAIR's channels-last array back to ``(C, H, W)``."""
    t = torch.as_tensor(np.asarray(a))
    return t.permute(2, 0, 1) if t.dim() == 3 else t


def call_model(model: nn.Module, target: int,
               record: list[tuple[np.ndarray, np.ndarray]] | None = None) -> Callable[..., Any]:
    """PAIR's ``call_model_function``: gradients of ``model(x)[:, target]``, channels last;
    with ``record``, every (point, gradient) it was asked for is appended."""
    def fn(batch: np.ndarray, call_model_args: Any = None,
           expected_keys: Any = None) -> dict[str, np.ndarray]:
        t = torch.as_tensor(np.asarray(batch))
        if t.dim() == 4:
            t = t.permute(0, 3, 1, 2)
        t = t.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(t)[:, target].sum(), t)
        out = (g.permute(0, 2, 3, 1) if g.dim() == 4 else g).numpy()
        if record is not None:
            record.extend((np.asarray(b).copy(), o.copy()) for b, o in zip(batch, out,
                                                                            strict=True))
        return {pair.INPUT_OUTPUT_GRADIENTS: out}
    return fn
