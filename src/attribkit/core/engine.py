"""Preparing an attribution: the one entry point that validates a call and builds its problem.

:func:`prepare` validates inputs, baseline and target once, guards the model, and yields a
:class:`~attribkit.core.problem.Problem`. A method then builds its points (rows of the
attribution space, each belonging to one example) and asks the problem for scores or gradients;
the problem evaluates them in chunks of ``batch_size`` rows (or as many as fit a memory budget,
measured by :mod:`attribkit.core.probes`), with a progress bar, checks for non-finite values, and
for several targets computes all their gradients from one forward pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core import compiled, fastgraph, memo
from attribkit.core.baselines import resolve_baseline
from attribkit.core.blackbox import admit
from attribkit.core.checks import as_tensor, count
from attribkit.core.errors import InputError, TargetError
from attribkit.core.guard import (
    ModelGuard,
    refuse_batch_statistics,
    this_thread,
    warn_if_training,
)
from attribkit.core.input_space import InputSpace, input_space_of
from attribkit.core.multi import refuse_several
from attribkit.core.neurons import NeuronModel
from attribkit.core.probes import (
    FALLBACK_ROWS,
    channels_last_helps,
    check_independent_rows,
    estimate_rows,
)
from attribkit.core.problem import Points, Problem, check_finite
from attribkit.core.targets import check_output, check_rows, resolve_target, wrap_neuron
from attribkit.core.validate import check_ids, check_model, first_call, validate_inputs

__all__ = ["DEFAULT_MEMORY_BUDGET", "Points", "Problem", "prepare"]

#: Bytes of activations one chunk may use when neither ``batch_size`` nor a budget is given.
DEFAULT_MEMORY_BUDGET = 1 << 30


@contextlib.contextmanager
def prepare(
    model: Callable[..., Tensor],
    inputs: Tensor,
    *,
    target: Any = None,
    baseline: Any = None,
    needs_baseline: bool = True,
    batch_size: int | None = None,
    memory_budget: int | None = None,
    progress: bool = False,
    layer: nn.Module | None = None,
    forward_args: Sequence[Tensor] | None = None,
    allow_multi_target: bool = True,
    layer_input: bool = False,
    channels_last: bool = False,
    black_box: bool = False,
    compile: bool = False,
    fast: bool = False,
) -> Iterator[Problem]:
    """Validate everything once and yield a :class:`Problem`; the model is restored on exit.

    Parameters
    ----------
    model
        Any callable from a batch to outputs ``(N,)`` or ``(N, C)``; an ``nn.Module`` is guarded.
    inputs
        ``(N, ...)`` floats (or integer ids when ``layer`` is given).
    target
        See :mod:`attribkit.core.targets`.
    baseline
        See :mod:`attribkit.core.baselines`. With ``layer``, a baseline with the raw inputs'
        shape and dtype (e.g. ``[PAD]`` token ids) is mapped through the layer.
    needs_baseline
        Whether the method uses a baseline (and ``F(x')``).
    batch_size
        Rows per model call; ``None`` chooses it from ``memory_budget``.
    memory_budget
        Bytes of activations per chunk when ``batch_size`` is ``None`` (default 1 GiB), measured
        with a one-row probe on ``nn.Module`` models.
    progress
        Show a progress bar.
    layer
        Attribute at the output of this sub-module instead of at the inputs.
    layer_input
        With ``layer``: attribute at the layer's (first positional) input instead of its output.
    forward_args
        Extra per-example tensors (leading axis ``N``) passed to the model after the inputs, e.g.
        an attention mask; each row gets its example's values.
    allow_multi_target
        Whether the method supports a :class:`~attribkit.core.targets.MultiTarget`.
    channels_last
        Evaluate image batches ``(B, C, H, W)`` in the channels-last memory layout (and the
        model's 4-D weights with them, restored on exit): often faster for convolutions on CPUs.
        The values are the same up to floating-point rounding. Forward-only problems
        (``black_box=True``) and ``fast=True`` problems on float32 images of at least 64 x 64
        pixels on a CPU use it whatever this says
        (:func:`~attribkit.core.probes.channels_last_helps`).
    compile
        Evaluate the path batches with ``torch.compile`` of the model (kept per model across
        calls; :mod:`attribkit.core.compiled`), falling back to the model with one warning where
        compilation fails.
    fast
        Run the forward passes and input gradients through the folded copy of an eval-mode
        model (:mod:`attribkit.core.fastgraph`; the model as given where none can be made), and
        CPU images channels-last. For methods that attach no hooks to the model's modules
        (Integrated Gradients); forward-only problems (``black_box=True``) do both whatever
        this says.
    black_box
        Whether the method uses forward passes only: then any callable (a NumPy function, a
        scikit-learn ``predict_proba``) is a model and NumPy inputs are accepted
        (:mod:`attribkit.core.blackbox`); otherwise a known black box is refused up front.
    """
    if layer is not None and not isinstance(layer, nn.Module):
        raise InputError("layer must be an nn.Module inside the model.")
    refuse_several(inputs)  # a tuple reaches here only in a method without several inputs
    if layer_input and layer is None:
        raise InputError("attribute_to='layer_input' needs layer= (the module whose input is "
                         "attributed).")
    pixels = input_space_of(model)  # read before the model is wrapped
    model, target = wrap_neuron(model, target)
    model, inputs = admit(model, inputs, black_box=black_box, layer=layer)
    raw = validate_inputs(inputs, layer, model)
    fargs = tuple(as_tensor(a, "forward_args").detach() if not isinstance(a, Tensor)
                  and hasattr(a, "shape") else a for a in (forward_args or ()))
    for a in fargs:
        if not isinstance(a, Tensor) or a.shape[:1] != raw.shape[:1]:
            raise InputError("each forward_args entry must be a tensor with one row per example.")
    fargs = tuple(a.detach() for a in fargs)
    if batch_size is not None:
        batch_size = count(batch_size, "batch_size", maximum=None)
    refuse_batch_statistics(model)
    random_model = warn_if_training(model)
    check_model(model, raw)
    guard = ModelGuard(model)
    with guard:  # entered once: recording and restoring the model costs per module
        with torch.no_grad():
            ex = torch.arange(raw.shape[0], device=raw.device)
            if layer is None:
                out = check_rows(check_output(first_call(model, raw, fargs)), raw.shape[0])
                space = raw
            else:
                space, out = _layer_activations(model, layer, raw, fargs, guard, layer_input)
            check_finite(out, "the model output")
            resolved = resolve_target(target, out)
            if isinstance(model, NeuronModel):
                resolved = dataclasses.replace(resolved, label=model.neuron.label)
            if resolved.multi and not allow_multi_target:
                raise TargetError("this method explains one target at a time; pass an int, one "
                                  "index per example or a callable instead of a MultiTarget.")
            problem = Problem(model=model, inputs=space, baseline=None, target=resolved,
                              batch_size=batch_size or max(1, min(raw.shape[0], FALLBACK_ROWS)),
                              progress=progress, guard=guard,
                              raw_inputs=raw, forward_args=fargs, layer=layer,
                              layer_input=layer_input)
            problem.output = resolved.select(out, ex).detach()
            if needs_baseline:
                problem.baseline = _layer_baseline(problem, baseline, pixels)
                problem.baseline_output = problem.scores(problem.baseline, ex, desc="baseline")
                problem.forward_evaluations -= problem.n
            # probes whose outcome depends on the model and the shapes only: once per model
            # (attribkit.core.memo; an edited model is probed again)
            now = memo.stamp(model)
            shape = (tuple(raw.shape[1:]), raw.dtype, str(raw.device), id(layer), layer_input,
                     tuple((tuple(a.shape[1:]), a.dtype) for a in fargs))
            if not random_model and not memo.recall(model, ("rows independent", shape), now):
                check_independent_rows(problem, out)
                memo.remember(model, ("rows independent", shape), now, True)
            if batch_size is None:
                budget = memory_budget or DEFAULT_MEMORY_BUDGET
                rows = memo.recall(model, ("rows per chunk", shape, budget), now)
                if rows is None:
                    rows = estimate_rows(problem, budget)
                    memo.remember(model, ("rows per chunk", shape, budget), now, rows)
                problem.batch_size = rows
        channels_last = channels_last or ((black_box or fast)
                                          and channels_last_helps(model, space, layer))
        problem.channels_last = channels_last
        if channels_last:
            guard.use_channels_last()
        if compile:
            problem.compiled = compiled.compiled_model(model, layer)
        elif ((black_box or fast) and layer is None and not random_model
              and not isinstance(model, NeuronModel)):
            problem.fast = fastgraph.fast_forward(model, raw, out, fargs, shape, now,
                                                  channels_last, inplace=black_box)
        yield problem


def _layer_activations(model: Callable[..., Tensor], layer: nn.Module, raw: Tensor,
                       fargs: tuple[Tensor, ...], guard: ModelGuard,
                       layer_input: bool = False) -> tuple[Tensor, Tensor]:
    captured: list[Tensor] = []

    def grab(_m: nn.Module, _a: Any, out: Any = None) -> None:
        if layer_input:
            out = _a[0] if _a else None
            if not isinstance(out, Tensor):
                raise InputError(f"layer {type(layer).__name__} takes no tensor as its first "
                                 "positional input; attribute_to='layer_input' needs one.")
        if not isinstance(out, Tensor):
            raise InputError(f"layer {type(layer).__name__} returns {type(out).__name__}; "
                             "attribution at a layer needs a layer that returns one tensor.")
        captured.append(out.detach().clone())  # a later in-place op must not overwrite it

    hook = this_thread(grab)
    handle = guard.add_handle(layer.register_forward_pre_hook(hook) if layer_input
                              else layer.register_forward_hook(hook))
    try:
        out = check_rows(check_output(first_call(model, raw, fargs)), raw.shape[0])
    finally:
        handle.remove()
    if len(captured) != 1:
        raise InputError(f"the layer ran {len(captured)} times in one forward pass; attribution "
                         "needs a layer that runs exactly once (is it part of the model?).")
    act = captured[0]
    if act.shape[0] != raw.shape[0]:
        raise InputError("the layer's output has no batch axis matching the inputs.")
    return act, out


def _layer_baseline(problem: Problem, baseline: Any, space: InputSpace | None) -> Tensor:
    # a NumPy baseline: floats take the attribution space's dtype, ids stay integers
    baseline = as_tensor(baseline, "baseline", dtype=problem.inputs.dtype,
                         device=problem.inputs.device)
    if (problem.layer is not None and isinstance(baseline, Tensor)
            and not baseline.is_floating_point() and not problem.raw_inputs.is_floating_point()):
        if baseline.shape != problem.raw_inputs.shape:
            raise InputError(f"baseline ids {tuple(baseline.shape)} do not match the inputs "
                             f"{tuple(problem.raw_inputs.shape)}.")
        if isinstance(problem.layer, nn.Embedding):
            check_ids(baseline, problem.layer, "baseline ids")
        act, _ = _layer_activations(problem.model, problem.layer, baseline.to(
            problem.raw_inputs.device), problem.forward_args, problem.guard,
            problem.layer_input)
        return act
    # a colour ("black") is black in the model's own normalisation, where it declares one
    return resolve_baseline(baseline, problem.inputs, space if problem.layer is None else None)
