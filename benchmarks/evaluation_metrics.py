"""Every registered method under every metric family, and attribkit's metric time vs Quantus.

Usage::

    nice -n 10 .venv/bin/python benchmarks/evaluation_metrics.py [--photos 1] [--rows 8]
        [--skip-vision]

* Tabular zoo: the breast-cancer MLP (a torch model: every method) and the gradient-boosted
  trees of ``demo --task gbm`` (a black box: the gradient family refuses it), ``--rows`` test
  rows, under the model-calling and the complexity metrics (ROAD and region perturbation need
  images).
* Vision: EfficientNet-Lite0 (softmax) on ``--photos`` demo photos with the demo's cheap method
  options, every metric except the relevance accuracies (no ground-truth masks for the photos).
* Timing: the photo metrics Quantus also has, for two methods, computed by attribkit and by
  Quantus 0.6 with the same settings on the same attributions, in one process.

Writes the sections ``metrics-tabular``, ``metrics-vision`` and ``metrics-timing`` of
``docs/evaluation.md``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import attribkit
from attribkit import evaluate
from attribkit.core.pages import write_section

DOC = Path(__file__).resolve().parent.parent / "docs" / "evaluation.md"
TABULAR = ("faithfulness_correlation", "pixel_flipping", "infidelity", "max_sensitivity",
           "sparseness", "complexity")
VISION = ("faithfulness_correlation", "pixel_flipping", "region_perturbation", "road",
          "infidelity", "max_sensitivity", "sparseness", "complexity")


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, torch "
            f"{torch.__version__} ({torch.get_num_threads()} threads); measured "
            f"{time.strftime('%Y-%m-%d')}")


def _tabular_options(background: torch.Tensor, groups: torch.Tensor) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for name, info in attribkit.methods().items():
        params = inspect.signature(info.fn).parameters
        o: dict[str, Any] = {}
        if "background" in params:
            o["background"] = background
        if "steps" in params:
            o["steps"] = 32
        if "n_samples" in params:
            o["n_samples"] = {"kernel_shap": 1024, "lime": 500}.get(name, 16)
        if name == "shapley_values":
            o["groups"] = groups
        opts[name] = o
    return opts


def tabular(rows: int) -> str:
    from attribkit.demo.gbm import gbm_setup
    from attribkit.zoo import tabular as tab

    mlp, data = tab.load_breast_cancer_mlp()
    gbm = gbm_setup()
    x = data.X_test[:rows]
    names = [*attribkit.methods(), "random"]
    opts = _tabular_options(data.X_train[:16], tab.group_mask())
    parts = []
    for label, model in (("breast-cancer MLP (torch)", mlp),
                         ("gradient-boosted trees (black box, predict_proba)", gbm.predict)):
        t = time.perf_counter()
        table = evaluate.compare(model, x, names, measures=(*TABULAR, "seconds"), target=1,
                                 steps=30, method_options=opts)
        parts.append(f"#### {label}, {rows} test rows, target: benign "
                     f"({time.perf_counter() - t:.0f} s)\n\n{_short_errors(table)}"
                     + (_zero_maps(model, x, opts) if isinstance(model, torch.nn.Module) else ""))
        print(parts[-1], flush=True)
    return "\n\n".join(parts)


def _zero_maps(model: torch.nn.Module, x: torch.Tensor, opts: dict[str, Any]) -> str:
    """A line naming the methods whose map is all zero on some rows (complexity scores it 0)."""
    found = []
    for name in attribkit.methods():
        try:
            a = attribkit.explain(model, x, name, target=1, **opts.get(name, {})).values
        except Exception:  # refused (e.g. needs a conv layer): listed under the table already
            continue
        zero = int((a.reshape(len(a), -1).abs().sum(dim=1) == 0).sum())
        if zero:
            found.append(f"{name} {zero} of {len(a)} rows")
    return ("\n\nZero maps (all attributions exactly 0; sparseness and complexity score such a "
            "row 0): " + (", ".join(found) if found else "none") + ".")


def _short_errors(table: evaluate.Comparison) -> str:
    md = table.to_markdown(digits=3).split("\n\n")[0]
    failed = sorted(table.errors)
    if failed:
        md += "\n\nNot run (the method refused the model, e.g. a black box for a gradient " \
              f"method, or needs a conv layer): {', '.join(failed)}."
    return md


def _vision(photos: int) -> tuple[Any, torch.Tensor, torch.Tensor, dict[str, Any], float]:
    from attribkit.demo.methods import method_options
    from attribkit.demo.setups import vision_setup

    setup = vision_setup(photos)
    if isinstance(setup.model, torch.nn.Module):
        setup.model.eval()  # Quantus insists on the top module's flag
    x = torch.cat(list(setup.photos.values()))
    with torch.no_grad():
        target = setup.model(x).argmax(1)
    base = torch.full_like(x, setup.baseline_value)
    opts = {}
    for name, info in attribkit.methods().items():
        o = method_options(info.fn, setup, x, target, base)
        o.pop("target", None)
        if not info.needs_baseline:
            o.pop("baseline", None)
        if name in ("kernel_shap", "lime"):
            o["n_samples"] = 128
        opts[name] = o
    return setup.model, x, target, opts, setup.baseline_value


#: Cheap and widely used methods first, so that a run cut short still covers them.
ORDER = ("random", "saliency", "gradient_x_input", "integrated_gradients", "occlusion",
         "kernel_shap", "lime", "grad_cam", "shapley_values", "smoothgrad", "lrp", "deeplift",
         "guided_backprop", "deconvnet", "deep_taylor", "expected_gradients",
         "prediction_difference", "deepshap", "smoothgrad_squared", "vargrad")


def vision(photos: int) -> None:
    """One comparison per method, the section rewritten after each (a partial table survives)."""
    model, x, target, opts, black = _vision(photos)
    names = [m for m in ORDER if m == "random" or m in attribkit.methods()]
    names += [m for m in attribkit.methods() if m not in names]
    head, rows, failed, t0 = "", [], [], time.perf_counter()
    for i, name in enumerate(names):
        table = evaluate.compare(model, x, [name], measures=(*VISION, "seconds"), target=target,
                                 baseline=black, steps=20, method_options=opts,
                                 metric_options={"max_sensitivity": {"n_perturb": 2},
                                                 "faithfulness_correlation": {"n_runs": 30},
                                                 "infidelity": {"n_perturb": 16}})
        lines = table.to_markdown(digits=3).split("\n\n")[0].splitlines()
        head = "\n".join(lines[:2])
        rows.append(lines[2])
        failed += [f"{m} ({table.errors[m].split(':')[0]})" for m in table.errors]
        done = f"{i + 1} of {len(names)} methods" + ("" if i + 1 == len(names) else
                                                     " (the run was cut short here)")
        text = (f"{machine()}\n\nEfficientNet-Lite0 (softmax), {x.shape[0]} photo(s), the "
                f"predicted class, black for removed pixels, the demo's cheap method options; "
                f"{done}, {time.perf_counter() - t0:.0f} s.\n\n{head}\n" + "\n".join(rows))
        if failed:
            text += f"\n\nNot run: {', '.join(failed)}."
        write_section(DOC, "metrics-vision", text)
        print(rows[-1], flush=True)


def timing(photos: int) -> str:
    import quantus

    model, x, target, opts, black = _vision(photos)
    methods = ("saliency", "occlusion")
    attrs = {m: attribkit.explain(model, x, m, target=target, **opts[m]).values for m in methods}
    xn, yn = x.numpy().astype(np.float32), target.numpy()
    n_feat = int(x[0].numel())
    step = x.shape[2] * x.shape[3] // 8  # Quantus wants a divisor of H * W: 24 steps
    ours = {
        "faithfulness_correlation": lambda a: evaluate.faithfulness_correlation(
            model, x, a, target=target, n_runs=30, subset_size=224, baseline=black),
        "pixel_flipping (24 steps)": lambda a: evaluate.pixel_flipping(
            model, x, a, target=target, features_in_step=step, baseline=black),
        "region_perturbation": lambda a: evaluate.region_perturbation(
            model, x, a, target=target, patch_size=16, regions_evaluation=20, baseline=black),
        "sparseness": lambda a: evaluate.sparseness(a),
        "complexity": lambda a: evaluate.complexity(a),
    }
    theirs = {
        "faithfulness_correlation": quantus.FaithfulnessCorrelation(
            nr_runs=30, subset_size=224, perturb_baseline=black, disable_warnings=True),
        "pixel_flipping (24 steps)": quantus.PixelFlipping(
            features_in_step=step, perturb_baseline=black, disable_warnings=True),
        "region_perturbation": quantus.RegionPerturbation(
            patch_size=16, regions_evaluation=20, perturb_baseline=black,
            disable_warnings=True),
        "sparseness": quantus.Sparseness(disable_warnings=True),
        "complexity": quantus.Complexity(disable_warnings=True),
    }
    lines = [f"{machine()}; the metrics of two methods' attributions on {x.shape[0]} photo(s) "
             f"({n_feat} features each), one run each (noisy).", "",
             "| metric | attribkit s | Quantus s | Quantus / attribkit |", "|---|---|---|---|"]
    for name, fn in ours.items():
        t = time.perf_counter()
        for m in methods:
            fn(attrs[m])
        ta = time.perf_counter() - t
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for m in methods:
                a = attrs[m].numpy()
                theirs[name](model=model, x_batch=xn, y_batch=yn, a_batch=a, device="cpu",
                             softmax=False)
        tq = time.perf_counter() - t
        lines.append(f"| {name} | {ta:.2f} | {tq:.2f} | {tq / ta:.1f}x |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--photos", type=int, default=1)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--skip-vision", action="store_true")
    ap.add_argument("--skip-tabular", action="store_true")
    args = ap.parse_args()
    if not args.skip_tabular:
        write_section(DOC, "metrics-tabular", f"{machine()}\n\n{tabular(args.rows)}")
    if not args.skip_vision:
        try:
            write_section(DOC, "metrics-timing", timing(args.photos))
        except Exception as err:
            print(f"timing failed: {err!r}", flush=True)
        vision(args.photos)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
