"""``attribkit explain``'s report: per input, the prediction and every method.

A photo gets one grid (:func:`attribkit.viz.explanation_grid`): the input, its top classes with
scores, and every method's map with its colour bar, a method that failed or was refused drawn in
its place with the reason. Texts get highlighted tokens, molecules and tables their pictures.
Several rows of a table also get the global views (summary beeswarm, mean |a|, dependence of the
top feature) of each method that ran on all of them.
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


def _global_views(rep: Any, loaded: Loaded, sections: Sequence[Section]) -> None:
    """Summary views of each method over all the rows of a table (two rows or more)."""
    if loaded.kind != "tabular" or len(sections) < 2 or not hasattr(rep, "global_views"):
        return
    names = list(loaded.extra["data"].feature_names)
    methods = [rec["method"] for rec, _, _ in sections[0][3]]
    for m in methods:
        rows = [res for _, _, _, shown in sections for rec, _, res in shown
                if rec["method"] == m and res is not None]
        if len(rows) != len(sections):
            continue
        values = torch.stack([r.scores.detach().double() for r in rows])
        features = torch.cat([torch.as_tensor([it.raw], dtype=torch.float64)
                              for it, _, _, _ in sections])
        top = int(values.abs().mean(0).argmax())
        rep.heading(f"{m}: all {len(rows)} rows", 3)
        rep.global_views(values, features, names, dependence=top)


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
    _global_views(rep, loaded, sections)
    return rep.save(path)
