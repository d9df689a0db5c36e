"""``attribkit explain``, one method on one input: run it, summarise it, draw it.

The result record is the ``--json`` schema (docs/cli.md); top features of an image are regions,
given as boxes in the pixel coordinates of the file the user gave.
"""

from __future__ import annotations

import math
import pathlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attribkit.cli._common import num
from attribkit.cli.inputs import Item
from attribkit.cli.models import Loaded

__all__ = ["Outcome", "estimate_seconds", "predict", "run_one", "save_picture"]


@dataclass
class Outcome:
    """One method on one input: the record, and what to draw (``None`` when it failed)."""

    record: dict[str, Any]
    attribution: Any = None
    scores: Any = None  # per-feature scores to draw (tokens, atoms, columns)
    names: Sequence[str] | None = None


def predict(loaded: Loaded, item: Item) -> tuple[int | None, str, list[tuple[str, float]]]:
    """The predicted class (``None`` for single-output models), a line describing it, and the
    top classes as ``(name, score)``."""
    with torch.no_grad():
        if loaded.kind == "text":
            out = loaded.model(item.x, item.extra["mask"])
        else:
            assert item.x is not None
            x = item.x.to(item.extra.get("dtype", item.x.dtype))
            out = loaded.model(x)
    out = torch.as_tensor(out).detach().double()
    if out.dim() < 2 or out.shape[-1] == 1:
        return None, f"output {float(out.flatten()[0]):.4g}", []
    # probabilities already (a predict_proba, a softmax model): no second softmax
    already = bool(((out >= 0) & (out <= 1)).all()) and bool(
        torch.allclose(out.sum(-1), torch.ones(out.shape[0], dtype=out.dtype), atol=1e-6))
    probs = out[0] if loaded.kind == "image" or already else out[0].softmax(-1)
    top = probs.topk(min(3, probs.numel()))
    tops = [(_label(loaded, int(i)), float(p)) for p, i in zip(top.values, top.indices,
                                                                 strict=True)]
    return int(top.indices[0]), "predicted " + ", ".join(f"{n} {p:.3f}" for n, p in tops), tops


def _label(loaded: Loaded, c: int) -> str:
    if loaded.kind == "tensor":
        return f"class {c}"
    try:
        return f"{c} {loaded.label(c)}"
    except Exception:
        return f"class {c}"


def _regions(values: Tensor, k: int, item: Item) -> list[dict[str, Any]]:
    """The ``k`` square regions of largest |sum| of an image's attribution, as file boxes."""
    v = values.detach().double()
    m = v.sum(0) if v.dim() == 3 else v
    h, w = m.shape[-2:]
    cell = max(1, round(min(h, w) / 14))
    pooled = torch.nn.functional.avg_pool2d(m[None, None], cell, cell, ceil_mode=True)[0, 0]
    pooled = pooled * cell * cell
    left, top, sx, sy = item.extra.get("crop", (0, 0, 1.0, 1.0))
    fw, fh = item.extra.get("size", (w, h))
    out = []
    for i in pooled.flatten().abs().argsort(descending=True)[:k].tolist():
        r, c = divmod(i, pooled.shape[1])
        x0, y0 = (left + c * cell) / sx, (top + r * cell) / sy
        x1, y1 = (left + min(w, (c + 1) * cell)) / sx, (top + min(h, (r + 1) * cell)) / sy
        out.append({"box": [max(0, math.floor(x0)), max(0, math.floor(y0)),
                            min(fw, math.ceil(x1)), min(fh, math.ceil(y1))],
                    "value": float(pooled[r, c])})
    return out


def _top_features(values: Tensor, k: int, names: Sequence[str] | None) -> list[dict[str, Any]]:
    v = values.detach().double()
    flat = v.flatten()
    out = []
    for i in flat.abs().argsort(descending=True)[:k].tolist():
        idx = [int(j) for j in torch.unravel_index(torch.tensor(i), v.shape)]
        entry: dict[str, Any] = {"index": idx, "value": float(flat[i])}
        if names is not None and len(names) == flat.numel():
            entry["name"] = names[i]
        out.append(entry)
    return out


def _call(loaded: Loaded, item: Item, method: str, options: dict[str, Any],
          target: int | None, progress: bool) -> tuple[Any, Tensor, Sequence[str] | None]:
    """Run the method; return the Attribution, per-feature scores and feature names."""
    import inspect

    from attribkit.methods import explain, get

    opts = dict(options)
    if "progress" in inspect.signature(get(method).fn).parameters:
        opts["progress"] = progress
    if loaded.kind == "text":
        from attribkit.zoo import text

        steps = opts.pop("steps", 32)
        ex = text.explain_text(item.raw, method=method, target=target, steps=steps,
                               model=loaded.model, **opts)  # type: ignore[arg-type]
        return ex.attribution, ex.scores, ex.tokens
    assert item.x is not None
    x = item.x.to(item.extra.get("dtype", item.x.dtype))
    attr = explain(loaded.model, x, method=method, target=target, **opts)
    if attr.multi_target:
        attr = attr.for_target(0)
    if loaded.kind == "molecule":
        from attribkit.zoo import chem

        split = chem.split_attribution(attr.values[0], item.extra["bonded"], method=method)
        scores = split.per_atom(include_pairs=True)
        return attr, scores, item.extra["atoms"]
    names = item.extra.get("names") or (  # a CSV's header, else the zoo model's names
        loaded.extra["data"].feature_names if loaded.kind == "tabular" else None)
    if names is not None and len(names) != attr.values[0].numel():
        names = None  # a layer's units (layer=), not the input's columns
    return attr, attr.values[0], names


def run_one(loaded: Loaded, item: Item, method: str, options: dict[str, Any],
            target: int | None, top: int, progress: bool) -> Outcome:
    """Run ``method`` on ``item``; exceptions propagate (the caller records the failure)."""
    t0 = time.perf_counter()
    attr, scores, names = _call(loaded, item, method, options, target, progress)
    tgt = int(attr.target.flatten()[0]) if attr.target is not None else None
    gap, rel = attr.gap, attr.relative_gap
    image_like = loaded.kind in ("image", "tensor") and item.image is not None
    rec: dict[str, Any] = {
        "input": item.source, "name": item.name, "method": method, "status": "ok",
        "target": tgt,
        "target_name": loaded.label(tgt) if tgt is not None and loaded.kind != "tensor" else None,
        "output": num(attr.output.flatten()[0]) if attr.output is not None else None,
        "baseline_output": num(attr.baseline_output.flatten()[0])
        if attr.baseline_output is not None else None,
        "sum": num(attr.total().flatten()[0]),
        "gap": num(gap.flatten()[0]) if gap is not None else None,
        "relative_gap": num(rel.flatten()[0]) if rel is not None else None,
        "top_features": _regions(scores, top, item) if image_like and scores.dim() >= 2
        else _top_features(scores, top, names),
        "seconds": round(time.perf_counter() - t0, 3), "files": [],
    }
    from attribkit.methods import get

    if not get(method).complete:
        gap_txt = "not complete (no gap)"
    elif rec["gap"] is not None and rec["relative_gap"] is not None:
        gap_txt = f"gap {rec['gap']:+.3g} ({rec['relative_gap']:.2%})"
    else:
        gap_txt = "gap n/a (no baseline)"
    tname = f" ({rec['target_name']})" if rec["target_name"] else ""
    tgt_txt = f"target {tgt}{tname}" if tgt is not None else "single output"
    out_txt = f" F(x)={rec['output']:.4g}" if rec["output"] is not None else ""
    rec["summary"] = (f"{item.source[:50]} | {method} | {tgt_txt}{out_txt} | "
                      f"sum {rec['sum']:.4g} | {gap_txt}")
    return Outcome(rec, attr, scores, names)


def save_picture(loaded: Loaded, item: Item, res: Outcome, path: pathlib.Path) -> Any:
    """Write the result's picture to ``path`` (PNG); return what the report shows, or None."""
    from attribkit import viz

    if item.image is not None and res.attribution is not None \
            and res.attribution.values.dim() == 4:
        # the report's style: an inferno overlay with its colour bar and scale (and unit)
        method = res.record["method"]
        fig = viz.attribution_figure(res.attribution.values, item.image,
                                     title=f"{item.name}: {method}",
                                     label=viz.map_label(method))
        fig.savefig(path, dpi=100)
        return fig
    if loaded.kind == "molecule":
        img = viz.molecule_image(item.raw, res.scores, legend=res.record["method"])
        img.save(path)
        return img
    if loaded.kind == "text" or res.scores is None or res.scores.dim() != 1:
        return None
    names = list(res.names) if res.names is not None else [f"x[{i}]" for i in
                                                            range(res.scores.numel())]
    fig = viz.feature_bars(names, res.scores, title=f"{item.name}: {res.record['method']}")
    fig.savefig(path)
    return fig


def estimate_seconds(loaded: Loaded, item: Item, method: str, options: dict[str, Any],
                     forward_s: float) -> float:
    """A rough cost: model evaluations the method will make x the time of one forward row."""
    import inspect

    from attribkit.methods import get

    info = get(method)
    params = inspect.signature(info.fn).parameters

    def opt(name: str, fallback: int) -> int:
        v = options.get(name, params[name].default if name in params else fallback)
        return int(v) if isinstance(v, int) and not isinstance(v, bool) else fallback

    if "window" in params and item.x is not None:
        from attribkit.methods.occlusion import window_grid

        grids = window_grid(item.x.shape[1:], options.get("window"), options.get("stride"))
        evals = 1.0
        for g in grids:
            evals *= g.shape[0]
        if "background" in options:
            evals *= max(1, int(options["background"].shape[0]))
        return evals * forward_s
    if "groups" in options:
        players = int(options["groups"].max()) + 1
        if options.get("mode") == "sampling" or players > 14:
            return opt("n_samples", 256) * (players + 1) * forward_s
        return float(2 ** players) * forward_s
    if info.family in ("gradient", "path"):
        k = opt("steps", 0) or opt("n_samples", 1)
        if "background" in options and "n_samples" not in params:
            k *= max(1, int(options["background"].shape[0]))
        return 3.0 * max(1, k) * forward_s
    return 3.0 * forward_s
