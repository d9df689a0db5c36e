"""Slicing the item table: by predicted class, by the source's label, or by failure.

Each slice gets its size, how many failed, the mean of every evaluation per method and a
histogram of ``log10 |relative gap|`` per method on edges shared by all slices (so the bars of
two slices can be compared).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attribkit.core.saving import finite
from attribkit.serve.table import CURVES, SLICES, ItemTable, slice_keys

__all__ = ["slices"]


def slices(table: ItemTable, by: str, *, bins: int = 12, limit: int = 50) -> dict[str, Any]:
    """The groups of ``table`` by ``by`` (one of ``target_name``, ``label``, ``status``),
    largest first, at most ``limit`` of them."""
    if by not in SLICES:
        raise ValueError(f"slice by one of {', '.join(SLICES)}")
    table.refresh()
    df = table.frame
    keys = slice_keys(df, by)
    edges: dict[str, np.ndarray[Any, Any]] = {}
    for m in table.methods:
        rel = np.abs(df[f"rel_gap:{m}"].to_numpy(dtype=np.float64, na_value=np.nan))
        rel = rel[np.isfinite(rel)]
        if rel.size:
            logs = np.log10(np.maximum(rel, 1e-12))
            lo, hi = float(np.floor(logs.min())), float(np.ceil(logs.max()))
            edges[m] = np.linspace(lo, max(hi, lo + 1), bins + 1)
    counts = keys.value_counts()
    groups = []
    for key, n in counts.head(limit).items():
        part = df[(keys == key).to_numpy()]
        methods: dict[str, Any] = {}
        for m in table.methods:
            entry: dict[str, Any] = {}
            rel = np.abs(part[f"rel_gap:{m}"].to_numpy(dtype=np.float64, na_value=np.nan))
            fin = rel[np.isfinite(rel)]
            entry["n"] = int(fin.size)
            entry["median_relative_gap"] = finite(np.median(fin)) if fin.size else None
            for c in CURVES:
                col = f"{c}:{m}"
                if col in part.columns:
                    v = part[col].to_numpy(dtype=np.float64, na_value=np.nan)
                    entry[c] = finite(np.nanmean(v)) if np.isfinite(v).any() else None
            if m in edges and fin.size:
                h, _ = np.histogram(np.log10(np.maximum(fin, 1e-12)), bins=edges[m])
                entry["counts"] = h.tolist()
            methods[m] = entry
        groups.append({"key": str(key), "n": int(n),
                       "failed": int((part["status"] != "ok").sum()), "methods": methods})
    return {"by": by, "groups": groups, "more": max(0, len(counts) - limit),
            "log10_edges": {m: [round(float(e), 4) for e in v] for m, v in edges.items()},
            "methods": table.methods}
