"""Perturbation methods on a photo: attribkit's LIME and occlusion against the ``lime`` package
and Captum's ``Occlusion``, at equal samples and equal windows, side by side in one process.

One photo (``coffee``, 224 x 224), EfficientNet-Lite0 with a softmax, target the predicted
class, a black fill. LIME: 196 segments (a 14 x 14 grid of 16 x 16 squares, the same for both
sides), 256 samples, ridge surrogate; the ``lime`` package with ``batch_size=10`` (its default)
and a classifier function that normalises the images and calls the model as given. Occlusion:
196 windows of 16 x 16 pixels x 3 channels, stride 16; Captum with ``perturbations_per_eval``
equal to attribkit's rows per whole forward pass, and equal to its rows per local pass
(attribkit computes each window's pass only where the window reaches: 4 times the rows per
call); Captum's default of 1 row per call is also reported.

Each comparison warms both sides up once, then runs ``--pairs`` pairs, alternating which side
goes first, and reports the medians of wall time and CPU time (of this process) and the median
of the per-pair ratios. The 1-minute load average is recorded before and after each comparison.
Both sides use the same torch threads (``--threads``, default 1: on a shared machine one thread
per process wastes the least time at barriers).

Run: ``python benchmarks/perturbation.py [--pairs 5] [--threads 1]``; writes
docs/benchmarks-perturbation.md.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

import attribkit
from _common import machine
from attribkit.core import pages
from attribkit.core.probes import CPU_CHUNK_BYTES
from attribkit.methods._masked import LOCAL_ROWS
from attribkit.zoo import vision

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks-perturbation.md"
GRID = 16  # 224 / 16 = 14 squares a side, 196 segments or windows


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (this process, all threads) of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def compare(ours: Callable[[], object], theirs: Callable[[], object],
            pairs: int) -> dict[str, float]:
    """Warm both up, then ``pairs`` alternating pairs; medians and the median pair ratio."""
    load0 = os.getloadavg()[0]
    ours()
    theirs()
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    for i in range(pairs):
        order = [(ours, a), (theirs, b)] if i % 2 == 0 else [(theirs, b), (ours, a)]
        for fn, into in order:
            into.append(timed(fn))
        print(f"  pair {i + 1}: attribkit {a[-1][0]:.1f} s, other {b[-1][0]:.1f} s "
              f"(load {os.getloadavg()[0]:.1f})", flush=True)
    return {
        "ours_wall": statistics.median(t[0] for t in a),
        "ours_cpu": statistics.median(t[1] for t in a),
        "theirs_wall": statistics.median(t[0] for t in b),
        "theirs_cpu": statistics.median(t[1] for t in b),
        "ratio_wall": statistics.median(y[0] / x[0] for x, y in zip(a, b, strict=True)),
        "ratio_cpu": statistics.median(y[1] / x[1] for x, y in zip(a, b, strict=True)),
        "load_before": load0, "load_after": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--photo", default="coffee")
    ap.add_argument("--skip", nargs="*", default=[], choices=["lime", "occlusion", "captum-local", "captum-1"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from captum.attr import Occlusion
    from lime import lime_image

    model = vision.SoftmaxModel(vision.load_efficientnet_lite0()).eval()
    image = vision.center_crop(vision.load_photo(args.photo))
    x = vision.preprocess(image)
    black = vision.black_baseline(x)
    with torch.no_grad():
        cls = int(model(x).argmax())
    seg = (np.arange(224)[:, None] // GRID) * (224 // GRID) + np.arange(224)[None, :] // GRID
    mask = torch.from_numpy(seg)[None]

    def classify(batch: np.ndarray) -> np.ndarray:  # what a lime user writes
        t = (torch.from_numpy(batch).permute(0, 3, 1, 2).float() - vision.PIXEL_MEAN) / (
            vision.PIXEL_SCALE)
        with torch.no_grad():
            return model(t).numpy()

    explainer = lime_image.LimeImageExplainer(random_state=0)
    rows: list[tuple[str, str, dict[str, float]]] = []
    setting = (f"{args.photo} 224 x 224, EfficientNet-Lite0 (softmax), class {cls}, black fill, "
               f"{args.threads} torch thread(s) on both sides")

    if "lime" not in args.skip:
        print("LIME vs lime", flush=True)
        rows.append((f"LIME, 196 segments, {args.samples} samples",
                     "`lime` 0.2.0.1 LimeImageExplainer (batch_size=10)", compare(
                         lambda: attribkit.explain(model, x, method="lime", target=cls,
                                                   feature_mask=mask, baseline=black,
                                                   n_samples=args.samples),
                         lambda: explainer.explain_instance(
                             image, classify, labels=(cls,), top_labels=None, hide_color=0,
                             num_samples=args.samples, segmentation_fn=lambda _im: seg,
                             batch_size=10),
                         args.pairs)))
        write(rows, setting)
    occ = Occlusion(model)
    per_call = CPU_CHUNK_BYTES // (x[0].numel() * x.element_size())
    window = {"sliding_window_shapes": (3, GRID, GRID), "strides": (3, GRID, GRID),
              "baselines": black, "target": cls}

    def ours_occlusion() -> object:
        return attribkit.explain(model, x, method="occlusion", window=GRID, baseline=black,
                                 target=cls)

    if "occlusion" not in args.skip:
        print("occlusion vs Captum", flush=True)
        rows.append(("occlusion, 196 windows of 16 x 16",
                     f"Captum Occlusion, {per_call} windows per call", compare(
                         ours_occlusion,
                         lambda: occ.attribute(x, perturbations_per_eval=per_call, **window),
                         args.pairs)))
        write(rows, setting)
    if "captum-local" not in args.skip:
        local = per_call * LOCAL_ROWS
        print(f"occlusion vs Captum at {local} windows per call", flush=True)
        rows.append(("occlusion, 196 windows of 16 x 16",
                     f"Captum Occlusion, {local} windows per call (attribkit's local passes)",
                     compare(ours_occlusion,
                             lambda: occ.attribute(x, perturbations_per_eval=local, **window),
                             args.pairs)))
        write(rows, setting)
    if "captum-1" not in args.skip:
        print("occlusion vs Captum's default", flush=True)
        rows.append(("occlusion, 196 windows of 16 x 16",
                     "Captum Occlusion, 1 window per call (its default)", compare(
                         ours_occlusion, lambda: occ.attribute(x, **window), args.pairs)))
        write(rows, setting)


def write(rows: list[tuple[str, str, dict[str, float]]], setting: str) -> None:
    """The table so far into docs/benchmarks-perturbation.md (after each comparison)."""
    table = ["| attribkit | against | attribkit wall / CPU (s) | other wall / CPU (s) | "
             "speed-up wall | speed-up CPU | load before / after |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for ours, theirs, r in rows:
        table.append(
            f"| {ours} | {theirs} | {r['ours_wall']:.1f} / {r['ours_cpu']:.1f} | "
            f"{r['theirs_wall']:.1f} / {r['theirs_cpu']:.1f} | {r['ratio_wall']:.2f}x | "
            f"{r['ratio_cpu']:.2f}x | {r['load_before']:.1f} / {r['load_after']:.1f} |")
    body = "\n".join([
        f"Setting: {setting}. Medians over the pairs after a warm-up of each side; the "
        "speed-ups are medians of the per-pair ratios (other / attribkit). CPU time is this "
        "process's (all its threads).",
        "",
        *table,
        "",
        f"Machine: {machine()}; 1-minute load average before and after each comparison in the "
        f"table, on {os.cpu_count()} cores.",
    ])
    pages.write_section(DOCS, "perturbation", body, title="# Benchmarks: perturbation methods")


if __name__ == "__main__":
    main()
