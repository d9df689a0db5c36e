"""An item's stored interactions (``-m interactions`` in a run, docs/runs.md) for the item page."""

from __future__ import annotations

import json
from typing import Any

from attribkit.core.saving import finite

__all__ = ["item_interactions"]


def item_interactions(rec: dict[str, Any]) -> dict[str, Any] | None:
    """The item row's ``interactions`` record with finite numbers only (None when there is none
    or it is not a JSON object); ``top`` keeps every size, the page shows the pairs."""
    text = rec.get("interactions")
    if not isinstance(text, str) or not text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    top = []
    for t in data.get("top") or []:
        if not isinstance(t, dict):
            continue
        players = [str(p) for p in t.get("players") or []]
        names = [str(s) for s in t.get("names") or players]
        top.append({"players": players, "names": names, "value": finite(t.get("value")),
                    "stderr": finite(t.get("stderr"))})
    return {"index": data.get("index"), "order": data.get("order"),
            "players": data.get("players"), "exact": data.get("exact"),
            "evaluations": data.get("evaluations"), "target": data.get("target"),
            "error": None if data.get("error") is None else str(data["error"]), "top": top}
