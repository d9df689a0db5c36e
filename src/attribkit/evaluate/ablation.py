"""Perturbation curves: pixel ablation and AOPC (Gradients of Counterfactuals, after Samek et al.
2017), deletion and insertion (Petsiuk et al. 2018).

Features (pixels, or groups of elements: patches, superpixels, tokens, atoms) are ranked by their
attribution; the top ones are replaced by the baseline ``k`` at a time (ablation, deletion) or
revealed on the baseline (insertion), and the target score is recorded after every step.
Elements in no group (a negative id in the feature mask) are never perturbed: they keep the
input's value throughout, in deletion and insertion alike (e.g. a language model's first token,
its attention sink). All perturbed inputs are evaluated in batches through
:func:`attribkit.core.engine.prepare`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.checks import count
from attribkit.core.engine import Problem, prepare
from attribkit.core.masks import pick_mask
from attribkit.core.signs import DEFAULT_SIGN, resolve_sign
from attribkit.core.summary import summary_repr
from attribkit.evaluate._features import (
    attribution_values,
    default_target,
    feature_groups,
    group_importance,
    group_ranks,
)

__all__ = ["PerturbationCurve", "ablation_curve", "aopc", "deletion_curve", "insertion_curve"]


@dataclass(frozen=True)
class PerturbationCurve:
    """The target score while features are removed (or inserted) in attribution order.

    Attributes
    ----------
    kind
        ``"ablation"``, ``"deletion"`` or ``"insertion"``.
    counts
        ``(S + 1,)`` the number of features perturbed at each step (``counts[0] == 0``).
    fractions
        ``(S + 1,)`` the same as a share of all features.
    scores
        ``(N, S + 1)`` the target score of each example after each step.
    method
        The attribution method's name, where known.
    """

    kind: str
    counts: Tensor
    fractions: Tensor
    scores: Tensor
    method: str = ""

    __repr__ = summary_repr

    def _headline(self) -> list[str]:
        return [f"aopc={self.aopc:.4g}", f"area={self.area:.4g}"]

    @property
    def drops(self) -> Tensor:
        """``(N, S + 1)`` the score drop ``F(x) - F(x_k)`` after each step."""
        return self.scores[:, :1] - self.scores

    @property
    def aopc_per_example(self) -> Tensor:
        """``(N, S + 1)``: the mean drop over steps ``0..k`` (Gradients of Counterfactuals), for
        each ``k``."""
        steps = torch.arange(1, self.scores.shape[1] + 1, dtype=self.scores.dtype)
        return self.drops.cumsum(dim=1) / steps

    @property
    def aopc_curve(self) -> Tensor:
        """``(S + 1,)`` AOPC after each step, averaged over the examples (Gradients of
        Counterfactuals, Figure 5)."""
        return self.aopc_per_example.mean(dim=0)

    @property
    def aopc(self) -> float:
        """The area over the perturbation curve at the last step, averaged over examples."""
        return float(self.aopc_curve[-1])

    @property
    def area_per_example(self) -> Tensor:
        """``(N,)`` the area under the score curve against the perturbed fraction (trapezoid),
        divided by the fraction covered: the mean score along the curve."""
        span = float(self.fractions[-1] - self.fractions[0])
        if span <= 0:
            return self.scores[:, 0].clone()
        return torch.trapezoid(self.scores, self.fractions.to(self.scores.dtype), dim=1) / span

    @property
    def area(self) -> float:
        """The mean of :attr:`area_per_example`: deletion lower is better, insertion higher."""
        return float(self.area_per_example.mean())

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, for JSON and the report."""
        return {"kind": self.kind, "method": self.method, "counts": self.counts.tolist(),
                "fractions": self.fractions.tolist(), "scores": self.scores.tolist(),
                "aopc_curve": self.aopc_curve.tolist(), "area": self.area}


def _curve(
    kind: str,
    model: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Attribution | Tensor,
    counts_of: Callable[[int], Tensor],
    *,
    target: Any,
    baseline: Any,
    groups: Tensor | None,
    sign: str,
    batch_size: int | None,
    progress: bool,
    forward_args: Sequence[Tensor] | None,
) -> PerturbationCurve:
    values = attribution_values(attributions, inputs)
    target = default_target(attributions, target)
    with prepare(model, inputs, target=target, baseline=baseline, batch_size=batch_size,
                 progress=progress, forward_args=forward_args, allow_multi_target=False,
                 black_box=True) as p:
        gid = feature_groups(p.inputs, groups)
        ranks = group_ranks(group_importance(values, gid, sign))
        never = torch.full_like(gid, torch.iinfo(torch.long).max)  # elements in no group
        ranks = torch.where(gid < 0, never, ranks.gather(1, gid.clamp_min(0)))
        n_groups = int(gid.max()) + 1
        counts = counts_of(n_groups)
        scores = _scores(p, ranks, counts, insert=kind == "insertion", desc=kind,
                         fixed=gid < 0)
    method = attributions.method if isinstance(attributions, Attribution) else ""
    fractions = counts.to(torch.float64) / n_groups
    return PerturbationCurve(kind=kind, counts=counts, fractions=fractions,
                             scores=scores.to(torch.float64).cpu(), method=method)


def _scores(p: Problem, ranks: Tensor, counts: Tensor, insert: bool, desc: str,
            fixed: Tensor) -> Tensor:
    """Scores of every example with the ``counts[s]`` top-ranked features perturbed.

    ``fixed`` ``(N, D)`` marks the elements in no group: never perturbed, they keep the input's
    value at every step, of deletion and of insertion alike.
    """
    assert p.baseline is not None
    x, b = p.inputs, p.baseline
    s = counts.numel()
    example = p.examples.repeat_interleave(s)
    step = torch.arange(s, device=x.device).repeat(p.n)
    limit = counts.to(x.device)[step]

    def make(sl: slice) -> Tensor:
        ex = example[sl]
        mask = (ranks[ex] < limit[sl, None]).reshape(-1, *x.shape[1:])
        if insert:
            mask = mask | fixed[ex].reshape(mask.shape)
            return torch.where(mask, x[ex], b[ex])
        return torch.where(mask, b[ex], x[ex])

    return p.scores(make, example, desc=desc).reshape(p.n, s)


def ablation_curve(
    model: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Attribution | Tensor,
    *,
    k: int = 100,
    steps: int = 50,
    target: Any = None,
    baseline: Any = None,
    feature_mask: Tensor | None = None,
    groups: Tensor | None = None,
    sign: str = DEFAULT_SIGN,
    absolute: bool | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    forward_args: Sequence[Tensor] | None = None,
) -> PerturbationCurve:
    """Pixel ablation (Gradients of Counterfactuals): remove the top features ``k`` at a time for
    ``steps`` steps.

    Parameters
    ----------
    model
        A callable from a batch to ``(N,)`` or ``(N, C)`` outputs.
    inputs
        ``(N, ...)`` the explained inputs.
    attributions
        An :class:`Attribution` or a tensor shaped like ``inputs``.
    k
        Features removed per step (100 pixels in the seed).
    steps
        Number of steps (50 in the seed: 5,000 pixels, 10 % of a 224 x 224 image).
    target
        The explained class; default the attribution's target, else the predicted class at
        ``inputs`` (fixed through the curve).
    baseline
        What removed features are set to (see :mod:`attribkit.core.baselines`); the seed uses a
        black image. Default zeros.
    feature_mask
        Integer group ids (a feature mask, :mod:`attribkit.masks`: patches, superpixels, tokens)
        that broadcast to the inputs: whole groups are removed together, ranked by the group's
        summed attribution under ``sign``; ``k`` then counts groups. Default: pixels (all
        channels of a pixel together) for images, elements otherwise. See
        :func:`attribkit.evaluate.feature_groups`.
    groups
        The older name of ``feature_mask``.
    sign
        How features are ranked: ``"absolute"`` by ``sum |a|`` over each group (Gradients of
        Counterfactuals, eq. 1), ``"all"`` by the signed sum (evidence for the class first; better
        for patches, tokens and atoms, see ``docs/evaluation.md``), ``"positive"`` / ``"negative"``
        by the positive / negative part only. The same keyword and default as in
        :mod:`attribkit.viz`.
    absolute
        Deprecated: ``True`` is ``sign="absolute"``, ``False`` is ``sign="all"``.
    batch_size
        Perturbed inputs per model call.
    progress
        Show a progress bar.
    forward_args
        Extra per-example tensors for the model.

    Returns
    -------
    PerturbationCurve
        Scores after each step; ``.aopc`` and ``.aopc_curve`` give AOPC.
    """
    k, steps = count(k, "k"), count(steps, "steps")

    def counts_of(n_groups: int) -> Tensor:
        return torch.clamp(torch.arange(steps + 1) * k, max=n_groups)

    sign = resolve_sign(sign, absolute, where="ablation_curve")
    return _curve("ablation", model, inputs, attributions, counts_of, target=target,
                  baseline=baseline, groups=pick_mask(feature_mask, groups), sign=sign,
                  batch_size=batch_size, progress=progress, forward_args=forward_args)


def aopc(
    model: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Attribution | Tensor,
    **options: Any,
) -> float:
    """AOPC after the last step of :func:`ablation_curve` (same ``options``)."""
    return ablation_curve(model, inputs, attributions, **options).aopc


def _even_curve(kind: str) -> Callable[..., PerturbationCurve]:
    """Deletion or insertion: all features perturbed in ``steps`` equal steps, in rank order."""

    def curve(
        model: Callable[..., Tensor],
        inputs: Tensor,
        attributions: Attribution | Tensor,
        *,
        steps: int = 50,
        target: Any = None,
        baseline: Any = None,
        feature_mask: Tensor | None = None,
        groups: Tensor | None = None,
        sign: str = DEFAULT_SIGN,
        absolute: bool | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        forward_args: Sequence[Tensor] | None = None,
    ) -> PerturbationCurve:
        sign = resolve_sign(sign, absolute, where=f"{kind}_curve")
        steps = count(steps, "steps")

        def counts_of(n_groups: int) -> Tensor:
            return torch.round(torch.linspace(0, n_groups, steps + 1)).to(torch.long)

        return _curve(kind, model, inputs, attributions, counts_of, target=target,
                      baseline=baseline, groups=pick_mask(feature_mask, groups), sign=sign,
                      batch_size=batch_size, progress=progress, forward_args=forward_args)

    curve.__name__ = curve.__qualname__ = f"{kind}_curve"
    return curve


_EVEN_DOC = """{title}

    Parameters
    ----------
    model, inputs, attributions, target, baseline, feature_mask, groups, batch_size, progress,
    forward_args
        As for :func:`ablation_curve`.
    steps
        Number of steps from none to all features.
    sign
        How features are ranked (see :func:`ablation_curve`; default ``"absolute"``, pass
        ``"all"`` to {first} the evidence for the class first).
    absolute
        Deprecated: ``True`` is ``sign="absolute"``, ``False`` is ``sign="all"``.

    Returns
    -------
    PerturbationCurve
        Scores after each step; ``.area`` is the mean score along the curve.
    """

deletion_curve = _even_curve("deletion")
deletion_curve.__doc__ = _EVEN_DOC.format(
    title="Deletion (Petsiuk et al. 2018): remove all features in ``steps`` equal steps, most\n"
          "    important first; a faithful attribution makes the score fall fast (small "
          "``.area``).",
    first="remove")

insertion_curve = _even_curve("insertion")
insertion_curve.__doc__ = _EVEN_DOC.format(
    title="Insertion (Petsiuk et al. 2018): start from the baseline and reveal the features, "
          "most\n    important first; a faithful attribution makes the score rise fast (large "
          "``.area``).",
    first="reveal")
