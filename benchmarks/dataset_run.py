"""Items per second of a data-set run: a plain loop of explain calls, the local engine, and Ray
with 1 and 2 workers, in one process, on EfficientNet-Lite0.

The photos are the 8 colour and grey photos of scikit-image / scikit-learn, each in 8 variants
(the photo, flipped left-right, flipped up-down, three crops, rotated, crop + flip), so 64 by
default; methods IG (adaptive rule, 32 steps) and saliency, target the predicted class, black
baseline. Each configuration runs once, in the order loop, local, Ray 1, Ray 2, each into a
fresh store.

Run: ``python benchmarks/dataset_run.py [--photos 64] [--skip-ray]``; writes its table into
docs/benchmarks-runs.md.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable

from PIL import Image

import attribkit
import attribkit.runs as runs
from _common import machine
from attribkit.core import pages
from attribkit.zoo import vision

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks-runs.md"
METHODS = [("integrated_gradients", {"rule": "adaptive", "steps": 32}), ("saliency", {})]


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


def plain_loop(paths: list[pathlib.Path]) -> None:
    """What a user writes without attribkit.runs: one explain call per photo and method."""
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
    for p in paths:
        x = vision.load_image(p)
        for name, params in METHODS:
            opts = dict(params)
            if name == "integrated_gradients":
                opts["baseline"] = vision.black_baseline(x)
            attribkit.explain(model, x, method=name, **opts)


def write_table(n: int, rows: list[tuple[str, float]], local_label: str, build_s: float,
                ray_start: str) -> None:
    """Write the measurements so far into docs/benchmarks-runs.md."""
    local = dict(rows).get(local_label)
    table = ["| configuration | wall time (s) | items/s | time relative to the local engine |",
             "|---|---:|---:|---:|"]
    for label, secs in rows:
        rel = f"{secs / local:.2f}x" if local else "n/a"
        table.append(f"| {label} | {secs:.1f} | {n / secs:.4f} | {rel} |")
    body = "\n".join([
        f"{n} photos (224 x 224), EfficientNet-Lite0, IG (adaptive rule, 32 steps, black "
        "baseline) and saliency, target the predicted class; one run of each configuration, in "
        "this order, in one process. Ray times include starting the actors and building the "
        f"model in each (building EfficientNet-Lite0 took {build_s:.1f} s here); starting the "
        f"local Ray instance ({ray_start}) is not included.",
        "",
        *table,
        "",
        f"Machine: {machine()}. Single runs, not medians; the 1-minute load average of the "
        f"machine (shared with other jobs) when the table was written: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
    ])
    pages.write_section(DOCS, "dataset-run", body, title="# Benchmarks: data-set runs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="attribkit-bench-runs-"))
    folder = work / "photos"
    folder.mkdir()
    paths = write_photos(folder, args.photos)
    n = len(paths)
    t = time.perf_counter()
    vision.load_efficientnet_lite0(fresh=True)
    build_s = time.perf_counter() - t
    rows: list[tuple[str, float]] = []
    ray_start = "not run"
    local_label = f"local engine (batches of {args.batch_size})"

    def timed(label: str, fn: Callable[[], object]) -> None:
        t0 = time.perf_counter()
        result = fn()
        if isinstance(result, runs.RunResult) and result.failed:
            raise RuntimeError(f"{label}: {result.failed} results failed; see {result.path}")
        rows.append((label, time.perf_counter() - t0))
        print(f"{label}: {rows[-1][1]:.1f} s ({n / rows[-1][1]:.3f} items/s)", flush=True)
        write_table(n, rows, local_label, build_s, ray_start)  # after each, in case of a kill

    timed("plain loop of explain calls", lambda: plain_loop(paths))
    timed(local_label, lambda: runs.run(
        "efficientnet-lite0", folder, METHODS, out=work / "local", batch_size=args.batch_size,
        progress=False))
    if not args.skip_ray:
        import ray

        from attribkit.runs.ray_engine import start

        t = time.perf_counter()
        start(num_cpus=os.cpu_count(), attempts=3)
        ray_start = f"{time.perf_counter() - t:.1f} s"
        for workers in (1, 2):
            # every worker gets a batch even when there are few photos
            size = min(args.batch_size, -(-n // workers))
            timed(f"Ray, {workers} worker(s), batches of {size}",
                  lambda w=workers, b=size: runs.run(  # type: ignore[misc]
                      "efficientnet-lite0", folder, METHODS, out=work / f"ray{w}", engine="ray",
                      concurrency=w, batch_size=b, progress=False))
        ray.shutdown()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
