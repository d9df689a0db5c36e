"""Evaluations of attributions: perturbation curves (ablation / AOPC, deletion, insertion),
localisation, model-randomisation sanity checks, saturation curves, and a one-call comparison.

See ``docs/evaluation.md`` for the measures and their sources.
"""

from __future__ import annotations

from attribkit.evaluate._features import feature_groups, spearman
from attribkit.evaluate._metric import MetricResult
from attribkit.evaluate.ablation import (
    PerturbationCurve,
    ablation_curve,
    aopc,
    deletion_curve,
    insertion_curve,
)
from attribkit.evaluate.compare import MEASURES, Comparison, compare, random_attribution
from attribkit.evaluate.complexity import complexity, sparseness
from attribkit.evaluate.faithfulness import (
    faithfulness_correlation,
    pixel_flipping,
    region_perturbation,
)
from attribkit.evaluate.localisation import (
    Localisation,
    localisation,
    mass_inside,
    pointing_game,
    region_mask,
)
from attribkit.evaluate.randomisation import (
    RandomisationResult,
    model_randomisation,
    parameter_layers,
    randomise_layers,
)
from attribkit.evaluate.relevance import relevance_mass_accuracy, relevance_rank_accuracy
from attribkit.evaluate.road import noisy_linear_imputation, road
from attribkit.evaluate.robustness import infidelity, max_sensitivity
from attribkit.evaluate.saturation import SaturationCurves, saturation_curves

__all__ = [
    "MEASURES",
    "Comparison",
    "Localisation",
    "MetricResult",
    "PerturbationCurve",
    "RandomisationResult",
    "SaturationCurves",
    "ablation_curve",
    "aopc",
    "compare",
    "complexity",
    "deletion_curve",
    "faithfulness_correlation",
    "feature_groups",
    "infidelity",
    "insertion_curve",
    "localisation",
    "mass_inside",
    "max_sensitivity",
    "model_randomisation",
    "noisy_linear_imputation",
    "parameter_layers",
    "pixel_flipping",
    "pointing_game",
    "random_attribution",
    "randomise_layers",
    "region_mask",
    "region_perturbation",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "road",
    "saturation_curves",
    "sparseness",
    "spearman",
]
