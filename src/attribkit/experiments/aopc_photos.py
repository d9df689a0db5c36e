"""AOPC on every sample photo (Gradients of Counterfactuals, Figure 5): Integrated Gradients, the
gradient at the image and a random ranking, with bootstrap intervals over images, under the paper's
protocol and under the changes that could explain why a random ranking does as well as IG.

The paper's protocol: rank pixels by eq. 1 (``sum_c |a|``), set the top 100 to black, 50 times
(5,000 pixels, 10 % of a 224 x 224 image), and record the drop of the top class's softmax score;
``AOPC_k`` is the mean drop over steps ``0..k``. Each changed protocol alters one thing: the
score (the class logit, recorded in the same forward passes as the probability), the fill
(mid-grey), the unit (10 x 10 blocks ranked by their summed ``sum_c |a|``) or the ranking
(signed ``sum_c a``: evidence for the class first).

Run ``python -m attribkit.experiments.aopc_photos --out docs/aopc.md`` for the page.
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

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "ablation_scores",
    "aopc_from_scores",
    "aopc_section",
    "early_step",
    "header",
    "main",
    "pixel_ranks",
]


@dataclass(frozen=True)
class Protocol:
    """One way of ablating: fill value (``"black"`` or ``"grey"``), unit side in pixels
    (1: pixels), ranking sign, features per step and steps."""

    name: str
    fill: str = "black"
    block: int = 1
    sign: str = "absolute"
    k: int = 100
    steps: int = 50


PROTOCOLS = (
    Protocol("paper: 100 px x 50 to black, sum |a|"),
    Protocol("grey fill", fill="grey"),
    Protocol("10x10 blocks, sum |a|", block=10, k=1),
    Protocol("signed ranking, sum a", sign="all"),
)


def pixel_ranks(values: Tensor, *, block: int = 1, sign: str = "absolute") -> Tensor:
    """``(N, H, W)`` rank of each pixel's unit (0 = removed first) from ``(N, C, H, W)``
    attributions: eq. 1 per pixel (``sum_c |a|``, or ``sum_c a`` for ``sign="all"``), summed
    over ``block x block`` units; ties in index order."""
    m = values.detach().to(torch.float64)
    m = m.abs().sum(dim=1) if sign == "absolute" else m.sum(dim=1)
    n, h, w = m.shape
    if block > 1:
        gh, gw = -(-h // block), -(-w // block)
        pad = torch.zeros(n, gh * block, gw * block, dtype=m.dtype)
        pad[:, :h, :w] = m
        unit = pad.reshape(n, gh, block, gw, block).sum(dim=(2, 4)).reshape(n, -1)
    else:
        unit = m.reshape(n, -1)
    order = torch.sort(-unit, dim=1, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(unit.shape[1]).expand_as(order))
    if block > 1:
        rank = rank.reshape(n, gh, 1, gw, 1).expand(n, gh, block, gw, block)
        return rank.reshape(n, gh * block, gw * block)[:, :h, :w]
    return rank.reshape(n, h, w)


def ablation_scores(logits_fn: Callable[[Tensor], Tensor], x: Tensor, ranks: Tensor,
                    target: Tensor, *, fill: float, k: int, steps: int,
                    batch_size: int = 16) -> tuple[Tensor, Tensor]:
    """The class probability and logit after each step, ``(N, steps + 1)`` each (float64).

    Step ``s`` sets the units ranked below ``s * k`` to ``fill`` in every channel.
    """
    probs = torch.empty(x.shape[0], steps + 1, dtype=torch.float64)
    logits = torch.empty_like(probs)
    limits = torch.arange(steps + 1) * k
    for i in range(x.shape[0]):
        masks = ranks[i][None] < limits[:, None, None]  # (S+1, H, W)
        for lo in range(0, steps + 1, batch_size):
            m = masks[lo:lo + batch_size, None]
            z = torch.where(m, torch.full_like(x[i], fill), x[i][None].expand(m.shape[0], -1,
                                                                               -1, -1))
            with torch.no_grad():
                out = logits_fn(z).to(torch.float64)
            c = int(target[i])
            probs[i, lo:lo + m.shape[0]] = out.softmax(dim=1)[:, c]
            logits[i, lo:lo + m.shape[0]] = out[:, c]
    return probs, logits


def aopc_from_scores(scores: Tensor) -> Tensor:
    """``(N, S + 1)`` AOPC after each step: the mean drop ``F(x) - F(x_j)`` over ``j <= k``."""
    drops = scores[:, :1] - scores
    return drops.cumsum(dim=1) / torch.arange(1, scores.shape[1] + 1, dtype=scores.dtype)


def _methods(model: Callable[..., Tensor], x: Tensor, target: Tensor, black: float, steps: int,
             progress: bool) -> dict[str, Tensor]:
    import attribkit

    base = torch.full_like(x, black)
    ig = attribkit.integrated_gradients(model, x, target=target, baseline=base, steps=steps,
                                        batch_size=8, progress=progress, channels_last=True)
    grad = attribkit.saliency(model, x, target=target, batch_size=8)
    gen = torch.Generator().manual_seed(0)
    return {"integrated gradients": ig.values, "gradient": grad.values,
            "random": torch.rand(x.shape, generator=gen, dtype=x.dtype)}


def run(logits_fn: Callable[[Tensor], Tensor], x: Tensor, target: Tensor,
        attrs: dict[str, Tensor], protocol: Protocol, *, black: float,
        methods: Sequence[str] | None = None) -> dict[str, dict[str, Tensor]]:
    """AOPC curves ``(N, S + 1)`` of each method: ``{"probability": ..., "logit": ...}``."""
    fill = black if protocol.fill == "black" else 0.0
    out: dict[str, dict[str, Tensor]] = {}
    for name, a in attrs.items():
        if methods is not None and name not in methods:
            continue
        ranks = pixel_ranks(a, block=protocol.block, sign=protocol.sign)
        p, lg = ablation_scores(logits_fn, x, ranks, target, fill=fill, k=protocol.k,
                                steps=protocol.steps)
        out[name] = {"probability": aopc_from_scores(p), "logit": aopc_from_scores(lg)}
    return out


def early_step(steps: int) -> int:
    """The early AOPC column's step: a fifth of the steps (10 of the paper's 50), at least 1.

    With ``steps`` no more than that, the early column would repeat the last one.
    """
    return max(1, steps // 5)


def header(protocol: Protocol) -> list[str]:
    """The table's columns for ``protocol``: the early and the final AOPC, with their pixels."""
    e = early_step(protocol.steps)
    unit = "px" if protocol.block == 1 else f"{protocol.block}x{protocol.block} blocks"
    return ["ranking", f"AOPC@{e} ({e * protocol.k:,} {unit})",
            f"AOPC@{protocol.steps} ({protocol.steps * protocol.k:,} {unit}) [95 % CI]",
            f"AOPC@{protocol.steps} minus random [95 % CI]"]


def table(curves: dict[str, dict[str, Tensor]], score: str) -> list[list[str]]:
    """Rows: method, AOPC after a fifth of the steps (:func:`early_step`), AOPC at the end with
    a 95 % bootstrap CI over images, and the paired difference from the random ranking with its
    CI."""
    rows = []
    rand = curves.get("random", {}).get(score)
    for name, c in curves.items():
        a = c[score]
        m, lo, hi = bootstrap_ci(a[:, -1])
        row = [name, f"{float(a[:, early_step(a.shape[1] - 1)].mean()):.3f}",
               f"{m:.3f} [{lo:.3f}, {hi:.3f}]"]
        if rand is not None and name != "random":
            d, dlo, dhi = bootstrap_ci(a[:, -1] - rand[:, -1])
            row.append(f"{d:+.3f} [{dlo:+.3f}, {dhi:+.3f}]")
        else:
            row.append("")
        rows.append(row)
    return rows


CAPTIONS = {"probability": "Score: the top class's softmax probability",
            "logit": "Score: the top class's logit (before the softmax), same forward passes"}
"""The caption of each score's table."""


def _images(names: Sequence[str], variants: Sequence[str]) -> tuple[list[str], Tensor]:
    from attribkit.zoo import photo_boxes, vision

    labels, xs = [], []
    for n in names:
        img = vision.load_photo(n)
        for v in photo_boxes.variants_of(img.shape[0], img.shape[1]):
            if v.name in variants or (v.name not in ("full", "flip") and "crops" in variants):
                labels.append(f"{n}/{v.name}")
                xs.append(vision.preprocess(photo_boxes.variant_image(img, v)))
    return labels, torch.cat(xs)


def _logits_of(model: Any) -> Callable[[Tensor], Tensor]:
    inner = model.model if hasattr(model, "model") else model

    def f(z: Tensor) -> Tensor:
        out: Tensor = inner(z.contiguous(memory_format=torch.channels_last))
        return out
    return f


@experiment("aopc_photos", "AOPC with a random ranking and intervals (Gradients of "
            "Counterfactuals, Figure 5)", task="vision")
def aopc_section(rep: Any, setup: Any, *, quick: bool, progress: bool) -> list[str]:
    """The demo's section: two photos, 500 px x 10 steps (quick)."""
    from attribkit.zoo import vision

    model = setup.model if setup is not None else vision.SoftmaxModel(
        vision.load_efficientnet_lite0())
    names, x = _images(["coffee", "rocket"] if quick else list(vision.PHOTOS),
                       ["full"] if quick else ["full", "flip"])
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    attrs = _methods(model, x, target, vision.BLACK, 8 if quick else 16, progress)
    proto = Protocol("paper, shortened", k=500, steps=10) if quick else PROTOCOLS[0]
    curves = run(_logits_of(model), x, target, attrs, proto, black=vision.BLACK)
    rep.text(f"{len(names)} images ({', '.join(names)}); top {proto.k} pixels to black per "
             f"step, {proto.steps} steps; score: the top class's probability, and its logit "
             "from the same forward passes. Intervals: percentile bootstrap over images.")
    for score in ("probability", "logit"):
        rep.table(header(proto), table(curves, score), CAPTIONS[score])
    return []


def main(argv: Sequence[str] | None = None) -> None:
    """Run the protocols and write the generated sections of the docs page."""
    import platform
    import time

    from attribkit.zoo import vision

    ap = argparse.ArgumentParser(
        description="AOPC on the sample photos (Gradients of Counterfactuals, Figure 5)")
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/aopc.md"))
    ap.add_argument("--steps", type=int, default=16, help="IG Gauss-Legendre steps")
    ap.add_argument("--variants", nargs="+", default=["full", "flip"])
    ap.add_argument("--protocols", type=int, nargs="+", default=[0, 1, 2, 3],
                    help="indices into PROTOCOLS (0 is the paper's)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
    names, x = _images(list(vision.PHOTOS), args.variants)
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    t0 = time.perf_counter()
    attrs = _methods(model, x, target, vision.BLACK, args.steps, True)
    head = (f"{platform.machine()}, {torch.get_num_threads()} threads on a shared 2-core "
            f"machine, torch {torch.__version__}; IG {args.steps} Gauss-Legendre steps from "
            f"black; intervals: percentile bootstrap over images (10,000 resamples, seed 0).")
    logits_fn = _logits_of(model)
    for i in args.protocols:
        proto = PROTOCOLS[i]
        sub = slice(None) if i == 0 else slice(0, None, len(args.variants))
        t1 = time.perf_counter()
        curves = run(logits_fn, x[sub], target[sub], {k: v[sub] for k, v in attrs.items()},
                     proto, black=vision.BLACK)
        n = x[sub].shape[0]
        lines = [head, "", f"{proto.name}; {n} images ({', '.join(names[sub])}); "
                 f"{time.perf_counter() - t1:.0f} s.", ""]
        for score in ("probability", "logit"):
            head_row = header(proto)
            lines += [f"{CAPTIONS[score]}.", "",
                      "| " + " | ".join(head_row) + " |", "|" + "---|" * len(head_row)]
            lines += ["| " + " | ".join(r) + " |" for r in table(curves, score)] + [""]
        per = [f"{names[sub][j]}: " + ", ".join(
            f"{m} {float(c['probability'][j, -1]):.3f}" for m, c in curves.items())
            for j in range(n)]
        lines += [f"Per image, AOPC@{proto.steps} of the probability: " + "; ".join(per) + "."]
        write_section(args.out, f"aopc-{i}", "\n".join(lines),
                      title="# AOPC on the sample photos (Gradients of Counterfactuals, Figure 5)")
        print("\n".join(lines), flush=True)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
