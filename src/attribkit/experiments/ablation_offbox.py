"""Figure 1's ablation test ("Gradients of Counterfactuals", Sundararajan, Taly & Yan 2016,
section 2.1): black out the high-attribution pixels that fall off the object, and see whether
the score moves.

The paper's gradient map of a "reflex camera" (softmax 0.9938) lit pixels left of and above the
camera; blacking those parts out left the score at 0.9966, so those pixels did not matter and the
gradient, not the network, was at fault. Here, on every labelled photo variant of
:mod:`attribkit.zoo.photo_boxes` and with the class that names its boxed object:

* the top :data:`TOP` of the pixels by eq. 1's map (``sum_c |a|``) of the gradient at the image,
  and of IG (black baseline), are found; those outside the object's box are blacked out;
* the class score is measured before and after, and after blacking out as many off-box pixels
  drawn at random (the control: how much any black speckle of that size moves the score);
* the gradient is taken again at the ablated image, and the share of its top pixels that still
  fall off the box is reported (the paper: "most of the high gradient pixels" still do).

``python -m attribkit.experiments.ablation_offbox`` writes its section of
``docs/localisation.md``.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit.experiments import experiment

__all__ = ["PAPER", "TOP", "AblationRow", "ablate", "ablation_section", "main", "off_box_top",
           "random_off_box", "run", "summary"]

TOP = 0.1
"""The share of the image's pixels in a map's top set."""
PAPER = {"before": 0.9938, "after": 0.9966}
"""Figure 1: the reflex camera's softmax score before and after the ablation."""


@dataclass(frozen=True)
class AblationRow:
    """One image.

    Attributes
    ----------
    name, cls
        The image and the explained class.
    p
        The class score at the image.
    area
        The box's share of the image.
    grad_off, ig_off
        The share of the gradient's (IG's) top pixels that lie outside the box.
    p_grad, p_ig
        The score with those off-box pixels blacked out.
    p_random
        The score with as many off-box pixels as the gradient's, drawn at random, blacked out.
    grad_off_after
        The share of the gradient's top pixels off the box, at the gradient-ablated image.
    """

    name: str
    cls: int
    p: float
    area: float
    grad_off: float
    ig_off: float
    p_grad: float
    p_ig: float
    p_random: float
    grad_off_after: float


def off_box_top(importance: Tensor, masks: Tensor, top: float = TOP) -> Tensor:
    """``(N, H, W)`` bool: each map's top ``top`` share of pixels that lie outside its box.

    Parameters
    ----------
    importance
        ``(N, H, W)`` pixel maps.
    masks
        ``(N, H, W)`` bool boxes.
    top
        The share of pixels in the top set.
    """
    n = importance.shape[0]
    flat = importance.reshape(n, -1)
    k = max(1, round(top * flat.shape[1]))
    sel = torch.zeros_like(flat, dtype=torch.bool)
    sel.scatter_(1, flat.topk(k, dim=1).indices, True)
    return sel.reshape(importance.shape) & ~masks


def ablate(x: Tensor, pixels: Tensor, value: float) -> Tensor:
    """``x`` with the ``(N, H, W)`` selected pixels set to ``value`` in every channel."""
    return torch.where(pixels[:, None].expand_as(x), torch.full_like(x, value), x)


def random_off_box(pixels: Tensor, masks: Tensor, seed: int) -> Tensor:
    """As many off-box pixels as ``pixels`` has, per image, drawn uniformly (seeded)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros_like(pixels)
    for i in range(pixels.shape[0]):
        free = torch.nonzero(~masks[i].flatten()).flatten()
        k = int(pixels[i].sum())
        pick = free[torch.randperm(free.numel(), generator=g)[:k]]
        out[i].view(-1)[pick] = True
    return out


def run(model: Callable[..., Tensor], x: Tensor, masks: Tensor, target: Tensor, *,
        baseline_value: float, names: Sequence[str], steps: int = 16, top: float = TOP,
        seed: int = 0, channels_last: bool = False, progress: bool = False) -> list[AblationRow]:
    """The ablation test on a batch of images.

    Parameters
    ----------
    model
        Maps inputs to class scores ``(N, C)`` (softmax probabilities in the paper).
    x
        ``(N, C, H, W)`` images.
    masks
        ``(N, H, W)`` bool: the object's box(es).
    target
        ``(N,)`` the class of each image.
    baseline_value
        The black pixel: IG's baseline and the ablation's fill.
    names
        A label per image.
    steps
        IG steps (Gauss-Legendre).
    top
        The share of pixels in each map's top set.
    seed
        Seed of the random control.
    channels_last, progress
        Passed to IG.
    """
    import attribkit

    def score(z: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.cat([model(z[s:s + 8]).gather(1, target[s:s + 8, None])[:, 0]
                              for s in range(0, z.shape[0], 8)])

    grad = attribkit.saliency(model, x, target=target, batch_size=8, progress=progress)
    ig = attribkit.integrated_gradients(model, x, target=target,
                                        baseline=torch.full_like(x, baseline_value),
                                        steps=steps, batch_size=16, progress=progress,
                                        channels_last=channels_last)
    g_off = off_box_top(grad.values.detach().abs().sum(dim=1), masks, top)
    i_off = off_box_top(ig.values.detach().abs().sum(dim=1), masks, top)
    x_grad = ablate(x, g_off, baseline_value)
    x_rand = ablate(x, random_off_box(g_off, masks, seed), baseline_value)
    p, p_grad, p_ig, p_rand = (score(z) for z in (x, x_grad, ablate(x, i_off, baseline_value),
                                                  x_rand))
    after = attribkit.saliency(model, x_grad, target=target, batch_size=8, progress=progress)
    a_off = off_box_top(after.values.detach().abs().sum(dim=1), masks, top)
    k = max(1, round(top * masks[0].numel()))
    area = masks.reshape(masks.shape[0], -1).to(torch.float64).mean(dim=1)
    return [AblationRow(name=str(names[i]), cls=int(target[i]), p=float(p[i]),
                        area=float(area[i]), grad_off=int(g_off[i].sum()) / k,
                        ig_off=int(i_off[i].sum()) / k, p_grad=float(p_grad[i]),
                        p_ig=float(p_ig[i]), p_random=float(p_rand[i]),
                        grad_off_after=int(a_off[i].sum()) / k)
            for i in range(x.shape[0])]


def _change(after: float, before: float) -> float:
    return after / before - 1 if before else float("nan")


def summary(rows: Sequence[AblationRow], barely: float = 0.1) -> dict[str, float]:
    """Medians over images, and how many scores "barely move" (within ``barely`` of their
    value).

    Parameters
    ----------
    rows
        The per-image rows.
    barely
        The relative change below which a score counts as barely moved.
    """
    def med(v: list[float]) -> float:
        return float(torch.tensor(v, dtype=torch.float64).nanmedian())

    out: dict[str, float] = {"n": float(len(rows)),
                             "grad_off": med([r.grad_off for r in rows]),
                             "ig_off": med([r.ig_off for r in rows]),
                             "grad_off_after": med([r.grad_off_after for r in rows])}
    for key in ("grad", "ig", "random"):
        ch = [_change(getattr(r, f"p_{key}"), r.p) for r in rows]
        out[f"{key}_change"] = med(ch)
        out[f"{key}_barely"] = float(sum(abs(c) <= barely for c in ch))
    return out


HEADER = ["image", "class", "p", "box area", "gradient's top 10 % off the box",
          "p, those black", "IG's top 10 % off the box", "p, those black",
          "p, as many random off-box pixels black", "gradient's top 10 % off the box, after"]


def table_rows(rows: Sequence[AblationRow], class_name: Callable[[int], str]) -> list[list[str]]:
    """The table's rows, as strings."""
    return [[r.name, class_name(r.cls), f"{r.p:.3f}", f"{r.area:.0%}", f"{r.grad_off:.0%}",
             f"{r.p_grad:.3f}", f"{r.ig_off:.0%}", f"{r.p_ig:.3f}", f"{r.p_random:.3f}",
             f"{r.grad_off_after:.0%}"] for r in rows]


def reading(s: dict[str, float]) -> str:
    """The summary in one paragraph, with the paper's numbers."""
    n = int(s["n"])
    return (f"Over the {n} images: a median {s['grad_off']:.0%} of the gradient's top 10 % of "
            f"pixels lie off the box, and {s['ig_off']:.0%} of IG's. Blacking out the gradient's "
            f"off-box top pixels changes the class score by a median {s['grad_change']:+.1%} "
            f"(within 10 % on {s['grad_barely']:.0f} of {n} images); IG's, "
            f"{s['ig_change']:+.1%} ({s['ig_barely']:.0f} of {n}); as many random off-box pixels, "
            f"{s['random_change']:+.1%} ({s['random_barely']:.0f} of {n}). At the ablated image "
            f"a median {s['grad_off_after']:.0%} of the gradient's top pixels are still off the "
            f"box. Paper (Figure 1, one image): reflex camera {PAPER['before']} before, "
            f"{PAPER['after']} after, and most high-gradient pixels still outside the camera.")


def photo_inputs(model: Callable[..., Tensor], photos: Sequence[str] | None = None,
                 variants: Sequence[str] | None = None) -> tuple[list[str], Tensor, Tensor,
                                                                 Tensor]:
    """The labelled photo variants: names, inputs, boxes, and the most probable of the classes
    that name each object."""
    from attribkit.zoo import photo_boxes

    ims = photo_boxes.labelled_images(photos, variants)
    x = torch.cat([i.x for i in ims])
    with torch.no_grad():
        p = torch.cat([model(x[s:s + 8]) for s in range(0, len(ims), 8)])
    target = torch.tensor([i.classes[int(p[k, list(i.classes)].argmax())]
                           for k, i in enumerate(ims)])
    return [i.name for i in ims], x, torch.stack([i.mask for i in ims]), target


@experiment("ablation_offbox", "Figure 1's ablation: off-object top pixels blacked out "
            "(Gradients of Counterfactuals, section 2.1)", task="vision")
def ablation_section(rep: Any, setup: Any, *, quick: bool, progress: bool) -> list[str]:
    """Three full photos with 8 IG steps (quick), or all labelled variants with 16."""
    from attribkit.zoo import vision

    photos = ["camera", "coffee", "rocket"] if quick else None
    names, x, masks, target = photo_inputs(setup.model, photos, ["full"] if quick else None)
    rows = run(setup.model, x, masks, target, baseline_value=float(setup.baseline_value),
               names=names, steps=8 if quick else 16, channels_last=bool(setup.channels_last),
               progress=progress)
    rep.text("The top 10 % of pixels of each map that fall outside the object's box are blacked "
             "out; if the score barely moves, those pixels did not matter to the network.")
    rep.table(HEADER, table_rows(rows, vision.class_name), reading=reading(summary(rows)))
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """Run on every labelled photo variant and write the section of ``docs/localisation.md``."""
    import time

    from attribkit.core.pages import write_section
    from attribkit.zoo import vision

    ap = argparse.ArgumentParser(prog="python -m attribkit.experiments.ablation_offbox")
    ap.add_argument("--out", default="docs/localisation.md", help="the docs page to update")
    ap.add_argument("--steps", type=int, default=16, help="IG steps")
    ap.add_argument("--variants", nargs="+", default=None,
                    help="only these variants (full, flip, left, ...; default all)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
    names, x, masks, target = photo_inputs(model, variants=args.variants)
    rows = run(model, x, masks, target, baseline_value=vision.BLACK, names=names,
               steps=args.steps, channels_last=True, progress=True)
    dt = time.perf_counter() - t0
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(rows, vision.class_name)]
    body = ("\n".join(lines) + "\n\n" + reading(summary(rows))
            + f"\n\nFull run: {len(rows)} images, IG with {args.steps} Gauss-Legendre steps "
            f"from black, EfficientNet-Lite0 float32, {dt:.0f} s on 2 shared CPU cores. "
            f"Regenerate with: `python -m attribkit.experiments.ablation_offbox"
            + (f" --variants {' '.join(args.variants)}" if args.variants else "")
            + f" --steps {args.steps}`.")
    write_section(pathlib.Path(args.out), "ablation-offbox", body,
                  title="# Localisation")
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
