"""AOPC of Integrated Gradients versus gradients at the image on EfficientNet-Lite0 (Gradients of Counterfactuals,
Figure 5): ablate the top pixels (sum over channels of |a|) 100 at a time for 50 steps, setting
them to black, and record the mean drop of the top-class softmax probability.

Run: ``nice -n 10 python benchmarks/aopc_efficientnet.py --photos chelsea coffee astronaut``.
Prints a markdown table and writes the curves as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import torch

from attribkit import integrated_gradients, interior_gradients
from attribkit.core.attribution import Attribution
from attribkit.evaluate import ablation_curve
from attribkit.methods import methods
from attribkit.zoo import vision


def gradient_at_image(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor,
                      batch_size: int) -> Attribution | torch.Tensor:
    """Gradients at the image: the registered ``saliency`` if present, else the interior
    gradient at alpha = 1 (the same thing)."""
    if "saliency" in methods():
        fn = methods()["saliency"].fn
        return fn(model, x, target=target, batch_size=batch_size)
    ig = interior_gradients(model, x, target=target, baseline=vision.BLACK_BASELINE,
                            alphas=[1.0], batch_size=batch_size)
    return ig.gradients[:, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", nargs="+", default=["chelsea", "coffee", "astronaut"])
    ap.add_argument("--steps", type=int, default=32, help="IG Gauss-Legendre steps")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--ablation-steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--json", type=pathlib.Path, default=pathlib.Path("out/aopc_efficientnet.json"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--signed", action="store_true",
                    help="rank features by signed attribution instead of sum |a| (Gradients of Counterfactuals)")
    ap.add_argument("--patch", type=int, default=0,
                    help="ablate square patches of this side instead of pixels (k counts patches)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
    photos = vision.sample_photos(args.photos)
    x = torch.cat(list(photos.values()))
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    t0 = time.time()
    ig = integrated_gradients(model, x, target=target, baseline=vision.BLACK_BASELINE,
                              steps=args.steps, batch_size=args.batch_size)
    t_ig = time.time() - t0
    grad = gradient_at_image(model, x, target, args.batch_size)
    rng = torch.Generator().manual_seed(0)
    random = torch.rand(x.shape, generator=rng, dtype=x.dtype)
    groups = None
    if args.patch > 0:
        side = vision.IMAGE_SIZE
        idx = torch.arange(side) // args.patch
        groups = idx[:, None] * (side // args.patch + 1) + idx[None, :]
    curves = {}
    for name, attr in (("integrated_gradients", ig), ("gradients", grad), ("random", random)):
        curves[name] = ablation_curve(model, x, attr, k=args.k, steps=args.ablation_steps,
                                      target=target, baseline=vision.BLACK_BASELINE,
                                      groups=groups, sign="all" if args.signed else "absolute",
                                      batch_size=args.batch_size)
    elapsed = time.time() - t0
    p0 = curves["integrated_gradients"].scores[:, 0]
    names = [f"{n} ({vision.class_name(int(t))}, p={float(p):.3f})"
             for n, t, p in zip(photos, target, p0, strict=True)]
    gaps = ig.relative_gap
    print(f"photos: {', '.join(names)}")
    print(f"IG: {args.steps} Gauss-Legendre steps, black baseline, relative completeness gaps "
          f"{[round(float(g), 3) for g in gaps] if gaps is not None else 'n/a'} ({t_ig:.0f} s)")
    unit = f"patches of {args.patch}x{args.patch} px" if args.patch else "px"
    unit += ", ranked by signed attribution" if args.signed else ", ranked by sum |a|"
    print(f"ablation: {args.k} {unit} x {args.ablation_steps} steps to black; "
          f"total {elapsed:.0f} s\n")
    marks = sorted({1, 5, 10, 20, 30, 40, args.ablation_steps})
    print("| method | " + " | ".join(f"AOPC@{m}" for m in marks) + " | drop@end |")
    print("|---|" + "---|" * (len(marks) + 1))
    for name, c in curves.items():
        row = [f"{float(c.aopc_curve[m]):.4f}" for m in marks]
        print(f"| {name} | " + " | ".join(row) + f" | {float(c.drops[:, -1].mean()):.4f} |")
    print("\nper photo AOPC@end: " + "; ".join(
        f"{n}: " + ", ".join(f"{k}={float(c.aopc_per_example[i, -1]):.4f}"
                             for k, c in curves.items())
        for i, n in enumerate(photos)))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({k: c.to_dict() for k, c in curves.items()}))


if __name__ == "__main__":
    main()
