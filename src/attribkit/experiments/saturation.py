"""Saturation before the softmax (Gradients of Counterfactuals, Figure 2b), inside the network
(Figure 12) and the magnitude of interior gradients against alpha (Figure 3), with the numbers.

Along the straight path from the black image to each photo, one forward pass per point gives
the top class's logit and softmax score and the activations of four layers; the gradients of
the softmax score are taken at Figure 3's alphas. ``python -m attribkit.experiments.saturation``
runs the full protocol (every sample photo) and writes its sections of ``docs/saturation.md``.
"""

from __future__ import annotations

import argparse
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.experiments import experiment
from attribkit.experiments._paths import (
    PathActivity,
    default_layers,
    logit_network,
    path_activity,
    path_gradients,
    reach_alpha,
)

__all__ = ["FIG3_ALPHAS", "SaturationStudy", "add_to_report", "layer_table", "magnitude_table",
           "main", "markdown_table", "saturation_section", "study", "summary_table",
           "variant_photos", "write_variants"]

#: The alphas of Figure 3 of Gradients of Counterfactuals.
FIG3_ALPHAS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)
_QUICK_GRAD_ALPHAS = (0.02, 0.04, 0.1, 0.2, 0.6, 1.0)
#: Where the layer table reads the distances (Figure 12 states alpha > 0.6 for mixed5b).
_READ_AT = (0.2, 0.6)


@dataclass(frozen=True)
class SaturationStudy:
    """The measurements of one run.

    Attributes
    ----------
    names
        The photos, in order.
    classes
        The top class's name at each photo.
    activity
        Logits, softmax scores and layer distances along the paths.
    grad_alphas
        ``(G,)`` the alphas of the interior gradients.
    magnitude
        ``(M, G)`` mean |gradient| of the softmax score, for the first ``M`` photos.
    logit_magnitude
        ``(M, G)`` mean |gradient| of the logit.
    """

    names: list[str]
    classes: list[str]
    activity: PathActivity
    grad_alphas: Tensor
    magnitude: Tensor
    logit_magnitude: Tensor


def study(net: nn.Module, photos: Mapping[str, Tensor], *, baseline: float,
          class_name: Callable[[int], str], alphas: Tensor,
          grad_alphas: Sequence[float] = FIG3_ALPHAS, grad_photos: int | None = None,
          layers: Mapping[str, nn.Module] | None = None, batch_size: int = 8,
          progress: bool = False) -> SaturationStudy:
    """Measure saturation along the path from ``baseline`` to each photo.

    Parameters
    ----------
    net
        The classifier's logits (no softmax), in eval mode.
    photos
        Name to ``(1, C, H, W)`` input.
    baseline
        The path's start (the black image's value).
    class_name
        Readable name of a class index.
    alphas
        ``(A,)`` from 0 to 1 for the curves.
    grad_alphas
        Where the interior gradients are taken.
    grad_photos
        On how many of the photos (default all).
    layers
        Layers compared with their values at the image (default :func:`default_layers`).
    batch_size
        Path points per forward / backward pass.
    progress
        Show progress bars.
    """
    names = list(photos)
    x = torch.cat([photos[n] for n in names])
    chosen = dict(layers) if layers is not None else default_layers(net)
    act = path_activity(net, x, baseline=baseline, alphas=alphas, layers=chosen,
                        batch_size=batch_size, progress=progress)
    m = len(names) if grad_photos is None else max(1, min(grad_photos, len(names)))
    prob, logit = path_gradients(net, x[:m], baseline=baseline,
                                 alphas=torch.tensor(grad_alphas, dtype=x.dtype),
                                 target=act.target[:m], batch_size=batch_size, progress=progress)
    return SaturationStudy(names=names, classes=[class_name(int(c)) for c in act.target],
                           activity=act,
                           grad_alphas=torch.tensor(grad_alphas, dtype=torch.float64),
                           magnitude=prob, logit_magnitude=logit)


def _at(alphas: Tensor, curves: Tensor, value: float) -> Tensor:
    """Curves linearly interpolated at ``value``: ``(N,)``."""
    j = int(torch.searchsorted(alphas, torch.tensor(value, dtype=alphas.dtype))
            .clamp(1, len(alphas) - 1))
    a0, a1 = float(alphas[j - 1]), float(alphas[j])
    w = (value - a0) / (a1 - a0)
    return (1 - w) * curves[:, j - 1] + w * curves[:, j]


def _settles(alphas: Tensor, curves: Tensor, below: float) -> Tensor:
    """``(N,)`` the smallest alpha from which each curve stays below ``below``."""
    above = curves >= below
    idx = torch.arange(alphas.numel()).expand_as(above)
    last = torch.where(above, idx, torch.full_like(idx, -1)).amax(dim=1)
    return alphas[(last + 1).clamp(max=alphas.numel() - 1)]


def _median(t: Tensor) -> float:
    """The median (the mean of the middle two for an even count), ignoring nan."""
    return float(torch.nanquantile(t.to(torch.float64).flatten(), 0.5))


def summary_table(s: SaturationStudy) -> tuple[list[str], list[list[Any]]]:
    """Per photo: class, softmax score and logit at black and at the image, and the alpha at
    which each curve first reaches 90 % of its rise (Figure 2a and 2b)."""
    a = s.activity
    p90, l90 = reach_alpha(a.alphas, a.probability), reach_alpha(a.alphas, a.logit)
    rows = [[n, s.classes[i], float(a.probability[i, 0]), float(a.probability[i, -1]),
             float(a.logit[i, 0]), float(a.logit[i, -1]), float(p90[i]), float(l90[i])]
            for i, n in enumerate(s.names)]
    return (["photo", "top class", "p(black)", "p(x)", "logit(black)", "logit(x)",
             "α at 90 % of softmax rise", "α at 90 % of logit rise"], rows)


def layer_table(s: SaturationStudy) -> tuple[list[str], list[list[Any]]]:
    """Per layer, the median over photos of the relative L2 and cosine distances to the image's
    activations at alpha 0.2 and 0.6, and the alpha from which the cosine distance stays below
    0.01 (Figure 12's statement for Inception's deepest layer: alpha > 0.6)."""
    a = s.activity
    rows: list[list[Any]] = []
    for name in a.l2:
        l2, cos = a.l2[name], a.cosine[name]
        row: list[Any] = [name]
        row += [_median(_at(a.alphas, l2, v)) for v in _READ_AT]
        row += [_median(_at(a.alphas, cos, v)) for v in _READ_AT]
        row.append(_median(_settles(a.alphas, cos, 0.01)))
        rows.append(row)
    return (["layer", "rel. L2 at α=0.2", "rel. L2 at α=0.6", "cosine at α=0.2",
             "cosine at α=0.6", "α from which cosine < 0.01"], rows)


def magnitude_table(s: SaturationStudy) -> tuple[list[str], list[list[Any]]]:
    """Per alpha of Figure 3: the mean |gradient| of the softmax score and of the logit (mean
    over the photos), and each one's ratio to its value at alpha = 1 (median and range over the
    photos)."""
    rows: list[list[Any]] = []
    ratios = [m / m[:, -1:].clamp_min(1e-300) for m in (s.magnitude, s.logit_magnitude)]
    for j, al in enumerate(s.grad_alphas):
        row: list[Any] = [float(al)]
        for m, r in zip((s.magnitude, s.logit_magnitude), ratios, strict=True):
            row += [float(m[:, j].mean()), _median(r[:, j]),
                    f"{float(r[:, j].min()):.3g} to {float(r[:, j].max()):.3g}"]
        rows.append(row)
    return (["α", "softmax: mean abs. gradient", "ratio to α = 1 (median)", "range",
             "logit: mean abs. gradient", "ratio to α = 1 (median)", "range"], rows)


def _reading(s: SaturationStudy) -> str:
    a = s.activity
    l90 = reach_alpha(a.alphas, a.logit)
    p90 = reach_alpha(a.alphas, a.probability)
    small = s.grad_alphas <= 0.1
    peak = [_median(m[:, small].amax(dim=1) / m[:, -1].clamp_min(1e-300))
            for m in (s.magnitude, s.logit_magnitude)]
    return (f"Median α at 90 % of the rise: softmax {_median(p90):.2f}, logit "
            f"{_median(l90):.2f} ({len(s.names)} photos). The largest mean |gradient| "
            f"at α <= 0.1 is {peak[0]:.3g} times its value at α = 1 for the softmax score and "
            f"{peak[1]:.3g} times for the logit (median over {s.magnitude.shape[0]} photos).")


def _setup_parts(setup: Any) -> tuple[nn.Module, float, Callable[[int], str]]:
    model = setup.module_model if isinstance(setup.module_model, nn.Module) else setup.model
    return logit_network(model), float(setup.baseline_value), setup.class_name


@experiment("saturation", "Saturation before the softmax and inside the network; interior "
            "gradients' magnitude (Gradients of Counterfactuals, Figures 2b, 12, 3)", task="vision")
def saturation_section(rep: Any, setup: Any, *, quick: bool, progress: bool) -> list[str]:
    """Add Figures 2 (a, b), 12 and 3's trend with their tables to a demo report."""
    net, baseline, name = _setup_parts(setup)
    photos = dict(setup.photos) if quick else dict(setup.saturation_photos)
    alphas = torch.linspace(0.0, 1.0, 11 if quick else 21, dtype=torch.float64)
    alphas = alphas.to(next(iter(photos.values())).dtype)
    s = study(net, photos, baseline=baseline, class_name=name, alphas=alphas,
              grad_alphas=_QUICK_GRAD_ALPHAS if quick else FIG3_ALPHAS,
              grad_photos=1 if quick else None, progress=progress)
    add_to_report(rep, s)
    return []


def add_to_report(rep: Any, s: SaturationStudy) -> None:
    """Add the figures and tables of a study to a report."""
    from attribkit.experiments import _saturation_figures as figs

    labels = [f"{n} ({c})" for n, c in zip(s.names, s.classes, strict=True)]
    rep.text("Each photo is scaled from the black image (α = 0) to itself (α = 1). Figure 2b "
             "asks whether the flattening is only the softmax's: the pre-softmax logit of the "
             "same class is plotted beside the softmax score. Figure 12 asks whether the "
             "network's inner layers flatten too: the distance of four EfficientNet blocks' "
             "activations to their values at the image.")
    rep.image(figs.figure2(s.activity.alphas, s.activity.probability, s.activity.logit, labels),
              "top-class softmax score (a) and logit (b) along the path from black", wide=True)
    rep.table(*summary_table(s), reading=_reading(s))
    rep.image(figs.figure12(s.activity.alphas, s.activity.l2, s.activity.cosine, labels),
              "distance of each layer's activations at α x to those at x: relative L2 (top) "
              "and cosine (bottom)", wide=True)
    rep.table(*layer_table(s))
    rep.image(figs.figure3_trend(s.grad_alphas, s.magnitude, s.logit_magnitude,
                                 labels[:s.magnitude.shape[0]]),
              "mean |gradient| of the softmax score (left) and of the logit (right) at Figure "
              "3's alphas", wide=True)
    rep.table(*magnitude_table(s))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats to 3 significant digits."""
    def cell(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def write_page(s: SaturationStudy, path: str | pathlib.Path, *, note: str = "") -> pathlib.Path:
    """Write the generated sections of the docs page from a full run.

    Parameters
    ----------
    s
        The study.
    path
        The page (``docs/saturation.md``).
    note
        One line on the machine and run time.
    """
    from attribkit.core.pages import write_section

    title = ("# Saturation, interior gradients and a misclassification "
             "(Gradients of Counterfactuals)")
    write_section(path, "saturation-curves", markdown_table(*summary_table(s)) + "\n\n"
                  + _reading(s) + (f"\n\n{note}" if note else ""), title=title)
    write_section(path, "saturation-layers", markdown_table(*layer_table(s)), title=title)
    return write_section(path, "saturation-gradients", markdown_table(*magnitude_table(s)),
                         title=title)


def variant_photos() -> dict[str, Tensor]:
    """The distinct inputs of the labelled photo variants (:mod:`attribkit.zoo.photo_boxes`):
    the 34 labelled entries hold 31 images, the astronaut's three variants carrying two boxed
    objects each."""
    from attribkit.zoo import photo_boxes

    out: dict[str, Tensor] = {}
    for im in photo_boxes.labelled_images():
        out.setdefault(im.name.split("#")[0], im.x)
    return out


def write_variants(s: SaturationStudy, path: str | pathlib.Path, note: str) -> pathlib.Path:
    """Write the ``saturation-variants`` section: Figures 2a/2b, 12 and 3 on the variants."""
    from attribkit.core.pages import write_section

    body = "\n\n".join([markdown_table(*summary_table(s)), _reading(s),
                         markdown_table(*layer_table(s)), markdown_table(*magnitude_table(s)),
                         note])
    return write_section(path, "saturation-variants", body,
                         title="# Saturation, interior gradients and a misclassification")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the full protocol on every sample photo and write ``docs/saturation.md``."""
    import time

    from attribkit.zoo import vision

    ap = argparse.ArgumentParser(prog="python -m attribkit.experiments.saturation",
                                 description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", default="docs/saturation.md", help="the docs page to update")
    ap.add_argument("--report", default="", help="also write an HTML report with the figures")
    ap.add_argument("--variants", action="store_true",
                    help="run on the labelled photo variants and write the saturation-variants "
                         "section")
    ap.add_argument("--alphas", type=int, default=11, help="curve points (--variants)")
    ap.add_argument("--grad-alphas", type=float, nargs="+", default=list(_QUICK_GRAD_ALPHAS),
                    help="where the gradients are taken (--variants)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    net = vision.load_efficientnet_lite0()
    if args.variants:
        photos = variant_photos()
        grads = " ".join(f"{a:g}" for a in args.grad_alphas)
        s = study(net, photos, baseline=vision.BLACK, class_name=vision.class_name,
                  alphas=torch.linspace(0.0, 1.0, args.alphas), grad_alphas=args.grad_alphas,
                  progress=True)
        dt = time.perf_counter() - t0
        write_variants(s, args.out, f"Full run: {len(photos)} images, {args.alphas} alphas, "
                       f"gradient alphas {grads} (reduced from 21 and 10 to fit a shared "
                       f"machine), EfficientNet-Lite0 float32, {dt:.0f} s on 2 shared CPU cores. "
                       "Regenerate with: `python -m attribkit.experiments.saturation --variants "
                       f"--alphas {args.alphas} --grad-alphas {grads}`.")
    else:
        photos = vision.sample_photos(list(vision.PHOTOS))
        s = study(net, photos, baseline=vision.BLACK, class_name=vision.class_name,
                  alphas=torch.linspace(0.0, 1.0, 21), progress=True)
        dt = time.perf_counter() - t0
        write_page(s, args.out, note=f"Full run: {len(photos)} photos, 21 alphas, 10 gradient "
                   f"alphas, EfficientNet-Lite0 float32, {dt:.0f} s on 2 shared CPU cores.")
    if args.report:
        from attribkit.report import Report

        rep = Report("Saturation (Gradients of Counterfactuals, Figures 2b, 12, 3)")
        add_to_report(rep, s)
        rep.save(args.report)
    print(f"wrote {args.out} in {dt:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
