"""The result for a model with several inputs: one attribution per input, judged together."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.core.flat import FlatModel, Layout

__all__ = ["INPUT_SHAPES", "MultiAttribution"]

#: The ``params`` entry that records the inputs' shapes in a flat result (and a saved file).
INPUT_SHAPES = "input_shapes"


@dataclass(frozen=True)
class MultiAttribution:
    """Attributions of a model with several inputs, ``model(x_1, ..., x_k)``.

    ``values``, ``inputs`` and ``baselines`` are tuples with one tensor per input, each shaped
    like its input (``(N, K, *s_j)`` with several targets), as Captum returns them.
    ``result[j]`` is input ``j``'s own :class:`Attribution` (for pictures of that input); it
    carries no ``output`` / ``baseline_output`` because completeness holds only over all
    inputs together: ``result.total()`` sums every input's attributions and
    ``result.gap`` compares that sum with ``F(x) - F(x')``.

    Attributes
    ----------
    flat
        The attribution of the flat problem: the inputs laid side by side as ``(N, D)``, the
        model called as ``model(*parts)``. Its ``extras`` (window drops, player values, group
        ids, standard errors) refer to that flat layout.
    layout
        Where each input lies in the flat tensor.

    Evaluations that remove features across all inputs run on the flat problem::

        evaluate.deletion_curve(result.flat_model(model), result.flat.inputs, result.flat,
                                baseline=result.flat.baselines)
    """

    flat: Attribution
    layout: Layout

    @classmethod
    def from_flat(cls, flat: Attribution, layout: Layout | None = None) -> MultiAttribution:
        """Split a flat result; ``layout`` defaults to the shapes recorded in its ``params``."""
        if layout is None:
            shapes = flat.params.get(INPUT_SHAPES)
            if not isinstance(shapes, (list, tuple)):
                raise InputError("this attribution records no input_shapes: it is not the flat "
                                 "result of a model with several inputs.")
            layout = Layout(tuple(tuple(int(s) for s in shape) for shape in shapes))
        params = {**flat.params, INPUT_SHAPES: [list(s) for s in layout.shapes]}
        return cls(flat=replace(flat, params=params), layout=layout)

    # -- per input -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layout.shapes)

    def __getitem__(self, j: int) -> Attribution:
        return self.parts[j]

    def __iter__(self) -> Iterator[Attribution]:
        return iter(self.parts)

    @property
    def values(self) -> tuple[Tensor, ...]:
        """One attribution tensor per input, shaped like that input."""
        return self.layout.split(self.flat.values)

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        """The inputs that were explained."""
        return self.layout.split(self.flat.inputs)

    @property
    def baselines(self) -> tuple[Tensor, ...] | None:
        """The baseline of each input, or ``None`` for methods that use none."""
        b = self.flat.baselines
        return None if b is None else self.layout.split(b)

    @property
    def parts(self) -> tuple[Attribution, ...]:
        """Each input's own :class:`Attribution` (no outputs: see the class notes)."""
        bases = self.baselines or (None,) * len(self)
        k = len(self)
        return tuple(
            Attribution(values=v, inputs=x, baselines=b, method=self.flat.method,
                        params={**self.flat.params, "input": j, "inputs": k},
                        target=self.flat.target, target_label=self.flat.target_label)
            for j, (v, x, b) in enumerate(zip(self.values, self.inputs, bases, strict=True)))

    # -- together ------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """The registered name of the method."""
        return self.flat.method

    @property
    def params(self) -> Mapping[str, Any]:
        """The method's parameters, with the inputs' shapes."""
        return self.flat.params

    @property
    def extras(self) -> Mapping[str, Any]:
        """The method's further results, in the flat layout."""
        return self.flat.extras

    @property
    def target(self) -> Tensor | None:
        """The class index explained for each example."""
        return self.flat.target

    @property
    def output(self) -> Tensor | None:
        """``F(x)`` per example."""
        return self.flat.output

    @property
    def baseline_output(self) -> Tensor | None:
        """``F(x')`` per example, where the method has a baseline."""
        return self.flat.baseline_output

    @property
    def error_estimate(self) -> Tensor | None:
        """The method's own error estimate per example, where it makes one."""
        return self.flat.error_estimate

    @property
    def multi_target(self) -> bool:
        """Whether the values have a target axis at position 1."""
        return self.flat.multi_target

    def total(self) -> Tensor:
        """The sum of all inputs' attributions per example, ``(N,)`` (or ``(N, K)``)."""
        return self.flat.total()

    def totals(self) -> tuple[Tensor, ...]:
        """Each input's share of :meth:`total`, one ``(N,)`` (or ``(N, K)``) per input."""
        return tuple(p.total() for p in self.parts)

    @property
    def delta(self) -> Tensor | None:
        """``F(x) - F(x')`` per example."""
        return self.flat.delta

    @property
    def gap(self) -> Tensor | None:
        """The completeness gap over all inputs together, ``total() - (F(x) - F(x'))``."""
        return self.flat.gap

    @property
    def relative_gap(self) -> Tensor | None:
        """``|gap| / |F(x) - F(x')|`` per example."""
        return self.flat.relative_gap

    def flat_model(self, model: Callable[..., Tensor]) -> FlatModel:
        """``model`` as a model of the flat ``(N, D)`` inputs (for evaluations on ``flat``)."""
        return FlatModel(model, self.layout)

    def for_target(self, k: int) -> MultiAttribution:
        """The ``k``-th of several targets as a single-target result."""
        return MultiAttribution(flat=self.flat.for_target(k), layout=self.layout)

    def numpy(self) -> tuple[np.ndarray, ...]:
        """Each input's attributions as a NumPy array (detached, on the CPU)."""
        return tuple(v.detach().cpu().numpy() for v in self.values)

    def to(self, dtype: torch.dtype) -> MultiAttribution:
        """A copy with floating tensors converted to ``dtype``."""
        return MultiAttribution(flat=self.flat.to(dtype), layout=self.layout)

    def save(self, path: str | os.PathLike[str]) -> pathlib.Path:
        """Write the flat result (with the inputs' shapes in ``params``) to ``path``.

        Read it back with ``MultiAttribution.from_flat(attribkit.load(path))``.
        """
        return self.flat.save(path)

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(v.shape)) for v in self.values)
        parts = [f"method={self.method!r}", f"inputs={len(self)}", f"shapes=({shapes})",
                 f"target={self.flat.target_label}"]
        rg = self.relative_gap
        if rg is not None:
            parts.append(f"max_relative_gap={float(rg.max()):.3g}")
        return f"MultiAttribution({', '.join(parts)})"
