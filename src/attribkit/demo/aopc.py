"""The image report's AOPC section: pixel ablation, Gradients of Counterfactuals, Figure 5.

The most important pixels by IG, by the gradient at the image and by a random ranking are set to
black step by step; the drop of the top-class score is averaged into AOPC curves.
"""

from __future__ import annotations

from typing import Any

import torch

from attribkit.demo.result import log
from attribkit.demo.state import VisionRun

__all__ = ["aopc_section"]


def aopc_section(run: VisionRun) -> None:
    """Add the AOPC curves and table; record each photo's AOPC in ``run.per_photo``."""
    from attribkit import viz
    from attribkit.report.reading import read_aopc

    setup, rep, x = run.setup, run.rep, run.x
    ig, _, grad, _ = run.gradients()
    # 4. AOPC.
    run.stages.start("AOPC")
    log("[5/5] AOPC (pixel ablation)", run.quiet)
    rep.heading("AOPC: pixel ablation (Gradients of Counterfactuals, Figure 5)")
    try:
        from attribkit import evaluate
    except ImportError:
        evaluate = None  # type: ignore[assignment]
    per_photo = run.per_photo
    if evaluate is None or not hasattr(evaluate, "ablation_curve"):
        run.result.notes.append("AOPC: attribkit.evaluate is not available; nothing computed")
        rep.text("attribkit.evaluate is not available in this build: AOPC not computed.",
                 note=True)
        return
    gen = torch.Generator().manual_seed(0)
    candidates = {"integrated gradients": ig.values, "gradient at the image": grad,
                  "random": torch.rand(x.shape, generator=gen, dtype=x.dtype)}
    curves: dict[str, Any] = {}
    aopcs: dict[str, float] = {}
    xs: Any = None
    for m, vals in candidates.items():
        c = evaluate.ablation_curve(setup.model, x, vals, k=setup.aopc_k,
                                    steps=setup.aopc_steps, target=run.cls, baseline=run.baseline,
                                    progress=run.progress)
        curves[m] = c.aopc_per_example
        per_photo[m] = c.aopc_per_example[:, -1]
        aopcs[m] = c.aopc
        xs = c.counts
    rep.text(f"The top {setup.aopc_k} pixels (by eq. 1) are set to black at each step, "
             f"{setup.aopc_steps} steps; AOPC after k steps is the mean drop of the top-class "
             "score over steps 0..k, averaged over the photos (band: one standard error).")
    rep.image(viz.evaluation_curves(curves, x=xs, xlabel="pixels removed"),
              "AOPC: higher means the attribution found the pixels the score depends on")
    rep.table(["attribution", f"AOPC@{setup.aopc_steps}"], [[m, v] for m, v in aopcs.items()],
              f"AOPC of the top-class softmax score after {setup.aopc_steps} steps of "
              f"{setup.aopc_k} pixels, mean over the photos", reading=read_aopc(aopcs))
    for i, row in enumerate(run.rows):  # each photo's own AOPC (the mean is in the report)
        row["AOPC IG"] = float(per_photo["integrated gradients"][i])
        row["AOPC grad"] = float(per_photo["gradient at the image"][i])
