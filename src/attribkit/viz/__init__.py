"""Seeing attributions: images, interior gradients, curves, comparisons, text, molecules, tables.

Everything takes attributions already computed (tensors ``(N, C, H, W)``, arrays or
:class:`~attribkit.core.attribution.Attribution`) and returns NumPy images ``(H, W, 3)`` uint8,
PIL images, matplotlib figures (Agg, never shown) or strings. Nothing here computes attributions.
"""

from __future__ import annotations

from attribkit.viz._common import (
    SIGNS,
    as_array,
    figure_to_png,
    image_array,
    normalize,
    reduce_channels,
    to_pil,
)
from attribkit.viz.compare import comparison_grid
from attribkit.viz.curves import evaluation_curves, saturation_curves
from attribkit.viz.generation import generation_heatmap, generation_html
from attribkit.viz.image import (
    attribution_map,
    heatmap,
    overlay,
    pixel_importance,
    scale_intensity,
)
from attribkit.viz.interior import interior_frames, interior_gif, interior_strip
from attribkit.viz.molecule import molecule_image
from attribkit.viz.tabular import feature_bars
from attribkit.viz.text import token_colors, tokens_ansi, tokens_html

__all__ = [
    "SIGNS",
    "as_array",
    "attribution_map",
    "comparison_grid",
    "evaluation_curves",
    "feature_bars",
    "figure_to_png",
    "generation_heatmap",
    "generation_html",
    "heatmap",
    "image_array",
    "interior_frames",
    "interior_gif",
    "interior_strip",
    "molecule_image",
    "normalize",
    "overlay",
    "pixel_importance",
    "reduce_channels",
    "saturation_curves",
    "scale_intensity",
    "to_pil",
    "token_colors",
    "tokens_ansi",
    "tokens_html",
]
