"""Evaluations of attributions: perturbation curves (ablation / AOPC, deletion, insertion),
localisation, model-randomisation sanity checks, saturation curves, and a one-call comparison.

See ``docs/evaluation.md`` for the measures and their sources.
"""

from __future__ import annotations

from attribkit.evaluate._features import feature_groups, spearman
from attribkit.evaluate.ablation import (
    PerturbationCurve,
    ablation_curve,
    aopc,
    deletion_curve,
    insertion_curve,
)
from attribkit.evaluate.compare import MEASURES, Comparison, compare, random_attribution
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
from attribkit.evaluate.saturation import SaturationCurves, saturation_curves

__all__ = [
    "MEASURES",
    "Comparison",
    "Localisation",
    "PerturbationCurve",
    "RandomisationResult",
    "SaturationCurves",
    "ablation_curve",
    "aopc",
    "compare",
    "deletion_curve",
    "feature_groups",
    "insertion_curve",
    "localisation",
    "mass_inside",
    "model_randomisation",
    "parameter_layers",
    "pointing_game",
    "random_attribution",
    "randomise_layers",
    "region_mask",
    "saturation_curves",
    "spearman",
]
