"""Feature masks to pass as ``feature_mask=``: grids, superpixels, labels, and their validation.

A feature mask holds one integer group id per input element; the elements of a group are
occluded together (:func:`attribkit.occlusion`, :func:`attribkit.prediction_difference`), form
one player (:func:`attribkit.shapley_values`, :func:`attribkit.kernel_shap`, :func:`attribkit.lime`)
and are removed together by the evaluations (:func:`attribkit.evaluate.deletion_curve`, ...).

>>> import torch, attribkit
>>> mask = attribkit.masks.grid((3, 32, 32), 8)          # 16 square cells over all channels
>>> attribkit.masks.n_groups(mask)
16
"""

from __future__ import annotations

from attribkit.core.masks import check, from_labels, grid, n_groups, superpixels

__all__ = ["check", "from_labels", "grid", "n_groups", "superpixels"]
