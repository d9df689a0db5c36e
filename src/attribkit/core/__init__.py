"""Shared machinery: results, targets, baselines, paths, batched evaluation, model guards."""

from __future__ import annotations

from attribkit.core import saving  # noqa: F401 - registers the writer behind Attribution.save
from attribkit.core.attribution import Attribution
from attribkit.core.background import Background
from attribkit.core.baselines import Baseline, Black, Blurred, Constant, UniformNoise, Zeros
from attribkit.core.engine import Problem, prepare
from attribkit.core.errors import (
    AttribkitError,
    BaselineError,
    InputError,
    ModelCallError,
    ModelOutputError,
    NonFiniteError,
    TargetError,
    UnsupportedModelError,
)
from attribkit.core.guard import ModelGuard
from attribkit.core.input_space import InputSpace
from attribkit.core.targets import MultiTarget, all_classes, classes, top_k

__all__ = [
    "AttribkitError",
    "Attribution",
    "Background",
    "Baseline",
    "BaselineError",
    "Black",
    "Blurred",
    "Constant",
    "InputError",
    "InputSpace",
    "ModelCallError",
    "ModelGuard",
    "ModelOutputError",
    "MultiTarget",
    "NonFiniteError",
    "Problem",
    "TargetError",
    "UniformNoise",
    "UnsupportedModelError",
    "Zeros",
    "all_classes",
    "classes",
    "prepare",
    "top_k",
]
