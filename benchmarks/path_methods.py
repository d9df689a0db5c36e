"""IG, Guided IG, Blur IG, IDGI-IG and XRAI on the demo photos (EfficientNet-Lite0): AOPC,
deletion, insertion and the cascading model-randomisation sanity check, written into
``docs/evaluation.md`` (section ``path-methods``).

Run: ``nice -n 10 python benchmarks/path_methods.py --photos chelsea coffee --steps 16``.
Every method explains the top class's softmax probability of the original model with the same
number of gradient evaluations per photo (``--steps``), from a black image where a baseline is
used (Blur IG starts from the blurred photo, ``max_sigma=50``). XRAI ranks the regions of the IG
attribution above (its base, so it costs no gradients of its own).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import attribkit
from attribkit.core.attribution import Attribution
from attribkit.core.pages import write_section
from attribkit.evaluate import (
    ablation_curve,
    deletion_curve,
    insertion_curve,
    model_randomisation,
    parameter_layers,
)
from attribkit.zoo import vision

DOC = Path(__file__).resolve().parent.parent / "docs" / "evaluation.md"


def methods(steps: int, batch: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """Label -> (registered name, options) of each compared method."""
    black = vision.BLACK_BASELINE
    return {
        "IG": ("integrated_gradients", {"baseline": black, "steps": steps, "batch_size": batch}),
        "Guided IG": ("guided_ig", {"baseline": black, "steps": steps, "batch_size": batch}),
        "Blur IG": ("blur_ig", {"steps": steps, "batch_size": batch}),
        "IDGI-IG": ("idgi", {"baseline": black, "steps": steps, "batch_size": batch}),
        "XRAI (IG base)": ("xrai", {"baseline": black, "batch_size": batch,
                                    "base_options": {"steps": steps}}),
    }


def ranking(attr: Attribution | Tensor, like: Tensor) -> Tensor:
    """Values to rank pixels by: the attribution, or XRAI's region values shifted to be
    non-negative (so that ranking by ``sum |a|`` keeps its region order) and spread over the
    channels."""
    if isinstance(attr, Attribution) and attr.method == "xrai":
        v = attr.values
        v = v - v.flatten(1).amin(dim=1).reshape(-1, 1, 1, 1)
        return v.expand_as(like)
    return attr.values if isinstance(attr, Attribution) else attr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", nargs="+", default=["chelsea", "coffee"])
    ap.add_argument("--steps", type=int, default=16, help="gradient evaluations per photo")
    ap.add_argument("--k", type=int, default=250, help="pixels ablated per AOPC step")
    ap.add_argument("--ablation-steps", type=int, default=20)
    ap.add_argument("--curve-steps", type=int, default=16, help="deletion / insertion steps")
    ap.add_argument("--random-layers", type=int, default=3,
                    help="top layers randomised (cascading) in the sanity check")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--png", type=Path, default=None,
                    help="also draw the maps of every method on every photo here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0(fresh=True))
    photos = vision.sample_photos(args.photos)
    x = torch.cat(list(photos.values()))
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    black = vision.BLACK_BASELINE
    rows: list[str] = []
    results: dict[str, Attribution] = {}
    seconds: dict[str, float] = {}
    chosen = methods(args.steps, args.batch_size)
    for label, (name, opts) in chosen.items():
        t0 = time.perf_counter()
        if name == "xrai":
            results[label] = attribkit.xrai(model, x, target=target, base=results["IG"])
        else:
            results[label] = attribkit.explain(model, x, name, target=target, **opts)
        seconds[label] = time.perf_counter() - t0
        print(f"{label}: {seconds[label]:.0f} s", flush=True)
    if args.png is not None:
        from attribkit.viz import comparison_grid

        args.png.parent.mkdir(parents=True, exist_ok=True)
        images = [vision.deprocess(x[i:i + 1]) for i in range(x.shape[0])]
        maps = {label: a if a.method != "xrai" else ranking(a, x) for label, a in results.items()}
        comparison_grid(images, maps, labels=list(photos)).savefig(args.png, dpi=80)
    random = torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    layers = parameter_layers(model)[-args.random_layers:]
    common = {"target": target, "baseline": black, "batch_size": args.batch_size}
    for label, attr in [*results.items(), ("random", random)]:
        t0 = time.perf_counter()
        r = ranking(attr, x)
        ab = ablation_curve(model, x, r, k=args.k, steps=args.ablation_steps, **common)
        signed = ablation_curve(model, x, r, k=args.k, steps=args.ablation_steps,
                                absolute=False, **common)
        de = deletion_curve(model, x, r, steps=args.curve_steps, **common)
        ins = insertion_curve(model, x, r, steps=args.curve_steps, **common)
        gap = "n/a"
        rho = "n/a"
        if isinstance(attr, Attribution):
            if attr.relative_gap is not None and label != "XRAI (IG base)":
                gap = ", ".join(f"{float(g):.3f}" for g in attr.relative_gap)
            name, opts = chosen[label]
            ran = model_randomisation(model, x[:1], name, layers=layers, target=target[:1],
                                      absolute=False, **opts)
            rho = ", ".join(f"{float(c):.2f}" for c in ran.mean_correlation)
        cost = f"{seconds[label]:.0f}" if label in seconds else "-"
        rows.append(f"| {label} | {ab.aopc:.4f} | {signed.aopc:.4f} | {de.area:.4f} | {ins.area:.4f} | {gap} | "
                    f"{rho} | {cost} |")
        print(rows[-1], f"({time.perf_counter() - t0:.0f} s)", flush=True)
    names = ", ".join(f"{n} ({vision.class_name(int(t))}, p={float(p):.3f})" for n, t, p in
                      zip(photos, target, ab.scores[:, 0], strict=True))
    body = "\n".join([
        "## Path methods on EfficientNet-Lite0: IG, Guided IG, Blur IG, IDGI-IG, XRAI",
        "",
        f"Generated by `python benchmarks/path_methods.py --photos {' '.join(args.photos)} "
        f"--steps {args.steps}` ({torch.get_num_threads()} thread(s), a shared, busy 2-core CPU: "
        "the seconds are indicative only). Photos: " + names + ". Each method explains the "
        f"top class's softmax probability with {args.steps} gradients per photo; the baseline "
        "is black (Blur IG: the photo blurred with sigma 50).",
        "",
        f"* **AOPC**: {args.k} pixels set to black per step for {args.ablation_steps} steps, "
        "ranked by `sum_c |a|` (Gradients of Counterfactuals) or by the signed `sum_c a` (higher is better).",
        f"* **deletion / insertion**: all pixels removed / revealed on black in "
        f"{args.curve_steps} steps, ranked by the signed `sum_c a`; mean probability along the "
        "curve (deletion lower, insertion higher is better).",
        "* **gap**: relative completeness gap per photo (`|sum a - (F(x) - F(x'))| / |F(x) - "
        "F(x')|`).",
        f"* **randomisation**: Spearman correlation of signed attributions of the first photo "
        f"between the model and copies with the top 1 .. {len(layers)} parameter layers "
        f"re-initialised (cascading: {', '.join(layers[::-1])}); lower means the map depends "
        "on the weights (Adebayo et al. 2018).",
        "* XRAI's region values are shifted to be non-negative for the rankings (its regions "
        "keep their order); its randomisation row compares its region maps.",
        "",
        "| method | AOPC (sum abs) | AOPC (signed) | deletion | insertion | gap | randomisation rho (top "
        f"{', '.join(str(i + 1) for i in range(len(layers)))} layers) | seconds |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    print(body)
    if not args.no_write:
        write_section(DOC, "path-methods", body)


if __name__ == "__main__":
    main()
