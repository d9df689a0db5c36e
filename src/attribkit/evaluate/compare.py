"""One call: several methods x several inputs x several measures -> a table and its curves."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attribkit.core.attribution import Attribution
from attribkit.core.docstrings import shared_parameters
from attribkit.core.engine import prepare
from attribkit.core.errors import AttribkitError, InputError
from attribkit.core.masks import pick_mask
from attribkit.core.signs import DEFAULT_SIGN, check_sign
from attribkit.core.summary import summary_repr
from attribkit.evaluate._features import feature_groups
from attribkit.evaluate.ablation import ablation_curve, deletion_curve, insertion_curve
from attribkit.evaluate.localisation import Box, mass_inside, pointing_game
from attribkit.evaluate.metrics import METRICS, MetricContext
from attribkit.methods.registry import get

__all__ = ["MEASURES", "Comparison", "compare", "random_attribution"]

#: Measure name -> (description, whether higher is better).
MEASURES: dict[str, tuple[str, bool]] = {
    "aopc": ("AOPC after the last ablation step (Gradients of Counterfactuals)", True),
    "deletion": ("mean score along the deletion curve", False),
    "insertion": ("mean score along the insertion curve", True),
    "completeness": ("|sum(a) - (F(x) - F(x'))| / |F(x) - F(x')|", False),
    "localisation": ("share of |a| inside the region", True),
    "pointing": ("pointing-game hit rate", True),
    "seconds": ("wall time of the attribution", False),
}
MEASURES.update({k: (m.description, m.higher_is_better) for k, m in METRICS.items()})


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`.

    Attributes
    ----------
    methods
        The compared methods (rows).
    measures
        The measures (columns).
    values
        ``(method, measure) -> (N,)`` per-example values (absent where a method failed).
    curves
        ``method -> {"aopc" | "deletion" | "insertion": curve.to_dict()}``.
    errors
        ``method -> reason`` for methods that could not run on these inputs.
    """

    methods: tuple[str, ...]
    measures: tuple[str, ...]
    values: dict[tuple[str, str], Tensor]
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    __repr__ = summary_repr

    def mean(self, method: str, measure: str) -> float:
        """The mean over the inputs (``nan`` where not measured)."""
        v = self.values.get((method, measure))
        return float("nan") if v is None else float(v.to(torch.float64).nanmean())

    def best(self, measure: str) -> str | None:
        """The method with the best mean on ``measure``."""
        scored = [(self.mean(m, measure), m) for m in self.methods]
        scored = [(v, m) for v, m in scored if not math.isnan(v)]
        if not scored:
            return None
        higher = MEASURES.get(measure, ("", True))[1]
        return (max(scored) if higher else min(scored))[1]

    def to_markdown(self, digits: int = 4) -> str:
        """A markdown table of means (arrows say which direction is better)."""
        head = [f"{m} {'↑' if MEASURES.get(m, ('', True))[1] else '↓'}" for m in self.measures]
        lines = ["| method | " + " | ".join(head) + " |",
                 "|---|" + "---|" * len(self.measures)]
        for method in self.methods:
            if method in self.errors:
                lines.append(f"| {method} | " + " | ".join(["–"] * len(self.measures)) + " |")
                continue
            cells = [f"{self.mean(method, m):.{digits}g}" for m in self.measures]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        for method, why in self.errors.items():
            lines.append(f"\n{method}: not run ({why})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Means, per-example values, curves and errors as plain Python objects."""
        return {
            "methods": list(self.methods), "measures": list(self.measures),
            "mean": {m: {k: self.mean(m, k) for k in self.measures} for m in self.methods},
            "values": {f"{m}/{k}": v.tolist() for (m, k), v in self.values.items()},
            "curves": self.curves, "errors": dict(self.errors),
        }


def random_attribution(inputs: Tensor, seed: int = 0) -> Attribution:
    """Uniform random attributions (the reference any faithful method should beat)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(inputs.shape, generator=g, dtype=torch.float64).to(inputs.dtype)
    return Attribution(values=v.to(inputs.device), inputs=inputs, method="random")


def _attribute(name: str, model: Callable[..., Tensor], inputs: Tensor, target: Any,
               baseline: Any, options: Mapping[str, Any]) -> Attribution:
    if name == "random":
        return random_attribution(inputs, int(options.get("seed", 0)))
    info = get(name)
    opts = dict(options)
    takes_baseline = "baseline" in inspect.signature(info.fn).parameters
    if info.needs_baseline and takes_baseline and "baseline" not in opts:
        opts["baseline"] = baseline
    if info.stochastic:
        opts.setdefault("seed", 0)
    return info.fn(model, inputs, target=target, **opts)


@shared_parameters("model", "inputs", "groups", "batch_size:points")
def compare(
    model: Callable[..., Tensor],
    inputs: Tensor,
    methods: Sequence[str] = ("integrated_gradients", "random"),
    *,
    measures: Sequence[str] = ("aopc", "deletion", "insertion", "completeness"),
    target: Any = None,
    baseline: Any = None,
    region: Tensor | Box | Sequence[Box] | None = None,
    feature_mask: Tensor | None = None,
    groups: Tensor | None = None,
    k: int | None = None,
    steps: int | None = None,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    sign: str = DEFAULT_SIGN,
    batch_size: int | None = None,
    progress: bool = False,
    seed: int = 0,
    metric_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Comparison:
    """Attribute with each method and score every attribution on every measure.

    Parameters
    ----------
    methods
        Registered method names, plus ``"random"`` (uniform random attributions).
    measures
        Names from :data:`MEASURES`; ``localisation`` and ``pointing`` need ``region``.
    target
        The explained class; default the predicted class, the same for every method.
    baseline
        The baseline of the methods that use one, and of the perturbations.
    region
        Where the evidence is (a box, boxes or a mask) for the localisation measures.
    feature_mask
        Integer group ids for the perturbation curves (:mod:`attribkit.masks`; default pixels /
        elements): whole groups are removed together.
    k
        Features ablated per AOPC step (default ``max(1, features // 500)``: 100 pixels at 224^2).
    steps
        Steps of the curves (default 50, fewer when there are fewer features).
    method_options
        Per-method options, e.g. ``{"integrated_gradients": {"steps": 64}}``.
    sign
        How attributions are ranked and reduced by the curves and localisation measures (see
        :func:`attribkit.evaluate.ablation_curve`; ``"all"`` is not defined for localisation).
    progress
        Show progress bars.
    seed
        Seed of the stochastic measures (faithfulness correlation, ROAD, infidelity, ...).
    metric_options
        Per-measure options of the metric families, e.g. ``{"road": {"percentages": [20, 50]}}``
        (see :mod:`attribkit.evaluate.metrics` for the defaults a comparison uses).
    """
    groups = pick_mask(feature_mask, groups)
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise InputError(f"unknown measures {unknown}; choose from {sorted(MEASURES)}.")
    if region is None and ({"localisation", "pointing", "relevance_mass", "relevance_rank"}
                           & set(measures)):
        raise InputError("the localisation measures need region= (a box, boxes or a mask).")
    with prepare(model, inputs, target=target, needs_baseline=False, batch_size=1,
                 black_box=True) as p:
        fixed = p.target.indices if p.target.indices is not None else target
        n_features = int(feature_groups(p.inputs, groups).max()) + 1
    kk = k or max(1, n_features // 500)
    n_steps = steps or min(50, math.ceil(n_features / kk))
    check_sign(sign)
    common: dict[str, Any] = {"sign": sign, "target": fixed, "baseline": baseline, "groups": groups,
                              "batch_size": batch_size, "progress": progress}
    values: dict[tuple[str, str], Tensor] = {}
    curves: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for name in methods:
        t0 = time.perf_counter()
        try:
            attr = _attribute(name, model, inputs, fixed, baseline,
                              (method_options or {}).get(name, {}))
        except (AttribkitError, TypeError, ValueError, RuntimeError) as err:
            errors[name] = f"{type(err).__name__}: {err}"
            continue
        seconds = time.perf_counter() - t0
        if attr.values.shape != inputs.shape:
            errors[name] = f"attributions {tuple(attr.values.shape)} are not input-shaped"
            continue
        curves[name] = {}
        for measure in measures:
            if measure in METRICS:
                ctx = MetricContext(model, inputs, attr, fixed, baseline, name,
                                    (method_options or {}).get(name, {}), n_steps, region, seed,
                                    batch_size, progress, metric_options or {})
                values[(name, measure)] = METRICS[measure].score(ctx).to(torch.float64).cpu()
                continue
            v = _measure(measure, model, inputs, attr, seconds, region, kk, n_steps, common,
                         curves[name])
            values[(name, measure)] = v
    return Comparison(methods=tuple(methods), measures=tuple(measures), values=values,
                      curves=curves, errors=errors)


def _measure(measure: str, model: Callable[..., Tensor], inputs: Tensor, attr: Attribution,
             seconds: float, region: Any, k: int, steps: int, common: dict[str, Any],
             curves: dict[str, Any]) -> Tensor:
    n = inputs.shape[0]
    if measure == "seconds":
        return torch.full((n,), seconds, dtype=torch.float64)
    if measure == "completeness":
        rg = attr.relative_gap
        return (torch.full((n,), float("nan"), dtype=torch.float64) if rg is None
                else rg.to(torch.float64).cpu())
    if measure == "localisation":
        return mass_inside(attr, region, sign=common["sign"]).to(torch.float64).cpu()
    if measure == "pointing":
        return pointing_game(attr, region, sign=common["sign"]).to(torch.float64).cpu()
    if measure == "aopc":
        c = ablation_curve(model, inputs, attr, k=k, steps=steps, **common)
        curves["aopc"] = c.to_dict()
        return c.aopc_per_example[:, -1]
    fn = deletion_curve if measure == "deletion" else insertion_curve
    c = fn(model, inputs, attr, steps=steps, **common)
    curves[measure] = c.to_dict()
    return c.area_per_example
