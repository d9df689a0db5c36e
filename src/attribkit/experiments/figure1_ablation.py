"""Figure 1's ablation test: do the top pixels that fall off the object matter to the score?

"Gradients of Counterfactuals" opens (Figure 1) with gradients at the image that light up pixels
away from the object, and integrated gradients that do not. This module tests what those pixels
do: on each full sample photo with a hand-drawn box (:mod:`attribkit.zoo.photo_boxes`), it ranks
the pixels by ``sum_c |a|`` of the gradient at the image and of IG (black baseline), takes each
map's top ``share`` of pixels, keeps those outside the object's box, blacks them out and records
the explained class's probability; a random set of the same number of outside pixels is the
control. If the score barely moves, the off-object pixels a map highlights are not what the
network uses.

``python -m attribkit.experiments.figure1_ablation`` rewrites the ``figure1-ablation`` section of
docs/saturation.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from attribkit.core.pages import write_section

__all__ = ["Ablation", "ablate_outside", "main", "markdown"]


@dataclasses.dataclass(frozen=True)
class Ablation:
    """One image: the score before and after blacking out each map's top pixels off the object.

    Attributes
    ----------
    name : str
        The image.
    cls : int
        The explained class.
    p : float
        Its probability at the image.
    outside_share : dict of str to float
        Per map, the share of its top pixels that lie outside the box.
    p_after : dict of str to float
        Per map (and ``"random"``), the probability with those outside pixels blacked out.
    n_removed : dict of str to int
        Pixels blacked out per map.
    """

    name: str
    cls: int
    p: float
    outside_share: dict[str, float]
    p_after: dict[str, float]
    n_removed: dict[str, int]


def ablate_outside(f: Callable[[Tensor], Tensor], x: Tensor, maps: dict[str, Tensor],
                   inside: Tensor, fill: float, *, share: float = 0.05,
                   seed: int = 0) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """Black out each map's top pixels that lie outside ``inside``; a random control.

    Parameters
    ----------
    f : callable
        ``f(batch) -> (B,)`` the explained score.
    x : Tensor
        ``(1, C, H, W)`` the image.
    maps : dict of str to Tensor
        ``(H, W)`` pixel importances, larger first.
    inside : Tensor
        ``(H, W)`` bool, True on the object.
    fill : float
        The value of a blacked-out pixel.
    share : float
        The top share of all pixels taken from each map.
    seed : int
        Seed of the random control (as many outside pixels as the first map removes).

    Returns
    -------
    (dict, dict, dict)
        Per map: the share of its top pixels outside, the score after ablation, pixels removed.
    """
    hw = inside.numel()
    k = max(1, round(share * hw))
    out_share, removed, masks = {}, {}, {}
    for name, m in maps.items():
        top = torch.topk(m.flatten(), k).indices
        off = top[~inside.flatten()[top]]
        out_share[name] = off.numel() / k
        removed[name] = int(off.numel())
        mask = torch.zeros(hw, dtype=torch.bool)
        mask[off] = True
        masks[name] = mask.reshape(inside.shape)
    outside = (~inside.flatten()).nonzero().flatten()
    n = removed[next(iter(maps))] if maps else 0
    g = torch.Generator().manual_seed(seed)
    pick = outside[torch.randperm(outside.numel(), generator=g)[:n]]
    rnd = torch.zeros(hw, dtype=torch.bool)
    rnd[pick] = True
    masks["random"] = rnd.reshape(inside.shape)
    removed["random"] = int(pick.numel())
    batch = torch.cat([torch.where(mk, torch.full_like(x, fill), x) for mk in masks.values()])
    with torch.no_grad():
        scores = f(batch)
    return out_share, {k_: float(s) for k_, s in zip(masks, scores, strict=True)}, removed


def markdown(rows: Sequence[Ablation], share: float, seconds: float) -> str:
    """The section: one row per image, then the medians."""
    head = ["image", "class", "p", "gradient: top pixels off the object", "p, those blacked out",
            "IG: top pixels off the object", "p, those blacked out",
            "p, as many random off-object pixels blacked out"]
    out = [f"Regenerate with: `python -m attribkit.experiments.figure1_ablation`. Top "
           f"{share:.0%} of the pixels by `sum_c |a|` of each map; IG from black, 32 "
           f"Gauss-Legendre steps; {len(rows)} images, {seconds:.0f} s.", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join([
            r.name, str(r.cls), f"{r.p:.3f}", f"{r.outside_share['gradient']:.0%}",
            f"{r.p_after['gradient']:.3f}", f"{r.outside_share['ig']:.0%}",
            f"{r.p_after['ig']:.3f}", f"{r.p_after['random']:.3f}"]) + " |")
    if rows:
        rel = {k: torch.tensor([r.p_after[k] / r.p for r in rows]).median().item()
               for k in ("gradient", "ig", "random")}
        out += ["", "Median score kept (p after / p): gradient's off-object pixels "
                f"{rel['gradient']:.2f}, IG's {rel['ig']:.2f}, random off-object pixels "
                f"{rel['random']:.2f}."]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run on the full photos and rewrite the page's section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", default="docs/saturation.md")
    ap.add_argument("--share", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import attribkit
    from attribkit.zoo import photo_boxes, vision

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0()).eval()
    rows = []
    for im in photo_boxes.labelled_images(variants=["full"]):
        with torch.no_grad():
            p = model(im.x)[0]
        cls = max(im.classes, key=lambda c: float(p[c]))
        inside = torch.zeros(im.x.shape[-2:], dtype=torch.bool)
        for t, left, b, r in im.boxes:
            inside[t:b, left:r] = True
        if inside.all():
            continue  # the object fills the image: nothing lies off it
        grad = attribkit.saliency(model, im.x, target=cls).values[0].abs().sum(dim=0)
        ig = attribkit.integrated_gradients(model, im.x, target=cls, steps=32,
                                            baseline=torch.full_like(im.x, vision.BLACK))
        maps = {"gradient": grad, "ig": ig.values[0].abs().sum(dim=0)}

        def f(batch: Tensor, cls: int = cls) -> Tensor:
            out: Tensor = model(batch)[:, cls]
            return out

        share, after, removed = ablate_outside(f, im.x, maps, inside, vision.BLACK,
                                               share=args.share)
        rows.append(Ablation(im.name, cls, float(p[cls]), share, after, removed))
        print(rows[-1], flush=True)
    text = markdown(rows, args.share, time.perf_counter() - t0)
    write_section(args.out, "figure1-ablation", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
