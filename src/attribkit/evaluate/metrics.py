"""The metric families as :func:`~attribkit.evaluate.compare` measures: one entry each, with its
direction and the defaults a comparison uses (cheap enough for a table of many methods).

Each entry is ``Metric(description, higher_is_better, score)`` where ``score(context)`` returns
one value per example. The context carries the model, inputs, attribution, target, baseline, the
method's name and options, the region, the number of curve steps, a seed and per-metric options.
Measures that apply to images only (ROAD, region perturbation) give NaN for other inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.evaluate.complexity import complexity, sparseness
from attribkit.evaluate.faithfulness import (
    faithfulness_correlation,
    pixel_flipping,
    region_perturbation,
)
from attribkit.evaluate.localisation import region_mask
from attribkit.evaluate.relevance import relevance_mass_accuracy, relevance_rank_accuracy
from attribkit.evaluate.road import road
from attribkit.evaluate.robustness import infidelity, max_sensitivity
from attribkit.methods.registry import get

__all__ = ["METRICS", "Metric", "MetricContext"]


@dataclass
class MetricContext:
    """What a measure may use (built by :func:`~attribkit.evaluate.compare`)."""

    model: Callable[..., Any]
    inputs: Tensor
    attribution: Attribution
    target: Any
    baseline: Any
    method: str
    method_options: Mapping[str, Any]
    steps: int
    region: Any = None
    seed: int = 0
    batch_size: int | None = None
    progress: bool = False
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def opts(self, name: str, **defaults: Any) -> dict[str, Any]:
        """The defaults for ``name`` updated with the caller's per-metric options."""
        return {**defaults, **dict(self.options.get(name, {}))}

    @property
    def common(self) -> dict[str, Any]:
        """Target, batch size and progress, shared by the model-calling metrics."""
        return {"target": self.target, "batch_size": self.batch_size, "progress": self.progress}


@dataclass(frozen=True)
class Metric:
    """A measure: a description, its direction, and how to score a context."""

    description: str
    higher_is_better: bool
    score: Callable[[MetricContext], Tensor]


def _nan(c: MetricContext) -> Tensor:
    return torch.full((c.inputs.shape[0],), float("nan"), dtype=torch.float64)


def _features(c: MetricContext) -> int:
    return int(c.inputs[0].numel())


def _faithfulness(c: MetricContext) -> Tensor:
    o = c.opts("faithfulness_correlation", subset_size=min(224, max(1, _features(c) // 4)),
               n_runs=50, seed=c.seed)
    return faithfulness_correlation(c.model, c.inputs, c.attribution, baseline=c.baseline,
                                    **c.common, **o).scores


def _pixel_flipping(c: MetricContext) -> Tensor:
    o = c.opts("pixel_flipping", features_in_step=max(1, math.ceil(_features(c) / c.steps)))
    return pixel_flipping(c.model, c.inputs, c.attribution, baseline=c.baseline, **c.common,
                          **o).scores


def _region(c: MetricContext) -> Tensor:
    if c.inputs.dim() != 4:
        return _nan(c)
    o = c.opts("region_perturbation", patch_size=max(1, int(c.inputs.shape[-1]) // 14),
               regions_evaluation=c.steps)
    return region_perturbation(c.model, c.inputs, c.attribution, baseline=c.baseline,
                               **c.common, **o).scores


def _road(c: MetricContext) -> Tensor:
    if c.inputs.dim() != 4:
        return _nan(c)
    o = c.opts("road", percentages=(10, 30, 50, 70, 90), seed=c.seed)
    return road(c.model, c.inputs, c.attribution, **c.common, **o).scores


def _infidelity(c: MetricContext) -> Tensor:
    o = c.opts("infidelity", n_perturb=32, seed=c.seed, normalize=True)
    return infidelity(c.model, c.inputs, c.attribution, **c.common, **o).scores


def _max_sensitivity(c: MetricContext) -> Tensor:
    if c.method == "random":
        return _nan(c)
    o = c.opts("max_sensitivity", n_perturb=5, seed=c.seed)
    opts = dict(c.method_options)
    if "baseline" not in opts and c.baseline is not None and get(c.method).needs_baseline:
        opts["baseline"] = c.baseline
    tgt = c.attribution.target if c.attribution.target is not None else c.target
    return max_sensitivity(c.method, c.model, c.inputs, target=tgt, options=opts, **o).scores


def _mask(c: MetricContext) -> Tensor:
    if c.region is None:
        raise InputError("the relevance accuracies need region= (a box, boxes or a mask).")
    v = c.attribution.values
    if v.dim() == 4 and not isinstance(c.region, Tensor):
        return region_mask(c.region, (v.shape[0], *v.shape[2:]))[:, None]
    return region_mask(c.region, tuple(v.shape))


#: Measure name -> Metric; :data:`attribkit.evaluate.MEASURES` lists them with the others.
METRICS: dict[str, Metric] = {
    "faithfulness_correlation": Metric(
        "Pearson r of subset attribution vs score drop (Bhatt et al. 2020)", True, _faithfulness),
    "pixel_flipping": Metric(
        "area under the score curve, most relevant removed first (Bach et al. 2015)", False,
        _pixel_flipping),
    "region_perturbation": Metric(
        "mean score drop removing regions, most relevant first (Samek et al. 2017)", True,
        _region),
    "road": Metric("accuracy under noisy linear imputation, MoRF (Rong et al. 2022)", False,
                   _road),
    "infidelity": Metric("E[(I.a - (F(x) - F(x - I)))^2], beta-normalised (Yeh et al. 2019)",
                         False, _infidelity),
    "max_sensitivity": Metric("max relative change of the explanation, radius 0.02 (Yeh et al. "
                              "2019)", False, _max_sensitivity),
    "sparseness": Metric("Gini index of |a| (Chalasani et al. 2020)", True,
                         lambda c: sparseness(c.attribution).scores),
    "complexity": Metric("entropy of |a| / sum |a| (Bhatt et al. 2020)", False,
                         lambda c: complexity(c.attribution).scores),
    "relevance_mass": Metric("share of signed attribution inside the region (Arras et al. "
                             "2022)", True,
                             lambda c: relevance_mass_accuracy(c.attribution, _mask(c)).scores),
    "relevance_rank": Metric("share of the top-|region| features inside it (Arras et al. 2022)",
                             True,
                             lambda c: relevance_rank_accuracy(c.attribution, _mask(c)).scores),
}
