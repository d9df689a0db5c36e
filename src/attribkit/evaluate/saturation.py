"""Saturation analysis (Gradients of Counterfactuals, section 2): the curve ``F(x' + alpha (x -
x'))`` for alpha in [0, 1], and the point where it stops changing. Gradients at the input itself are
tiny when the curve is flat long before alpha = 1, which is why gradients at the image miss
important features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError
from attribkit.core.summary import summary_repr
from attribkit.methods.integrated import interior_gradients

__all__ = ["SaturationCurves", "saturation_curves"]


@dataclass(frozen=True)
class SaturationCurves:
    """Scores along the scaled inputs, with the saturation point of each example.

    Attributes
    ----------
    alphas
        ``(A,)`` scaling parameters, increasing from 0 to 1.
    scores
        ``(N, A)`` the target score at each alpha.
    saturation_alpha
        ``(N,)`` the smallest alpha from which the normalised curve stays within ``tolerance`` of
        its final value (``nan`` where ``F(x) == F(x')``).
    tolerance
        The band used for :attr:`saturation_alpha`, as a share of ``F(x) - F(x')``.
    gradient_magnitude
        ``(N, A)`` mean absolute gradient at each alpha (Figure 3 of Gradients of Counterfactuals),
        if asked for.
    """

    alphas: Tensor
    scores: Tensor
    saturation_alpha: Tensor
    tolerance: float
    gradient_magnitude: Tensor | None = None

    __repr__ = summary_repr

    @property
    def normalised(self) -> Tensor:
        """``(F(alpha) - F(0)) / (F(1) - F(0))`` per example ``(N, A)``."""
        rise = self.scores[:, -1:] - self.scores[:, :1]
        return (self.scores - self.scores[:, :1]) / rise

    def reach_alpha(self, fraction: float = 0.9) -> Tensor:
        """``(N,)`` the first alpha where the normalised curve reaches ``fraction`` of
        ``F(x) - F(x')`` (robust to curves that overshoot and come back; ``nan`` if never).

        Parameters
        ----------
        fraction
            The share of the total change, e.g. 0.9.
        """
        reached = self.normalised >= fraction
        first = reached.to(torch.int64).argmax(dim=1)
        out = self.alphas[first].clone()
        return torch.where(reached.any(dim=1), out, torch.full_like(out, float("nan")))

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, for JSON and the report."""
        d: dict[str, Any] = {"alphas": self.alphas.tolist(), "scores": self.scores.tolist(),
                             "saturation_alpha": self.saturation_alpha.tolist(),
                             "tolerance": self.tolerance}
        if self.gradient_magnitude is not None:
            d["gradient_magnitude"] = self.gradient_magnitude.tolist()
        return d


def _saturation_point(alphas: Tensor, scores: Tensor, tolerance: float) -> Tensor:
    rise = scores[:, -1:] - scores[:, :1]
    norm = (scores - scores[:, :1]) / rise
    outside = (norm - 1).abs() > tolerance
    idx = torch.arange(alphas.numel()).expand_as(outside)
    last_out = torch.where(outside, idx, torch.full_like(idx, -1)).amax(dim=1)
    first_in = (last_out + 1).clamp(max=alphas.numel() - 1)
    point = alphas[first_in].to(torch.float64)
    return torch.where(rise[:, 0] != 0, point, torch.full_like(point, float("nan")))


@shared_parameters("model", "inputs", "batch_size:points", "progress")
def saturation_curves(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    alphas: Sequence[float] | Tensor | None = None,
    tolerance: float = 0.05,
    gradients: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> SaturationCurves:
    """``F`` along the straight path from ``baseline`` to each input, and where it saturates.

    Parameters
    ----------
    target
        The explained class (default the predicted class at the inputs, fixed along the path).
    baseline
        The path's start (default zeros: the paper's scaled inputs ``alpha x``).
    alphas
        Increasing values from 0 to 1 (default 51 equally spaced).
    tolerance
        Saturation band, a share of ``F(x) - F(x')``.
    gradients
        Also compute the mean absolute gradient at each alpha (one backward pass per point, via
        :func:`attribkit.interior_gradients`); otherwise forward passes only.
    forward_args
        Extra per-example tensors for the model.
    """
    if not 0 < tolerance < 1:
        raise InputError(f"tolerance is a share of F(x) - F(x') in (0, 1), got {tolerance}.")
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, allow_multi_target=False) as p:
        a = (torch.linspace(0.0, 1.0, 51, dtype=p.inputs.dtype) if alphas is None
             else torch.as_tensor(alphas, dtype=p.inputs.dtype))
        if a.dim() != 1 or a.numel() < 2 or bool((a.diff() <= 0).any()):
            raise InputError("alphas must be an increasing 1-D sequence with at least 2 values.")
        assert p.baseline is not None
        x, b = p.inputs, p.baseline
        example = p.examples.repeat_interleave(a.numel())
        alpha = a.repeat(p.n).to(x.device)

        def make(sl: slice) -> Tensor:
            ex = example[sl]
            w = alpha[sl].reshape(-1, *([1] * (x.dim() - 1)))
            return b[ex] + w * (x[ex] - b[ex])

        scores = p.scores(make, example, desc="saturation").reshape(p.n, a.numel())
        fixed = p.target.indices
    scores = scores.to(torch.float64).cpu()
    magnitude = None
    if gradients:
        ig = interior_gradients(model, inputs, target=fixed if fixed is not None else target,
                                baseline=baseline, alphas=a, batch_size=batch_size,
                                progress=progress, forward_args=forward_args)
        magnitude = ig.mean_magnitude().to(torch.float64).cpu()
    return SaturationCurves(alphas=a.to(torch.float64).cpu(), scores=scores,
                            saturation_alpha=_saturation_point(a.cpu(), scores, tolerance),
                            tolerance=tolerance, gradient_magnitude=magnitude)
