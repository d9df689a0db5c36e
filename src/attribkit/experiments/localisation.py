"""Localisation (Gradients of Counterfactuals, section 2.5): the share of the pixel attribution
inside an object's box, Integrated Gradients against the gradient at the image.

The paper's protocol, read from the text: the attribution of the object class is reduced to a
pixel map with eq. 1 (``sum_c |a|``); the score of a map is the percentage of its total inside
the human-drawn box(es) -- no box is derived from the map. Only images whose boxes cover less
than two thirds of the image (1) and whose box, blacked out, drops the class score
significantly (2) are counted; here "significantly" is "to at most half" (the paper gives no
number). The paper: on 100 ImageNet images IG's share beats the gradient's on 82, by 8.4
percentage points on average.

The labelled set is :mod:`attribkit.zoo.photo_boxes` (hand-drawn boxes on the sample photos and
crops / mirrors of them) and MNIST digits boxed by their ink (:mod:`attribkit.zoo.digits`).

Run ``python -m attribkit.experiments.localisation --out docs/localisation.md`` for the page.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit.core.pages import write_section
from attribkit.experiments import experiment
from attribkit.experiments._stats import bootstrap_ci

__all__ = ["PAPER", "LocRow", "box_figure", "localisation_section", "main", "score_boxes",
           "summary"]

SIZE_LIMIT = 2 / 3
"""Condition (1): the boxes cover less than this share of the image."""
DROP_LIMIT = 0.5
"""Condition (2): blacking out the boxes leaves at most this share of the class score."""
PAPER = {"images": 100, "ig_wins": 82, "mean_diff_pp": 8.4}
"""The Gradients of Counterfactuals paper's numbers (ImageNet 2012 localisation boxes,
Inception)."""


@dataclass(frozen=True)
class LocRow:
    """One image: the explained class, the two conditions and both maps' shares in the box."""

    name: str
    cls: int
    p: float
    p_ablated: float
    area: float
    ig: float
    grad: float
    gap: float = float("nan")
    """IG's relative completeness gap (how well its steps integrate)."""

    @property
    def small(self) -> bool:
        """Condition (1): the boxes cover less than two thirds of the image."""
        return self.area < SIZE_LIMIT

    @property
    def drops(self) -> bool:
        """Condition (2): the class score falls to at most half when the boxes are blacked out."""
        return self.p_ablated <= DROP_LIMIT * self.p

    @property
    def eligible(self) -> bool:
        """Both conditions hold (the paper counts only these images)."""
        return self.small and self.drops

    @property
    def diff(self) -> float:
        """IG's share minus the gradient's, in [-1, 1]."""
        return self.ig - self.grad


def score_boxes(model: Callable[..., Tensor], x: Tensor, masks: Tensor, target: Tensor, *,
                baseline_value: float, names: Sequence[str], steps: int = 32,
                batch_size: int | None = 16, progress: bool = False,
                channels_last: bool = False,
                maps: dict[str, Tensor] | None = None) -> list[LocRow]:
    """Run the protocol on a batch.

    Parameters
    ----------
    model
        Maps inputs to class scores ``(N, C)`` (softmax probabilities in the paper).
    x
        ``(N, C, H, W)`` images.
    masks
        ``(N, H, W)`` bool: the union of each image's boxes.
    target
        ``(N,)`` the object class of each image.
    baseline_value
        The black pixel in the model's normalisation (IG's baseline and the ablation fill).
    names
        A label per image.
    steps
        IG's steps (Gauss-Legendre).
    batch_size, progress, channels_last
        Passed to the methods.
    maps
        If given, receives the attributions under ``"ig"`` and ``"gradient"``.
    """
    import attribkit
    from attribkit.evaluate import mass_inside

    black = torch.full_like(x, baseline_value)
    with torch.no_grad():
        p = model(x).gather(1, target[:, None])[:, 0]
        ablated = torch.where(masks[:, None].expand_as(x), black, x)
        p_abl = model(ablated).gather(1, target[:, None])[:, 0]
    ig = attribkit.integrated_gradients(model, x, target=target, baseline=black, steps=steps,
                                        batch_size=batch_size, progress=progress,
                                        channels_last=channels_last)
    grad = attribkit.saliency(model, x, target=target, batch_size=batch_size, progress=progress)
    if maps is not None:
        maps.update(ig=ig.values.detach(), gradient=grad.values.detach())
    s_ig = mass_inside(ig, masks, sign="absolute")
    s_grad = mass_inside(grad, masks, sign="absolute")
    gaps = ig.relative_gap
    area = masks.reshape(masks.shape[0], -1).to(torch.float64).mean(dim=1)
    return [LocRow(name=str(names[i]), cls=int(target[i]), p=float(p[i]),
                   p_ablated=float(p_abl[i]), area=float(area[i]), ig=float(s_ig[i]),
                   grad=float(s_grad[i]),
                   gap=float(gaps[i]) if gaps is not None else float("nan"))
            for i in range(x.shape[0])]


def summary(rows: Sequence[LocRow], *, eligible_only: bool = True, seed: int = 0) -> dict[str, Any]:
    """Counts and means over the (eligible) rows: IG wins, mean difference in percentage
    points with a 95 % bootstrap interval over images, mean shares and the uniform map's share.
    """
    use = [r for r in rows if r.eligible or not eligible_only]
    if not use:
        return {"n": 0}
    diff = torch.tensor([r.diff for r in use], dtype=torch.float64) * 100
    mean, low, high = bootstrap_ci(diff, seed=seed)
    return {"n": len(use), "ig_wins": sum(r.diff > 0 for r in use),
            "ties": sum(r.diff == 0 for r in use), "mean_diff_pp": mean, "ci_pp": (low, high),
            "ig": sum(r.ig for r in use) / len(use), "grad": sum(r.grad for r in use) / len(use),
            "area": sum(r.area for r in use) / len(use)}


# --------------------------------------------------------------------------- data


def photo_rows(model: Callable[..., Tensor], *, photos: Sequence[str] | None = None,
               variants: Sequence[str] | None = None, steps: int = 32,
               progress: bool = False,
               maps: dict[str, Tensor] | None = None) -> tuple[list[LocRow], list[Any], Tensor,
                                                                 Tensor]:
    """The protocol on the labelled photos: the explained class is the most probable of the
    classes that name the boxed object. Returns the rows, the images, the inputs and the box
    masks; ``maps``, if given, receives the IG and gradient attributions."""
    from attribkit.zoo import photo_boxes, vision

    images = photo_boxes.labelled_images(photos, variants)
    x = torch.cat([im.x for im in images])
    masks = torch.stack([im.mask for im in images])
    with torch.no_grad():
        probs = model(x)
    target = torch.tensor([im.classes[int(probs[i, list(im.classes)].argmax())]
                           for i, im in enumerate(images)])
    rows = score_boxes(model, x, masks, target, baseline_value=vision.BLACK,
                       names=[im.name for im in images], steps=steps, progress=progress,
                       channels_last=True, maps=maps)
    return rows, images, x, masks


def digit_rows(*, per_class: int = 10, steps: int = 32) -> list[LocRow]:
    """The protocol on MNIST digits (ccexam's CNN, softmax), the box around each digit's ink."""
    from attribkit.zoo import digits

    # float64: in float32 the softmax of a confident digit is exactly 1 and its gradient 0.
    net = digits.load_mnist_cnn().double()
    model = torch.nn.Sequential(net, torch.nn.Softmax(dim=-1))
    x, y, boxes = digits.mnist_digits(per_class, dtype=torch.float64)
    masks = torch.zeros(x.shape[0], 28, 28, dtype=torch.bool)
    for i, (t, left, b, r) in enumerate(boxes):
        masks[i, t:b, left:r] = True
    names = [f"digit {int(c)} #{i % per_class}" for i, c in enumerate(y)]
    return score_boxes(model, x, masks, y, baseline_value=digits.BLACK, names=names,
                       steps=steps, batch_size=256)


# --------------------------------------------------------------------------- output


def _fmt_summary(s: dict[str, Any], what: str) -> str:
    if not s.get("n"):
        return f"{what}: no image satisfies both conditions."
    lo, hi = s["ci_pp"]
    return (f"{what}: {s['n']} images; IG's share is higher on {s['ig_wins']} "
            f"({100 * s['ig_wins'] / s['n']:.0f} %); mean difference {s['mean_diff_pp']:+.1f} pp "
            f"(95 % bootstrap CI {lo:+.1f} to {hi:+.1f}); mean shares IG {100 * s['ig']:.1f} %, "
            f"gradient {100 * s['grad']:.1f} %, uniform map (box area) {100 * s['area']:.1f} %")


def _table_rows(rows: Sequence[LocRow], class_name: Callable[[int], str]) -> list[list[Any]]:
    return [[r.name, class_name(r.cls), f"{r.p:.3f}", f"{r.p_ablated:.3f}",
             f"{100 * r.area:.0f} %", "yes" if r.eligible else
             ("no: box too large" if not r.small else "no: small drop"),
             f"{100 * r.ig:.1f} %", f"{100 * r.grad:.1f} %", f"{100 * r.diff:+.1f}",
             f"{r.gap:.3f}"]
            for r in rows]


HEADER = ["image", "class", "p", "p, box black", "box area", "counted", "IG in box",
          "gradient in box", "IG - gradient (pp)", "IG gap"]


def box_figure(x: Tensor, masks: Tensor, ig: Tensor, grad: Tensor, names: Sequence[str]) -> Any:
    """Rows of (photo with box, IG map, gradient map)."""
    import matplotlib.pyplot as plt

    from attribkit.viz.image import heatmap
    from attribkit.zoo import vision

    n = x.shape[0]
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.6 * n), squeeze=False)
    for i in range(n):
        for j, (img, title) in enumerate(((vision.deprocess(x[i]), names[i]),
                                          (heatmap(ig[i]), "IG, sum |a|"),
                                          (heatmap(grad[i]), "gradient, sum |a|"))):
            ax = axes[i, j]
            ax.imshow(img)
            ax.contour(masks[i].numpy().astype(float), levels=[0.5], colors="lime",
                       linewidths=1.2)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


@experiment("localisation", "Localisation: attribution inside the object's box (Gradients of "
            "Counterfactuals, 2.5)", task="vision")
def localisation_section(rep: Any, setup: Any, *, quick: bool, progress: bool) -> list[str]:
    """The demo's section: three photos and 50 digits (quick), or the whole labelled set."""
    from attribkit.zoo import vision

    model = setup.model if setup is not None else vision.SoftmaxModel(
        vision.load_efficientnet_lite0())
    photos = ["coffee", "rocket", "flower"] if quick else None
    variants = ["full"] if quick else None
    steps = 16 if quick else 32
    maps: dict[str, Tensor] = {}
    rows, _, x, masks = photo_rows(model, photos=photos, variants=variants, steps=steps,
                                   progress=progress, maps=maps)
    drows = digit_rows(per_class=5 if quick else 10, steps=steps)
    rep.text("The share of sum_c |a| inside hand-drawn object boxes (photos) and ink boxes "
             "(digits), for the object class; counted: box under 2/3 of the image and the "
             "class probability at most halved when the box is blacked out (the paper's two "
             f"conditions). IG: {steps} steps from black. Paper: IG higher on 82 of 100 images, "
             "+8.4 pp on average.")
    rep.table(HEADER, _table_rows(rows, vision.class_name))
    rep.text(_fmt_summary(summary(rows), "photos"))
    if quick:  # the full run has 34 rows: its figure is main()'s out/localisation.png
        rep.image(box_figure(x, masks, maps["ig"], maps["gradient"], [r.name for r in rows]),
                  "each photo, its IG map and its gradient map, the object's box in green")
    rep.text(_fmt_summary(summary(drows), "digits") + " (IG is exactly 0 outside the ink "
             "box, where the pixels equal the black baseline)")
    return []


def main(argv: Sequence[str] | None = None) -> None:
    """Run the full protocol and write the generated section of the docs page."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/localisation.md"))
    ap.add_argument("--figure", type=pathlib.Path, default=pathlib.Path("out/localisation.png"))
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import platform
    import time

    from attribkit.zoo import vision

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
    rows, _, x, masks = photo_rows(model, steps=args.steps, progress=True)
    drows = digit_rows(per_class=10, steps=args.steps)
    dt = time.perf_counter() - t0
    lines = [f"Regenerate with: `python -m attribkit.experiments.localisation --out {args.out} "
             f"--steps {args.steps}`. "
             f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__};"
             f" {len(rows)} photo images and {len(drows)} digits in {dt:.0f} s; IG "
             f"{args.steps} Gauss-Legendre steps from black.", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |"
              for r in _table_rows(rows, vision.class_name)]
    lines += ["", "* " + _fmt_summary(summary(rows), "photos, counted images"),
              "* " + _fmt_summary(summary(rows, eligible_only=False), "photos, all images"),
              "* " + _fmt_summary(summary(drows), "MNIST digits (ccexam CNN), counted"),
              f"* paper (Gradients of Counterfactuals): {PAPER['images']} ImageNet images, "
              f"IG higher on "
              f"{PAPER['ig_wins']}, mean difference +{PAPER['mean_diff_pp']} pp"]
    write_section(args.out, "localisation-results", "\n".join(lines),
                  title="# Localisation (Gradients of Counterfactuals, section 2.5)")
    import attribkit

    sel = [i for i, r in enumerate(rows) if r.name.endswith("/full") or "/full#" in r.name]
    black = torch.full_like(x[sel], vision.BLACK)
    t = torch.tensor([rows[i].cls for i in sel])
    ig = attribkit.integrated_gradients(model, x[sel], target=t, baseline=black, steps=args.steps)
    grad = attribkit.saliency(model, x[sel], target=t)
    fig = box_figure(x[sel], masks[sel], ig.values, grad.values, [rows[i].name for i in sel])
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=80)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
