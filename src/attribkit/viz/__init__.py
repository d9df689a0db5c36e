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
from attribkit.viz.batch_features import region_values, token_values
from attribkit.viz.compare import comparison_grid
from attribkit.viz.curves import evaluation_curves, saturation_curves
from attribkit.viz.generation import generation_heatmap, generation_html
from attribkit.viz.global_views import dependence_plot, mean_abs_bars, summary_plot
from attribkit.viz.grid import explanation_grid
from attribkit.viz.image import (
    attribution_map,
    heatmap,
    overlay,
    pixel_importance,
    scale_intensity,
)
from attribkit.viz.interactions import interaction_bars, interaction_heatmap, interaction_network
from attribkit.viz.interior import interior_frames, interior_gif, interior_strip
from attribkit.viz.molecule import molecule_image
from attribkit.viz.panels import (
    CMAPS,
    STYLES,
    UNITS,
    attribution_figure,
    draw_attribution,
    map_label,
    map_scale,
)
from attribkit.viz.segments import segment_boundaries
from attribkit.viz.tabular import feature_bars, waterfall
from attribkit.viz.text import token_colors, tokens_ansi, tokens_html

__all__ = [
    "CMAPS",
    "SIGNS",
    "STYLES",
    "UNITS",
    "as_array",
    "attribution_figure",
    "attribution_map",
    "comparison_grid",
    "dependence_plot",
    "draw_attribution",
    "evaluation_curves",
    "explanation_grid",
    "feature_bars",
    "figure_to_png",
    "generation_heatmap",
    "generation_html",
    "heatmap",
    "image_array",
    "interaction_bars",
    "interaction_heatmap",
    "interaction_network",
    "interior_frames",
    "interior_gif",
    "interior_strip",
    "map_label",
    "map_scale",
    "mean_abs_bars",
    "molecule_image",
    "normalize",
    "overlay",
    "pixel_importance",
    "reduce_channels",
    "region_values",
    "saturation_curves",
    "scale_intensity",
    "segment_boundaries",
    "summary_plot",
    "to_pil",
    "token_colors",
    "token_values",
    "tokens_ansi",
    "tokens_html",
    "waterfall",
]
