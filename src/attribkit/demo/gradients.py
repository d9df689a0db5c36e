"""The image report's first section: Integrated Gradients against gradients at the image.

Seed 003, Figure 4: IG of every photo from the black image, the interior gradients of the first
photo (for the saturation section), the gradient at each image, and a table of the completeness
gaps.
"""

from __future__ import annotations

import torch

from attribkit.core.attribution import Attribution
from attribkit.demo.result import log
from attribkit.demo.state import VisionRun

__all__ = ["gradients_section"]


def gradients_section(run: VisionRun) -> None:
    """Compute IG and the interior gradients and add Figure 4 and its table to the report."""
    import attribkit
    from attribkit import viz
    from attribkit.report.reading import read_gaps

    setup, x, baseline, cls, quiet = run.setup, run.x, run.baseline, run.cls, run.quiet
    names, rep = run.names, run.rep
    # 1. IG and interior gradients (the last alpha, 1, is the gradient at the image).
    run.stages.start("IG")
    log(f"[1/5] Integrated Gradients on {len(names)} photos ({setup.ig_steps} adaptive steps)",
        quiet)
    ig = attribkit.integrated_gradients(setup.model, x, target=cls, baseline=baseline,
                                        steps=setup.ig_steps, rule="adaptive",
                                        progress=run.progress, channels_last=setup.channels_last)
    run.stages.start("interior")
    log(f"[2/5] interior gradients ({setup.alphas} alphas)", quiet)
    alphas = torch.linspace(1.0 / setup.alphas, 1.0, setup.alphas, dtype=x.dtype)
    # the strip and the animation need the first photo only; the others need alpha = 1 only
    interior = attribkit.interior_gradients(setup.model, x[:1], target=cls[:1],
                                            baseline=baseline[:1], alphas=alphas,
                                            progress=run.progress)
    at_image = attribkit.interior_gradients(setup.model, x[1:], target=cls[1:],
                                            baseline=baseline[1:], alphas=[1.0],
                                            progress=run.progress) if len(names) > 1 else None
    grad = interior.gradients[:, -1]
    if at_image is not None:
        grad = torch.cat([grad, at_image.gradients[:, -1]])
    grad_attr = Attribution(values=grad * (x - baseline), inputs=x, method="gradient*input",
                            baselines=baseline, target=cls, output=ig.output,
                            baseline_output=ig.baseline_output)
    run.ig, run.interior, run.grad, run.grad_attr = ig, interior, grad, grad_attr

    rep.heading("Integrated Gradients against gradients at the image "
                "(Gradients of Counterfactuals, Figure 4)")
    rep.text("Each picture scales the photo's pixels by their importance (eq. 1: the sum over "
             "colour channels of |attribution|), clipped at the 99th percentile. Baseline: black "
             "image. Completeness: the IG attributions of each photo sum to F(x) - F(black).")
    fig4 = viz.comparison_grid(run.images,
                               {"integrated gradients": ig, "gradient at the image": grad},
                               labels=run.labels, panel=3.4)
    rep.image(fig4, "left to right: photo (top class, softmax score), integrated gradients, "
                    "gradients at the image; each map with its own scale", wide=True)
    gap, rg = ig.gap, ig.relative_gap
    assert gap is not None and rg is not None and ig.output is not None
    assert ig.baseline_output is not None
    rows = run.rows
    for i, n in enumerate(names):
        rows.append({"photo": n, "class": setup.class_name(int(cls[i])),
                     "p": float(run.prob[i]), "F(black)": float(ig.baseline_output[i]),
                     "sum IG": float(ig.total()[i]), "gap": float(gap[i]),
                     "rel_gap": float(rg[i]),
                     "sum grad*x": float(grad_attr.total()[i])})
    rep.table(["photo", "class", "softmax", "F(black)", "sum of IG", "gap", "relative gap",
               "sum of gradient*input"],
              [[r["photo"], r["class"], r["p"], r["F(black)"], r["sum IG"], r["gap"],
                r["rel_gap"], r["sum grad*x"]] for r in rows],
              reading=read_gaps({str(r["photo"]): float(rg[i]) for i, r in enumerate(rows)}))
