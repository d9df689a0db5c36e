"""``attribkit explain``'s report: per input, the prediction and every method.

Rows of a table (a CSV, the tabular zoo) get the global views (summary beeswarm, mean |a|,
dependence of the top feature) of each method first, then one compact row per item: a waterfall
per method from the base value F(x') to the prediction F(x), each feature's value beside its bar.
A photo gets one grid (:func:`attribkit.viz.explanation_grid`): the input, its top classes with
scores, and every method's map with its colour bar, a method that failed or was refused drawn in
its place with the reason. Texts get highlighted tokens, molecules and tables their pictures.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import torch

from attribkit.cli.explain_run import Outcome
from attribkit.cli.inputs import Item
from attribkit.cli.models import Loaded

__all__ = ["write_report"]

Shown = tuple[dict[str, Any], Any, Outcome | None]
Section = tuple[Item, str, list[tuple[str, float]], Sequence[Shown]]


def _is_table(loaded: Loaded, sections: Sequence[Section]) -> bool:
    """Rows of numbers (a CSV, the tabular zoo): one compact row per item, global views on top."""
    return loaded.kind in ("tabular", "tensor") and bool(sections) and all(
        item.image is None and item.x is not None and item.x.dim() == 2
        for item, _, _, _ in sections)


def _features(item: Item) -> Any:
    """The row's values as the user wrote them (the raw CSV values), else the model's input."""
    assert item.x is not None
    x = item.x.detach().double().reshape(-1)
    raw = item.raw
    if isinstance(raw, list | tuple) and len(raw) == x.numel():
        try:
            return torch.tensor([float(v) for v in raw], dtype=torch.float64)
        except (TypeError, ValueError):
            return x
    return x


def _names(loaded: Loaded, sections: Sequence[Section]) -> list[str]:
    for _, _, _, shown in sections:
        for _, _, res in shown:
            if res is not None and res.names is not None:
                return [str(n) for n in res.names]
    width = _features(sections[0][0]).numel()
    header = getattr(sections[0][0], "extra", {}).get("names")
    if header and len(header) == width:  # a CSV's own column names
        return [str(n) for n in header]
    if loaded.kind == "tabular":
        return list(loaded.extra["data"].feature_names)
    return [f"x[{i}]" for i in range(width)]


def _global_views(rep: Any, names: list[str], sections: Sequence[Section]) -> None:
    """Summary views of each method over all the rows of a table (two rows or more)."""
    if len(sections) < 2:
        return
    methods = [rec["method"] for rec, _, _ in sections[0][3]]
    for m in methods:
        rows = [(it, rec, res) for it, _, _, shown in sections for rec, _, res in shown
                if rec["method"] == m and res is not None]
        if len(rows) != len(sections) or any(
                res.scores.numel() != len(names) for _, _, res in rows):
            continue  # missing rows, or a layer's units (layer=) rather than the columns
        # rows explained for different classes do not share one plot: one view per class
        classes = sorted({rec["target"] for _, rec, _ in rows}, key=lambda t: (t is None, t))
        for c in classes:
            group = [(it, rec, res) for it, rec, res in rows if rec["target"] == c]
            what = "output" if c is None else f"class {c}" + (
                f" ({group[0][1]['target_name']})" if group[0][1].get("target_name") else "")
            if len(classes) == 1:
                rep.heading(f"{m}: all {len(group)} rows, each explained for {what}", 3)
            else:
                rep.heading(f"{m}: the {len(group)} of {len(rows)} rows explained for {what}", 3)
                rep.text("The rows were explained for different classes (each its predicted "
                         "class, or --target); attributions for different classes do not "
                         "share one plot, so each class has its own views. --target C explains "
                         "every row for class C (the SHAP convention).", note=True)
            if len(group) < 2:
                rep.text("One row: see its own section below.", note=True)
                continue
            values = torch.stack([res.scores.detach().double().reshape(-1)
                                  for _, _, res in group])
            features = torch.stack([_features(it) for it, _, _ in group])
            top = int(values.abs().mean(0).argmax())
            rep.global_views(values, features, names, dependence=top)


def _write_table(rep: Any, loaded: Loaded, sections: Sequence[Section]) -> None:
    """Global views first, then one compact row per item: a waterfall per method, from the
    base value F(x') to the prediction F(x), with each feature's value beside its bar."""
    from attribkit.viz import waterfall

    names = _names(loaded, sections)
    if len(sections) >= 2:
        rep.heading("All rows: global views", 2)
        _global_views(rep, names, sections)
    rep.heading(f"Each row ({len(sections)})", 2)
    rep.text("Each bar is one feature (its value after =), from F(x') at the dotted line to "
             "F(x) at the solid one; red pushes the explained score up, blue down.")
    for item, pred, _, shown in sections:
        rep.heading(f"{item.source}: {pred}", 4)
        for rec, _, res in shown:
            if rec["status"] != "ok" or res is None:
                rep.text(f"{rec['method']}: {rec['status']}: {rec['error']}", note=True)
                continue
            n = int(res.scores.numel())
            same = n == len(names)  # else a layer's units (layer=), not the input's columns
            fig = waterfall(names if same else [f"unit {i}" for i in range(n)], res.scores,
                            _features(item) if same else None,
                            base=rec.get("baseline_output"), output=rec.get("output"),
                            title=rec["method"], width=3.6)
            rep.image(fig, "")


def _segments(rep: Any, item: Item, shown: Sequence[Shown]) -> None:
    """The feature mask of the methods that used one (``--segments``), once per input."""
    from attribkit.viz import segment_boundaries

    users = [rec["method"] for rec, _, res in shown if res is not None
             and res.attribution.params.get("feature_mask")]
    if item.image is None or not users:
        return
    res = next(r for rec, _, r in shown if rec["method"] == users[0])
    assert res is not None
    ids = res.attribution.extras["group_ids"]
    n = int(res.attribution.params.get("groups", res.attribution.params.get("players", 0)))
    rep.image(segment_boundaries(item.image, ids), f"the {n} segments (feature mask) used by "
              f"{', '.join(users)}")


def write_report(path: pathlib.Path, model: str, loaded: Loaded,
                 sections: Sequence[Section]) -> pathlib.Path:
    """Write ``report.html`` for all inputs and methods; return its path."""
    from attribkit.methods import get
    from attribkit.report import Report
    from attribkit.viz import explanation_grid, tokens_html

    rep = Report(f"attribkit explain {model}")
    if _is_table(loaded, sections):
        _write_table(rep, loaded, sections)
        return rep.save(path)
    for item, pred, tops, shown in sections:
        rep.heading(item.source, 3)
        rep.text(pred)
        maps: dict[str, Any] = {}
        for rec, _, res in shown:
            if res is not None and res.attribution.values.dim() == 4:
                # the grid titles an Attribution with its gap: only where completeness is claimed
                maps[rec["method"]] = res.attribution if get(rec["method"]).complete \
                    else res.attribution.values
            elif rec["status"] != "ok":
                maps[rec["method"]] = f"{rec['status']}: {rec['error']}"
        _segments(rep, item, shown)
        if item.image is not None and any(not isinstance(v, str) for v in maps.values()):
            fig = explanation_grid(item.image, maps, top_classes=tops or None)
            rep.image(fig, "the input, its top classes and every method (each map with its "
                           "colour scale; failures in their place)", wide=True)
        for rec, pic, res in shown:
            if rec["status"] != "ok":
                rep.text(f"{rec['method']}: {rec['status']}: {rec['error']}", note=True)
                continue
            rep.text(rec["summary"])
            if loaded.kind == "text" and res is not None and res.names is not None:
                rep.raw(tokens_html(list(res.names), res.scores,
                                    target=rec.get("target_name") or None,
                                    output=rec.get("output"),
                                    baseline_output=rec.get("baseline_output")))
            elif pic is not None and item.image is None:
                rep.image(pic, rec["method"])
    return rep.save(path)
