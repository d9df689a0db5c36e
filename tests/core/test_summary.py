"""Printing a result gives a few lines, however big its tensors are."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

import attribkit
from attribkit import axioms, evaluate, theory
from attribkit.core.attribution import Attribution
from attribkit.core.summary import MAX_CHARS
from attribkit.methods.integrated import InteriorGradients


def _short(obj: object) -> str:
    text = repr(obj)
    assert len(text) <= MAX_CHARS, text
    assert text.count("\n") <= 3, text
    assert "tensor(" not in text, text  # no tensor printed element by element
    return text


def test_big_results_print_short() -> None:
    g = torch.Generator().manual_seed(0)
    big = torch.rand(8, 3, 224, 224, generator=g)
    attr = Attribution(values=big, inputs=big, method="integrated_gradients",
                       baselines=torch.zeros_like(big), output=torch.rand(8),
                       baseline_output=torch.zeros(8), params={"steps": list(range(500))},
                       extras={"stderr": big})
    assert "integrated_gradients" in _short(attr)
    ig = InteriorGradients(alphas=torch.linspace(0, 1, 20),
                           gradients=torch.zeros(2, 20, 3, 64, 64), scores=torch.rand(2, 20),
                           inputs=big[:2, :, :64, :64], baselines=big[:2, :, :64, :64])
    assert "Tensor(2, 20, 3, 64, 64) float32" in _short(ig)
    curve = evaluate.PerturbationCurve(kind="ablation", counts=torch.arange(51),
                                       fractions=torch.linspace(0, 1, 51).double(),
                                       scores=torch.rand(100, 51, dtype=torch.float64))
    assert "aopc=" in _short(curve)


def test_computed_results_print_short(make_mlp: Callable[..., nn.Sequential]) -> None:
    model = make_mlp()
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    cmp = evaluate.compare(model, x, ("integrated_gradients", "saliency"),
                           measures=("aopc", "completeness"), k=1, steps=3)
    assert "Comparison(" in _short(cmp)
    rep = axioms.check_completeness("integrated_gradients")
    assert "passed=" in _short(rep)
    game = theory.Game(model, x[:1])
    assert _short(game).startswith("Game(players=6")
    alloc = theory.allocation_report(model, x[:1], "integrated_gradients")
    assert "verdicts=" in _short(alloc)
    sat = evaluate.saturation_curves(model, x, alphas=torch.linspace(0, 1, 16, dtype=torch.float64))
    _short(sat)
    assert len(repr(attribkit.integrated_gradients(model, x))) < 200
