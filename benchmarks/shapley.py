"""Exact Shapley values and occlusion against Captum and SHAP.

Usage::

    nice -n 10 .venv/bin/python benchmarks/shapley.py [--threads 1] [--reps 3]

* Exact Shapley values for 8, 12, 16 and 20 players on a small MLP (one feature per player) and a
  small CNN (rectangular patches of a 3 x 16 x 16 image as players), next to the bare cost of
  the ``2^n`` model evaluations (the same model on pre-built chunks of the same size), Captum's
  ``ShapleyValues`` (it enumerates all ``n!`` permutations; only for small ``n``) and SHAP's
  exact explainer (``shap.explainers.Exact``, for the MLP).
* Occlusion with 8 x 8 patches (stride 8) on a 224 x 224 image with a small conv net, against
  Captum's ``Occlusion`` (default ``perturbations_per_eval=1`` and batched).

Writes a markdown section with the machine, medians, ratios and model evaluations.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from _common import write_section
from attribkit.core.coalitions import coalition_masks
from attribkit.methods.occlusion import occlusion
from attribkit.methods.shapley import shapley_values

CHUNK = 8192


def timed(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Median CPU seconds of ``reps`` runs (one thread: stable on a shared machine), and the
    last result."""
    times, out = [], None
    for _ in range(reps):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return statistics.median(times), out


def mlp(n: int) -> nn.Module:
    torch.manual_seed(n)
    return nn.Sequential(nn.Linear(n, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 10)).eval()


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10)).eval()


def patch_ids(n: int, size: int = 16) -> torch.Tensor:
    """``n`` rectangular patches of a ``3 x size x size`` image (rows x cols = n)."""
    rows = {6: 2, 8: 2, 12: 3, 16: 4, 20: 4}[n]
    cols = n // rows
    r = torch.arange(size) * rows // size
    c = torch.arange(size) * cols // size
    return (r[:, None] * cols + c[None, :]).expand(3, size, size).clone()


def bare_cost(model: nn.Module, x: torch.Tensor, b: torch.Tensor, ids: torch.Tensor,
              n: int) -> float:
    """Seconds to evaluate the model on 2^n rows in chunks of CHUNK (one pre-built chunk)."""
    m = 1 << n
    rows = min(CHUNK, m)
    keep = coalition_masks(0, rows, n)[:, ids.reshape(-1)]
    chunk = torch.where(keep, x.reshape(1, -1), b.reshape(1, -1)).reshape(rows, *x.shape[1:])
    t = time.process_time()
    with torch.no_grad():
        for _ in range(m // rows):
            model(chunk)[:, 0]
    return time.process_time() - t


def captum_shapley(model: nn.Module, x: torch.Tensor, ids: torch.Tensor | None) -> Any:
    from captum.attr import ShapleyValues

    mask = None if ids is None else ids[None]
    return ShapleyValues(model).attribute(x, target=0, feature_mask=mask,
                                          perturbations_per_eval=256)


def shap_exact(model: nn.Module, x: torch.Tensor, n: int) -> Any:
    import shap

    def f(arr: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.as_tensor(arr, dtype=torch.float32))[:, 0].numpy()

    explainer = shap.explainers.Exact(f, shap.maskers.Independent(np.zeros((1, n), np.float32),
                                                                  max_samples=1))
    return explainer(x.numpy(), max_evals=(1 << n) + 2, silent=True)


def shapley_rows(reps: int, captum_max: int) -> list[str]:
    lines = ["| model | players | evaluations | attribkit exact (s) | bare 2^n evaluations (s) "
             "| ratio | SHAP Exact (s) | Captum ShapleyValues (s) | max abs diff |",
             "|---|---|---|---|---|---|---|---|---|"]
    img = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    shap_exact(mlp(4), torch.randn(1, 4), 4)  # warm-up: SHAP compiles with numba on first use
    conv = cnn()
    for kind in ("MLP", "CNN"):
        for n in (6, 8, 12, 16, 20):
            r = 1 if n == 20 else reps
            if kind == "MLP":
                model, x, ids = mlp(n), torch.randn(1, n), None
                gid = torch.arange(n)
            else:
                model, x, gid = conv, img, patch_ids(n)
                ids = gid
            t_ours, ours = timed(lambda m=model, x=x, ids=ids, n=n: shapley_values(
                m, x, target=0, groups=ids, mode="exact", batch_size=min(CHUNK, 1 << n)), r)
            t_bare = statistics.median(bare_cost(model, x, torch.zeros_like(x), gid, n)
                                       for _ in range(r))
            players = ours.extras["players"][0]
            t_shap = t_cap = "-"
            diffs = []
            if kind == "MLP":
                t, sv = timed(lambda m=model, x=x, n=n: shap_exact(m, x, n), r)
                t_shap = f"{t:.3f}"
                diffs.append(float(np.abs(sv.values[0] - players.numpy()).max()))
            if n <= captum_max:
                t, cv = timed(lambda m=model, x=x, ids=ids: captum_shapley(m, x, ids), 1)
                t_cap = f"{t:.2f}"
                ref = cv[0].reshape(-1)[:n] if ids is None else torch.stack(
                    [cv[0][gid == i][0] for i in range(n)])
                diffs.append(float((ref - players).abs().max()))
            diff = f"{max(diffs):.1e}" if diffs else "-"
            lines.append(f"| {kind} | {n} | {1 << n:,} | {t_ours:.3f} | {t_bare:.3f} | "
                         f"{t_ours / t_bare:.2f} | {t_shap} | {t_cap} | {diff} |")
            print(lines[-1], flush=True)
    return lines


def occlusion_rows(reps: int) -> list[str]:
    from captum.attr import Occlusion

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    t_ours, ours = timed(lambda: occlusion(model, x, target=3, window=(8, 8)), reps)
    rows = ours.params["forward_evaluations"]
    occ = Occlusion(model)
    t_c1, ref = timed(lambda: occ.attribute(x, sliding_window_shapes=(3, 8, 8), strides=(3, 8, 8),
                                            target=3), reps)
    t_c64, _ = timed(lambda: occ.attribute(x, sliding_window_shapes=(3, 8, 8),
                                           strides=(3, 8, 8), target=3,
                                           perturbations_per_eval=64), reps)
    diff = float((ours.values - ref).abs().max())
    return [
        "| method | windows | seconds (median) | attribkit speed-up |",
        "|---|---|---|---|",
        f"| attribkit occlusion (automatic chunks) | 784 | {t_ours:.3f} | 1.00 |",
        f"| Captum Occlusion, perturbations_per_eval=1 | 784 | {t_c1:.3f} | {t_c1 / t_ours:.2f} |",
        f"| Captum Occlusion, perturbations_per_eval=64 | 784 | {t_c64:.3f} | "
        f"{t_c64 / t_ours:.2f} |",
        "",
        f"Max abs difference to Captum: {diff:.1e}; model evaluations: {rows} for every row.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--captum-max", type=int, default=6)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs"
                                             / "benchmarks-shapley.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import captum
    import shap

    head = [
        "## Exact Shapley values and occlusion",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load "
        f"average {os.getloadavg()[0]:.1f} at the start (times are CPU seconds of the "
        "single-threaded process, which other jobs on a shared machine disturb less than wall "
        f"time), torch {torch.__version__} with "
        f"{args.threads} thread(s), float32, captum {captum.__version__}, shap {shap.__version__}."
        f" Medians of {args.reps} runs (one run at 20 players). Script: `benchmarks/shapley.py`.",
        "",
        "### Exact Shapley values",
        "",
        "attribkit evaluates all 2^n coalitions in chunks of 8,192 rows, takes the Harsanyi "
        "dividends with the fast Moebius transform and returns the Shapley values *and* all 2^n "
        "dividends. 'bare' is the same model on 2^n pre-built rows in the same chunks (the floor "
        "for any exact method); ratio = attribkit / bare. SHAP's exact explainer is run on the "
        "MLP (baseline = zeros, one background row); Captum's ShapleyValues enumerates n! "
        "permutations and is run only up to n = " + str(args.captum_max) + ".",
        "",
    ]
    lines = head + shapley_rows(args.reps, args.captum_max)
    lines += ["", "### Occlusion, 8 x 8 patches on a 224 x 224 image", "",
              "A small conv net (two stride-2 convolutions), 784 windows, one image.", ""]
    lines += occlusion_rows(args.reps)
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_section("shapley", text, Path(args.out))
    print(text)


if __name__ == "__main__":
    main()
