"""The image report's methods section: every registered method on the first photo.

Each method runs with cheap options read off the parameters its function takes
(:func:`method_options`), within a time budget; a method that cannot run on this model is noted,
not fatal.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from attribkit.core.neurons import neuron
from attribkit.demo.result import log
from attribkit.demo.setups import VisionSetup
from attribkit.demo.state import VisionRun

__all__ = ["last_conv", "method_options", "methods_section"]


def last_conv(model: Any) -> nn.Module | None:
    """The last ``Conv2d`` of a model (the usual Grad-CAM layer), or ``None``."""
    inner = model.model if isinstance(model, nn.Module) and hasattr(model, "model") else model
    if not isinstance(inner, nn.Module):
        return None
    convs = [m for m in inner.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def method_options(fn: Callable[..., Any], setup: VisionSetup, x: Tensor,
                   target: Tensor, baseline: Tensor) -> dict[str, Any]:
    """Cheap options for a registered method, from the parameters its function takes."""
    from attribkit.core.coalitions import patch_group_ids

    params = inspect.signature(fn).parameters
    opts: dict[str, Any] = {"target": target}
    if "baseline" in params:
        opts["baseline"] = baseline
    for name in ("background", "reference", "references"):
        if name in params:
            opts[name] = baseline
    for name, value in (("steps", setup.compare_steps), ("n_samples", setup.compare_steps),
                        ("seed", 0)):
        if name in params:
            opts[name] = value
    if "window" in params:
        opts["window"] = (setup.patch, setup.patch)
        if "stride" in params:
            opts["stride"] = (setup.patch, setup.patch)
    if "groups" in params:  # Shapley-type: few big patches, sampled
        opts["groups"] = patch_group_ids(tuple(x.shape[1:]), (2 * setup.patch, 2 * setup.patch))
        if "mode" in params:
            opts["mode"] = "sampling"
        if "n_samples" in params:
            opts["n_samples"] = max(2, setup.compare_steps // 2)
    layer = params.get("layer")
    if layer is not None and layer.default is inspect.Parameter.empty:
        opts["layer"] = last_conv(setup.model)
    unit = params.get("neuron")
    if unit is not None and unit.default is inspect.Parameter.empty:  # neuron_conductance
        conv = last_conv(setup.model)
        if conv is not None:
            opts["neuron"] = neuron(conv, 0, average=True)
    if "rule" in params and "integrated" in fn.__name__:
        opts["rule"] = "adaptive"
    return opts


def methods_section(run: VisionRun) -> None:
    """Run every registered method on the first photo; add their pictures and a table."""
    from attribkit import viz
    from attribkit.methods import methods
    from attribkit.report.reading import read_methods

    setup, result = run.setup, run.result
    ig, _, _, _ = run.gradients()
    gap, rg = ig.gap, ig.relative_gap
    assert gap is not None and rg is not None
    # 3. Every registered method on one photo.
    run.stages.start("all methods")
    log("[4/5] every registered method on one photo", run.quiet)
    compared: dict[str, Any] = {"integrated_gradients": ig}  # row 0 of the grid: photo 0
    table: list[list[Any]] = []
    x0, b0, c0 = run.x[:1], run.baseline[:1], run.cls[:1]
    started = (time.perf_counter(), time.process_time())
    for name, info in methods().items():
        if name == "integrated_gradients":
            table.append([name, info.family, f"{setup.ig_steps} adaptive steps",
                          float(gap[0]), float(rg[0]), "(above)"])
            continue
        # budget in CPU seconds (2 cores) with a wall-clock cap, so a busy machine still ends
        if (time.process_time() - started[1] > 2 * setup.compare_budget_s
                or time.perf_counter() - started[0] > 2 * setup.compare_budget_s):
            result.notes.append(f"{name}: skipped (comparison time budget spent)")
            table.append([name, info.family, "skipped: time budget", "", "", ""])
            continue
        t = time.perf_counter()
        try:
            opts = method_options(info.fn, setup, x0, c0, b0)
            if not info.needs_baseline:
                opts.pop("baseline", None)
            model = (setup.module_model if info.needs_module and setup.module_model is not None
                     else setup.model)
            a = info.fn(model, x0, **opts)
        except Exception as err:  # a method that cannot run here is noted, not fatal
            msg = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
            result.notes.append(f"{name}: skipped ({type(err).__name__}: {msg})")
            table.append([name, info.family, f"skipped: {msg}", "", "", ""])
            continue
        dt = time.perf_counter() - t
        if a.multi_target:
            a = a.for_target(0)
        # the gap is shown only for methods that claim completeness; a layer method's values
        # live at the layer (not drawn over the photo)
        if a.values.shape[-2:] == x0.shape[-2:]:
            compared[name] = a if info.complete else a.values
        g, r = (a.gap, a.relative_gap) if info.complete else (None, None)
        table.append([name, info.family, ", ".join(f"{k}={v}" for k, v in opts.items()
                                                    if k in ("steps", "n_samples", "window",
                                                             "mode")),
                      float(g[0]) if g is not None else "", float(r[0]) if r is not None else "",
                      f"{dt:.1f} s"])
    run.rep.heading(f"All registered methods on {run.names[0]}")
    run.rep.image(viz.comparison_grid(run.images[:1], compared, labels=run.labels[:1], panel=3.0,
                                      max_columns=4),
                  "each method's pixel importance (eq. 1) with its scale, and its completeness "
                  "gap where it has a baseline", wide=True)
    skipped = {r[0]: str(r[2]) for r in table if str(r[2]).startswith("skipped")}
    run.rep.table(["method", "family", "settings", "gap", "relative gap", "time"], table,
                  reading=read_methods(len(table) - len(skipped), skipped,
                                       {r[0]: r[4] for r in table if isinstance(r[4], float)}))
