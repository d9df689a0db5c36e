"""Infidelity and max-sensitivity (Yeh, Hsieh, Suggala, Inouye & Ravikumar 2019).

* :func:`infidelity`: for random perturbations ``I``, the expected squared difference between
  what the attribution predicts, ``I . a``, and what the model does, ``F(x) - F(x - I)``
  (Gaussian ``I``: the paper's "noisy baseline"); lower is better. ``normalize=True`` first
  rescales the attribution by the least-squares factor ``beta = E[(I.a) dF] / E[(I.a)^2]``
  (Captum's option), which makes the score independent of the attribution's scale.
* :func:`max_sensitivity`: the largest change of the explanation under small input changes
  (uniform in an L-infinity ball), relative to the explanation's norm (Captum's convention);
  lower is better.

Both match Captum's ``infidelity`` / ``sensitivity_max`` given the same perturbations, which
can be injected (``perturbations=``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import InputError
from attribkit.evaluate._features import default_target
from attribkit.evaluate._metric import MetricResult, as_inputs, broadcast_values, generator
from attribkit.methods.registry import get

__all__ = ["infidelity", "max_sensitivity"]


def _perturbations(given: Tensor | None, x: Tensor, n: int, draw: Callable[..., Tensor],
                   seed: int) -> Tensor:
    if given is None:
        shape = (x.shape[0], n, *x.shape[1:])
        return draw(shape, generator(seed)).to(x.dtype).to(x.device)
    if given.shape[:1] != x.shape[:1] or given.shape[2:] != x.shape[1:]:
        raise InputError(f"perturbations must be (N, R, ...) = ({x.shape[0]}, R, "
                         f"{', '.join(str(s) for s in x.shape[1:])}); got {tuple(given.shape)}.")
    return given.to(x.dtype).to(x.device)


@shared_parameters("model:measured", "inputs", "attributions:measured", "target:measured", "seed",
                   "batch_size:rows", "progress")
def infidelity(
    model: Callable[..., Any],
    inputs: Tensor,
    attributions: Attribution | Tensor,
    *,
    target: Any = None,
    n_perturb: int = 32,
    noise_std: float = 0.1,
    perturbations: Tensor | None = None,
    normalize: bool = False,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> MetricResult:
    """Infidelity per example (lower is better).

    Parameters
    ----------
    n_perturb
        Perturbations per example.
    noise_std
        Standard deviation of the Gaussian perturbations ``I`` (in input units).
    perturbations
        Inject ``I`` instead: ``(N, R, ...)``; the model sees ``x - I``.
    normalize
        Rescale the attribution by the optimal ``beta`` first.
    """
    x = as_inputs(inputs)
    a = broadcast_values(attributions, x)
    pert = _perturbations(perturbations, x, n_perturb,
                          lambda s, g: noise_std * torch.randn(s, generator=g,
                                                               dtype=torch.float64), seed)
    n, r = x.shape[0], int(pert.shape[1])
    with prepare(model, x, target=default_target(attributions, target), needs_baseline=False,
                 batch_size=batch_size, progress=progress, black_box=True,
                 allow_multi_target=False) as p:
        def make(sl: slice) -> Tensor:
            rows = torch.arange(sl.start, sl.stop, device=x.device)
            return p.inputs[rows // r] - pert[rows // r, rows % r]

        example = torch.arange(n, device=x.device).repeat_interleave(r)
        scores = p.scores(make, example, desc="infidelity").reshape(n, r).to(torch.float64)
        assert p.output is not None
        diff = p.output.to(torch.float64)[:, None] - scores
    dot = (pert.to(torch.float64).reshape(n, r, -1) * a.reshape(n, 1, -1)).sum(-1)
    if normalize:
        num, den = (dot * diff).mean(1), (dot * dot).mean(1)
        beta = torch.where(den != 0, num / torch.where(den != 0, den, torch.ones_like(den)),
                           torch.zeros_like(den))
        dot = beta[:, None] * dot
    score = ((dot - diff) ** 2).mean(1)
    return MetricResult("infidelity", score.cpu(), False,
                        params={"n_perturb": r, "noise_std": noise_std, "normalize": normalize,
                                "seed": seed})


@shared_parameters("inputs")
def max_sensitivity(
    explain: str | Callable[[Tensor, Tensor | None], Attribution | Tensor],
    model: Callable[..., Any],
    inputs: Tensor,
    *,
    target: Any = None,
    radius: float = 0.02,
    n_perturb: int = 10,
    norm: str = "fro",
    perturbations: Tensor | None = None,
    seed: int = 0,
    options: dict[str, Any] | None = None,
) -> MetricResult:
    """Max-sensitivity per example (lower is better).

    ``max_r ||e(x + d_r) - e(x)|| / ||e(x)||`` over ``n_perturb`` perturbations ``d_r`` drawn
    uniformly from the L-infinity ball of ``radius`` (a zero explanation divides by 1). The
    explained class stays the one explained at ``x``.

    Parameters
    ----------
    explain
        A registered method name, or ``fn(inputs, target) -> Attribution | Tensor``.
    model
        The model the method explains.
    target
        The explained class (default: the predicted class at ``x``).
    radius
        Half-width of the uniform perturbations.
    n_perturb
        Perturbations per example (all explained in one call).
    norm
        ``"fro"`` (L2 of the flattened explanation) or ``"inf"``.
    perturbations
        Inject ``d`` instead: ``(N, R, ...)``; the method sees ``x + d``.
    seed
        Seed of the local random generator (and of stochastic methods).
    options
        Passed to the method (``steps``, ``baseline``...).
    """
    if norm not in ("fro", "inf"):
        raise InputError(f"norm must be 'fro' or 'inf', got {norm!r}.")
    x = as_inputs(inputs)
    fn = _explainer(explain, model, dict(options or {}), seed)
    base = fn(x, None if target is None else torch.as_tensor(target).expand(x.shape[0]))
    tgt = base.target if isinstance(base, Attribution) else None
    if target is not None:
        tgt = torch.as_tensor(target).expand(x.shape[0])
    e0 = (base.values if isinstance(base, Attribution) else base).detach().to(torch.float64)
    pert = _perturbations(perturbations, x, n_perturb,
                          lambda s, g: (torch.rand(s, generator=g, dtype=torch.float64) * 2 - 1)
                          * radius, seed)
    n, r = x.shape[0], int(pert.shape[1])
    xp = (x[:, None] + pert).reshape(n * r, *x.shape[1:])
    out = fn(xp, None if tgt is None else tgt.repeat_interleave(r))
    e1 = (out.values if isinstance(out, Attribution) else out).detach().to(torch.float64)
    diff = e0.reshape(n, 1, -1) - e1.reshape(n, r, -1)
    p = float("inf") if norm == "inf" else 2.0
    den = torch.linalg.vector_norm(e0.reshape(n, -1), ord=p, dim=1)
    den = torch.where(den == 0, torch.ones_like(den), den)
    sens = torch.linalg.vector_norm(diff, ord=p, dim=2) / den[:, None]
    return MetricResult("max_sensitivity", sens.max(1).values.cpu(), False,
                        params={"radius": radius, "n_perturb": r, "norm": norm, "seed": seed})


def _explainer(explain: str | Callable[..., Any], model: Callable[..., Any],
               options: dict[str, Any], seed: int) -> Callable[[Tensor, Tensor | None], Any]:
    if callable(explain):
        return explain
    info = get(explain)
    if info.stochastic:
        options.setdefault("seed", seed)

    def run(xx: Tensor, tgt: Tensor | None) -> Attribution:
        return info.fn(model, xx, target=tgt, **options)

    return run
