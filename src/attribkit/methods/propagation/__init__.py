"""The propagation family: LRP, AttnLRP, Deep Taylor, DeepLIFT, DeepSHAP, DeconvNet, guided
backpropagation.

Importing this package registers the methods. Rules (:mod:`.rules`), composites
(:mod:`.composites`) and canonizers (:mod:`.canonizers`) are data the methods take.
"""

from __future__ import annotations

from attribkit.methods.propagation import rules, transformer_rules
from attribkit.methods.propagation.attnlrp import attnlrp, attnlrp_rules
from attribkit.methods.propagation.composites import PRESETS, Composite, preset
from attribkit.methods.propagation.deeplift import deeplift, deepshap
from attribkit.methods.propagation.guided import deconvnet, guided_backprop
from attribkit.methods.propagation.lrp import deep_taylor, lrp
from attribkit.methods.propagation.rules import Rule

__all__ = [
    "PRESETS",
    "Composite",
    "Rule",
    "attnlrp",
    "attnlrp_rules",
    "deconvnet",
    "deep_taylor",
    "deeplift",
    "deepshap",
    "guided_backprop",
    "lrp",
    "preset",
    "rules",
    "transformer_rules",
]
