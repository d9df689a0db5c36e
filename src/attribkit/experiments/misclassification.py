"""Debugging a misclassification with Integrated Gradients (Gradients of Counterfactuals, Figure 6).

Gradients of Counterfactuals explains the label the network chose and the ground-truth label of a
misclassified image and compares the two maps: where each label's attributions sit on its own
object, the network recognised both objects and ranked them wrongly; where the maps coincide, it
read the same evidence as the wrong class. Here the photos are the wheels' own that
EfficientNet-Lite0 gets wrong (:data:`CASES`), the baseline is the black image, and the comparison
is measured: the overlap of the two maps' top pixels, their correlation, and where each map's mass
sits. ``python -m attribkit.experiments.misclassification`` writes its section of
``docs/saturation.md``.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from attribkit.experiments import experiment

__all__ = ["CASES", "Case", "Diagnosis", "diagnose", "main", "map_statistics",
           "misclassification_section"]


@dataclass(frozen=True)
class Case:
    """A photo, the class a person gives it, and what it shows."""

    photo: str
    truth: str
    why: str


#: Sample photos EfficientNet-Lite0 gets wrong (top-1 measured; see ``docs/saturation.md``).
CASES: tuple[Case, ...] = (
    Case("camera", "reflex camera",
         "scikit-image's cameraman: a man looking through a camera that stands on a tripod; "
         "two objects, like the top image of Figure 6"),
    Case("chelsea", "tabby cat",
         "scikit-image's Chelsea, a tabby cat; one object and a close class, like the "
         "cricket read as a mantis in Figure 6"),
)


def map_statistics(wrong: Tensor, right: Tensor, top: float = 0.05) -> dict[str, float]:
    """Compare two pixel-importance maps ``(H, W)`` (eq. 1: sum over channels of |IG|).

    Parameters
    ----------
    wrong, right
        The maps of the chosen and the true class.
    top
        The share of pixels in each map's top set.

    Returns
    -------
    dict
        ``jaccard`` (overlap of the two top sets), ``pearson`` (correlation of the maps), and
        ``row_wrong`` / ``row_right`` / ``col_wrong`` / ``col_right``: each map's centre of mass
        as a share of the height / width (0 = top / left).
    """
    w, r = wrong.to(torch.float64).flatten(), right.to(torch.float64).flatten()
    k = max(1, round(top * w.numel()))
    sw = torch.zeros_like(w, dtype=torch.bool)
    sr = torch.zeros_like(sw)
    sw[w.topk(k).indices] = True
    sr[r.topk(k).indices] = True
    jaccard = float((sw & sr).sum()) / float((sw | sr).sum())
    pearson = float(torch.corrcoef(torch.stack([w, r]))[0, 1])
    h, wd = wrong.shape
    rows = (torch.arange(h, dtype=torch.float64) + 0.5) / h
    cols = (torch.arange(wd, dtype=torch.float64) + 0.5) / wd
    out = {"jaccard": jaccard, "pearson": pearson}
    for name, m in (("wrong", wrong), ("right", right)):
        m64 = m.to(torch.float64)
        total = float(m64.sum()) or 1.0
        out[f"row_{name}"] = float((m64.sum(dim=1) * rows).sum()) / total
        out[f"col_{name}"] = float((m64.sum(dim=0) * cols).sum()) / total
    return out


@dataclass(frozen=True)
class Diagnosis:
    """IG for the chosen and the true class of one photo.

    Attributes
    ----------
    case
        The photo and its true class.
    chosen, truth
        Class indices: the model's top-1 and the true one.
    p_chosen, p_truth
        Their softmax scores at the photo.
    attribution
        IG with rows ``(chosen, truth)``, shape ``(2, C, H, W)``.
    stats
        :func:`map_statistics` of the two pixel-importance maps.
    rank_truth
        The true class's rank among the model's classes (1 = top-1); the paper's Figure 6 takes
        only images whose true class is not in the top five (rank above 5). 0 when unknown.
    """

    case: Case
    chosen: int
    truth: int
    p_chosen: float
    p_truth: float
    attribution: Any
    stats: dict[str, float]
    rank_truth: int = 0

    @property
    def wrong(self) -> bool:
        """The model's top-1 is not the true class."""
        return self.chosen != self.truth


def _class_index(name: str, class_name: Callable[[int], str], n: int = 1000) -> int:
    for i in range(n):
        if class_name(i) == name:
            return i
    raise KeyError(f"no class named {name!r}")


def diagnose(model: Callable[..., Tensor], x: Tensor, case: Case, *, baseline: float,
             class_name: Callable[[int], str], steps: int = 32, channels_last: bool = False,
             progress: bool = False) -> Diagnosis:
    """Explain a photo's top-1 class and its true class with IG and compare the two maps.

    Parameters
    ----------
    model
        Returns ``(N, C)`` softmax scores (the seed explains the softmax score).
    x
        ``(1, C, H, W)`` the photo.
    case
        Its true class.
    baseline
        The black image's value.
    class_name
        Readable name of a class index.
    steps
        IG steps.
    channels_last
        Run IG channels-last (faster for EfficientNet on CPUs).
    progress
        Show a progress bar.
    """
    from attribkit.methods.integrated import integrated_gradients

    with torch.no_grad():
        p = model(x)[0]
    chosen = int(p.argmax())
    truth = _class_index(case.truth, class_name, p.numel())
    x2 = x.expand(2, *x.shape[1:])
    ig = integrated_gradients(model, x2, target=torch.tensor([chosen, truth]),
                              baseline=torch.full_like(x2, baseline), steps=steps,
                              rule="adaptive", channels_last=channels_last, progress=progress)
    imp = ig.values.detach().abs().sum(dim=1)
    return Diagnosis(case=case, chosen=chosen, truth=truth, p_chosen=float(p[chosen]),
                     p_truth=float(p[truth]), attribution=ig,
                     stats=map_statistics(imp[0], imp[1]),
                     rank_truth=1 + int((p > p[truth]).sum()))


def figure6(image: np.ndarray[Any, Any], d: Diagnosis, class_name: Callable[[int], str]) -> Figure:
    """One row of Figure 6: the photo, IG for the chosen class, IG for the true class, and the
    signed difference of the two (red: evidence for the chosen class over the true one)."""
    from attribkit.viz.panels import draw_attribution

    fig = Figure(figsize=(14.0, 3.7), layout="constrained")
    axes = [fig.add_subplot(1, 4, i + 1) for i in range(4)]
    axes[0].imshow(image)
    axes[0].set_title(f"{d.case.photo}\nmodel: {class_name(d.chosen)} {d.p_chosen:.3f}\n"
                      f"truth: {class_name(d.truth)} {d.p_truth:.3f}", fontsize=9)
    vals = d.attribution.values.detach()
    draw_attribution(axes[1], vals, image=image, style="intensity", index=0,
                     label=f"IG, {class_name(d.chosen)} (model)")
    draw_attribution(axes[2], vals, image=image, style="intensity", index=1,
                     label=f"IG, {class_name(d.truth)} (truth)")
    diff = (vals[0] - vals[1]).sum(dim=0)
    draw_attribution(axes[3], diff, style="heatmap", sign="all",
                     label=f"IG({class_name(d.chosen)}) − IG({class_name(d.truth)})")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def table(ds: Sequence[Diagnosis], class_name: Callable[[int], str]) -> tuple[list[str],
                                                                               list[list[Any]]]:
    """One row per photo: classes and scores, IG's completeness gap per class, and the map
    comparison."""
    rows: list[list[Any]] = []
    for d in ds:
        gap = d.attribution.gap
        s = d.stats
        rows.append([d.case.photo, f"{class_name(d.chosen)} {d.p_chosen:.3f}",
                     f"{class_name(d.truth)} {d.p_truth:.3f}"
                     + (f" (rank {d.rank_truth})" if d.rank_truth else ""),
                     f"{float(gap[0]):+.2g} / {float(gap[1]):+.2g}" if gap is not None else "",
                     s["jaccard"], s["pearson"],
                     f"{s['row_wrong']:.2f}, {s['col_wrong']:.2f}",
                     f"{s['row_right']:.2f}, {s['col_right']:.2f}"])
    return (["photo", "model's class", "true class", "IG gap (model / truth)",
             "top-5 % overlap (Jaccard)", "correlation", "centre (row, col), model",
             "centre (row, col), truth"], rows)


def _reading(ds: Sequence[Diagnosis], class_name: Callable[[int], str]) -> str:
    parts = []
    for d in ds:
        if not d.wrong:
            parts.append(f"{d.case.photo}: the model now gets it right ({class_name(d.chosen)}).")
            continue
        verdict = ("mostly different pixels: both objects recognised, ranked wrongly"
                   if d.stats["jaccard"] < 0.1 else
                   "many of the same pixels: the same evidence read as the wrong class")
        parts.append(f"{d.case.photo}: the two maps' top 5 % of pixels overlap by "
                     f"{d.stats['jaccard']:.0%} (Jaccard; two unrelated maps: about 2.6 %), "
                     f"correlation {d.stats['pearson']:.2f} ({verdict}).")
    return " ".join(parts)


@experiment("misclassification", "Debugging a misclassification with Integrated Gradients "
            "(Gradients of Counterfactuals, Figure 6)", task="vision")
def misclassification_section(rep: Any, setup: Any, *, quick: bool,
                              progress: bool) -> list[str]:
    """Add Figure 6 for :data:`CASES` (the first only in quick mode) to a demo report."""
    from attribkit.zoo import vision

    cases = CASES[:1] if quick else CASES
    ds = [diagnose(setup.model, vision.sample_photos([c.photo])[c.photo], c,
                   baseline=float(setup.baseline_value), class_name=setup.class_name,
                   steps=12 if quick else 32, channels_last=bool(setup.channels_last),
                   progress=progress) for c in cases]
    add_to_report(rep, ds, setup.class_name)
    return [f"misclassification: {d.case.photo} is classified correctly now"
            for d in ds if not d.wrong]


def add_to_report(rep: Any, ds: Sequence[Diagnosis], class_name: Callable[[int], str]) -> None:
    """Add each diagnosis's Figure 6 row and the table to a report."""
    from attribkit.zoo import vision

    rep.text("Photos the model gets wrong, explained for the class it chose and for the true "
             "class (IG of the softmax score, black baseline). Where the two maps sit on "
             "different objects, the model recognised both and ranked them wrongly; where they "
             "coincide, it read the same evidence as the wrong class (Gradients of "
             "Counterfactuals, section 3).")
    for d in ds:
        image = vision.center_crop(vision.load_photo(d.case.photo))
        rep.image(figure6(image, d, class_name), f"{d.case.photo}: {d.case.why}", wide=True)
    rep.table(*table(ds, class_name), reading=_reading(ds, class_name))


def main(argv: Sequence[str] | None = None) -> int:
    """Run every case with 32 IG steps and write its section of ``docs/saturation.md``."""
    import time

    from attribkit.core.pages import write_section
    from attribkit.experiments.saturation import markdown_table
    from attribkit.zoo import vision

    ap = argparse.ArgumentParser(prog="python -m attribkit.experiments.misclassification")
    ap.add_argument("--out", default="docs/saturation.md", help="the docs page to update")
    ap.add_argument("--report", default="", help="also write an HTML report with the figures")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
    ds = [diagnose(model, vision.sample_photos([c.photo])[c.photo], c, baseline=vision.BLACK,
                   class_name=vision.class_name, steps=32, channels_last=True, progress=True)
          for c in CASES]
    dt = time.perf_counter() - t0
    body = (markdown_table(*table(ds, vision.class_name)) + "\n\n"
            + _reading(ds, vision.class_name)
            + f"\n\nFull run: {len(ds)} photos, IG with 32 adaptive steps per class, "
            f"EfficientNet-Lite0 float32, {dt:.0f} s on 2 shared CPU cores. Regenerate with: "
            f"`python -m attribkit.experiments.misclassification --out {args.out}`.")
    write_section(pathlib.Path(args.out), "misclassification", body,
                  title="# Saturation, interior gradients and a misclassification "
                  "(Gradients of Counterfactuals)")
    if args.report:
        from attribkit.report import Report

        rep = Report("Debugging a misclassification (Gradients of Counterfactuals, Figure 6)")
        add_to_report(rep, ds, vision.class_name)
        rep.save(args.report)
    print(f"wrote {args.out} in {dt:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
