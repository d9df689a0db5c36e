"""Models with several inputs: ``model(image, metadata)`` explained through one flat problem.

A tuple of inputs ``(x_1, ..., x_k)``, each ``(N, *s_j)``, is laid side by side as one flat
``(N, D)`` tensor with ``D = sum_j prod(s_j)``. A wrapper model splits a flat batch back into the
parts and calls ``model(*parts, *forward_args)``; any single-tensor method then runs unchanged on
the flat problem, and its result is split back into one attribution per input
(:class:`~attribkit.core.multi_result.MultiAttribution`). Since the wrapper is the same function
of the same numbers, completeness, the baselines and the target mean what they mean for one
tensor: the sum over *all* inputs' attributions is ``F(x) - F(x')``.

What is translated for the flat problem (each keyword given per input, as a tuple):

* ``baseline``: a tuple of baselines (anything :func:`~attribkit.core.baselines.resolve_baseline`
  accepts, resolved against its own input); a number, a name or a :class:`Baseline` applies to
  every input; a single tensor is refused (give one per input);
* ``background`` (and ``baseline`` where the method takes reference samples): a tuple of
  ``(B, *s_j)`` sample sets with the same ``B``;
* ``feature_mask`` / ``groups``: a tuple of integer id masks, one per input, concatenated into
  one flat mask with distinct ids per input (input ``j``'s ids are shifted past those of the
  inputs before it; negative ids stay negative); ``None`` in the tuple: one id per scalar.

``layer=``, ``window=`` and ``stride=`` only make sense on one tensor and are refused with tuples,
as are integer inputs (ids, masks): pass those in ``forward_args=`` (the model then receives them
after the float inputs) or attribute at an embedding layer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import Tensor

from attribkit.core.baselines import resolve_baseline
from attribkit.core.blackbox import BlackBox, is_black_box
from attribkit.core.checks import as_tensor
from attribkit.core.errors import AttribkitError, InputError
from attribkit.core.flat import FlatModel, Layout
from attribkit.core.multi_result import MultiAttribution
from attribkit.core.validate import model_float_dtype

__all__ = ["SEVERAL_INPUTS", "FlatModel", "Layout", "flat_baseline", "flat_mask", "flat_samples",
           "flatten_inputs", "is_several", "refuse_several", "several_inputs"]

F = TypeVar("F", bound=Callable[..., Any])

#: The methods that accept a tuple of inputs (filled by :func:`several_inputs`).
SEVERAL_INPUTS: list[str] = []

_MASK_KEYS = ("feature_mask", "groups")
_ONE_TENSOR_KEYS = {"layer": "attributes at one layer of one model input",
                    "window": "slides over one tensor", "stride": "slides over one tensor"}


def _part(j: int, k: int) -> str:
    return f"input {j} of {k}"


def is_several(inputs: object) -> bool:
    """Whether ``inputs`` is a tuple or list of tensors (or NumPy arrays): several inputs."""
    return isinstance(inputs, (tuple, list)) and any(
        isinstance(x, (Tensor, np.ndarray)) for x in inputs)


def flatten_inputs(inputs: Sequence[Any], dtype: torch.dtype | None = None,
                   ) -> tuple[Layout, tuple[Tensor, ...], Tensor]:
    """Check a tuple of inputs; return their layout, the parts and the flat ``(N, D)`` tensor.

    NumPy arrays are converted (floats to ``dtype``, the model's).

    Raises
    ------
    InputError
        An empty tuple, a part that is no floating tensor, or parts that disagree on the number
        of examples, the dtype or the device.
    """
    k = len(inputs)
    if k == 0:
        raise InputError("inputs is an empty tuple; give one tensor per model input.")
    parts: list[Tensor] = []
    inputs = [as_tensor(x, _part(j, k), dtype=dtype) for j, x in enumerate(inputs)]
    for j, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise InputError(f"{_part(j, k)} is a {type(x).__name__}; every input of a tuple must "
                             "be a torch.Tensor (N, ...).")
        if x.dim() == 0:
            raise InputError(f"{_part(j, k)} is a 0-d tensor; each input needs a batch axis "
                             "(N, ...).")
        if not x.is_floating_point():
            raise InputError(
                f"{_part(j, k)} is {x.dtype} (token ids or a mask?) and cannot be attributed: "
                "pass it in forward_args=(...) instead (the model then gets it after the float "
                "inputs), or attribute at the embedding with layer= on a single input.")
        if x.shape[0] != inputs[0].shape[0]:
            raise InputError(f"{_part(j, k)} has {x.shape[0]} examples but input 0 has "
                             f"{inputs[0].shape[0]}: every input needs one row per example.")
        if x.dtype != inputs[0].dtype:
            raise InputError(f"{_part(j, k)} is {x.dtype} but input 0 is {inputs[0].dtype}; give "
                             f"all inputs one dtype (.to({inputs[0].dtype})).")
        if x.device != inputs[0].device:
            raise InputError(f"{_part(j, k)} is on {x.device} but input 0 on "
                             f"{inputs[0].device}; put all inputs on one device.")
        parts.append(x.detach())
    layout = Layout(tuple(tuple(int(s) for s in x.shape[1:]) for x in parts))
    return layout, tuple(parts), layout.flatten(parts)


def _per_input(value: Any, k: int, what: str) -> tuple[Any, ...]:
    if len(value) != k:
        raise InputError(f"{what} is a tuple of {len(value)} but there are {k} inputs; give one "
                         "per input.")
    return tuple(value)


def flat_baseline(baseline: Any, parts: Sequence[Tensor], layout: Layout) -> Tensor:
    """One baseline per input (or one rule for all) as one flat ``(N, D)`` tensor."""
    k = len(parts)
    if isinstance(baseline, Tensor):
        raise InputError(f"baseline is one tensor but there are {k} inputs; give a tuple of "
                         f"{k} baselines, one per input.")
    each = _per_input(baseline, k, "baseline") if isinstance(baseline, (tuple, list)) else (
        (baseline,) * k)
    resolved = []
    for j, (b, x) in enumerate(zip(each, parts, strict=True)):
        try:
            resolved.append(resolve_baseline(b, x))
        except AttribkitError as err:
            raise type(err)(f"baseline of {_part(j, k)}: {err}") from None
    return layout.flatten(resolved)


def flat_samples(samples: Any, parts: Sequence[Tensor], layout: Layout, what: str) -> Tensor:
    """A tuple of reference sample sets ``(B, *s_j)`` (same ``B``) as one ``(B, D)`` tensor."""
    k = len(parts)
    if not isinstance(samples, (tuple, list)):
        raise InputError(f"{what} must be a tuple of {k} sample sets (B, ...), one per input.")
    sets = _per_input(samples, k, what)
    for j, (s, x) in enumerate(zip(sets, parts, strict=True)):
        if not isinstance(s, Tensor) or tuple(s.shape[1:]) != layout.shapes[j] or s.dim() == 0:
            got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise InputError(f"{what} of {_part(j, k)} is {got}; give (B, "
                             f"{', '.join(map(str, layout.shapes[j]))}) samples.")
        if s.shape[0] != sets[0].shape[0]:
            raise InputError(f"{what} of {_part(j, k)} has {s.shape[0]} samples but that of "
                             f"input 0 has {sets[0].shape[0]}; sample j of every input must "
                             "belong together.")
        if s.dtype != x.dtype:
            raise InputError(f"{what} of {_part(j, k)} is {s.dtype}; convert it with "
                             f".to({x.dtype}).")
    return layout.flatten([s.detach().to(x.device) for s, x in zip(sets, parts, strict=True)])


def flat_mask(masks: Any, parts: Sequence[Tensor], layout: Layout, what: str) -> Tensor:
    """A tuple of integer id masks as one flat mask with distinct ids per input.

    Each mask is shaped like (or broadcasts to) one example of its input, or the whole input
    ``(N, *s_j)``; ``None`` gives every scalar of that input its own id. Input ``j``'s
    non-negative ids are shifted by ``1 + `` the largest id before it; negative ids stay. The
    result is ``(D,)``, or ``(N, D)`` when any mask is per example.
    """
    k, n = len(parts), int(parts[0].shape[0])
    if isinstance(masks, Tensor) or not isinstance(masks, (tuple, list)):
        raise InputError(f"{what} with {k} inputs must be a tuple of {k} masks (None for one id "
                         "per scalar), one per input.")
    flat: list[Tensor] = []
    batch = False
    offset = 0
    for j, m in enumerate(_per_input(masks, k, what)):
        shape = layout.shapes[j]
        if m is None:
            m = torch.arange(layout.sizes[j], device=parts[j].device).reshape(shape)
        if not isinstance(m, Tensor) or m.is_floating_point() or m.dtype == torch.bool:
            raise InputError(f"{what} of {_part(j, k)} must be an integer tensor of ids.")
        per_example = m.dim() == len(shape) + 1
        try:
            m = m.to(parts[j].device).long().broadcast_to((n, *shape) if per_example else shape)
        except RuntimeError:
            raise InputError(f"{what} of {_part(j, k)} has shape {tuple(m.shape)}, which fits "
                             f"neither one example {shape} nor the input {(n, *shape)}.") from None
        m = torch.where(m >= 0, m + offset, m)
        if bool((m >= 0).any()):
            offset = int(m.max()) + 1
        batch |= per_example
        flat.append(m.reshape(n, -1) if per_example else m.reshape(-1))
    if batch:
        return torch.cat([f if f.dim() == 2 else f.expand(n, -1) for f in flat], dim=1)
    return torch.cat(flat)


def refuse_several(inputs: object) -> None:
    """Raise a one-line :class:`InputError` for a tuple given to a single-input method."""
    if is_several(inputs):
        assert isinstance(inputs, (tuple, list))
        raise InputError(
            f"this method takes one input tensor, not a {type(inputs).__name__} of "
            f"{len(inputs)}; the methods for models with several inputs are "
            f"{', '.join(sorted(SEVERAL_INPUTS))}.")


def several_inputs(*, samples: tuple[str, ...] = ("background",)) -> Callable[[F], F]:
    """Let a single-tensor method take a tuple of inputs (a decorator; see the module doc).

    Parameters
    ----------
    samples
        The keywords that hold reference sample sets ``(B, ...)`` rather than baselines.

    The decorated function returns a :class:`~attribkit.core.multi_result.MultiAttribution`
    for a tuple (or list) of inputs and is unchanged for one tensor.
    """
    def deco(fn: F) -> F:
        SEVERAL_INPUTS.append(fn.__name__)

        @functools.wraps(fn)
        def wrapper(model: Callable[..., Tensor], inputs: Any, *args: Any,
                    **options: Any) -> Any:
            if not is_several(inputs):
                return fn(model, inputs, *args, **options)
            return run_flat(fn, model, inputs, samples, *args, **options)

        wrapper.__doc__ = (fn.__doc__ or "").rstrip() + _NOTE
        return cast(F, wrapper)

    return deco


_NOTE = """

    Notes
    -----
    A model with several inputs takes a tuple of tensors as ``inputs`` (and tuples of
    baselines, sample sets or masks, one per input); the result is then a
    :class:`~attribkit.core.multi_result.MultiAttribution` with one attribution per input. See
    :mod:`attribkit.core.multi`.
"""


def run_flat(fn: Callable[..., Any], model: Callable[..., Tensor], inputs: Sequence[Any],
             samples: tuple[str, ...], *args: Any, **options: Any) -> Any:
    """Run ``fn`` on the flat problem of several inputs and split its result per input."""
    for key, why in _ONE_TENSOR_KEYS.items():
        if options.get(key) is not None:
            extra = " Use feature_mask= (a tuple of masks) to group features." if (
                key != "layer") else ""
            raise InputError(f"{key}= {why}; it is not supported with several inputs.{extra}")
    if isinstance(model, BlackBox) or is_black_box(model):
        raise InputError("several inputs need a torch model (a callable of tensors); wrap a "
                         "black box so that it takes one array.")
    if not callable(model):
        raise InputError(f"model must be callable, got {type(model).__name__}.")
    layout, parts, flat = flatten_inputs(inputs, model_float_dtype(model))
    opts = dict(options)
    for key in samples:
        if opts.get(key) is not None:
            opts[key] = flat_samples(opts[key], parts, layout, key)
    if "baseline" not in samples and opts.get("baseline") is not None:
        opts["baseline"] = flat_baseline(opts["baseline"], parts, layout)
    for key in _MASK_KEYS:
        if opts.get(key) is not None:
            opts[key] = flat_mask(opts[key], parts, layout, key)
    result = fn(FlatModel(model, layout), flat, *args, **opts)
    return MultiAttribution.from_flat(result, layout)
