"""All-class Integrated Gradients: one attribkit call for K targets against K Captum calls.

Two models from the zoo, side by side in one process: EfficientNet-Lite0 (softmax) on the
``coffee`` photo (224 x 224, black baseline) with its 10 most probable classes, and the MNIST
CNN on 4 digits (black baseline) with all 10 classes. Equal settings on both sides: the same
Gauss-Legendre steps, the same rows per model call (attribkit's default chunk is Captum's
``internal_batch_size``), the same threads. attribkit is timed as called (its fast path,
``core.fastgraph``: BatchNorm folded, photos channels-last) and without the fast path
(``plain_forward()``); Captum as users call it (contiguous) and, on the photo, with the model
and the inputs channels-last (the layout attribkit uses there).

Each comparison warms every side up once, then runs ``--pairs`` rounds in rotating order and
reports medians of wall and CPU time (this process) and the medians of the per-round ratios;
the 1-minute load average is recorded before and after. A cost model is measured on one chunk
of path points of each model: a forward pass without gradients, a forward that records the
graph plus one backward, and the same with K backward passes through the retained graph, each
for the model as given, its folded copy and a copy whose parameters require no gradient.

Run: ``python benchmarks/all_class_ig.py [--pairs 5] [--threads 1]``; writes
docs/benchmarks-all-class-ig.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import pathlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from captum.attr import IntegratedGradients
from torch import nn

import attribkit
from _common import machine
from attribkit.core import fastgraph, pages
from attribkit.core.engine import prepare
from attribkit.zoo import digits, vision

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks-all-class-ig.md"
K = 10


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def rounds(sides: dict[str, Callable[[], object]], pairs: int) -> dict[str, Any]:
    """Warm-up of each side, then ``pairs`` rounds in rotating order; medians and ratios."""
    load0 = os.getloadavg()[0]
    for fn in sides.values():
        fn()
    names = list(sides)
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for i in range(pairs):
        for n in names[i % len(names):] + names[:i % len(names)]:
            times[n].append(timed(sides[n]))
        print(f"  round {i + 1}: " + ", ".join(f"{n} {times[n][-1][0]:.2f} s" for n in names)
              + f" (load {os.getloadavg()[0]:.1f})", flush=True)
    ref = times["Captum"]
    out: dict[str, Any] = {"load": (load0, os.getloadavg()[0])}
    if "Captum, channels-last" in times:
        cl = times["Captum, channels-last"]
        out["vs_cl"] = tuple(statistics.median(r[i] / t[i] for r, t in zip(
            cl, times["attribkit"], strict=True)) for i in (0, 1))
    for n in names:
        out[n] = {
            "wall": statistics.median(t[0] for t in times[n]),
            "cpu": statistics.median(t[1] for t in times[n]),
            "ratio_wall": statistics.median(r[0] / t[0] for r, t in zip(ref, times[n],
                                                                       strict=True)),
            "ratio_cpu": statistics.median(r[1] / t[1] for r, t in zip(ref, times[n],
                                                                      strict=True)),
        }
    return out


def frozen_copy(model: nn.Module) -> nn.Module:
    """A copy sharing the weights' storage whose parameters require no gradient."""
    new = copy.copy(model)
    new._parameters = {k: None if p is None else nn.Parameter(p.detach(), requires_grad=False)
                       for k, p in model._parameters.items()}
    new._modules = {k: None if c is None else frozen_copy(c) for k, c in model._modules.items()}
    return new


def cost_model(model: nn.Module, pts: torch.Tensor, targets: list[int],
               repeats: int = 5) -> dict[str, float]:
    """CPU ms per row: forward without graph, forward + 1 backward, forward + K backwards."""
    def fwd() -> None:
        with torch.no_grad():
            model(pts)

    def grads(k: int) -> None:
        p = pts.clone().requires_grad_(True)
        out = model(p)
        for j in range(k):
            torch.autograd.grad(out[:, targets[j]].sum(), p, retain_graph=j < k - 1)

    res = {}
    for name, fn in (("F", fwd), ("G1", lambda: grads(1)), ("GK", lambda: grads(len(targets)))):
        fn()
        res[name] = statistics.median(timed(fn)[1] for _ in range(repeats)) * 1e3 / len(pts)
    res["B"] = (res["GK"] - res["G1"]) / (len(targets) - 1)
    res["Fg"] = res["G1"] - res["B"]
    res["bound"] = len(targets) * res["G1"] / res["GK"]
    return res


def compare(name: str, model: nn.Module, x: torch.Tensor, baseline: torch.Tensor,
            targets: list[int], steps: int, pairs: int) -> dict[str, Any]:
    """One model: attribkit (fast path on and off) against K Captum calls, plus its costs."""
    target = attribkit.classes(targets)
    with prepare(model, x, target=target, baseline=baseline) as problem:
        rows = problem.batch_size  # attribkit's default chunk, given to both sides
    probe = attribkit.integrated_gradients(model, x, target=target, baseline=baseline,
                                           steps=steps)
    ig = IntegratedGradients(model)

    def captum() -> list[torch.Tensor]:
        return [ig.attribute(x, baselines=baseline, target=k, n_steps=steps,
                             method="gausslegendre", internal_batch_size=rows)
                for k in targets]

    def ours() -> object:
        return attribkit.integrated_gradients(model, x, target=target, baseline=baseline,
                                              steps=steps, batch_size=rows)

    def ours_plain() -> object:
        with fastgraph.plain_forward():
            return ours()

    sides = {"attribkit": ours, "attribkit, fast path off": ours_plain, "Captum": captum}
    if x.dim() == 4 and x.shape[-1] * x.shape[-2] >= 64 * 64:
        cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        ig_cl = IntegratedGradients(cl_model)
        x_cl, b_cl = (t.contiguous(memory_format=torch.channels_last) for t in (x, baseline))

        def captum_cl() -> list[torch.Tensor]:
            return [ig_cl.attribute(x_cl, baselines=b_cl, target=k, n_steps=steps,
                                    method="gausslegendre", internal_batch_size=rows)
                    for k in targets]

        sides["Captum, channels-last"] = captum_cl

    diff = float((probe.values - torch.stack(captum(), dim=1)).abs().max())
    scale = float(probe.values.abs().max())
    print(f"{name}: {rows} rows per call, largest difference {diff:.2e} of {scale:.2e}",
          flush=True)
    res = rounds(sides, pairs)
    n = min(rows, steps * len(x))
    pts = (torch.linspace(0.05, 1.0, n).reshape(-1, *[1] * (x.dim() - 1))
           * x.repeat_interleave(-(-n // len(x)), dim=0)[:n])
    folded = fastgraph.fold(model, inplace=False)
    res["costs"] = {"as given": cost_model(model, pts, targets),
                    "parameters frozen": cost_model(frozen_copy(model), pts, targets)}
    if folded is not None:
        res["costs"]["folded copy"] = cost_model(folded, pts, targets)
    if "Captum, channels-last" in sides:
        pts_cl = pts.contiguous(memory_format=torch.channels_last)
        res["costs"]["as given, channels-last"] = cost_model(cl_model, pts_cl, targets)
        folded_cl = fastgraph.fold(cl_model, True, inplace=False)
        if folded_cl is not None:
            res["costs"]["folded copy, channels-last (attribkit)"] = cost_model(
                folded_cl, pts_cl, targets)
    res.update(name=name, rows=rows, steps=steps, n=len(x), diff=diff, scale=scale)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip", nargs="*", default=[], choices=["efficientnet", "mnist"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    if "mnist" not in args.skip:
        cnn = digits.load_mnist_cnn()
        xs = digits.mnist_digits(per_class=1)[0][:4]
        results.append(compare("MNIST CNN, 4 digits, all 10 classes", cnn, xs,
                               torch.full_like(xs, float(xs.min())), list(range(K)), 50,
                               args.pairs))
        write(results, args)
    if "efficientnet" not in args.skip:
        model = vision.SoftmaxModel(vision.load_efficientnet_lite0()).eval()
        x = vision.preprocess(vision.center_crop(vision.load_photo("coffee")))
        with torch.no_grad():
            top = [int(c) for c in model(x)[0].topk(K).indices]
        results.append(compare("EfficientNet-Lite0 (softmax), coffee, its 10 most probable "
                               "classes", model, x, vision.black_baseline(x), top, 16,
                               args.pairs))
        write(results, args)


def write(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The tables so far into docs/benchmarks-all-class-ig.md."""
    table = ["| model | steps, rows per call | attribkit wall / CPU (s) | attribkit, fast path "
             "off (s) | 10 Captum calls (s) | speed-up wall / CPU | fast path off: speed-up "
             "wall / CPU | speed-up against Captum channels-last, wall / CPU | load before / "
             "after |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    costs = ["| model | copy | forward, no graph | forward with graph | one backward | "
             "forward + 10 backwards | bound 10 (F + B) / (F + 10 B) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        a, p, c = r["attribkit"], r["attribkit, fast path off"], r["Captum"]
        vs_cl = ("n/a (28 x 28: both contiguous)" if "vs_cl" not in r
                 else f"{r['vs_cl'][0]:.2f}x / {r['vs_cl'][1]:.2f}x")
        table.append(
            f"| {r['name']} | {r['steps']}, {r['rows']} | {a['wall']:.2f} / {a['cpu']:.2f} | "
            f"{p['wall']:.2f} / {p['cpu']:.2f} | {c['wall']:.2f} / {c['cpu']:.2f} | "
            f"**{a['ratio_wall']:.2f}x** / {a['ratio_cpu']:.2f}x | {p['ratio_wall']:.2f}x / "
            f"{p['ratio_cpu']:.2f}x | {vs_cl} | {r['load'][0]:.1f} / {r['load'][1]:.1f} |")
        for copy_name, m in r["costs"].items():
            costs.append(f"| {r['name'].split(',')[0]} | {copy_name} | {m['F']:.2f} | "
                         f"{m['Fg']:.2f} | {m['B']:.2f} | {m['GK']:.2f} | {m['bound']:.2f}x |")
    diffs = "; ".join(f"{r['name'].split(',')[0]}: {r['diff']:.1e} (largest value "
                      f"{r['scale']:.1e})" for r in results)
    body = "\n".join([
        f"Medians over {args.pairs} rounds after a warm-up of each side, in rotating order, "
        f"{args.threads} torch thread(s) everywhere; the speed-ups are medians of the "
        "per-round ratios (Captum / attribkit). Largest difference between attribkit's and "
        f"Captum's attributions (float32): {diffs}.",
        "",
        *table,
        "",
        "Cost model: CPU milliseconds per row (path point) on one chunk of path points, the "
        "backward taken from the difference between 10 backward passes and one through the "
        "retained graph; the bound is what sharing the forward alone can give when Captum's "
        "calls cost nothing beyond their forward and backward passes.",
        "",
        *costs,
        "",
        f"Machine: {machine()}; 1-minute load average before and after each comparison, on "
        f"{os.cpu_count()} cores shared with other jobs.",
    ])
    pages.write_section(DOCS, "all-class-ig", body,
                        title="# Benchmarks: all-class Integrated Gradients")


if __name__ == "__main__":
    main()
