"""Integrated Gradients accuracy against cost on EfficientNet-Lite0: attribkit vs Captum.

For each photo (black baseline, softmax probability of the top class, 224 px), a converged
reference (Gauss-Legendre, 1024 steps, cached in benchmarks/results/), then in one process:

1. Settings are chosen by error alone (single runs, untimed): Captum's IntegratedGradients
   (Gauss-Legendre) at the fewest steps, searched in multiples of 8, that reach 2 % relative L2
   error; attribkit's adaptive rule at the fewest steps (multiples of 8) whose error is equal to
   or better than Captum's chosen run; attribkit with ``tolerance=0.02`` as it lands.
2. Both sides get the same memory layout (channels-last model and inputs) and the same rows per
   model call (attribkit's default chunk as Captum's ``internal_batch_size``).
3. The chosen settings are timed side by side: a warm-up of each, then ``--pairs`` rounds
   (default 5) in rotating order; medians of wall time and of CPU time (this process), and the
   1-minute load average before and after.

Held-out photos (not used to design the estimate) get a reference and the tolerance runs only:
the calibration check. Writes its tables into docs/benchmarks.md.

Run: ``python benchmarks/ig_accuracy.py`` (``--quick``: one photo, no held-out photos;
``--device cuda`` on a GPU; ``--smoke``: every path at 64 px with a coarse reference, writes
nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from captum.attr import IntegratedGradients
from torch.nn import functional

import attribkit
from _common import machine, median_time, write_section
from attribkit.core.engine import prepare
from attribkit.core.guard import ModelGuard
from attribkit.zoo import vision

RESULTS = Path(__file__).resolve().parent / "results"
GOAL = 0.02


@dataclass
class Row:
    photo: str
    who: str
    setting: str
    grads: int
    forwards: int
    seconds: float
    error: float
    estimate: float = float("nan")
    cpu: float = float("nan")
    load: str = ""


class Bench:
    def __init__(self, device: str, ref_steps: int, size: int) -> None:
        self.device = torch.device(device)
        self.model = vision.SoftmaxModel(vision.load_efficientnet_lite0()).to(self.device)
        self.ref_steps, self.size = ref_steps, size

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        self.sync()
        t = time.perf_counter()
        out = fn()
        self.sync()
        return out, time.perf_counter() - t

    def photo(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        return functional.interpolate(x, size=self.size) if self.size != 224 else x

    def reference(self, name: str, x: torch.Tensor, top: int) -> torch.Tensor:
        path = RESULTS / f"ref_{name}_{self.size}_{self.ref_steps}.pt"
        if path.exists():
            saved = torch.load(path)
            if saved["top"] == top and torch.equal(saved["x"], x.cpu()):
                return saved["values"].to(self.device)
        a = attribkit.integrated_gradients(self.model, x, target=top, baseline=vision.BLACK,
                                           steps=self.ref_steps, batch_size=16, progress=True)
        RESULTS.mkdir(exist_ok=True)
        torch.save({"values": a.values.cpu(), "top": top, "x": x.cpu()}, path)
        return a.values

    def ours(self, name: str, x: torch.Tensor, top: int, ref: torch.Tensor, setting: str,
             **kw: Any) -> Row:
        a, dt = self.timed(lambda: attribkit.integrated_gradients(
            self.model, x, target=top, baseline=vision.BLACK, channels_last=True, **kw))
        est = float(a.error_estimate[0]) if a.error_estimate is not None else float("nan")
        return Row(name, "attribkit", setting, a.params["gradient_evaluations"],
                   a.params["forward_evaluations"], dt, rel(a.values, ref), est)

    def error_of(self, fn: Callable[[int], torch.Tensor], ref: torch.Tensor,
                 steps: int, memo: dict[int, float]) -> float:
        if steps not in memo:
            memo[steps] = rel(fn(steps), ref)
        return memo[steps]

    def fewest_steps(self, fn: Callable[[int], torch.Tensor], ref: torch.Tensor, goal: float,
                     top: int = 1024) -> tuple[int | None, dict[int, float]]:
        """The fewest steps, a multiple of 8, whose error is at most ``goal`` (doubling, then
        bisection over multiples of 8; the error falls with the steps on these photos)."""
        memo: dict[int, float] = {}
        hi = 8
        while self.error_of(fn, ref, hi, memo) > goal:
            if hi >= top:
                return None, memo
            hi *= 2
        lo = hi // 2 if hi > 8 else 0  # lo fails (or is 0), hi passes
        while hi - lo > 8:
            mid = (lo + hi) // 16 * 8
            if self.error_of(fn, ref, mid, memo) <= goal:
                hi = mid
            else:
                lo = mid
        return hi, memo

    def run_photo(self, name: str, x: torch.Tensor, held_out: bool, rows_per_call: int,
                  pairs: int) -> list[Row]:
        with torch.no_grad():
            top = int(self.model(x).argmax())
        ref = self.reference(name, x, top)
        xc = x.contiguous(memory_format=torch.channels_last)
        base = torch.full_like(xc, vision.BLACK)
        captum = IntegratedGradients(self.model)

        def theirs(steps: int) -> torch.Tensor:
            with ModelGuard(self.model) as guard:  # the same layout as attribkit's
                guard.use_channels_last()
                return captum.attribute(xc, baselines=base, target=top, n_steps=steps,
                                        method="gausslegendre",
                                        internal_batch_size=rows_per_call)

        def ours(steps: int | None = None, **kw: Any) -> Any:
            opts = {"steps": steps} if steps is not None else {}
            return attribkit.integrated_gradients(
                self.model, x, target=top, baseline=vision.BLACK, channels_last=True,
                rule="adaptive", **opts, **kw)

        rows: list[Row] = []
        tols = [("tolerance=0.02", {"tolerance": GOAL}),
                ("tolerance=0.02 conservative", {"tolerance": GOAL, "conservative": True})]
        if held_out:
            for setting, kw in tols:
                a = ours(**kw)
                rows.append(Row(name, "attribkit", setting, a.params["gradient_evaluations"],
                                a.params["forward_evaluations"], float("nan"),
                                rel(a.values, ref), _estimate(a)))
            return rows
        c_steps, c_err = self.fewest_steps(theirs, ref, GOAL)
        if c_steps is None:
            print(f"{name}: Captum did not reach {GOAL} within 1024 steps", flush=True)
            return rows
        bar = c_err[c_steps]  # attribkit must be equally or more accurate
        a_steps, a_err = self.fewest_steps(lambda s: ours(s).values, ref, bar)
        tol = ours(tolerance=GOAL)
        contenders: list[tuple[str, Callable[[], Any]]] = [
            (f"gausslegendre {c_steps}", lambda: theirs(c_steps))]
        if a_steps is not None:
            contenders.append((f"adaptive {a_steps}", lambda: ours(a_steps)))
        contenders.append(("tolerance=0.02", lambda: ours(tolerance=GOAL)))
        timing = self.paired(contenders, pairs)
        errors = [bar] + ([a_err[a_steps]] if a_steps is not None else []) + [
            rel(tol.values, ref)]
        grads = [c_steps] + ([a_steps + 1] if a_steps is not None else []) + [
            tol.params["gradient_evaluations"]]
        for (setting, _), err, g, (wall, cpu, load) in zip(contenders, errors, grads, timing,
                                                           strict=True):
            who = "captum" if setting.startswith("gauss") else "attribkit"
            rows.append(Row(name, who, setting, g, 0, wall, err,
                            _estimate(tol) if setting.startswith("tol") else float("nan"),
                            cpu, load))
        rows.append(Row(name, "attribkit", "tolerance=0.02 conservative", 0, 0, float("nan"),
                        float("nan")))
        a = ours(tolerance=GOAL, conservative=True)
        rows[-1] = Row(name, "attribkit", "tolerance=0.02 conservative",
                       a.params["gradient_evaluations"], a.params["forward_evaluations"],
                       float("nan"), rel(a.values, ref), _estimate(a))
        return rows

    def paired(self, fns: list[tuple[str, Callable[[], Any]]], pairs: int
               ) -> list[tuple[float, float, str]]:
        """Warm each up, then ``pairs`` rounds in rotating order: median wall, median CPU."""
        load0 = os.getloadavg()[0]
        for _, fn in fns:
            fn()
        walls: list[list[float]] = [[] for _ in fns]
        cpus: list[list[float]] = [[] for _ in fns]
        for r in range(pairs):
            order = list(range(len(fns)))
            order = order[r % len(order):] + order[:r % len(order)]
            for i in order:
                self.sync()
                w, c = time.perf_counter(), time.process_time()
                fns[i][1]()
                self.sync()
                walls[i].append(time.perf_counter() - w)
                cpus[i].append(time.process_time() - c)
        load = f"{load0:.1f} / {os.getloadavg()[0]:.1f}"
        return [(statistics.median(w), statistics.median(c), load)
                for w, c in zip(walls, cpus, strict=True)]

    def per_gradient_ms(self, batch: int, channels_last: bool, compiled: bool) -> float:
        """Median milliseconds per row of a batched forward + input-gradient backward."""
        x = torch.randn(batch, 3, self.size, self.size,
                        generator=torch.Generator().manual_seed(0)).to(self.device)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        with ModelGuard(self.model) as guard:
            if channels_last:
                guard.use_channels_last()
            fn = torch.compile(self.model, dynamic=False) if compiled else self.model
            pts = x.contiguous(memory_format=fmt)

            def step() -> None:
                p = pts.clone().requires_grad_(True)
                torch.autograd.grad(fn(p)[:, 0].sum(), p)
                self.sync()

            return 1e3 * median_time(step, repeats=3, warmup=2 if compiled else 1) / batch



def _estimate(a: Any) -> float:
    return float(a.error_estimate[0]) if a.error_estimate is not None else float("nan")


def rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a - ref).norm() / ref.norm())


def find(rows: list[Row], photo: str, prefix: str) -> Row | None:
    return next((r for r in rows if r.photo == photo and r.setting.startswith(prefix)), None)


def cell(r: Row | None) -> str:
    if r is None:
        return "none found"
    return (f"{r.setting}: {r.grads} grads, error {r.error:.4f}, {r.seconds:.1f} s wall / "
            f"{r.cpu:.1f} s CPU")


def ratio(anchor: Row | None, r: Row | None) -> str:
    if anchor is None or r is None:
        return "n/a"
    tag = "" if r.error <= anchor.error else " (higher error)"
    return f"{anchor.seconds / r.seconds:.2f}x wall, {anchor.cpu / r.cpu:.2f}x CPU{tag}"


def tables(rows: list[Row], names: list[str], held: list[str], costs: list[tuple[str, float]],
           auto: int, args: argparse.Namespace) -> str:
    summary = ["| photo | Captum, fewest steps (x8) under 2 % | attribkit adaptive, fewest steps "
               "(x8) at equal or lower error | ratio | tolerance=0.02 | ratio | load before / "
               "after |", "|---|---|---|---|---|---|---|"]
    for name in names:
        anchor = find(rows, name, "gausslegendre")
        fixed, tol = find(rows, name, "adaptive"), find(rows, name, "tolerance=0.02")
        summary.append(f"| {name} | {cell(anchor)} | {cell(fixed)} | {ratio(anchor, fixed)} | "
                       f"{cell(tol)} | {ratio(anchor, tol)} | "
                       f"{anchor.load if anchor else ''} |")
    calib = ["| photo | set | setting | actual error | estimate | actual / estimate | gradients "
             "|", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.setting.startswith("tolerance"):
            calib.append(f"| {r.photo} | {'held out' if r.photo in held else 'benchmark'} | "
                         f"{r.setting} | {r.error:.4f} | {r.estimate:.4f} | "
                         f"{r.error / r.estimate:.2f} | {r.grads} + {r.forwards} scan |")
    dev = ("GPU: " + torch.cuda.get_device_name()) if args.device.startswith("cuda") else (
        "CPU only (no GPU was lent to this task)")
    return (f"## Integrated Gradients accuracy on EfficientNet-Lite0 (`benchmarks/ig_accuracy.py`)"
            f"\n\nMachine: {machine()}; {dev}. Reference: Gauss-Legendre with {args.ref_steps} "
            "steps. Softmax probability of the top class, black baseline, 224 px. Both sides: "
            f"channels-last model and inputs, {auto} rows per model call (attribkit's default "
            "chunk; Captum's `internal_batch_size`). Steps chosen by error alone, in multiples "
            "of 8; attribkit's fixed-step run must match or beat the error of Captum's. Times: "
            f"medians of {args.pairs} rounds in rotating order after a warm-up of each, wall "
            "and CPU (this process); ratios are Captum / attribkit.\n\n"
            "Cost of one gradient evaluation (forward + input-gradient backward, median of 3 "
            "batches):\n\n| setting | ms per gradient |\n|---|---|\n"
            + "\n".join(f"| {k} | {v:.1f} |" for k, v in costs)
            + "\n\nTime to 2 % relative L2 error:\n\n" + "\n".join(summary)
            + "\n\nCalibration of `tolerance=` (goal: actual / estimate within 1/1.2-1.2; "
            "held-out photos were not used to design the estimate):\n\n" + "\n".join(calib))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", nargs="+", default=["chelsea", "coffee", "rocket"])
    parser.add_argument("--held-out", nargs="*", default=["astronaut", "china"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ref-steps", type=int, default=1024)
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    if args.quick or args.smoke:
        args.photos, args.held_out = args.photos[:1], args.held_out[:1] if args.smoke else []
    if args.smoke:
        args.ref_steps, args.pairs = 128, 1
    bench = Bench(args.device, args.ref_steps, 64 if args.smoke else 224)
    photos = {k: bench.photo(v) for k, v in vision.sample_photos(
        args.photos + args.held_out).items()}
    first = next(iter(photos.values()))
    with prepare(bench.model, first, target=0, baseline=vision.BLACK) as problem:
        auto = problem.batch_size
    costs = [(f"contiguous, {auto} rows", bench.per_gradient_ms(auto, False, False)),
             (f"channels_last, {auto} rows (attribkit's chunk)",
              bench.per_gradient_ms(auto, True, False)),
             ("contiguous, 16 rows", bench.per_gradient_ms(16, False, False)),
             ("channels_last, 16 rows", bench.per_gradient_ms(16, True, False))]
    rows: list[Row] = []
    for name, x in photos.items():
        rows += bench.run_photo(name, x, name in args.held_out, auto, args.pairs)
        print(f"{name} done", flush=True)
    body = tables(rows, args.photos, args.held_out, costs, auto, args)
    print(body)
    if not args.smoke:
        write_section("ig-accuracy", body)


if __name__ == "__main__":
    main()
