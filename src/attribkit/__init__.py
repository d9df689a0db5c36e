"""attribkit: why did the network say that? Integrated Gradients and every major attribution
method in one API, with the axioms, theory and evaluations that judge them.

>>> import attribkit
>>> attr = attribkit.integrated_gradients(model, x, baseline="black", tolerance=0.02)
>>> attr.relative_gap, attr.error_estimate
"""

from __future__ import annotations

import attribkit.startup  # noqa: F401  (first: a quiet Ctrl-C while the command starts)

# isort: split
from attribkit.core import (
    AttribkitError,
    Attribution,
    Background,
    Baseline,
    BaselineError,
    Black,
    Blurred,
    Constant,
    InputError,
    InputSpace,
    ModelCallError,
    ModelOutputError,
    MultiTarget,
    NonFiniteError,
    TargetError,
    UniformNoise,
    UnsupportedModelError,
    Zeros,
    all_classes,
    classes,
    top_k,
)
from attribkit.core.saving import load  # results without pickle
from attribkit.methods import explain, methods
from attribkit.methods.integrated import (
    InteriorGradients,
    integrated_gradients,
    interior_gradients,
)

# -- method exports (each family adds its block here) ------------------------------------------
from attribkit.methods.propagation import (  # LRP, Deep Taylor, DeepLIFT, DeepSHAP...
    attnlrp,
    deconvnet,
    deep_taylor,
    deeplift,
    deepshap,
    guided_backprop,
    lrp,
)

# isort: split
from attribkit.methods.cam import grad_cam  # gradients, perturbation, Shapley
from attribkit.methods.expected import expected_gradients
from attribkit.methods.gradients import gradient_x_input, saliency
from attribkit.methods.occlusion import occlusion, prediction_difference
from attribkit.methods.shapley import shapley_values
from attribkit.methods.smoothing import smooth, smoothgrad, smoothgrad_squared, vargrad

# isort: split
from attribkit.core.blackbox import black_box  # black-box models, LIME, KernelSHAP
from attribkit.methods.agnostic import kernel_shap, lime
from attribkit.methods.paths import (  # the path-method frontier
    blur_ig,
    guided_grad_cam,
    guided_ig,
    idgi,
    xrai,
)

# isort: split
from attribkit.core.multi_result import MultiAttribution  # models with several inputs
from attribkit.core.neurons import Neuron, neuron  # layer and neuron attribution
from attribkit.methods.layers import layer_conductance, neuron_conductance

# isort: split
from attribkit.core.interactions_result import Interactions  # interactions
from attribkit.methods.hessians import IntegratedHessians, integrated_hessians
from attribkit.methods.interactions import interactions

# isort: split
from attribkit import axioms, evaluate  # axiom checks and evaluations

# isort: split
from attribkit import masks  # feature masks: grids, superpixels, labels

# isort: split
from attribkit import report, viz  # pictures and the HTML report

# isort: split
from attribkit.sequences import GenerationAttribution, explain_generation  # generation
from attribkit.sequences.interactions import prompt_interactions  # prompt spans

__version__ = "0.1.0"

__all__ = [
    "AttribkitError",
    "Attribution",
    "Background",
    "Baseline",
    "BaselineError",
    "Black",
    "Blurred",
    "Constant",
    "GenerationAttribution",
    "InputError",
    "InputSpace",
    "IntegratedHessians",
    "Interactions",
    "InteriorGradients",
    "ModelCallError",
    "ModelOutputError",
    "MultiAttribution",
    "MultiTarget",
    "Neuron",
    "NonFiniteError",
    "TargetError",
    "UniformNoise",
    "UnsupportedModelError",
    "Zeros",
    "__version__",
    "all_classes",
    "attnlrp",
    "axioms",
    "black_box",
    "blur_ig",
    "classes",
    "deconvnet",
    "deep_taylor",
    "deeplift",
    "deepshap",
    "evaluate",
    "expected_gradients",
    "explain",
    "explain_generation",
    "grad_cam",
    "gradient_x_input",
    "guided_backprop",
    "guided_grad_cam",
    "guided_ig",
    "idgi",
    "integrated_gradients",
    "integrated_hessians",
    "interactions",
    "interior_gradients",
    "kernel_shap",
    "layer_conductance",
    "lime",
    "load",
    "lrp",
    "masks",
    "methods",
    "neuron",
    "neuron_conductance",
    "occlusion",
    "prediction_difference",
    "prompt_interactions",
    "report",
    "saliency",
    "shapley_values",
    "smooth",
    "smoothgrad",
    "smoothgrad_squared",
    "top_k",
    "vargrad",
    "viz",
    "xrai",
]
