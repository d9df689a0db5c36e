"""The table parts of ``attribkit report``: features named by the source's columns (a CSV's
header, stored with each item), a section of mean ``|attribution|`` per feature over the items,
and one waterfall per item and method from ``F(x')`` to ``F(x)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from attribkit.core.saving import finite

__all__ = ["feature_names", "feature_section", "feature_values", "item_waterfall"]

FEATURE_ITEMS = 200
"""At most this many items (the first ones that every method explained) enter the feature
section's means."""


def feature_names(rec: dict[str, Any], width: int) -> list[str]:
    """The item's feature names (the CSV's column names when the run stored them), else
    ``x[0]``, ``x[1]``, ... for ``width`` features."""
    names = rec.get("feature_names")
    if names is not None and len(names) == width:
        return [str(n) for n in names]
    return [f"x[{i}]" for i in range(width)]


def feature_values(rec: dict[str, Any], width: int) -> np.ndarray[Any, Any] | None:
    """The row's values as the source gave them: the item's text when it is ``width`` numbers
    (a zoo model stores the raw row there and its standardised input), else the model input."""
    text = rec.get("text")
    if isinstance(text, str):
        try:
            raw = [float(c) for c in text.split(",")]
        except ValueError:
            raw = []
        if len(raw) == width:
            return np.asarray(raw, dtype=np.float64)
    x = rec.get("input")
    if x is not None and np.asarray(x).size == width:
        return np.asarray(x, dtype=np.float64).reshape(-1)
    return None


def item_waterfall(rep: Any, rec: dict[str, Any], row: Any, vals: np.ndarray[Any, Any],
                   caption: str, method: str) -> None:
    """Add ``method``'s waterfall for one item: its result ``row`` (``output``,
    ``baseline_output``) and attributions ``vals``, each feature named and with its value."""
    from attribkit.viz import waterfall

    v = np.asarray(vals, dtype=np.float64).reshape(-1)
    base, out = finite(row.get("baseline_output")), finite(row.get("output"))
    rep.image(waterfall(feature_names(rec, v.size), v, feature_values(rec, v.size), base=base,
                        output=out, title=method), caption)


def feature_section(rep: Any, store: Any, methods: Sequence[str]) -> None:
    """For a table store: each method's mean ``|attribution|`` per feature over (up to
    :data:`FEATURE_ITEMS`) items, features named by the source's columns, largest first."""
    res = store.results
    if not len(res):
        return
    ok = res[res["status"] == "ok"]
    items = [int(i) for i in sorted(set(ok["item"]))][:FEATURE_ITEMS]
    means: dict[str, np.ndarray[Any, Any]] = {}
    for m in methods:
        done = set(ok.loc[ok["method"] == m, "item"].astype(int))
        rows = [np.abs(np.asarray(store.values(i, m), dtype=np.float64).reshape(-1))
                for i in items if i in done]
        if rows and len({r.size for r in rows}) == 1:
            means[m] = np.mean(rows, axis=0)
    if not means:
        return
    first = next(iter(means.values()))
    if any(v.size != first.size for v in means.values()):
        return
    names = feature_names(store.item(items[0]), first.size)
    order = np.argsort(-first, kind="stable")
    rep.heading("Features", 2)
    rep.table(["feature", *(f"mean |a| {m}" for m in means)],
              [[names[j], *(float(v[j]) for v in means.values())] for j in order],
              f"mean |attribution| per feature over {len(items)} items, largest first "
              f"(by {next(iter(means))})")


