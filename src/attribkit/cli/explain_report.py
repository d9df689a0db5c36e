"""``attribkit explain``'s report: per input, the picture, the prediction and every method.

Photos get one grid (the input and every method side by side); a method that failed or was
refused is listed in its place with the reason.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

from attribkit.cli.explain_run import Outcome
from attribkit.cli.inputs import Item
from attribkit.cli.models import Loaded

Shown = tuple[dict[str, Any], Any, Outcome | None]

__all__ = ["write_report"]


def write_report(path: pathlib.Path, model: str, loaded: Loaded,
                 sections: Sequence[tuple[Item, str, Sequence[Shown]]]
                 ) -> pathlib.Path:
    """Write ``report.html`` for all inputs and methods; return its path."""
    from attribkit.report import Report
    from attribkit.viz import comparison_grid, tokens_html

    rep = Report(f"attribkit explain {model}")
    for item, pred, shown in sections:
        rep.heading(item.source, 3)
        rep.text(pred)
        grid = {rec["method"]: res.attribution for rec, _, res in shown
                if res is not None and res.attribution.values.dim() == 4}
        if item.image is not None and grid:
            top = pred.replace("predicted ", "").split(",")[0]  # the top class and its score
            fig = comparison_grid([item.image], grid, labels=[top])
            rep.image(fig, "the input and each method (pixel intensity scaled by importance)")
        for rec, pic, res in shown:
            if rec["status"] != "ok":
                rep.text(f"{rec['method']}: {rec['status']}: {rec['error']}", note=True)
                continue
            rep.text(rec["summary"])
            if loaded.kind == "text" and res is not None and res.names is not None:
                rep.raw(tokens_html(list(res.names), res.scores))
            elif pic is not None and item.image is None:
                rep.image(pic, rec["method"])
    return rep.save(path)
