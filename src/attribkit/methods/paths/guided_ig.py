"""Guided Integrated Gradients (Kapishnikov et al. 2021, "Guided Integrated Gradients: an adaptive
path method for removing noise").

The path starts at the baseline and, at each of ``steps`` steps, lowers the L1 distance to the
input by ``1 / steps`` of its total, moving first the features with the smallest absolute
gradient (a ``fraction`` of them at a time), while no feature strays more than ``max_dist`` (in
units of its own straight-path parameter ``alpha``) from the straight path: features left behind
are pulled up to ``alpha - max_dist``, and none goes past ``alpha + max_dist``. The attribution is
``sum_k g_k * (z_{k+1} - z_k)``, with ``g_k`` the gradient where step ``k`` starts. The path is
followed in float64 whatever the model's precision, and all examples advance together (one
batched gradient call per step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import InputError
from attribkit.core.notes import note
from attribkit.core.progress import progress_bar
from attribkit.methods.paths._walk import IdgiSum
from attribkit.methods.registry import register

__all__ = ["guided_ig", "guided_walk"]

#: Tolerance of "the L1 distance has reached this step's target" (relative and absolute).
_CLOSE = 1e-9


def check_options(steps: int, fraction: float, max_dist: float) -> None:
    """Refuse settings outside the method's ranges, saying which."""
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a positive int, got {steps!r}.")
    if not 0 < fraction <= 1:
        raise InputError(f"fraction is the share of features moved at a time, in (0, 1]; got "
                         f"{fraction!r}.")
    if not 0 <= max_dist <= 1:
        raise InputError(f"max_dist is a distance in alpha units, in [0, 1]; got {max_dist!r}.")


def guided_walk(p: Problem, steps: int, fraction: float, max_dist: float, *,
                idgi: bool) -> tuple[Tensor, Tensor | None, Tensor]:
    """Follow the guided path of every example; see the module docstring.

    Returns
    -------
    attribution
        ``(N, D)`` float64 ``sum_k g_k * (z_{k+1} - z_k)``.
    idgi_attribution
        ``(N, D)`` IDGI on the same steps (``None`` unless ``idgi``), with ``F(z_m) := F(x)``.
    scores
        ``(N, steps + 1)`` ``F`` at the start of each step, then ``F(x)``.
    """
    assert p.baseline is not None and p.output is not None
    n = p.n
    xin = p.inputs.reshape(n, -1).to(torch.float64)
    xb = p.baseline.reshape(n, -1).to(torch.float64)
    diff = xin - xb
    d = diff.shape[1]
    l1_total = diff.abs().sum(dim=1)
    still = l1_total == 0  # nothing to explain: the attribution stays zero
    x = xb.clone()
    attr = torch.zeros_like(xin)
    acc = IdgiSum(n, d) if idgi else None
    scores = torch.zeros(n, steps + 1, dtype=torch.float64)
    kth = math.floor(fraction * (d - 1)) + 1  # numpy's "lower" quantile, 1-based
    prev: tuple[Tensor, Tensor] | None = None  # IDGI of the last step waits for F at its end
    shape = (n, *p.inputs.shape[1:])
    with progress_bar(steps, "guided ig", p.progress, unit="step") as bar:
        for step in range(steps):
            sc, g_model = p.gradients(x.to(p.inputs.dtype).reshape(shape), p.examples,
                                      desc="gradients")
            g = g_model.reshape(n, -1).to(torch.float64)
            scores[:, step] = sc.to(torch.float64)
            if prev is not None and acc is not None:
                acc.add(prev[0], scores[:, step] - scores[:, step - 1], prev[1])
            start = x.clone()
            alpha = (step + 1.0) / steps
            a_min, a_max = max(alpha - max_dist, 0.0), min(alpha + max_dist, 1.0)
            x_min, x_max = xb + diff * a_min, xb + diff * a_max
            target = l1_total * (1 - (step + 1) / steps)
            x = _advance(x, g, xin, xb, diff, x_min, x_max, a_min, a_max, target, fraction, kth,
                         still)
            attr += (x - start) * g
            prev = (g, x - start)
            bar.update(1)
    scores[:, steps] = p.output.to(torch.float64)
    if prev is not None and acc is not None:
        acc.add(prev[0], scores[:, steps] - scores[:, steps - 1], prev[1])
    return attr, None if acc is None else acc.result(), scores


def _advance(x: Tensor, g: Tensor, xin: Tensor, xb: Tensor, diff: Tensor, x_min: Tensor,
             x_max: Tensor, a_min: float, a_max: float, target: Tensor, fraction: float,
             kth: int, still: Tensor) -> Tensor:
    """One step of every example: move the features with the smallest |gradient| until the L1
    distance to the input is ``target``."""
    grad = g.clone()
    done = still.clone()
    while not bool(done.all()):
        live = ~done[:, None]
        where = torch.where(diff != 0, (x - xb) / torch.where(diff != 0, diff, 1.0),
                            torch.full_like(x, a_max))
        x = torch.where(live & (where < a_min), x_min, x)
        l1 = (x - xin).abs().sum(dim=1)
        close = (l1 - target).abs() <= torch.clamp(_CLOSE * torch.maximum(l1.abs(), target.abs()),
                                                   min=_CLOSE)
        choose = ~done & ~close
        grad = torch.where(choose[:, None] & (x == x_max), torch.inf, grad)
        mag = grad.abs()
        threshold = mag.kthvalue(kth, dim=1).values
        sel = (mag <= threshold[:, None]) & (grad != torch.inf) & choose[:, None]
        room = ((x - x_max).abs() * sel).sum(dim=1)
        gamma = torch.where(room > 0, (l1 - target) / torch.where(room > 0, room, 1.0),
                            torch.full_like(room, torch.inf))
        full = gamma > 1.0
        moved = torch.where(full[:, None], x_max, x + (x_max - x) * gamma.clamp(0, 1)[:, None])
        x = torch.where(sel, moved, x)
        # a step ends when the clamping alone reached the target or the chosen features could
        # close the gap; an example with nothing left to move also stops (cannot loop forever)
        done = done | close | (choose & ~full) | (choose & ~sel.any(dim=1))
    return x


@register(
    "guided_ig",
    aliases=("guided_integrated_gradients", "guided-ig"),
    family="path",
    needs_baseline=True,
    complete=True,
    axioms={"completeness", "sensitivity_a", "sensitivity_b", "implementation_invariance"},
    summary="Guided IG: an adaptive path that moves the features with the smallest "
            "|gradient| first.",
)
@shared_parameters("model", "target:single", "forward_args")
def guided_ig(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    steps: int = 200,
    fraction: float = 0.25,
    max_dist: float = 0.02,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Guided Integrated Gradients from ``baseline`` to ``inputs``.

    Parameters
    ----------
    inputs
        ``(N, ...)`` examples; all advance along their paths together.
    baseline
        ``None`` (zeros), a number, a name (``"black"``, ...), a Baseline or a tensor.
    steps
        Steps of the path (one gradient per example each); the paper's default is 200.
    fraction
        The share of features (smallest |gradient| first) moved at a time.
    max_dist
        How far (in alpha units, ``[0, 1]``) a feature may lead or lag the straight path;
        ``0`` is the straight path (Integrated Gradients, left Riemann rule), ``1`` the
        unbounded guided path.
    batch_size
        Rows per model call (the examples of one step are evaluated together).
    progress
        Show a progress bar over the steps.

    Returns
    -------
    Attribution
        Values shaped like the inputs; ``sum`` approximates ``F(x) - F(x')`` (the path is
        followed exactly, the gradient along each step is taken at its start).
        ``extras["path_scores"]`` holds ``F`` at the start of each step.
    """
    check_options(steps, fraction, max_dist)
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, allow_multi_target=False) as p:
        attr, _, scores = guided_walk(p, steps, fraction, max_dist, idgi=False)
        values = attr.reshape(p.inputs.shape).to(p.inputs.dtype)
        params = {"steps": steps, "fraction": fraction, "max_dist": max_dist,
                  "gradient_evaluations": p.gradient_evaluations}
        result = p.result(values, "guided_ig", params, extras={"path_scores": scores})
    _say_gap(result, max_dist)
    return result


#: The relative completeness gap above which Guided IG says so (its path moves in jumps, so
#: more steps alone narrow it slowly: 27 % at the defaults on a small CNN, 3 % at max_dist=0.002).
GAP_NOTE = 0.05


def _say_gap(result: Attribution, max_dist: float) -> None:
    """Warn, as the tolerance of IG does, where the sum misses ``F(x) - F(x')`` by more than
    :data:`GAP_NOTE` of it."""
    rg = result.relative_gap
    if rg is None or not bool((rg.abs() > GAP_NOTE).any()):
        return
    worst = float(rg.abs().max())
    note(f"guided_ig: the attributions miss completeness by up to {worst:.0%} of "
         f"F(x) - F(x') (attr.relative_gap per example); a smaller max_dist= than {max_dist:g} "
         "(each step's largest jump; 0.002 narrowed 27 % to 3 % on a small CNN) or more steps= "
         "narrows it.", RuntimeWarning)
