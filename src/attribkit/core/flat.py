"""The flat layout of several model inputs and the model that splits it back.

A tuple of inputs ``(x_1, ..., x_k)``, each ``(N, *s_j)``, lies side by side as one flat
``(N, D)`` tensor (:class:`Layout`); :class:`FlatModel` is ``model(*layout.split(flat))``, the
model of several inputs seen as a model of one. :mod:`attribkit.core.multi` builds the flat
problem and :mod:`attribkit.core.multi_result` splits its result; both use these two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError

__all__ = ["FlatModel", "Layout"]


@dataclass(frozen=True)
class Layout:
    """Where each of several inputs lies in the flat ``(N, D)`` tensor.

    Attributes
    ----------
    shapes
        The shape of one example of each input, ``s_j``.
    """

    shapes: tuple[tuple[int, ...], ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        """``prod(s_j)``: the flat width of each input."""
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def width(self) -> int:
        """``D``, the flat width of one example."""
        return sum(self.sizes)

    def flatten(self, parts: Sequence[Tensor]) -> Tensor:
        """``(B, *s_j)`` parts -> one ``(B, D)`` tensor."""
        return torch.cat([p.reshape(p.shape[0], -1) for p in parts], dim=1)

    def split(self, flat: Tensor) -> tuple[Tensor, ...]:
        """``(..., D)`` -> the parts ``(..., *s_j)`` (views of ``flat``)."""
        lead = flat.shape[:-1]
        if flat.shape[-1] != self.width:
            raise InputError(f"a flat tensor of width {flat.shape[-1]} does not fit inputs of "
                             f"{self.width} values per example.")
        return tuple(t.reshape(*lead, *s) for t, s in
                     zip(torch.split(flat, list(self.sizes), dim=-1), self.shapes, strict=True))


class FlatModel(nn.Module):
    """``model(*layout.split(flat), *extra)``: a model of several inputs seen as one of one.

    The user's model is a sub-module, so the engine's guard records and restores it (flags,
    ``requires_grad``, hooks) as it would the model itself. A model that is no ``nn.Module`` (a
    torch function) is kept as a plain attribute.
    """

    def __init__(self, model: Callable[..., Tensor], layout: Layout) -> None:
        super().__init__()
        if isinstance(model, nn.Module):
            self.model = model
        else:
            self.__dict__["model"] = model
        self.layout = layout

    def forward(self, flat: Tensor, *extra: Tensor) -> Tensor:
        """Split ``flat`` ``(B, D)`` into the inputs and call the model."""
        return cast(Tensor, self.model(*self.layout.split(flat), *extra))
