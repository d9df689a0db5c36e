"""Blur Integrated Gradients (Xu, Venugopalan, Sundararajan et al. 2020, "Attribution in scale
and space").

The path runs through Gaussian blurs ``z(sigma)`` of the input, from the maximally blurred image
``z(sigma_max)`` (the baseline) down to the image itself ``z(0)``. With ``sigma_i = i sigma_max /
m`` (or ``sqrt(i sigma_max / m)`` with ``sqrt=True``) the attribution is
``-sum_{i<m} (sigma_{i+1} - sigma_i) * dz/dsigma(sigma_i) * grad F(z(sigma_i))``, the derivative
taken as the forward difference ``(z(sigma_i + grad_step) - z(sigma_i)) / grad_step``. Blurs use
zero padding outside the image (:mod:`._blur`). Images are ``(N, C, H, W)``; sequences
``(N, C, L)`` are blurred along their one axis.
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
from attribkit.methods.paths._blur import blur
from attribkit.methods.paths._walk import IdgiSum, example_groups
from attribkit.methods.registry import register

__all__ = ["blur_ig", "blur_sigmas", "blur_walk"]


def blur_sigmas(max_sigma: float, steps: int, sqrt: bool = False) -> list[float]:
    """The ``steps + 1`` widths ``sigma_0 = 0 < ... < sigma_m`` of the path."""
    lin = [float(i) * max_sigma / float(steps) for i in range(steps + 1)]
    return [math.sqrt(s) for s in lin] if sqrt else lin


def check_options(inputs: Any, steps: int, max_sigma: float, grad_step: float) -> None:
    """Refuse inputs without spatial axes and settings outside their ranges."""
    if isinstance(inputs, Tensor) and inputs.dim() not in (3, 4):
        raise InputError(f"blur_ig blurs images (N, C, H, W) or sequences (N, C, L); got inputs "
                         f"of shape {tuple(inputs.shape)}. Add the channel axis "
                         "(x.unsqueeze(1)) if it is missing.")
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a positive int, got {steps!r}.")
    if not max_sigma > 0 or not grad_step > 0:
        raise InputError(f"max_sigma and grad_step must be positive, got {max_sigma!r} and "
                         f"{grad_step!r}.")


def set_blur_baseline(p: Problem, sigma: float) -> None:
    """Make ``z(sigma)`` the problem's baseline (and evaluate ``F`` there)."""
    p.baseline = blur(p.inputs, [sigma] * p.n)
    p.baseline_output = p.scores(p.baseline, p.examples, desc="baseline")
    p.forward_evaluations -= p.n


def blur_walk(p: Problem, sigmas: list[float], grad_step: float, *,
              idgi: bool) -> tuple[Tensor, Tensor | None, Tensor]:
    """Blur IG of every example, and IDGI on the blur path.

    Blur IG takes its gradients at ``sigma_0 .. sigma_{m-1}`` (as in the paper's code); IDGI
    takes them at the start of each step from the baseline, ``sigma_m .. sigma_1``. With
    ``idgi`` only IDGI's gradients are evaluated (the first output is then the matching left
    Riemann sum of the path in the same orientation).

    Returns
    -------
    attribution, idgi_attribution
        ``(N, D)`` float64.
    scores
        ``(N, m + 1)`` ``F`` at ``sigma_m, ..., sigma_0`` (baseline to input); without ``idgi``
        the first column is ``F`` of the baseline and the others ``F`` where gradients were taken.
    """
    assert p.baseline_output is not None and p.output is not None
    x = p.inputs
    n, m, d = p.n, len(sigmas) - 1, x[0].numel()
    at = sigmas[1:] if idgi else sigmas[:-1]  # where gradients are taken
    width = [sigmas[i + 1] - sigmas[i] for i in range(m)]
    attr = torch.zeros(n, d, dtype=torch.float64)
    out = torch.zeros(n, d, dtype=torch.float64) if idgi else None
    scores = torch.zeros(n, m + 1, dtype=torch.float64)
    for grp in example_groups(n, m, p.batch_size):
        ids = torch.arange(grp.start, grp.stop, device=x.device)
        ex = ids.repeat_interleave(m)
        sig = torch.tensor(at, dtype=torch.float64).repeat(ids.numel())

        def make(sl: slice, ex: Tensor = ex, sig: Tensor = sig) -> Tensor:
            return blur(x[ex[sl]], sig[sl].tolist())

        sc, g = p.gradients(make, ex, desc="blur ig")
        g = g.reshape(ids.numel(), m, d).to(torch.float64)
        sc = sc.reshape(ids.numel(), m).to(torch.float64)
        if not idgi:
            for j, e in enumerate(ids.tolist()):
                xe = x[e:e + 1].expand(m, *x.shape[1:])
                here = blur(xe, at)
                ahead = blur(xe, [s + grad_step for s in at])
                dz = ((ahead - here) / grad_step).reshape(m, d).to(torch.float64)
                w = torch.tensor(width, dtype=torch.float64)[:, None]
                attr[e] = -(w * dz * g[j]).sum(dim=0)
            scores[grp, 0] = p.baseline_output[grp].to(torch.float64)
            scores[grp, 1:] = sc.flip(1)
            continue
        assert out is not None
        # from the baseline: step k goes from sigma_{m-k} to sigma_{m-k-1}, gradient at its start
        f = torch.cat([sc.flip(1), p.output[grp, None].to(torch.float64)], dim=1)
        scores[grp] = f
        g = g.flip(1)
        moves = torch.stack([
            blur(x[e:e + 1].expand(m + 1, *x.shape[1:]), sigmas[::-1]).reshape(m + 1, d)
            for e in ids.tolist()]).to(torch.float64).diff(dim=1)  # (G, m, D)
        attr[grp] = (g * moves).sum(dim=1)
        acc = IdgiSum(ids.numel(), d)
        for k in range(m):
            acc.add(g[:, k], f[:, k + 1] - f[:, k], moves[:, k])
        out[grp] = acc.result()
    return attr, out, scores


@register(
    "blur_ig",
    aliases=("blur_integrated_gradients", "blur-ig"),
    family="path",
    needs_baseline=False,
    complete=True,
    axioms={"completeness", "sensitivity_b", "implementation_invariance", "linearity"},
    summary="Blur IG: gradients integrated along a path of decreasing Gaussian blur.",
    example_rank=2,
)
@shared_parameters("inputs:images", "target:single", "batch_size:rows", "progress", "forward_args")
def blur_ig(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    steps: int = 100,
    max_sigma: float = 50.0,
    grad_step: float = 0.01,
    sqrt: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> Attribution:
    """Blur Integrated Gradients: from the blurred image ``z(max_sigma)`` to the input.

    Parameters
    ----------
    model
        A callable from a batch ``(B, C, H, W)`` (or ``(B, C, L)``) to ``(B,)`` or ``(B, K)``.
    baseline
        Not used (the baseline is the maximally blurred input); must be ``None``.
    steps
        Steps of the path (gradients per example).
    max_sigma
        The widest blur (pixels): the path's start.
    grad_step
        The step in ``sigma`` of the forward difference for ``dz/dsigma``.
    sqrt
        Space the widths as ``sqrt(i max_sigma / m)`` (the path then starts at
        ``sqrt(max_sigma)``).

    Returns
    -------
    Attribution
        Values shaped like the inputs; ``baselines`` the blurred inputs; the sum approximates
        ``F(x) - F(z(max_sigma))``.
    """
    if baseline is not None:
        raise InputError("blur_ig's baseline is the blurred input itself; leave baseline=None "
                         "and choose its width with max_sigma.")
    check_options(inputs, steps, max_sigma, grad_step)
    sigmas = blur_sigmas(max_sigma, steps, sqrt)
    with prepare(model, inputs, target=target, needs_baseline=False, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, allow_multi_target=False) as p:
        set_blur_baseline(p, sigmas[-1])
        attr, _, scores = blur_walk(p, sigmas, grad_step, idgi=False)
        params = {"steps": steps, "max_sigma": max_sigma, "grad_step": grad_step, "sqrt": sqrt,
                  "gradient_evaluations": p.gradient_evaluations}
        return p.result(attr.reshape(p.inputs.shape).to(p.inputs.dtype), "blur_ig", params,
                        extras={"path_scores": scores})
