"""Baselines (the counterfactual ``x'`` of a path or occlusion method).

A baseline is given as ``None`` (zeros), a number (a constant), a tensor (shaped like the inputs,
or like one example and shared), a name (``"zeros"``, ``"black"``, ``"white"``, ``"grey"``,
``"blur"``, ``"uniform"``), or a :class:`Baseline` object. The colours go through the model's
:class:`~attribkit.core.input_space.InputSpace` where it declares one, so ``"black"`` is black in
the model's own normalisation; elsewhere they are the values of a ``[0, 1]`` image, with a
warning. :func:`resolve_baseline` turns any of them into a tensor shaped like the
inputs, and refuses mismatches instead of broadcasting silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from attribkit.core.errors import BaselineError
from attribkit.core.input_space import COLOURS, InputSpace
from attribkit.core.notes import note

__all__ = [
    "Baseline",
    "Black",
    "Blurred",
    "Constant",
    "UniformNoise",
    "Zeros",
    "resolve_baseline",
]


class Baseline:
    """A rule that builds a baseline tensor from the inputs; subclasses override :meth:`build`."""

    name = "baseline"

    def build(self, inputs: Tensor) -> Tensor:
        """Return a baseline shaped like ``inputs``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Zeros(Baseline):
    """All zeros (the all-zero embedding for text, the zero feature vector for molecules)."""

    name = "zeros"

    def build(self, inputs: Tensor) -> Tensor:
        """Zeros shaped like ``inputs``."""
        return torch.zeros_like(inputs)


@dataclass(frozen=True)
class Constant(Baseline):
    """Every feature set to ``value``."""

    value: float
    name = "constant"

    def build(self, inputs: Tensor) -> Tensor:
        """``value`` everywhere."""
        return torch.full_like(inputs, float(self.value))


@dataclass(frozen=True)
class Black(Baseline):
    """A black image in the model's own normalisation.

    Parameters
    ----------
    value
        The normalised value of a black pixel: one number, or one per channel (axis 1). For
        EfficientNet-Lite's ``(pixels - 127) / 128`` it is ``-127 / 128``.
    """

    value: float | Sequence[float] = 0.0
    name = "black"

    def build(self, inputs: Tensor) -> Tensor:
        """The black image for each example."""
        if isinstance(self.value, (int, float)):
            return torch.full_like(inputs, float(self.value))
        v = torch.as_tensor(list(self.value), dtype=inputs.dtype, device=inputs.device)
        if inputs.dim() < 2 or inputs.shape[1] != v.numel():
            raise BaselineError(
                f"Black got {v.numel()} channel values for inputs of shape {tuple(inputs.shape)}."
            )
        return v.reshape(1, -1, *([1] * (inputs.dim() - 2))).expand_as(inputs).clone()


@dataclass(frozen=True)
class Blurred(Baseline):
    """The input blurred by a Gaussian of width ``sigma`` pixels over its last two axes."""

    sigma: float = 10.0
    name = "blur"

    def build(self, inputs: Tensor) -> Tensor:
        """The blurred inputs (reflect padding, separable Gaussian)."""
        if inputs.dim() < 3:
            raise BaselineError("a blurred baseline needs image-like inputs (N, [C,] H, W).")
        radius = max(1, math.ceil(3 * self.sigma))
        t = torch.arange(-radius, radius + 1, dtype=inputs.dtype, device=inputs.device)
        k = torch.exp(-0.5 * (t / self.sigma) ** 2)
        k = k / k.sum()
        h, w = inputs.shape[-2:]
        x = inputs.reshape(-1, 1, h, w)
        pad_h, pad_w = min(radius, h - 1), min(radius, w - 1)
        x = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
        x = F.conv2d(x, k[radius - pad_h : radius + pad_h + 1].reshape(1, 1, -1, 1))
        x = F.conv2d(x, k[radius - pad_w : radius + pad_w + 1].reshape(1, 1, 1, -1))
        return x.reshape(inputs.shape)


@dataclass(frozen=True)
class UniformNoise(Baseline):
    """Independent uniform noise in ``[low, high]``, reproducible with ``seed``."""

    low: float = 0.0
    high: float = 1.0
    seed: int = 0
    name = "uniform"

    def build(self, inputs: Tensor) -> Tensor:
        """The noise image."""
        g = torch.Generator(device="cpu").manual_seed(self.seed)
        u = torch.rand(inputs.shape, generator=g, dtype=inputs.dtype)
        return (self.low + (self.high - self.low) * u).to(inputs.device)


_NAMED: dict[str, Baseline] = {
    "zeros": Zeros(),
    "zero": Zeros(),
    "blur": Blurred(),
    "blurred": Blurred(),
    "uniform": UniformNoise(),
}


def _colour(name: str, space: InputSpace | None) -> Baseline:
    """The colour ``name`` in the model's input space, or in ``[0, 1]`` with a warning."""
    if space is not None:
        return Black(space.colour(name))
    value = COLOURS[name]
    note(
        f"baseline={name!r} is the value {value:g} (a {name} [0, 1] image): attribkit does not "
        "know this model's input normalisation. If the model sees normalised pixels, give the "
        f"value (baseline=attribkit.Black(v), v = the normalised {name} pixel, one per channel "
        "or one for all) or declare it once: model.attribkit_input_space = "
        "attribkit.InputSpace(mean=..., scale=..., pixel_max=...).")
    return Black(value)


def resolve_baseline(baseline: object, inputs: Tensor, space: InputSpace | None = None) -> Tensor:
    """A baseline tensor shaped like ``inputs`` (same dtype and device).

    Parameters
    ----------
    baseline
        ``None`` (zeros), a number, a name, a :class:`Baseline`, or a tensor shaped like the inputs
        (one baseline per example) or like a single example (shared by all).
    inputs
        The validated inputs, ``(N, ...)``.
    space
        The model's input space (:func:`~attribkit.core.input_space.input_space_of`): the
        colours ``"black"``, ``"white"`` and ``"grey"`` go through it.

    Returns
    -------
    Tensor
        The baseline, detached, ``(N, ...)``.
    """
    if baseline is None:
        return torch.zeros_like(inputs)
    if isinstance(baseline, bool):
        raise BaselineError("baseline=True/False is not a baseline; give a number or a tensor.")
    if isinstance(baseline, (int, float)):
        return torch.full_like(inputs, float(baseline))
    if isinstance(baseline, str):
        if baseline in COLOURS:
            baseline = _colour(baseline, space)
        elif baseline not in _NAMED:
            raise BaselineError(
                f"unknown baseline {baseline!r}; use one of {sorted({*_NAMED, *COLOURS})}, a "
                "number or a tensor."
            )
        else:
            baseline = _NAMED[baseline]
    if isinstance(baseline, Baseline):
        built = baseline.build(inputs)
        return resolve_baseline(built, inputs)
    if not isinstance(baseline, Tensor):
        raise BaselineError(
            f"baseline must be None, a number, a name, a Baseline or a tensor; got "
            f"{type(baseline).__name__}."
        )
    if baseline.is_meta:
        raise BaselineError("the baseline is on the 'meta' device (a shape without data); give a "
                            "baseline with values.")
    if baseline.dtype != inputs.dtype:
        raise BaselineError(
            f"baseline dtype {baseline.dtype} does not match the inputs' {inputs.dtype}; convert "
            f"it with `baseline.to({inputs.dtype})`."
        )
    if baseline.shape == inputs.shape:
        out = baseline
    elif baseline.shape == inputs.shape[1:]:
        out = baseline.unsqueeze(0).expand_as(inputs)
    elif baseline.dim() == inputs.dim() and baseline.shape[0] == 1 and (
        baseline.shape[1:] == inputs.shape[1:]
    ):
        out = baseline.expand_as(inputs)
    else:
        raise BaselineError(
            f"baseline shape {tuple(baseline.shape)} does not match the inputs "
            f"{tuple(inputs.shape)}; give one baseline per example {tuple(inputs.shape)} or one "
            f"shared baseline {tuple(inputs.shape[1:])}."
        )
    # a baseline on another device is moved to the inputs' device (a copy; the user's is kept)
    out = out.detach().to(inputs.device).clone()
    if not torch.isfinite(out).all():
        from attribkit.core.errors import NonFiniteError

        raise NonFiniteError("the baseline contains NaN or inf values.")
    return out
