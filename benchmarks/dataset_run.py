"""Items per second of a data-set run: a plain loop of explain calls (with one torch thread, and
with one per core), the local engine (one process, and one worker process per core), and Ray
with 1 and 2 actors, in one process, on EfficientNet-Lite0.

The photos are the 8 colour and grey photos of scikit-image / scikit-learn, each in 8 variants
(the photo, flipped left-right, flipped up-down, three crops, rotated, crop + flip), 24 by
default; methods IG (adaptive rule, 32 steps) and saliency, target the predicted class, black
baseline. Every configuration runs ``--repeats`` times (default 3), the order of the
configurations rotating from one repeat to the next, each into a fresh store; the page gives the
medians. The driver, the local engine's worker processes and every Ray actor use the same
torch threads (``--threads``, default 1; workers and actors get it through
``ATTRIBKIT_THREADS``); the second plain loop uses one thread per core instead. Ray is started and shut down for each Ray
configuration and repeat: its start-up is measured and counted in the "with start-up" column.
Ray runs its workers at niceness 15 unless told otherwise, which on a loaded machine alone can
change a time several-fold; the script sets ``RAY_worker_niceness=0`` (the driver's) unless
``--ray-niceness`` says otherwise, and the page states the value used.

The script's own process keeps freed memory for reuse as attribkit's worker processes and actors
do (``attribkit.startup.keep_freed_memory``), so that every configuration pays the same for
memory: with glibc's default the plain loop's page faults depend on the order of allocations
(one run here took 77 s and then 114 s for the same loop). ``--default-malloc`` leaves it as it
is; the page states which.

Run: ``python benchmarks/dataset_run.py [--photos 24] [--repeats 3] [--skip-ray]
[--default-malloc]``; writes its table into docs/benchmarks-runs.md.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from PIL import Image

import attribkit
import attribkit.runs as runs
from _common import machine
from attribkit.core import pages
from attribkit.startup import keep_freed_memory
from attribkit.zoo import vision

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks-runs.md"
METHODS = [("integrated_gradients", {"rule": "adaptive", "steps": 32}), ("saliency", {})]
LOOP = "plain loop of explain calls"


def variants(img: Image.Image) -> list[Image.Image]:
    """Eight views of one photo."""
    w, h = img.size
    s = int(min(w, h) * 0.8)
    crops = [img.crop((0, 0, s, s)), img.crop((w - s, h - s, w, h)),
             img.crop(((w - s) // 2, 0, (w - s) // 2 + s, s))]
    return [img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            img.transpose(Image.Transpose.FLIP_TOP_BOTTOM), *crops,
            img.transpose(Image.Transpose.ROTATE_90),
            crops[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT)]


def write_photos(folder: pathlib.Path, count: int) -> list[pathlib.Path]:
    """``count`` photos (224 x 224 PNG) in ``folder``."""
    paths = []
    for v in range(8):
        for name in vision.PHOTOS:
            if len(paths) == count:
                return paths
            img = variants(Image.fromarray(vision.load_photo(name)))[v]
            p = folder / f"{name}-{v}.png"
            Image.fromarray(vision.center_crop(img)).save(p)
            paths.append(p)
    return paths


def plain_loop(paths: list[pathlib.Path], threads: int) -> None:
    """What a user writes without attribkit.runs: one explain call per photo and method, with
    ``threads`` torch threads (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
        for p in paths:
            x = vision.load_image(p)
            for name, params in METHODS:
                opts = dict(params)
                if name == "integrated_gradients":
                    opts["baseline"] = vision.black_baseline(x)
                attribkit.explain(model, x, method=name, **opts)
    finally:
        torch.set_num_threads(before)


def write_table(n: int, times: dict[str, list[tuple[float, float, float]]], threads: int,
                niceness: str, build_s: float, memory: str) -> None:
    """Write the medians so far into docs/benchmarks-runs.md."""
    loop = times.get(LOOP)
    base = statistics.median(t[0] for t in loop) if loop else None
    table = ["| configuration | runs | wall (s) | with start-up (s) | driver CPU (s) | items/s | "
             "speed-up over the plain loop |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label, ts in times.items():
        wall = statistics.median(t[0] for t in ts)
        total = statistics.median(t[0] + t[1] for t in ts)
        cpu = statistics.median(t[2] for t in ts)
        up = f"{base / total:.2f}x" if base else "n/a"
        table.append(f"| {label} | {len(ts)} | {wall:.1f} | {total:.1f} | {cpu:.1f} | "
                     f"{n / total:.3f} | {up} |")
    body = "\n".join([
        f"{n} photos (224 x 224), EfficientNet-Lite0, IG (adaptive rule, 32 steps, black "
        "baseline) and saliency, target the predicted class. Medians over the repeats; the order "
        "of the configurations rotates from one repeat to the next. \"with start-up\" adds, for "
        "Ray, starting and joining the local Ray instance; items/s and the speed-up use it. "
        f"Driver, local worker processes and Ray actors: {threads} torch thread(s) each "
        "(the second plain loop excepted: it gives one process every core's thread); batches "
        "spread evenly over the workers (24 photos, 2 workers: 4 batches of 6); Ray worker "
        f"niceness {niceness}. {memory} "
        "Driver CPU is this process's CPU time (the actors' is not in it). Building "
        f"EfficientNet-Lite0 took {build_s:.1f} s (once per process or actor).",
        "",
        *table,
        "",
        f"Machine: {machine()}; the 1-minute load average of the machine (shared with other "
        f"jobs) when the table was written: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
    ])
    pages.write_section(DOCS, "dataset-run", body, title="# Benchmarks: data-set runs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ray-niceness", default="0",
                    help="RAY_worker_niceness for the local Ray instance ('default': Ray's 15)")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--default-malloc", action="store_true",
                    help="leave this process's malloc as it is (the loop then pays page faults "
                         "that attribkit's worker processes and actors do not)")
    args = ap.parse_args()
    memory = ("This process (the plain loops, the local engine's calling process) keeps glibc's "
              "default malloc, unlike attribkit's worker processes and actors.")
    if not args.default_malloc and keep_freed_memory():
        memory = ("Every process keeps freed memory for reuse: this one (the plain loops, the "
                  "local engine's calling process) by the script, the worker processes and "
                  "actors by attribkit (`attribkit.startup.keep_freed_memory`).")
    torch.set_num_threads(args.threads)
    os.environ["ATTRIBKIT_THREADS"] = str(args.threads)
    niceness = "15 (Ray's default)"
    if args.ray_niceness != "default":
        os.environ["RAY_worker_niceness"] = args.ray_niceness  # noqa: SIM112 (Ray spells it so)
        niceness = f"{args.ray_niceness} (set by the script)"
    work = pathlib.Path(tempfile.mkdtemp(prefix="attribkit-bench-runs-"))
    folder = work / "photos"
    folder.mkdir()
    paths = write_photos(folder, args.photos)
    n = len(paths)
    t = time.perf_counter()
    vision.load_efficientnet_lite0(fresh=True)
    build_s = time.perf_counter() - t
    times: dict[str, list[tuple[float, float, float]]] = {}

    def local(out: pathlib.Path, workers: int) -> float:
        res = runs.run("efficientnet-lite0", folder, METHODS, out=out,
                       batch_size=args.batch_size, progress=False, concurrency=workers)
        if res.failed:
            raise RuntimeError(f"{res.failed} results failed; see {res.path}")
        return 0.0

    def on_ray(workers: int, out: pathlib.Path) -> float:
        import ray

        from attribkit.runs.ray_engine import start

        t0 = time.perf_counter()
        start(num_cpus=os.cpu_count(), attempts=3)
        started = time.perf_counter() - t0
        try:
            res = runs.run("efficientnet-lite0", folder, METHODS, out=out, engine="ray",
                           concurrency=workers, batch_size=args.batch_size, progress=False)
            if res.failed:
                raise RuntimeError(f"{res.failed} results failed; see {res.path}")
        finally:
            ray.shutdown()
        return started

    cores = os.cpu_count() or 1
    configs: list[tuple[str, Callable[[pathlib.Path], float]]] = [
        (LOOP, lambda _out: (plain_loop(paths, args.threads), 0.0)[1]),
        (f"plain loop, {cores} torch threads (all cores, one process)",
         lambda _out: (plain_loop(paths, cores), 0.0)[1]),
        (f"local engine, 1 process (batches of {args.batch_size})",
         lambda out: local(out, 1)),
        (f"local engine, {cores} worker processes (`concurrency={cores}`)",
         lambda out: local(out, cores))]
    if not args.skip_ray:
        configs += [(f"Ray, {w} actor(s)", lambda out, w=w: on_ray(w, out))  # type: ignore[misc]
                    for w in (1, 2)]
    for r in range(args.repeats):
        turn = configs[r % len(configs):] + configs[:r % len(configs)]
        for label, fn in turn:
            out = work / f"{r}-{len(times.get(label, []))}-{label.split()[0]}"
            t0, c0 = time.perf_counter(), time.process_time()
            setup = fn(out)
            wall = time.perf_counter() - t0 - setup
            times.setdefault(label, []).append((wall, setup, time.process_time() - c0))
            print(f"repeat {r + 1}, {label}: {wall:.1f} s (+ {setup:.1f} s start-up), load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
            shutil.rmtree(out, ignore_errors=True)
            write_table(n, times, args.threads, niceness, build_s, memory)  # after each
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
