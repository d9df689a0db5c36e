"""The :class:`Attribution` result: values plus what is needed to judge them."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core import writers

__all__ = ["Attribution"]

_ARRAY_FIELDS = ("values", "inputs", "baselines", "target", "output", "baseline_output",
                 "error_estimate", "gap", "relative_gap", "delta")


@dataclass(frozen=True)
class Attribution:
    """An attribution of model outputs to input features.

    Attributes
    ----------
    values
        The attributions, shaped like the inputs ``(N, ...)``; with several targets
        (a :class:`~attribkit.core.targets.MultiTarget`) ``(N, K, ...)``.
    inputs
        The inputs that were explained (layer activations when attributing at a layer).
    baselines
        The baseline of each example, or ``None`` for methods that use none.
    method
        The registered name of the method.
    params
        The method's parameters (steps, rule, ...), for the record.
    target
        The class index explained for each example ``(N,)`` or ``(N, K)``; ``None`` when the
        output was a scalar per example or a callable chose it.
    target_label
        How the target was given (``"predicted"``, ``"3"``, ``"callable"``, ...).
    output
        ``F(x)`` per example ``(N,)`` (or ``(N, K)``).
    baseline_output
        ``F(x')`` per example, where the method has a baseline.
    error_estimate
        The method's own estimate of its numerical error per example (relative L2), where it
        makes one (Integrated Gradients with ``tolerance=``).
    extras
        Further per-method results (standard errors, interior gradients, ...).
    """

    values: Tensor
    inputs: Tensor
    method: str
    baselines: Tensor | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    target: Tensor | None = None
    target_label: str = "predicted"
    output: Tensor | None = None
    baseline_output: Tensor | None = None
    error_estimate: Tensor | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    # -- shape helpers -------------------------------------------------------------------------
    @property
    def multi_target(self) -> bool:
        """Whether ``values`` has a target axis at position 1."""
        return self.values.dim() == self.inputs.dim() + 1

    @property
    def _feature_dims(self) -> tuple[int, ...]:
        start = 2 if self.multi_target else 1
        return tuple(range(start, self.values.dim()))

    def total(self) -> Tensor:
        """The sum of the attributions of each example, ``(N,)`` (or ``(N, K)``)."""
        if not self._feature_dims:
            return self.values
        return self.values.sum(dim=self._feature_dims)

    # -- completeness --------------------------------------------------------------------------
    @property
    def delta(self) -> Tensor | None:
        """``F(x) - F(x')`` per example, or ``None`` where the method has no baseline output."""
        if self.output is None or self.baseline_output is None:
            return None
        return self.output - self.baseline_output

    @property
    def gap(self) -> Tensor | None:
        """The completeness gap ``sum(a) - (F(x) - F(x'))`` per example."""
        d = self.delta
        return None if d is None else self.total() - d

    @property
    def relative_gap(self) -> Tensor | None:
        """``|gap| / |F(x) - F(x')|`` per example (inf where ``F(x) == F(x')`` but gap != 0)."""
        d, g = self.delta, self.gap
        if d is None or g is None:
            return None
        return g.abs() / d.abs()

    # -- aggregation ---------------------------------------------------------------------------
    def pixel_importance(self, channel_dim: int = 1) -> Tensor:
        """Per-pixel importance ``P_ij = sum_c |A_ijc|`` (eq. 1 of "Gradients of Counterfactuals").

        Parameters
        ----------
        channel_dim
            The channel axis of the inputs (1 for ``(N, C, H, W)``).
        """
        dim = channel_dim + 1 if self.multi_target else channel_dim
        return self.values.abs().sum(dim=dim)

    def sum_channels(self, channel_dim: int = 1, absolute: bool = False) -> Tensor:
        """Sum over the channel axis, signed (default) or of absolute values."""
        dim = channel_dim + 1 if self.multi_target else channel_dim
        v = self.values.abs() if absolute else self.values
        return v.sum(dim=dim)

    def sum_embedding(self) -> Tensor:
        """One score per token: the sum over the last (embedding) axis ``(N, L)``."""
        return self.values.sum(dim=-1)

    def for_target(self, k: int) -> Attribution:
        """The attribution of the ``k``-th of several targets as a single-target result."""
        if not self.multi_target:
            raise ValueError("this attribution has a single target; for_target() needs several.")

        def pick(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[:, k]

        values = self.values[:, k]
        out, base = pick(self.output), pick(self.baseline_output)
        return replace(self, values=values, target=pick(self.target), output=out,
                       baseline_output=base,
                       error_estimate=pick(self.error_estimate)
                       if self.error_estimate is not None and self.error_estimate.dim() == 2
                       else self.error_estimate)

    def numpy(self, name: str = "values") -> np.ndarray:
        """A tensor field as a NumPy array (detached, on the CPU).

        Parameters
        ----------
        name
            ``"values"`` (default), ``"inputs"``, ``"baselines"``, ``"target"``, ``"output"``,
            ``"baseline_output"``, ``"error_estimate"``, or a derived ``"gap"`` /
            ``"relative_gap"`` / ``"delta"`` / ``"total"``.
        """
        if name == "total":
            t: Tensor | None = self.total()
        elif name in _ARRAY_FIELDS:
            t = getattr(self, name)
        else:
            raise ValueError(f"numpy() knows {', '.join(_ARRAY_FIELDS)} and 'total'; got {name!r}.")
        if t is None:
            raise ValueError(f"this attribution has no {name} (the method does not record it).")
        return t.detach().cpu().numpy()

    def save(self, path: str | os.PathLike[str]) -> pathlib.Path:
        """Write this result to ``path`` (safetensors + JSON metadata, no pickle).

        Every field round-trips exactly through :func:`attribkit.load`; the format is described
        in ``docs/saving.md``.
        """
        return writers.writer_for(self)(self, path)

    def to(self, dtype: torch.dtype) -> Attribution:
        """A copy with floating tensors converted to ``dtype``."""
        def conv(t: Tensor | None) -> Tensor | None:
            return None if t is None or not t.is_floating_point() else t.to(dtype)

        inputs = self.inputs.to(dtype) if self.inputs.is_floating_point() else self.inputs
        return replace(self, values=self.values.to(dtype), inputs=inputs,
                       baselines=conv(self.baselines), output=conv(self.output),
                       baseline_output=conv(self.baseline_output))

    def __repr__(self) -> str:
        shape = tuple(self.values.shape)
        parts = [f"method={self.method!r}", f"shape={shape}", f"target={self.target_label}"]
        rg = self.relative_gap
        if rg is not None:
            parts.append(f"max_relative_gap={float(rg.max()):.3g}")
        if self.error_estimate is not None:
            parts.append(f"max_error_estimate={float(self.error_estimate.max()):.3g}")
        return f"Attribution({', '.join(parts)})"
