"""The paper's Table 2 as attribkit calls, and why a measured verdict may differ from it.

:data:`PAPER_TABLE` lists each row of Table 2 of Huiqi Deng et al., "Understanding and Unifying
Fourteen Attribution Methods with Taylor Interactions" (IEEE TPAMI; arXiv:2303.01506, 2023),
with the registered method and options that implement it and the paper's three verdicts, copied
from that table: (1) low approximation error, (2) no unrelated allocation, (3) complete
allocation. The paper's text states the six rows that satisfy all three (Integrated Gradients,
Expected Gradients, Shapley value, DeepSHAP, DeepLIFT Rescale, DeepLIFT RevealCancel), which
fixes the RevealCancel row. :data:`SOURCE` is this citation as the docs page prints it.

The fourteen rows are the paper's Table 2. Its review of the methods (and the shorter article
that introduced it) names Smooth Gradients among the gradient methods, while Table 2 has
Prediction Difference in that place; the table follows Table 2, because its verdicts are what
the columns compare. SmoothGrad has no verdict of the paper and is measured among the other
registered methods.

:data:`EXPLANATIONS` says, per row and criterion, why the baseline-frame measurement of
:mod:`attribkit.theory.unification` can disagree with the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BASELINE", "EXPLANATIONS", "LAST_CONV", "PAPER_TABLE", "SOURCE", "Row"]

#: Where the ``paper`` verdicts of :data:`PAPER_TABLE` come from (printed on the docs page).
SOURCE = ("Table 2 of Deng et al., *Understanding and Unifying Fourteen Attribution Methods with "
          "Taylor Interactions* (IEEE TPAMI; arXiv:2303.01506, 2023); the DeepLIFT RevealCancel "
          "row from the paper's statement of the six methods that satisfy all three criteria")
#: Placeholder in options replaced by the audit's baseline (e.g. a one-row background set).
BASELINE = "<baseline>"
#: Placeholder in options replaced by the last convolution of the model (Grad-CAM's layer).
LAST_CONV = "<last conv layer>"


@dataclass(frozen=True)
class Row:
    """A method as the table shows it: a label, the registered name and its options."""

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    paper: tuple[bool, bool, bool] | None = None


#: Table 2 of Deng et al. 2023 (see the module docstring) with the attribkit call of each row.
PAPER_TABLE: tuple[Row, ...] = (
    Row("Gradient x Input", "gradient_x_input", {}, (False, True, True)),
    Row("Occlusion-1", "occlusion", {}, (True, True, False)),
    Row("Occlusion-patch", "occlusion", {"window": 2}, (True, False, False)),
    Row("Prediction Difference", "prediction_difference", {"background": BASELINE},
        (True, True, False)),
    Row("Grad-CAM", "grad_cam", {"layer": LAST_CONV}, (False, True, True)),
    Row("Integrated Gradients", "integrated_gradients", {}, (True, True, True)),
    Row("Expected Gradients", "expected_gradients",
        {"background": BASELINE, "n_samples": 4000}, (True, True, True)),
    Row("Shapley value", "shapley_values", {}, (True, True, True)),
    Row("LRP-epsilon", "lrp", {"rule": "epsilon"}, (False, True, True)),
    Row("LRP-alpha-beta", "lrp", {"rule": "alpha2_beta1"}, (True, False, True)),
    Row("Deep Taylor", "deep_taylor", {}, (True, False, True)),
    Row("DeepLIFT Rescale", "deeplift", {"rule": "rescale"}, (True, True, True)),
    Row("DeepSHAP", "deepshap", {"background": BASELINE}, (True, True, True)),
    Row("DeepLIFT RevealCancel", "deeplift", {"rule": "reveal_cancel"}, (True, True, True)),
)

#: Why a measured verdict may differ from the paper's: (label, criterion index) -> explanation.
_FRAME = (
    "The paper reads this method in the frame of its own expansion (the first-order term at "
    "the input, or LRP's relevance of F(x) itself); the table measures every method in one "
    "frame, the decomposition of F(x) - F(b) at the baseline. ")
_SATURATED = (
    "Decided on the saturated unit 1 - ReLU(1 - x) at x = 2: the hidden unit is dead at the "
    "input, so all of F(x) = 1 sits in the output bias and the rule, which only redistributes "
    "the activations present at x, gives x nothing, although x alone moved F from 0 to 1 (the "
    "Sensitivity(a) failure of gradients). The paper's 'yes' assumes the relevance of every "
    "unit can be expanded around a root point inside its sign group; a saturated unit carries "
    "no relevance to expand, so the effect is not covered.")
EXPLANATIONS: dict[tuple[str, int], str] = {
    ("Gradient x Input", 2): _FRAME + (
        "x_i dF/dx_i is the first-order term at x, allocated completely there; the higher-order "
        "terms of that expansion are the paper's approximation error (criterion 1). Against "
        "the baseline decomposition the same numbers give each Taylor term kappa_i times "
        "itself (x1^2 x2 at (1, 1): shares (2, 1) of J = 1), so the shares of an interaction "
        "add up to |kappa|, not 1: the dropped remainder reappears as over-allocation."),
    ("Grad-CAM", 2): _FRAME + (
        "Grad-CAM weights a feature map by its pooled gradients, clips it at zero and "
        "up-samples it; nothing makes the result add up to F(x) - F(b) (here the clipped map is "
        "all zero while the output changes). The paper's 'complete' is about the first-order "
        "term at the feature map: decided below on two conv nets whose map is positive."),
    ("LRP-epsilon", 2): _FRAME + (
        "LRP distributes F(x) itself (no baseline), and the epsilon rule sends the biases' "
        "share nowhere, so on networks with biases the attributions do not add up to F(x) - F(b) "
        "(the sum of all Harsanyi dividends). On bias-free networks it is complete in the "
        "paper's sense."),
    ("LRP-epsilon", 1): (
        "The change is of the order of epsilon (the stabiliser z / (z + eps) differs between the "
        "full network and one block), not an allocation of the other block's effects."),
    ("LRP-alpha-beta", 2): _FRAME + (
        "The alpha-beta rule conserves F(x) layer by layer only between the positive and "
        "negative groups it creates (alpha - beta = 1); biases and the missing baseline make the "
        "total differ from F(x) - F(b)."),
    ("Deep Taylor", 2): _FRAME + (
        "Deep Taylor (z+ rule) distributes the positive contributions of F(x) only; negative "
        "contributions and biases are dropped, so the total differs from F(x) - F(b)."),
    ("Deep Taylor", 1): (
        "Criterion 2 is decided on separable networks: the z+ rule shares each neuron's "
        "relevance by positive contributions, which moves one block's effect to the other "
        "block's features when the output mixes them. If the attributions are all zero (see the "
        "evidence below) the test cannot see any transfer, and the verdict is vacuous."),
    ("LRP-alpha-beta", 0): _SATURATED,
    ("Deep Taylor", 0): _SATURATED,
    ("Occlusion-patch", 0): (
        "A patch occlusion credits the mean drop of every patch covering a feature; coverage "
        "then depends on the window and stride."),
    ("Expected Gradients", 0): (
        "Monte-Carlo estimate (random path positions): its sampling error counts against the "
        "tolerance."),
    ("Expected Gradients", 2): (
        "Monte-Carlo estimate (random path positions): its sampling error counts against the "
        "tolerance."),
    ("Integrated Gradients", 2): (
        "On ReLU networks the integrand has kinks, so 50 Gauss-Legendre steps leave a small "
        "completeness gap (quadrature error, not allocation); on polynomials IG is exact."),
}
