"""Target resolution: which scalar of the model output is explained, per example.

A target is one of

* ``None``: the predicted class (arg-max of the output); outputs of shape ``(N,)`` need none;
* an ``int``: the same class for every example;
* a sequence or 1-D tensor of ``N`` ints: one class per example;
* a callable from the model output ``(B, ...)`` to one scalar per row ``(B,)``;
* a :class:`MultiTarget` (:func:`all_classes`, :func:`top_k`, :func:`classes`): several classes at
  once, sharing the forward passes; the attribution then has a target axis after the batch axis;
* a :class:`Neuron` (:func:`neuron`): one unit (or one channel, averaged) of an inner layer's
  output; the explained scalar is that unit's value (:mod:`attribkit.core.neurons`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from attribkit.core.errors import ModelOutputError, TargetError
from attribkit.core.neurons import Neuron, neuron, wrap_neuron

__all__ = ["MultiTarget", "Neuron", "ResolvedTarget", "all_classes", "check_output", "check_rows",
           "classes", "neuron", "resolve_target", "top_k", "wrap_neuron"]


@dataclass(frozen=True)
class MultiTarget:
    """Several classes explained at once; build it with :func:`all_classes`, :func:`top_k` or
    :func:`classes`."""

    kind: str
    k: int = 0
    indices: tuple[int, ...] = ()

    def indices_for(self, output: Tensor) -> Tensor:
        """The ``(N, K)`` class indices this selects on ``output`` of shape ``(N, C)``."""
        n, c = output.shape
        if self.kind == "all":
            return torch.arange(c, device=output.device).expand(n, c).clone()
        if self.kind == "top_k":
            if not 1 <= self.k <= c:
                raise TargetError(f"top_k({self.k}) needs 1 <= k <= {c}, the number of classes.")
            return output.topk(self.k, dim=1).indices
        idx = torch.tensor(self.indices, dtype=torch.long, device=output.device)
        _check_range(idx, c)
        return idx.expand(n, len(self.indices)).clone()


def all_classes() -> MultiTarget:
    """Every class of the output, in class order."""
    return MultiTarget("all")


def top_k(k: int) -> MultiTarget:
    """The ``k`` highest-scoring classes of each example, best first."""
    return MultiTarget("top_k", k=k)


def classes(indices: Sequence[int]) -> MultiTarget:
    """The given classes, the same for every example."""
    if len(indices) == 0:
        raise TargetError("classes([]) selects nothing: give at least one class index.")
    return MultiTarget("classes", indices=tuple(int(i) for i in indices))


def _check_range(idx: Tensor, c: int) -> None:
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= c):
        raise TargetError(
            f"target index {int(idx.min()) if int(idx.min()) < 0 else int(idx.max())} is out of "
            f"range: the model has {c} outputs per example (valid targets are 0..{c - 1})."
        )


@dataclass(frozen=True)
class ResolvedTarget:
    """A target checked against the model output.

    ``indices`` is ``(N,)`` (one class per example), ``(N, K)`` (several), or ``None`` when the
    output is already one scalar per example or ``fn`` selects it.
    """

    indices: Tensor | None
    fn: Callable[[Tensor], Tensor] | None
    label: str

    @property
    def n_targets(self) -> int:
        """How many scalars are explained per example (``K``; 1 unless a MultiTarget)."""
        return 1 if self.indices is None or self.indices.dim() == 1 else int(self.indices.shape[1])

    @property
    def multi(self) -> bool:
        """Whether the attribution has a target axis."""
        return self.indices is not None and self.indices.dim() == 2

    def select(self, output: Tensor, example: Tensor) -> Tensor:
        """Scores of rows of ``output`` whose examples are ``example``: ``(B,)`` or ``(B, K)``."""
        if self.fn is not None:
            return _check_scores(self.fn(output), output.shape[0])
        if self.indices is None:
            return output.reshape(output.shape[0])
        idx = self.indices.to(output.device)[example]
        if idx.dim() == 1:
            return output.gather(1, idx[:, None])[:, 0]
        return output.gather(1, idx)


def _check_scores(scores: Tensor, n: int) -> Tensor:
    if not isinstance(scores, Tensor) or scores.shape != (n,):
        got = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise TargetError(
            f"a callable target must return one scalar per example, shape ({n},); it "
            f"returned {got}."
        )
    return scores


def check_output(output: object) -> Tensor:
    """Check that a model returned a floating tensor; return it."""
    if not isinstance(output, Tensor) and type(output).__module__.split(".")[0] == "numpy":
        raise ModelOutputError(
            "the model returned a NumPy array: it is a black box (no gradients). Gradient "
            "methods need a torch model; use a perturbation method (occlusion, shapley_values, "
            "prediction_difference, lime, kernel_shap).")
    if not isinstance(output, Tensor):
        raise ModelOutputError(
            f"the model returned {type(output).__name__}, not a tensor. Wrap it so that it returns "
            "the scores, e.g. `lambda x: model(x).logits`."
        )
    if not output.is_floating_point():
        raise ModelOutputError(
            f"the model returned {output.dtype} values; attribution needs floats."
        )
    return output


def check_rows(output: Tensor, n: int) -> Tensor:
    """Check that ``output`` has one row per example (``n`` rows); return it."""
    if output.dim() == 0 or output.shape[0] != n:
        got = "a scalar" if output.dim() == 0 else f"shape {tuple(output.shape)}"
        raise ModelOutputError(
            f"the model returned {got} for a batch of {n} example(s); it must return one row "
            "per example, (N,) or (N, C). Does it sum or average over the batch (loss-style), "
            "or do the inputs lack the batch axis (use inputs.unsqueeze(0) for one example)?")
    return output


def _none_or_zero(target: object) -> bool:
    """``None``, the index 0, or per-example indices that are all 0 (the one output column)."""
    if target is None:
        return True
    if isinstance(target, bool):
        return False
    if isinstance(target, (int, np.integer)):
        return int(target) == 0
    if isinstance(target, (Tensor, np.ndarray)):
        t = torch.as_tensor(target)
        return (t.dtype != torch.bool and not t.is_floating_point() and not t.is_complex()
                and bool((t == 0).all()))
    return False


def resolve_target(target: object, output: Tensor) -> ResolvedTarget:
    """Resolve ``target`` against the model ``output`` on the inputs (shape ``(N, ...)``).

    Parameters
    ----------
    target
        See the module docstring.
    output
        The model output on the (unperturbed) inputs.

    Returns
    -------
    ResolvedTarget
        The target, with per-example indices where they apply.
    """
    output = check_output(output)
    n = output.shape[0]
    if callable(target) and not isinstance(target, (Tensor, MultiTarget)):
        _check_scores(target(output), n)
        return ResolvedTarget(None, target, getattr(target, "__name__", "callable"))
    if output.dim() == 1 or (output.dim() == 2 and output.shape[1] == 1 and _none_or_zero(target)):
        if not _none_or_zero(target):
            raise TargetError(
                f"the model returns one scalar per example (shape {tuple(output.shape)}), so no "
                f"target index applies; got target={target!r}. Leave target=None."
            )
        return ResolvedTarget(None, None, "output")
    if output.dim() != 2:
        raise ModelOutputError(
            f"the model output has shape {tuple(output.shape)}; attribkit needs (N,) or (N, C). "
            "Pass a callable target that maps the output to one scalar per example, e.g. "
            "`target=lambda out: out[:, 0, 3]`."
        )
    c = output.shape[1]
    if isinstance(target, MultiTarget):
        idx = target.indices_for(output.detach())
        return ResolvedTarget(idx, None, f"{target.kind}")
    if target is None:
        idx = output.detach().argmax(dim=1)
        return ResolvedTarget(idx, None, "predicted")
    if isinstance(target, (bool, np.bool_)):
        raise TargetError("target must be an int, a sequence of ints, a tensor or a callable.")
    if isinstance(target, (str, bytes)):
        raise TargetError(
            f"target is the string {target!r}; give the class index (an int), e.g. "
            "labels.index(name) with the model's list of labels.")
    if isinstance(target, np.ndarray):
        target = torch.from_numpy(np.array(target, copy=True))
    if isinstance(target, numbers.Integral):  # int, numpy integers
        target = int(target)
    if isinstance(target, int):
        idx = torch.full((n,), target, dtype=torch.long, device=output.device)
        _check_range(idx, c)
        return ResolvedTarget(idx, None, str(target))
    if isinstance(target, (Sequence, Tensor)):
        try:
            idx = torch.as_tensor(target, device=output.device)
        except (TypeError, ValueError, RuntimeError):
            raise TargetError(f"target {target!r} is not a sequence of class indices (ints); "
                              "give one int per example.") from None
        if idx.dtype.is_floating_point or idx.dtype == torch.bool:
            raise TargetError(f"target indices must be integers, got {idx.dtype}.")
        idx = idx.long().reshape(-1) if idx.dim() <= 1 else idx.long()
        if idx.dim() == 1 and idx.numel() == 1 and n != 1:
            idx = idx.expand(n).clone()
        if idx.dim() != 1 or idx.shape[0] != n:
            raise TargetError(
                f"got {tuple(idx.shape)} target indices for {n} examples; give one index per "
                "example, a single int, or a MultiTarget (attribkit.top_k(3), ...)."
            )
        _check_range(idx, c)
        return ResolvedTarget(idx, None, "per-example")
    raise TargetError(
        f"target must be None, an int, a sequence of ints, a tensor, a callable or a MultiTarget; "
        f"got {type(target).__name__}."
    )
