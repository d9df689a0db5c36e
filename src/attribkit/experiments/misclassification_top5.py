"""Figure 6 under the paper's rule: images whose true label is not in the model's top five
("Gradients of Counterfactuals", Sundararajan, Taly & Yan 2016, section 2.6).

The paper takes ImageNet images "where the groundtruth label for the image [is] not in the top
five labels predicted", explains the model's label and the true label, and reads the two maps:
each on its own object (the ranking is wrong) or on the same pixels (the recognition is wrong).
Searched here, with that rule:

* the 34 labelled photo variants of :mod:`attribkit.zoo.photo_boxes` with EfficientNet-Lite0:
  an object's ImageNet classes are its true labels, and a variant qualifies when none of them
  is in the top five;
* the 5,000 MNIST digits of :mod:`attribkit.zoo.digits` with the trained CNN: a digit qualifies
  when its label is not in the top five of ten.

Each case is explained for both labels with IG of the softmax score (black baseline) and with
interior gradients at a few ``alpha`` (eq. 4's pixel importance); the maps are compared with
:func:`~attribkit.experiments.misclassification.map_statistics` and by the share of each map's
mass inside the true object's box (the photo's box, or the digit's ink box).
``python -m attribkit.experiments.misclassification_top5`` writes its section of
``docs/saturation.md``.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from attribkit.experiments import experiment

__all__ = ["ALPHAS", "Explained", "Found", "Top5Study", "box_share", "digit_search", "explain",
           "main", "photo_search", "rank_search", "study", "top5_section"]

#: Where the interior gradients are shown (1.0 is the plain gradient at the image).
ALPHAS: tuple[float, ...] = (0.1, 0.3, 1.0)


@dataclass(frozen=True)
class Found:
    """An input whose true label is outside the model's top five.

    Attributes
    ----------
    name
        ``"photo/variant"`` or ``"digit 1234"``.
    x
        ``(1, C, H, W)`` the model input.
    chosen, truth
        The model's top-1 class and the true class (of several true classes, the best ranked).
    rank
        The true class's rank (1 = top).
    p_chosen, p_truth
        Their softmax scores.
    mask
        ``(H, W)`` bool: the true object's box.
    """

    name: str
    x: Tensor
    chosen: int
    truth: int
    rank: int
    p_chosen: float
    p_truth: float
    mask: Tensor


def rank_search(probs: Tensor, truths: Sequence[Sequence[int]],
                top: int = 5) -> list[tuple[int, int, int]]:
    """The rows whose true classes all rank below ``top``.

    Parameters
    ----------
    probs
        ``(N, K)`` scores.
    truths
        For each row, the classes that count as its true label.
    top
        How many top classes the true label must miss (the paper: 5).

    Returns
    -------
    list of tuple
        ``(row, best-ranked true class, its rank)`` with rank ``> top``; ties rank high.
    """
    out = []
    for i, classes in enumerate(truths):
        ranks = {c: int((probs[i] > probs[i, c]).sum()) + 1 for c in classes}
        best = min(ranks, key=lambda c: ranks[c])
        if ranks[best] > top:
            out.append((i, best, ranks[best]))
    return out


def box_share(importance: Tensor, mask: Tensor) -> float:
    """The share of a non-negative ``(H, W)`` map's mass inside ``mask``."""
    total = float(importance.sum())
    return float(importance[mask].sum()) / total if total else float("nan")


@dataclass(frozen=True)
class Explained:
    """Both labels of one case, explained.

    Attributes
    ----------
    found
        The case.
    ig
        ``(2, C, H, W)`` IG for (model's label, true label).
    gap
        ``(2,)`` IG's completeness gap, relative to ``F(x) - F(baseline)``.
    interior
        ``(2, A, H, W)`` interior pixel importance at :data:`ALPHAS`.
    stats
        :func:`~attribkit.experiments.misclassification.map_statistics` of the two IG maps.
    box_ig, box_interior
        ``(2,)`` and ``(2, A)`` the share of each map's mass in the true object's box.
    """

    found: Found
    ig: Tensor
    gap: Tensor
    interior: Tensor
    stats: dict[str, float]
    box_ig: Tensor
    box_interior: Tensor


def explain(model: Callable[..., Tensor], f: Found, *, baseline: float, steps: int = 32,
            channels_last: bool = False, progress: bool = False) -> Explained:
    """IG and interior gradients of both labels of a case.

    Parameters
    ----------
    model
        Returns ``(N, K)`` softmax scores.
    f
        The case.
    baseline
        The black input's value.
    steps
        IG steps (Gauss-Legendre).
    channels_last
        Run IG channels-last (faster for EfficientNet on CPUs).
    progress
        Show progress bars.
    """
    from attribkit.experiments.misclassification import map_statistics
    from attribkit.methods.integrated import integrated_gradients, interior_gradients

    x2 = f.x.expand(2, *f.x.shape[1:])
    target = torch.tensor([f.chosen, f.truth])
    base = torch.full_like(x2, baseline)
    ig = integrated_gradients(model, x2, target=target, baseline=base, steps=steps,
                              channels_last=channels_last, progress=progress)
    inner = interior_gradients(model, x2, target=target, baseline=base, alphas=list(ALPHAS),
                               progress=progress)
    vals = ig.values.detach()
    imp = vals.abs().sum(dim=1)
    pix = inner.pixel_importance().detach()
    assert ig.relative_gap is not None
    return Explained(found=f, ig=vals, gap=ig.relative_gap.detach(), interior=pix,
                     stats=map_statistics(imp[0], imp[1]),
                     box_ig=torch.tensor([box_share(imp[k], f.mask) for k in range(2)]),
                     box_interior=torch.tensor([[box_share(pix[k, a], f.mask)
                                                 for a in range(len(ALPHAS))]
                                                for k in range(2)]))


def _found(name: str, x: Tensor, p: Tensor, truth: int, rank: int, mask: Tensor) -> Found:
    chosen = int(p.argmax())
    return Found(name=name, x=x, chosen=chosen, truth=truth, rank=rank,
                 p_chosen=float(p[chosen]), p_truth=float(p[truth]), mask=mask)


def photo_search(model: Callable[..., Tensor]) -> tuple[list[Found], list[int]]:
    """The photo variants whose object's classes all miss the top five, and every variant's best
    true-class rank."""
    from attribkit.zoo.photo_boxes import labelled_images

    ims = labelled_images()
    with torch.no_grad():
        probs = torch.cat([model(torch.cat([i.x for i in ims[s:s + 8]]))
                           for s in range(0, len(ims), 8)])
    all_ranks = [r for _, _, r in rank_search(probs, [i.classes for i in ims], top=0)]
    return ([_found(ims[i].name, ims[i].x, probs[i], c, r, ims[i].mask)
             for i, c, r in rank_search(probs, [i.classes for i in ims])], all_ranks)


def digit_model() -> nn.Module:
    """The MNIST CNN with a softmax (the paper explains softmax scores), float64: in float32 the
    softmax of a confident digit is exactly 1 and its gradients vanish."""
    from attribkit.zoo.digits import load_mnist_cnn

    return nn.Sequential(load_mnist_cnn(), nn.Softmax(dim=1)).double().eval()


def digit_search(model: Callable[..., Tensor]) -> tuple[list[Found], list[int]]:
    """The MNIST digits whose label misses the CNN's top five, and every digit's label rank."""
    from attribkit.zoo.digits import mnist_digits

    x, y, boxes = mnist_digits(500, dtype=torch.float64)
    with torch.no_grad():
        probs = torch.cat([model(x[s:s + 500]) for s in range(0, len(x), 500)])
    truths = [[int(c)] for c in y]
    all_ranks = [r for _, _, r in rank_search(probs, truths, top=0)]
    out = []
    for i, c, r in rank_search(probs, truths):
        mask = torch.zeros(x.shape[-2:], dtype=torch.bool)
        t, left, b, rt = boxes[i]
        mask[t:b, left:rt] = True
        out.append(_found(f"digit {i}", x[i:i + 1], probs[i], c, r, mask))
    return out, all_ranks


def search_counts(ranks: Sequence[int]) -> str:
    """``top-1: a, ranks 2-5: b, below 5: c`` of a list of true-label ranks."""
    r = torch.tensor(list(ranks))
    return (f"top-1 {int((r == 1).sum())}, rank 2-5 {int(((r > 1) & (r <= 5)).sum())}, "
            f"below the top 5 {int((r > 5).sum())}")


def table(es: Sequence[Explained], name_of: Callable[[Found, int], str]) -> tuple[
        list[str], list[list[Any]]]:
    """One row per case: labels, ranks, IG gaps, the map comparison and the box shares."""
    rows: list[list[Any]] = []
    for e in es:
        f = e.found
        g = [f"{float(v):.2g}" for v in e.gap]
        bi = e.box_interior
        rows.append([f.name, f"{name_of(f, f.chosen)} {f.p_chosen:.3f}",
                     f"{name_of(f, f.truth)} {f.p_truth:.2g} (rank {f.rank})", " / ".join(g),
                     f"{e.stats['jaccard']:.3f}", f"{e.stats['pearson']:.2f}",
                     f"{float(f.mask.float().mean()):.0%}",
                     f"{float(e.box_ig[0]):.0%} / {float(e.box_ig[1]):.0%}",
                     f"{float(bi[0, -1]):.0%} / {float(bi[1, -1]):.0%}",
                     f"{float(bi[0, 0]):.0%} / {float(bi[1, 0]):.0%}"])
    return (["case", "model's label", "true label", "IG gap (model / true)",
             "top-5 % overlap (Jaccard)", "correlation", "true object's box (area)",
             "IG mass in box (model / true)", "gradient at x in box (model / true)",
             f"interior gradient alpha={ALPHAS[0]} in box (model / true)"], rows)


def figure(e: Explained, image: Any, name_of: Callable[[Found, int], str]) -> Figure:
    """Two rows (model's label, true label): the input with its box, IG, and the interior
    gradients at :data:`ALPHAS`."""
    from matplotlib.patches import Rectangle

    from attribkit.viz.panels import draw_attribution

    f = e.found
    n = 2 + len(ALPHAS)
    fig = Figure(figsize=(2.9 * n, 5.6), layout="constrained")
    ys, xs = torch.nonzero(f.mask, as_tuple=True)
    for row, cls in enumerate((f.chosen, f.truth)):
        axes = [fig.add_subplot(2, n, row * n + i + 1) for i in range(n)]
        axes[0].imshow(image, cmap="gray" if getattr(image, "ndim", 3) == 2 else None)
        axes[0].add_patch(Rectangle((float(xs.min()) - 0.5, float(ys.min()) - 0.5),
                                    float(xs.max() - xs.min()) + 1,
                                    float(ys.max() - ys.min()) + 1, fill=False, color="lime"))
        who = "model" if row == 0 else f"truth, rank {f.rank}"
        p = f.p_chosen if row == 0 else f.p_truth
        axes[0].set_title(f"{name_of(f, cls)} ({who})\nscore {p:.3g}", fontsize=8)
        draw_attribution(axes[1], e.ig[row].abs().sum(dim=0), style="heatmap",
                         label=f"IG, box {float(e.box_ig[row]):.0%}")
        for k, a in enumerate(ALPHAS):
            draw_attribution(axes[2 + k], e.interior[row, k], style="heatmap",
                             label=f"∇ at α={a}, box {float(e.box_interior[row, k]):.0%}")
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def _name_of(f: Found, c: int) -> str:
    from attribkit.zoo import vision

    return str(c) if f.name.startswith("digit") else vision.class_name(c)


def _display(f: Found) -> Any:
    """The picture of a case as the model sees it (224 x 224 photo crop, or the digit)."""
    if f.name.startswith("digit"):
        from attribkit.zoo.digits import MEAN, STD

        return (f.x[0, 0] * STD + MEAN).clamp(0, 1).numpy()
    from attribkit.zoo import photo_boxes, vision

    photo, variant = f.name.split("#")[0].split("/")
    img = vision.load_photo(photo)
    v = next(v for v in photo_boxes.variants_of(img.shape[0], img.shape[1]) if v.name == variant)
    return vision.center_crop(photo_boxes.variant_image(img, v))


@dataclass(frozen=True)
class Top5Study:
    """The search and the explained cases."""

    photo_ranks: list[int]
    digit_ranks: list[int]
    cases: list[Explained]
    steps: int
    not_explained: list[str]


def study(model: Callable[..., Tensor], *, baseline: float, steps: int = 32,
          channels_last: bool = False, max_photo_cases: int | None = None,
          progress: bool = False) -> Top5Study:
    """Search the photo variants and the MNIST digits and explain every case found.

    Parameters
    ----------
    model
        The photo model, returning softmax scores.
    baseline
        Its black input's value.
    steps
        IG steps.
    channels_last
        Run the photo model's IG channels-last.
    max_photo_cases
        Explain at most this many photo cases (all by default); the first variant of each
        object comes first, the other variants of the same object after all of them.
    progress
        Show progress bars.
    """
    from attribkit.zoo.digits import BLACK

    photos, photo_ranks = photo_search(model)
    dmodel = digit_model()
    digits, digit_ranks = digit_search(dmodel)
    seen: set[str] = set()
    first: list[Found] = []
    later: list[Found] = []
    for f in photos:
        obj = f.name.split("/")[0] + f.name.partition("#")[2]
        (later if obj in seen else first).append(f)
        seen.add(obj)
    order = first + later
    cases = [explain(model, f, baseline=baseline, steps=steps, channels_last=channels_last,
                     progress=progress) for f in order[:max_photo_cases]]
    cases += [explain(dmodel, f, baseline=BLACK, steps=steps, progress=progress)
              for f in digits]
    return Top5Study(photo_ranks=photo_ranks, digit_ranks=digit_ranks, cases=cases, steps=steps,
                     not_explained=[f"{f.name} ({_name_of(f, f.chosen)}; "
                                    f"{_name_of(f, f.truth)} rank {f.rank})"
                                    for f in order[max_photo_cases:]]
                     if max_photo_cases is not None else [])


def _reading(s: Top5Study) -> str:
    parts = [f"Search: the {len(s.photo_ranks)} photo variants ({search_counts(s.photo_ranks)}) "
             f"and the {len(s.digit_ranks)} MNIST digits ({search_counts(s.digit_ranks)})."]
    if s.not_explained:
        parts.append("Found but not explained here (other variants of an explained object): "
                     + "; ".join(s.not_explained) + ".")
    for e in s.cases:
        f, b = e.found, e.box_ig
        if float(b.min()) == 1.0:
            parts.append(f"{f.name}: both IG maps lie entirely in the box (by construction: the "
                         "pixels outside it equal the black baseline, so their IG is 0); the two "
                         f"IG maps' top 5 % overlap by {e.stats['jaccard']:.0%}, correlation "
                         f"{e.stats['pearson']:.2f}; in the box, the gradient at the input puts "
                         f"{float(e.box_interior[0, -1]):.0%} (model's label) and "
                         f"{float(e.box_interior[1, -1]):.0%} (true label) of its mass.")
            continue
        own = ("the true label's IG sits more on the true object than the model's label's"
               if float(b[1]) > float(b[0]) else
               "the model's label's IG sits as much or more on the true object")
        parts.append(f"{f.name}: {own} ({float(b[1]):.0%} against {float(b[0]):.0%} of the mass "
                     f"in a box of {float(f.mask.float().mean()):.0%} of the image); the two IG "
                     f"maps' top 5 % overlap by {e.stats['jaccard']:.0%} (unrelated maps: about "
                     f"2.6 %), correlation {e.stats['pearson']:.2f}.")
    return " ".join(parts)


def add_to_report(rep: Any, s: Top5Study) -> None:
    """Each case's figure and the table."""
    rep.text("Inputs whose true label is not in the model's top five (the paper's rule), "
             "explained for the model's label and the true label: IG and interior gradients of "
             "the softmax score, black baseline; the green box is the true object.")
    for e in s.cases:
        rep.image(figure(e, _display(e.found), _name_of), e.found.name, wide=True)
    rep.table(*table(s.cases, _name_of), reading=_reading(s))


@experiment("misclassification_top5", "Misclassified under the paper's rule: true label not in "
            "the top five (Gradients of Counterfactuals, Figure 6)", task="vision")
def top5_section(rep: Any, setup: Any, *, quick: bool, progress: bool) -> list[str]:
    """Search and explain (one photo case and 12 IG steps in quick mode)."""
    s = study(setup.model, baseline=float(setup.baseline_value), steps=12 if quick else 32,
              channels_last=bool(setup.channels_last), max_photo_cases=1 if quick else None,
              progress=progress)
    add_to_report(rep, s)
    return [] if s.cases else ["misclassification_top5: no input misses the top five"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the search and explain every case; write the section of ``docs/saturation.md``."""
    import time

    from attribkit.core.pages import write_section
    from attribkit.experiments.saturation import markdown_table
    from attribkit.zoo import vision

    ap = argparse.ArgumentParser(prog="python -m attribkit.experiments.misclassification_top5")
    ap.add_argument("--out", default="docs/saturation.md", help="the docs page to update")
    ap.add_argument("--steps", type=int, default=32, help="IG steps")
    ap.add_argument("--max-photo-cases", type=int, default=None,
                    help="explain at most this many photo cases (one variant per object first)")
    ap.add_argument("--report", default="", help="also write an HTML report with the figures")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    s = study(vision.SoftmaxModel(vision.load_efficientnet_lite0()), baseline=vision.BLACK,
              steps=args.steps, channels_last=True, max_photo_cases=args.max_photo_cases,
              progress=True)
    dt = time.perf_counter() - t0
    body = (markdown_table(*table(s.cases, _name_of)) + "\n\n" + _reading(s)
            + f"\n\nFull run: IG with {s.steps} Gauss-Legendre steps per label, interior "
            f"gradients at alpha = {', '.join(str(a) for a in ALPHAS)}, EfficientNet-Lite0 "
            f"float32, the MNIST CNN float64, {dt:.0f} s on 2 shared CPU cores. Regenerate with: "
            f"`python -m attribkit.experiments.misclassification_top5 --steps {args.steps}"
            + (f" --max-photo-cases {args.max_photo_cases}" if args.max_photo_cases is not None
               else "") + "`.")
    write_section(pathlib.Path(args.out), "misclassification-top5", body,
                  title="# Saturation, interior gradients and a misclassification")
    if args.report:
        from attribkit.report import Report

        rep = Report("Misclassified under the paper's rule (Gradients of Counterfactuals)")
        add_to_report(rep, s)
        rep.save(args.report)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
