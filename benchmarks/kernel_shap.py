"""KernelSHAP against exact Shapley values, next to SHAP's KernelExplainer.

Usage::

    nice -n 10 .venv/bin/python benchmarks/kernel_shap.py [--seeds 10] [--examples 4]

For 10 and 16 players (a 2-layer MLP on one feature per player, one baseline row, the score of
class 0), at several budgets of model evaluations, both estimators get the same black box (a
NumPy function around the same torch model) and the same budget of coalitions; the error is the
root-mean-square difference to the exact Shapley values (``attribkit.shapley_values``,
``mode="exact"``), averaged over the examples and over ``--seeds`` seeds. SHAP runs with its
default ``l1_reg="num_features(10)"`` and with ``l1_reg=False`` (plain regression). Wall time is
the median over the seeds of explaining all examples (one torch thread, same process,
alternating). Writes the ``kernel-shap`` section of ``docs/benchmarks-shapley.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import attribkit
from attribkit.core.pages import write_section

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-shapley.md"
BUDGETS = {10: (64, 128, 256, 512, 1022), 16: (128, 256, 512, 1024, 2048, 4096)}


def mlp(n: int) -> nn.Module:
    torch.manual_seed(n)
    return nn.Sequential(nn.Linear(n, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 2)).double().eval()


def run(n: int, seeds: int, examples: int) -> list[dict[str, Any]]:
    import shap

    net = mlp(n)

    def f(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(np.asarray(a, dtype=np.float64))).numpy()

    rng = np.random.default_rng(n)
    x = rng.normal(size=(examples, n))
    bg = np.zeros((1, n))
    exact = attribkit.shapley_values(net, torch.tensor(x), baseline=torch.tensor(bg), target=0,
                                     mode="exact").values.numpy()
    bb = attribkit.black_box(f)
    explainer = shap.KernelExplainer(f, bg)
    rows = []
    for m in BUDGETS[n]:
        errs: dict[str, list[float]] = {"attribkit": [], "shap": [], "shap_l1_off": []}
        secs: dict[str, list[float]] = {k: [] for k in errs}
        calls: dict[str, int] = {}
        for s in range(seeds):
            t = time.perf_counter()
            ours = attribkit.kernel_shap(bb, x, baseline=torch.tensor(bg), target=0,
                                         n_samples=m, seed=s)
            secs["attribkit"].append(time.perf_counter() - t)
            errs["attribkit"].append(_rmse(ours.values.numpy(), exact))
            calls["attribkit"] = int(ours.params["forward_evaluations"]) // examples
            for key, l1 in (("shap", "num_features(10)"), ("shap_l1_off", False)):
                np.random.seed(s)
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    phi = explainer.shap_values(x, nsamples=m, l1_reg=l1, silent=True)
                secs[key].append(time.perf_counter() - t)
                errs[key].append(_rmse(np.asarray(phi)[..., 0], exact))
        calls["shap"] = m + 2  # m coalitions on one background row, plus f(x) and f(baseline)
        rows.append({"n": n, "budget": m, "calls": calls,
                     "err": {k: statistics.mean(v) for k, v in errs.items()},
                     "sec": {k: statistics.median(v) for k, v in secs.items()}})
        print(rows[-1], flush=True)
    return rows


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a - b) ** 2).mean()))


def table(rows: list[dict[str, Any]], seeds: int, examples: int) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()} "
        f"({os.cpu_count()} cores shared with other jobs, torch {torch.__version__}, 1 thread); "
        f"RMSE to exact Shapley values, mean over {seeds} seeds x {examples} examples; wall time "
        "per call explaining all examples, median over the seeds. `evals` = model evaluations "
        "per example (coalitions + the empty and the full one).",
        "",
        "| players | budget | evals | attribkit RMSE | SHAP RMSE (default l1) | SHAP RMSE "
        "(l1 off) | attribkit s | SHAP s (l1 off) | SHAP / attribkit time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        e, s = r["err"], r["sec"]
        lines.append(
            f"| {r['n']} | {r['budget']} | {r['calls']['attribkit']} | {e['attribkit']:.2e} | "
            f"{e['shap']:.2e} | {e['shap_l1_off']:.2e} | {s['attribkit']:.3f} | "
            f"{s['shap_l1_off']:.3f} | {s['shap_l1_off'] / s['attribkit']:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--examples", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = run(10, args.seeds, args.examples) + run(16, args.seeds, args.examples)
    write_section(DOC, "kernel-shap", table(rows, args.seeds, args.examples),
                  title="# Benchmarks: Shapley values")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
