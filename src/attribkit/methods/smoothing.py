"""SmoothGrad (Smilkov et al. 2017), SmoothGrad-squared and VarGrad (Adebayo et al. 2018) around
any gradient-based method.

The method runs on ``S`` noisy copies ``x + eps``, ``eps ~ N(0, sigma^2)``, of each example, with
``sigma = noise_level * (max(x) - min(x))`` (the noise level relative to the example's range, as
in the SmoothGrad paper), and the results are combined per feature:

* ``"smoothgrad"``: the mean;
* ``"smoothgrad_sq"``: the mean of the squares;
* ``"vargrad"``: the variance ``mean(a^2) - mean(a)^2``.

The noise comes from a local ``torch.Generator`` seeded with ``seed``: one
``randn((N, S, ...))`` draw, scaled by each example's ``sigma``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.checks import count
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import InputError, TargetError
from attribkit.core.multi import FlatModel, several_inputs
from attribkit.core.neurons import Neuron
from attribkit.core.targets import MultiTarget
from attribkit.methods.registry import get, register

__all__ = ["KINDS", "noise_sigma", "smooth", "smoothgrad", "smoothgrad_squared", "vargrad"]

KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")


def noise_sigma(inputs: Tensor, noise_level: float) -> Tensor:
    """``noise_level * (max - min)`` of each example, ``(N,)``."""
    flat = inputs.reshape(inputs.shape[0], -1)
    return noise_level * (flat.amax(dim=1) - flat.amin(dim=1))


def _inner_target(p: Problem, target: Any, samples: int) -> Any:
    if isinstance(target, Neuron):  # the same unit on every noisy copy
        return target
    if p.target.fn is not None:
        return p.target.fn
    if p.target.indices is None:
        return None
    if p.target.multi:
        if isinstance(target, MultiTarget) and target.kind in ("all", "classes"):
            return target
        raise TargetError("SmoothGrad supports all_classes() and classes([...]) for several "
                          "targets; top_k would be chosen anew on every noisy copy. Pass "
                          "classes([...]) with the indices you want.")
    return p.target.indices.repeat_interleave(samples)


def _inner_baseline(baseline: Any, inputs: Tensor, samples: int) -> Any:
    if isinstance(baseline, Tensor) and baseline.shape == inputs.shape and inputs.shape[0] > 1:
        return baseline.repeat_interleave(samples, dim=0)
    return baseline


def _combine(values: Tensor, kind: str) -> tuple[Tensor, Tensor]:
    """Combine ``(N, S, ...)`` values over the sample axis; also the standard error of the mean."""
    s = values.shape[1]
    if kind == "smoothgrad":
        stat = values
    elif kind == "smoothgrad_sq":
        stat = values * values
    else:
        mean = values.mean(dim=1, keepdim=True)
        stat = (values - mean) ** 2
    out = stat.mean(dim=1)
    stderr = stat.std(dim=1) / math.sqrt(s) if s > 1 else torch.full_like(out, math.inf)
    return out, stderr


@shared_parameters("model", "inputs", "batch_size", "progress")
def smooth(
    method: str | Callable[..., Attribution],
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    kind: str = "smoothgrad",
    noise_level: float = 0.15,
    stdev: float | None = None,
    n_samples: int = 50,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Attribution:
    """Run ``method`` on noisy copies of the inputs and combine the results.

    Parameters
    ----------
    method
        A registered method name (``"saliency"``, ``"gradient_x_input"``,
        ``"integrated_gradients"``, ...) or a function with the common signature.
    target
        Resolved once on the clean inputs (``None``: the predicted class) and kept for every noisy
        copy; of the MultiTargets, ``all_classes()`` and ``classes([...])``.
    baseline
        Passed to ``method`` (a tensor shaped like the inputs is repeated for the copies).
    kind
        ``"smoothgrad"``, ``"smoothgrad_sq"`` or ``"vargrad"``.
    noise_level
        The noise's standard deviation as a fraction of each example's range ``max - min``.
    stdev
        An absolute standard deviation instead of ``noise_level``.
    n_samples
        Noisy copies per example.
    seed
        Seed of the local generator that draws the noise.
    forward_args
        Extra per-example tensors passed to the model after the inputs (repeated per copy).
    options
        Further options for ``method`` (e.g. ``{"absolute": True}`` or ``{"steps": 32}``).

    Returns
    -------
    Attribution
        The combined values (``method`` is e.g. ``"smoothgrad[saliency]"``);
        ``extras["stderr"]`` is the standard error of each combined value over the samples.
    """
    if kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, got {kind!r}.")
    n_samples = count(n_samples, "n_samples")
    if stdev is None and not noise_level >= 0:
        raise InputError(f"noise_level must be >= 0, got {noise_level!r}.")
    if stdev is not None and not stdev >= 0:
        raise InputError(f"stdev must be >= 0, got {stdev!r}.")
    fn = get(method).fn if isinstance(method, str) else method
    name = get(method).name if isinstance(method, str) else getattr(method, "__name__", "method")
    with prepare(model, inputs, target=target, needs_baseline=False, batch_size=batch_size,
                 progress=progress, forward_args=forward_args) as p:
        x = p.inputs
        sigma = (torch.full((p.n,), float(stdev), dtype=x.dtype, device=x.device)
                 if stdev is not None else noise_sigma(x, noise_level))
        gen = torch.Generator(device="cpu").manual_seed(seed)
        eps = torch.randn((p.n, n_samples, *x.shape[1:]), generator=gen, dtype=x.dtype)
        eps = eps.to(x.device) * sigma.reshape(-1, 1, *([1] * (x.dim() - 1)))
        noisy = (x[:, None] + eps).reshape(p.n * n_samples, *x.shape[1:])
        fargs = [a.repeat_interleave(n_samples, dim=0) for a in p.forward_args]
        extra: dict[str, Any] = dict(options or {})
        if fargs:
            extra["forward_args"] = fargs
        inner = fn(model, noisy, target=_inner_target(p, target, n_samples),
                   baseline=_inner_baseline(baseline, x, n_samples), batch_size=batch_size,
                   progress=progress, **extra)
        vals = inner.values.reshape(p.n, n_samples, *inner.values.shape[1:])
        out, stderr = _combine(vals, kind)
        params = {"method": name, "kind": kind, "noise_level": noise_level, "stdev": stdev,
                  "n_samples": n_samples, "seed": seed, **dict(options or {})}
        return p.result(out, f"{kind}[{name}]", params, extras={"stderr": stderr,
                                                                "sigma": sigma})


_AXIOMS_MEAN = {"sensitivity_b", "implementation_invariance", "linearity"}
_AXIOMS_SQ = {"sensitivity_b", "implementation_invariance"}


def _registered(kind: str) -> Callable[..., Attribution]:
    def run(model: Callable[..., Tensor], inputs: Tensor, *, target: Any = None,
            baseline: Any = None, method: str = "saliency", noise_level: float = 0.15,
            stdev: float | None = None, n_samples: int = 50, seed: int = 0,
            batch_size: int | None = None, progress: bool = False,
            layer: nn.Module | None = None, forward_args: Sequence[Tensor] | None = None,
            options: Mapping[str, Any] | None = None) -> Attribution:
        opts = dict(options or {})
        if stdev is None and isinstance(model, FlatModel):
            raise InputError("with several inputs give stdev= (one noise level for all): "
                             "noise_level= would take the range over inputs of different scales.")
        if layer is not None:
            opts["layer"] = layer
        return smooth(method, model, inputs, target=target, baseline=baseline, kind=kind,
                      noise_level=noise_level, stdev=stdev, n_samples=n_samples, seed=seed,
                      batch_size=batch_size, progress=progress, forward_args=forward_args,
                      options=opts)

    return run


_DOC = """{title}

    Parameters
    ----------
    target
        Resolved on the clean inputs and kept for every noisy copy.
    baseline
        Passed to ``method`` where it uses one.
    method
        The gradient method to smooth (default ``"saliency"``).
    noise_level
        Noise standard deviation as a fraction of each example's range (default 0.15).
    stdev
        An absolute standard deviation instead of ``noise_level``.
    n_samples
        Noisy copies per example.
    seed
        Seed of the local generator that draws the noise.
    layer
        Passed to ``method``.
    options
        Further options for ``method``.

    Returns
    -------
    Attribution
        See :func:`smooth`.
    """

_document = shared_parameters("model", "inputs", "batch_size:rows", "progress", "forward_args")

smoothgrad = _registered("smoothgrad")
smoothgrad.__name__ = smoothgrad.__qualname__ = "smoothgrad"
smoothgrad.__doc__ = _DOC.format(title="SmoothGrad: the mean of a gradient method over noisy "
                                       "copies of the inputs.")
smoothgrad = register(
    "smoothgrad", aliases=("smooth_grad", "noise_tunnel"), family="gradient",
    needs_baseline=False, complete=False, axioms=_AXIOMS_MEAN, stochastic=True,
)(several_inputs()(_document(smoothgrad)))

smoothgrad_squared = _registered("smoothgrad_sq")
smoothgrad_squared.__name__ = smoothgrad_squared.__qualname__ = "smoothgrad_squared"
smoothgrad_squared.__doc__ = _DOC.format(title="SmoothGrad-squared: the mean of the squared "
                                               "attributions over noisy copies.")
smoothgrad_squared = register(
    "smoothgrad_squared", aliases=("smoothgrad_sq", "smoothgrad2"), family="gradient",
    needs_baseline=False, complete=False, axioms=_AXIOMS_SQ, stochastic=True,
)(several_inputs()(_document(smoothgrad_squared)))

vargrad = _registered("vargrad")
vargrad.__name__ = vargrad.__qualname__ = "vargrad"
vargrad.__doc__ = _DOC.format(title="VarGrad: the variance of a gradient method over noisy "
                                    "copies of the inputs.")
vargrad = register(
    "vargrad", aliases=("var_grad",), family="gradient",
    needs_baseline=False, complete=False, axioms=_AXIOMS_SQ, stochastic=True,
)(several_inputs()(_document(vargrad)))
