"""The image report's saturation section: Gradients of Counterfactuals, Figures 2 and 3.

The top-class score along the straight path from black for every sample photo (forward passes
only), and the first photo's interior gradients as a strip and as an animation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from attribkit.demo.result import log
from attribkit.demo.state import VisionRun, top

__all__ = ["saturation", "saturation_section"]


def saturation(model: Callable[..., Tensor], photos: Mapping[str, Tensor], value: float,
               alphas: Tensor) -> Tensor:
    """``F(x' + alpha (x - x'))`` of each photo's top class, forward passes only, ``(N, A)``."""
    x = torch.cat(list(photos.values()))
    cls, _ = top(model, x)
    rows = []
    with torch.no_grad():
        for i in range(x.shape[0]):
            pts = value + alphas.to(x.dtype).reshape(-1, 1, 1, 1) * (x[i:i + 1] - value)
            rows.append(model(pts)[:, cls[i]])
    return torch.stack(rows)


def saturation_section(run: VisionRun) -> None:
    """Add the saturation curves (Figure 2) and the interior gradients (Figure 3)."""
    from attribkit import viz
    from attribkit.report.reading import read_saturation

    setup, rep, images, names = run.setup, run.rep, run.images, run.names
    _, interior, _, _ = run.gradients()
    # 2. Saturation curves (forward passes only, all sample photos).
    run.stages.start("saturation")
    log(f"[3/5] saturation curves on {len(setup.saturation_photos)} photos", run.quiet)
    sat_alphas = torch.linspace(0.0, 1.0, setup.alphas + 1, dtype=run.x.dtype)
    sat = saturation(setup.model, setup.saturation_photos, setup.baseline_value, sat_alphas)
    rep.heading("Saturation (Gradients of Counterfactuals, Figure 2)")
    rep.text("The top-class softmax score F(x' + α (x - x')) against α for every sample photo "
             "(forward passes only).")
    rep.image(viz.saturation_curves(sat_alphas, sat, labels=list(setup.saturation_photos)),
              "softmax score of the top class along the path from black")
    rep.reading(read_saturation(sat_alphas.tolist(), sat.tolist(),
                                list(setup.saturation_photos)))
    rep.heading("Interior gradients (Gradients of Counterfactuals, Figure 3)")
    rep.image(viz.interior_strip(images[0], interior, index=0,
                                 title=f"{names[0]}: {run.labels[0]}"),
              "pixel importance of the gradient at each scaled image, and the trend of the mean "
              "|gradient| and of F(α)", wide=True)
    run.gif = viz.interior_gif(images[0], interior, str(run.out / "interior.gif"), index=0)
    rep.image(run.gif,
              f"{names[0]}: interior gradients from α = {float(interior.alphas[0]):.2f} to 1",
              width=max(320, images[0].shape[1]))
