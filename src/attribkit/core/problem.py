"""The validated attribution problem: the one place methods ask for model scores and gradients.

A :class:`Problem` (built by :func:`attribkit.core.engine.prepare`) holds the inputs, baseline
and target of one call. A method builds its points (rows of the attribution space, each belonging
to one example) and asks it for scores or gradients; it evaluates them in chunks of
``batch_size`` rows with a progress bar, checks for non-finite values, and for several targets
computes all their gradients from one forward pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core import compiled
from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError, NonFiniteError
from attribkit.core.guard import ModelGuard, this_thread
from attribkit.core.progress import progress_bar
from attribkit.core.targets import ResolvedTarget, check_output, check_rows

__all__ = ["Points", "Problem", "check_finite"]

Points = Tensor | Callable[[slice], Tensor]


@dataclass
class Problem:
    """A validated attribution problem. Build it with :func:`~attribkit.core.engine.prepare`.

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
    fast: Callable[..., Any] | None = None
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
            fn = self.model if self.fast is None else self.fast  # core.fastgraph
            return check_rows(check_output(fn(points, *extra)), points.shape[0])
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

    def chunks(self, m: int, desc: str, rows: int | None = None) -> Iterator[slice]:
        """Slices of ``m`` rows in steps of ``rows`` (default ``batch_size``), advancing a
        progress bar."""
        step = self.batch_size if rows is None else int(rows)
        with progress_bar(m, desc, self.progress) as bar:
            for s in range(0, m, step):
                e = min(m, s + step)
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
                check_finite(out, "the model output")
                outs.append(out)
        self.forward_evaluations += int(example.shape[0])
        return torch.cat(outs) if outs else self.inputs.new_zeros((0,))

    def scores(self, points: Points, example: Tensor, desc: str = "forward",
               rows: int | None = None) -> Tensor:
        """Target scores ``(M,)`` (or ``(M, K)``) for many points, without gradients, in calls
        of ``rows`` rows (default ``batch_size``)."""
        res = []
        with torch.no_grad():
            for sl in self.chunks(int(example.shape[0]), desc, rows):
                out = self.call(_rows(points, sl), example[sl])
                sc = self.target.select(out, example[sl])
                check_finite(sc, "the model output")
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
        check_finite(sc, "the model output")
        check_finite(g, "the gradients")
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


def check_finite(t: Tensor, what: str) -> None:
    """Raise a :class:`NonFiniteError` naming ``what`` when ``t`` holds NaN or inf."""
    # fast path: a sum is finite unless an element is NaN/inf (or the sum overflows, which the
    # full check below then clears)
    if t.numel() == 0 or bool(torch.isfinite(t.sum())):
        return
    if not torch.isfinite(t).all():
        raise NonFiniteError(
            f"{what} contain NaN or inf. Check the inputs' scale and the model (a log of 0, an "
            "overflow in float16...); float64 inputs and model often help."
        )

