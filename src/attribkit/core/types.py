"""Type aliases shared by the whole package (kept in one place)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from torch import Tensor

if TYPE_CHECKING:
    from attribkit.core.baselines import Baseline
    from attribkit.core.targets import MultiTarget

__all__ = ["BaselineLike", "Model", "TargetLike"]

#: Any callable from a float batch (plus optional per-example tensors) to outputs (N,) or (N, C).
Model: TypeAlias = Callable[..., Tensor]

#: int | one index per example | callable(output) -> one scalar per example | several targets | None
TargetLike: TypeAlias = (
    "int | Sequence[int] | Tensor | Callable[[Tensor], Tensor] | MultiTarget | None"
)

#: None (zeros) | a number | a tensor | a named baseline | a Baseline object
BaselineLike: TypeAlias = "float | int | str | Tensor | Baseline | None"

Params: TypeAlias = dict[str, Any]
