"""Batched evaluation of a model and its input gradients: the one place methods ask for them.

:func:`prepare` validates inputs, baseline and target once, guards the model, and returns a
:class:`Problem`. A method then builds its points (rows of the attribution space, each belonging
to one example) and asks the problem for scores or gradients; the problem evaluates them in chunks
of ``batch_size`` rows (or as many as fit a memory budget), with a progress bar, checks for
non-finite values, and for several targets computes all their gradients from one forward pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core import compiled, memo
from attribkit.core.attribution import Attribution
from attribkit.core.baselines import resolve_baseline
from attribkit.core.blackbox import admit
from attribkit.core.checks import as_tensor, count
from attribkit.core.errors import (
    InputError,
    NonFiniteError,
    TargetError,
)
from attribkit.core.guard import (
    ModelGuard,
    refuse_batch_statistics,
    this_thread,
    warn_if_training,
)
from attribkit.core.multi import refuse_several
from attribkit.core.neurons import NeuronModel
from attribkit.core.progress import progress_bar
from attribkit.core.targets import (
    ResolvedTarget,
    check_output,
    check_rows,
    resolve_target,
    wrap_neuron,
)
from attribkit.core.validate import (
    check_ids,
    check_independent_rows,
    check_model,
    first_call,
    validate_inputs,
)

__all__ = ["DEFAULT_MEMORY_BUDGET", "Points", "Problem", "prepare"]

#: Bytes of activations one chunk may use when neither ``batch_size`` nor a budget is given.
DEFAULT_MEMORY_BUDGET = 1 << 30
_FALLBACK_ROWS = 64
_MAX_ROWS = 1024

#: Rows to evaluate: a tensor, or a function from a slice of row numbers to those rows.
Points = Tensor | Callable[[slice], Tensor]


@dataclass
class Problem:
    """A validated attribution problem. Build it with :func:`prepare`.

    ``inputs`` and ``baseline`` live in the attribution space: the model inputs, or the
    activations of ``layer`` when attributing at a layer. A method passes points of that space
    with ``example`` (one example index per row) to :meth:`scores` and :meth:`gradients`.
    """

    model: Callable[..., Tensor]
    inputs: Tensor
    baseline: Tensor | None
    target: ResolvedTarget
    batch_size: int
    progress: bool
    guard: ModelGuard
    raw_inputs: Tensor
    forward_args: tuple[Tensor, ...] = ()
    layer: nn.Module | None = None
    layer_input: bool = False
    output: Tensor | None = None
    baseline_output: Tensor | None = None
    channels_last: bool = False
    compiled: Callable[..., Any] | None = None
    gradient_evaluations: int = 0
    forward_evaluations: int = 0
    _ex_all: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    _warned_disconnected: bool = False

    @property
    def n(self) -> int:
        """Number of examples."""
        return int(self.inputs.shape[0])

    @property
    def examples(self) -> Tensor:
        """``arange(N)``: the example index of each input row."""
        return torch.arange(self.n, device=self.inputs.device)

    # -- calling the model --------------------------------------------------------------------
    def call(self, points: Tensor, example: Tensor) -> Tensor:
        """The raw model output for ``points`` (rows of the attribution space)."""
        extra = tuple(a[example] for a in self.forward_args)
        if self.channels_last and points.dim() == 4:
            points = points.contiguous(memory_format=torch.channels_last)
        if self.layer is None:
            if self.compiled is not None:
                return self._call_compiled(points, extra)
            return check_rows(check_output(self.model(points, *extra)), points.shape[0])
        raw = self.raw_inputs[example]
        calls = [0]

        def replace(_m: nn.Module, _args: Any, out: Any = None) -> Any:
            calls[0] += 1
            if calls[0] > 1:
                raise InputError("the attribution layer is called more than once per forward "
                                 "pass; choose a layer that runs once.")
            if self.layer_input:  # a pre-hook: replace the layer's first positional input
                out = _args[0] if _args else None
            if isinstance(out, Tensor) and out.shape != points.shape:
                raise InputError(f"layer {'input' if self.layer_input else 'output'} "
                                 f"{tuple(out.shape)} does not match the points "
                                 f"{tuple(points.shape)} being attributed.")
            # a fresh tensor: an in-place operation after the layer (ReLU(inplace=True)) must
            # neither write into the points nor into a leaf that requires grad
            if self.layer_input:
                return (points.clone(), *_args[1:])
            return points.clone()

        # only this thread's forward passes are rewritten: another thread may use the model
        hook = this_thread(replace)
        handle = self.guard.add_handle(self.layer.register_forward_pre_hook(hook)
                                       if self.layer_input else
                                       self.layer.register_forward_hook(hook))
        try:
            return check_rows(check_output(self.model(raw, *extra)), points.shape[0])
        finally:
            handle.remove()

    def _call_compiled(self, points: Tensor, extra: tuple[Tensor, ...]) -> Tensor:
        """The compiled model on a chunk padded to ``batch_size`` rows (one static shape)."""
        m = int(points.shape[0])
        rows = max(m, self.batch_size)
        assert self.compiled is not None
        try:
            out = self.compiled(compiled.pad_rows(points, rows),
                                *(compiled.pad_rows(a, rows) for a in extra))
        except Exception as e:  # compilation failed: once per model, then the plain model
            self.compiled = None
            compiled.report_failure(self.model, e)
            return check_rows(check_output(self.model(points, *extra)), m)
        return check_rows(check_output(out), rows)[:m]

    def chunks(self, m: int, desc: str) -> Iterator[slice]:
        """Slices of ``m`` rows in steps of ``batch_size``, advancing a progress bar."""
        with progress_bar(m, desc, self.progress) as bar:
            for s in range(0, m, self.batch_size):
                e = min(m, s + self.batch_size)
                yield slice(s, e)
                bar.update(e - s)

    def outputs(self, points: Points, example: Tensor, desc: str = "forward") -> Tensor:
        """Full model outputs for many points, without gradients, in chunks.

        ``points`` is a tensor of rows, or a function from a slice of rows to those rows.
        """
        outs = []
        with torch.no_grad():
            for sl in self.chunks(int(example.shape[0]), desc):
                out = self.call(_rows(points, sl), example[sl])
                _check_finite(out, "the model output")
                outs.append(out)
        self.forward_evaluations += int(example.shape[0])
        return torch.cat(outs) if outs else self.inputs.new_zeros((0,))

    def scores(self, points: Points, example: Tensor, desc: str = "forward") -> Tensor:
        """Target scores ``(M,)`` (or ``(M, K)``) for many points, without gradients."""
        res = []
        with torch.no_grad():
            for sl in self.chunks(int(example.shape[0]), desc):
                out = self.call(_rows(points, sl), example[sl])
                sc = self.target.select(out, example[sl])
                _check_finite(sc, "the model output")
                res.append(sc)
        self.forward_evaluations += int(example.shape[0])
        return torch.cat(res) if res else self.inputs.new_zeros((0,))

    def gradients(self, points: Points, example: Tensor,
                  desc: str = "gradients") -> tuple[Tensor, Tensor]:
        """Target scores and their gradients with respect to ``points``.

        Returns
        -------
        scores
            ``(M,)``, or ``(M, K)`` with several targets.
        grads
            ``(M, ...)`` like ``points``, or ``(M, K, ...)`` with several targets.
        """
        scores, grads = [], []
        for sl in self.chunks(int(example.shape[0]), desc):
            sc, g = self._grad_chunk(_rows(points, sl), example[sl])
            scores.append(sc)
            grads.append(g)
        self.gradient_evaluations += int(example.shape[0])
        return torch.cat(scores), torch.cat(grads)

    def gradient_sum(self, make_points: Callable[[slice], Tensor], example: Tensor,
                     weight: Tensor, desc: str = "gradients", bucket: Tensor | None = None,
                     n_buckets: int | None = None) -> tuple[Tensor, Tensor]:
        """Weighted sums of gradients per example, building the points chunk by chunk.

        Parameters
        ----------
        make_points
            Returns the rows ``sl`` of the points (so that all points never sit in memory).
        example
            ``(M,)`` the example of each row.
        weight
            ``(M,)`` the weight of each row's gradient.
        desc
            Progress bar label.
        bucket
            ``(M,)`` where each row's weighted gradient is summed (default: its example).
        n_buckets
            The number of buckets (default: the number of examples).

        Returns
        -------
        scores
            ``(M,)`` or ``(M, K)`` target scores at the points.
        sums
            ``(B, ...)`` (or ``(B, K, ...)``) of ``sum_rows weight * grad`` per bucket.
        """
        into = example if bucket is None else bucket
        size = self.n if n_buckets is None else n_buckets
        sums: Tensor | None = None
        scores = []
        for sl in self.chunks(int(example.shape[0]), desc):
            sc, g = self._grad_chunk(make_points(sl), example[sl])
            scores.append(sc)
            wg = g * weight[sl].to(g.dtype).reshape(-1, *([1] * (g.dim() - 1)))
            if sums is None:
                sums = torch.zeros((size, *g.shape[1:]), dtype=g.dtype, device=g.device)
            sums.index_add_(0, into[sl], wg)
        self.gradient_evaluations += int(example.shape[0])
        if sums is None:
            k = () if not self.target.multi else (self.target.n_targets,)
            sums = torch.zeros((size, *k, *self.inputs.shape[1:]), dtype=self.inputs.dtype)
            return self.inputs.new_zeros((0, *k)), sums
        return torch.cat(scores), sums

    def _grad_chunk(self, x: Tensor, ex: Tensor) -> tuple[Tensor, Tensor]:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            out = self.call(x, ex)
            sc = self.target.select(out, ex)
            g: Tensor | None = None
            if not sc.requires_grad:
                pass
            elif sc.dim() == 1:
                (g,) = torch.autograd.grad(sc.sum(), x, allow_unused=True)
            else:
                g = _per_target_grads(sc, x)
            if g is None:
                self.disconnected()
                g = torch.zeros((*x.shape[:1], *sc.shape[1:], *x.shape[1:]), dtype=x.dtype,
                                device=x.device)
        _check_finite(sc, "the model output")
        _check_finite(g, "the gradients")
        return sc.detach(), g.detach()

    def disconnected(self) -> None:
        """The target score does not reach the inputs in the autograd graph: raise or warn.

        With ``F(x) != F(x')`` the zero gradients would be silently wrong (an attribution that
        cannot be complete), so it raises; otherwise (no baseline, or a constant model) it warns
        once per call.
        """
        what = "the layer's output" if self.layer is not None else "the inputs"
        msg = (f"the target score does not depend on {what} in the autograd graph (a .detach(), "
               ".numpy(), .item(), torch.no_grad() or an integer cast inside the model?), so "
               "every gradient is zero")
        out, base = self.output, self.baseline_output
        if out is not None and base is not None and not torch.allclose(out, base):
            raise InputError(f"{msg} although F(x) differs from F(x') (by up to "
                             f"{float((out - base).abs().max()):.3g}): the attribution would be "
                             "silently wrong. Keep the computation differentiable from the "
                             "inputs to the score.")
        if not self._warned_disconnected:
            self._warned_disconnected = True
            warnings.warn(f"{msg}; the attribution is all zeros.", RuntimeWarning, stacklevel=4)

    # -- results -------------------------------------------------------------------------------
    def result(self, values: Tensor, method: str, params: dict[str, Any],
               **extra: Any) -> Attribution:
        """Wrap ``values`` into an :class:`Attribution` with this problem's context."""
        target = self.target.indices
        return Attribution(
            values=values.detach(), inputs=self.inputs, baselines=self.baseline, method=method,
            params=params, target=target, target_label=self.target.label, output=self.output,
            baseline_output=self.baseline_output, **extra,
        )


def _rows(points: Points, sl: slice) -> Tensor:
    return points(sl) if callable(points) else points[sl]


def _per_target_grads(sc: Tensor, x: Tensor) -> Tensor | None:
    """Gradients of each of the K score columns from one forward graph, ``(B, K, ...)``.

    One backward per column, all through the same retained graph. A vectorised backward
    (``is_grads_batched=True``) was measured slower than this loop on CPU convolutions (197 ms
    against 106 ms for 10 targets of a small CNN at 200 rows), so the loop is used.
    """
    k = sc.shape[1]
    cols = [torch.autograd.grad(sc[:, j].sum(), x, retain_graph=j < k - 1, allow_unused=True)[0]
            for j in range(k)]
    if all(c is None for c in cols):
        return None
    return torch.stack([torch.zeros_like(x) if c is None else c for c in cols], dim=1)


def _check_finite(t: Tensor, what: str) -> None:
    # fast path: a sum is finite unless an element is NaN/inf (or the sum overflows, which the
    # full check below then clears)
    if t.numel() == 0 or bool(torch.isfinite(t.sum())):
        return
    if not torch.isfinite(t).all():
        raise NonFiniteError(
            f"{what} contain NaN or inf. Check the inputs' scale and the model (a log of 0, an "
            "overflow in float16...); float64 inputs and model often help."
        )


def _estimate_rows(problem: Problem, budget: int) -> int:
    """How many rows fit ``budget`` bytes of activations, measured on a one-row probe."""
    model = problem.model
    if not isinstance(model, nn.Module):
        return _FALLBACK_ROWS
    total = [0]

    def count(_m: nn.Module, _a: Any, out: Any) -> None:
        if isinstance(out, Tensor):
            total[0] += out.numel() * out.element_size()

    handles = [m.register_forward_hook(this_thread(count)) for m in model.modules()
               if len(list(m.children())) == 0]
    try:
        with torch.no_grad():
            problem.call(problem.inputs[:1], problem.examples[:1])
    finally:
        for h in handles:
            h.remove()
    per_row = max(1, 2 * total[0])  # saved activations plus their gradients
    return int(max(1, min(_MAX_ROWS, budget // per_row)))


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
        The values are the same up to floating-point rounding.
    compile
        Evaluate the path batches with ``torch.compile`` of the model (kept per model across
        calls; :mod:`attribkit.core.compiled`), falling back to the model with one warning where
        compilation fails.
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
            _check_finite(out, "the model output")
            resolved = resolve_target(target, out)
            if isinstance(model, NeuronModel):
                resolved = dataclasses.replace(resolved, label=model.neuron.label)
            if resolved.multi and not allow_multi_target:
                raise TargetError("this method explains one target at a time; pass an int, one "
                                  "index per example or a callable instead of a MultiTarget.")
            problem = Problem(model=model, inputs=space, baseline=None, target=resolved,
                              batch_size=batch_size or max(1, min(raw.shape[0], _FALLBACK_ROWS)),
                              progress=progress, guard=guard,
                              raw_inputs=raw, forward_args=fargs, layer=layer,
                              layer_input=layer_input)
            problem.output = resolved.select(out, ex).detach()
            if needs_baseline:
                problem.baseline = _layer_baseline(problem, baseline)
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
                    rows = _estimate_rows(problem, budget)
                    memo.remember(model, ("rows per chunk", shape, budget), now, rows)
                problem.batch_size = rows
        problem.channels_last = channels_last
        if channels_last:
            guard.use_channels_last()
        if compile:
            problem.compiled = compiled.compiled_model(model, layer)
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


def _layer_baseline(problem: Problem, baseline: Any) -> Tensor:
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
    return resolve_baseline(baseline, problem.inputs)
