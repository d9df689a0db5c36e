"""Expected Gradients (Erion et al. 2021): Integrated Gradients averaged over baselines from data.

``EG_i(x) = E_{b ~ D, alpha ~ U(0, 1)} [(x_i - b_i) dF(b + alpha (x - b)) / dx_i]``, estimated with
a fixed budget of ``n_samples`` draws per example, each one gradient evaluation. Background rows
are drawn in shuffled rounds (every row once before any row twice; with ``n_samples`` a multiple
of the background size each row is used equally often), ``alpha`` uniformly; both come from a
local generator seeded with ``seed``. The standard error of each feature's estimate (sample
standard deviation over ``sqrt(n_samples)``) is returned in ``extras["stderr"]``. In expectation
the attributions sum to ``F(x) - E_b F(b)`` (recorded as ``baseline_output``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.checks import count
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import BaselineError, InputError
from attribkit.core.multi import several_inputs
from attribkit.core.progress import progress_bar
from attribkit.methods.registry import register

__all__ = ["draw_background", "expected_gradients"]


def draw_background(n_examples: int, n_samples: int, background_size: int,
                    generator: torch.Generator) -> Tensor:
    """``(N, S)`` background indices drawn in shuffled rounds (each row once per round)."""
    rounds = -(-n_samples // background_size)
    perms = torch.argsort(torch.rand((n_examples, rounds, background_size),
                                     generator=generator), dim=2)
    return perms.reshape(n_examples, rounds * background_size)[:, :n_samples]


def _check_background(background: object, inputs: Tensor) -> Tensor:
    if not isinstance(background, Tensor):
        raise BaselineError(f"background must be a tensor of samples (B, ...), got "
                            f"{type(background).__name__}.")
    if background.dim() != inputs.dim() or background.shape[1:] != inputs.shape[1:] or (
            background.shape[0] == 0):
        raise BaselineError(
            f"background of shape {tuple(background.shape)} does not fit inputs of shape "
            f"{tuple(inputs.shape)}: give (B, {', '.join(str(s) for s in inputs.shape[1:])}) "
            "samples, B >= 1.")
    if background.dtype != inputs.dtype:
        raise BaselineError(f"background dtype {background.dtype} does not match the inputs' "
                            f"{inputs.dtype}; convert it with .to({inputs.dtype}).")
    if not torch.isfinite(background).all():
        raise BaselineError("the background contains NaN or inf values.")
    return background.detach().to(inputs.device)


def _moments(p: Problem, bg: Tensor, idx: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Sum and sum of squares over the samples of ``(x - b) * grad`` per example."""
    x = p.inputs
    n, s = idx.shape
    total, sq = None, None
    rows = n * s
    shown, p.progress = p.progress, False
    try:
        with progress_bar(rows, "expected gradients", shown) as bar:
            for start in range(0, rows, p.batch_size):
                r = torch.arange(start, min(rows, start + p.batch_size), device=x.device)
                ex = r // s
                b = bg[idx.reshape(-1)[r]]
                a = alpha.reshape(-1)[r].reshape(-1, *([1] * (x.dim() - 1)))
                diff = x[ex] - b
                _, g = p.gradients(b + a * diff, ex)
                c = (diff.unsqueeze(1) if p.target.multi else diff) * g
                if total is None or sq is None:
                    total = torch.zeros((n, *c.shape[1:]), dtype=c.dtype, device=c.device)
                    sq = torch.zeros_like(total)
                total.index_add_(0, ex, c)
                sq.index_add_(0, ex, c * c)
                bar.update(int(r.shape[0]))
    finally:
        p.progress = shown
    assert total is not None and sq is not None
    return total, sq


@register(
    "expected_gradients",
    aliases=("eg", "expected-gradients"),
    family="path",
    needs_baseline=False,
    # complete only in expectation: sum(a) -> F(x) - mean F(background) as the samples grow;
    # at a finite budget the gap is the Monte-Carlo error (reported per feature as `stderr`)
    complete=False,
    axioms={"sensitivity_b", "implementation_invariance", "linearity"},
    stochastic=True,
    summary="Expected Gradients: Integrated Gradients averaged over baselines from a background "
            "set, with random path positions; complete in expectation only.",
)
@several_inputs(samples=("background", "baseline"))
@shared_parameters("model", "inputs", "target", "batch_size", "progress", "forward_args")
def expected_gradients(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    background: Tensor | None = None,
    target: Any = None,
    baseline: Any = None,
    n_samples: int = 200,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Expected Gradients with a fixed budget of samples and a standard error per feature.

    Parameters
    ----------
    background
        ``(B, ...)`` reference samples (e.g. training data), each shaped like one example.
    baseline
        Another way to give the background (a ``(B, ...)`` tensor); use one of the two.
    n_samples
        Draws (gradient evaluations) per example.
    seed
        Seed of the local generator for the background rows and path positions.

    Returns
    -------
    Attribution
        The estimate; ``baseline_output`` is ``E_b F(b)`` over the background, so ``gap`` is the
        completeness gap in expectation; ``extras["stderr"]`` per feature.
    """
    if background is None:
        if not isinstance(baseline, Tensor):
            raise InputError("expected_gradients needs background=<(B, ...) tensor of samples>.")
        background = baseline
    elif baseline is not None:
        raise InputError("give the reference samples as background= (baseline= is an alias); "
                         "not both.")
    n_samples = count(n_samples, "n_samples")
    with prepare(model, inputs, target=target, needs_baseline=False, batch_size=batch_size,
                 progress=progress, forward_args=forward_args) as p:
        bg = _check_background(background, p.inputs)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        idx = draw_background(p.n, n_samples, int(bg.shape[0]), gen).to(p.inputs.device)
        alpha = torch.rand((p.n, n_samples), generator=gen, dtype=p.inputs.dtype)
        total, sq = _moments(p, bg, idx, alpha.to(p.inputs.device))
        mean = total / n_samples
        if n_samples > 1:
            var = (sq - n_samples * mean * mean).clamp_min(0) / (n_samples - 1)
            stderr = (var / n_samples).sqrt()
        else:
            stderr = torch.full_like(mean, math.inf)
        # E_b F(b) for every example (the background's expected score for its target)
        m = int(bg.shape[0])
        ex = p.examples.repeat_interleave(m)
        scores = p.scores(bg.repeat(p.n, *([1] * (bg.dim() - 1))), ex, desc="background")
        p.baseline_output = scores.reshape(p.n, m, *scores.shape[1:]).mean(dim=1)
        params = {"n_samples": n_samples, "seed": seed, "background_size": m,
                  "gradient_evaluations": p.gradient_evaluations}
        return p.result(mean, "expected_gradients", params,
                        extras={"stderr": stderr, "background": bg})
