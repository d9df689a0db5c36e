"""The path-method frontier: Guided IG, Blur IG, IDGI (on any of these paths and IG's), XRAI,
and Guided Grad-CAM. Importing this package registers them."""

from __future__ import annotations

from attribkit.methods.paths.blur_ig import blur_ig
from attribkit.methods.paths.guided_grad_cam import guided_grad_cam
from attribkit.methods.paths.guided_ig import guided_ig
from attribkit.methods.paths.idgi import idgi
from attribkit.methods.paths.xrai import xrai

__all__ = ["blur_ig", "guided_grad_cam", "guided_ig", "idgi", "xrai"]
