"""A background data set: several reference rows whose mean game value a method explains.

KernelSHAP, LIME and occlusion take, besides one baseline row per example, a background set
(SHAP's ``KernelExplainer(f, data)``): the value of a coalition ``S`` is the mean over the
background rows ``b`` of ``F(x_S, b_rest)``. Give it as ``baseline=attribkit.Background(rows)``,
or as ``baseline=`` a ``(B, ...)`` tensor whose ``B`` is neither 1 nor the number of examples
(a tensor with one row per example stays one baseline per example).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit.core.errors import BaselineError
from attribkit.core.problem import Problem

__all__ = ["Background", "background_rows", "mean_over", "split_background"]


@dataclass(frozen=True, eq=False)
class Background:
    """Reference rows ``(B, ...)``, each shaped like one example; coalition values are their
    mean.

    Parameters
    ----------
    rows
        The background rows (a tensor or an array; e.g. 50-100 rows of the training data).
    """

    rows: Any


def split_background(baseline: Any, inputs: Any) -> tuple[Any, Any]:
    """``(baseline, background)``: a :class:`Background`, or a tensor of ``B`` rows with
    ``B`` neither 1 nor the number of examples, is a background (and the baseline ``None``)."""
    if isinstance(baseline, Background):
        return None, baseline.rows
    if (isinstance(baseline, Tensor) and isinstance(inputs, Tensor)
            and baseline.dim() == inputs.dim() >= 2 and baseline.shape[1:] == inputs.shape[1:]
            and int(baseline.shape[0]) not in (1, int(inputs.shape[0]))):
        return None, baseline
    return baseline, None


def background_rows(rows: Any, inputs: Tensor) -> Tensor:
    """The background as a tensor ``(B, ...)`` on the inputs' device and dtype, checked."""
    if not isinstance(rows, Tensor):
        try:
            rows = torch.as_tensor(rows)
        except (TypeError, ValueError, RuntimeError) as err:
            raise BaselineError(f"the background must be rows (B, ...), got "
                                f"{type(rows).__name__}.") from err
    if rows.dim() != inputs.dim() or rows.shape[1:] != inputs.shape[1:] or rows.shape[0] == 0:
        raise BaselineError(f"background of shape {tuple(rows.shape)} does not fit inputs of "
                            f"shape {tuple(inputs.shape)}: give (B, "
                            f"{', '.join(str(s) for s in inputs.shape[1:])}) rows, B >= 1.")
    if rows.is_floating_point() and inputs.is_floating_point():
        rows = rows.to(inputs.dtype)
    if rows.dtype != inputs.dtype:
        raise BaselineError(f"background dtype {rows.dtype} does not match the inputs' "
                            f"{inputs.dtype}.")
    if not torch.isfinite(rows).all():
        raise BaselineError("the background contains NaN or inf values.")
    out: Tensor = rows.detach().to(inputs.device)
    return out


def mean_over(p: Problem, rows: Tensor, values: Callable[[], Tensor]) -> Tensor:
    """The mean of ``values()`` (float64) with each background row in turn as the baseline.

    Afterwards ``p.baseline`` is the rows' mean (what the result records) and
    ``p.baseline_output`` the mean score of the rows, ``E_b F(b)``, so that completeness reads
    ``sum(a) = F(x) - E_b F(b)``.
    """
    total: Tensor | None = None
    outputs: Tensor | None = None
    for b in rows:
        p.baseline = b.unsqueeze(0).expand_as(p.inputs).clone()
        v = values().to(torch.float64)
        out = p.scores(p.baseline, p.examples, desc="background").to(torch.float64)
        p.forward_evaluations -= p.n  # the baseline's score, as prepare() counts it
        total = v if total is None else total + v
        outputs = out if outputs is None else outputs + out
    assert total is not None and outputs is not None
    mean = rows.to(torch.float64).mean(0) if rows.is_floating_point() else rows[0]
    p.baseline = mean.to(p.inputs.dtype).unsqueeze(0).expand_as(p.inputs).clone()
    p.baseline_output = (outputs / len(rows)).to(p.inputs.dtype)
    return total / len(rows)
