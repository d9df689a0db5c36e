"""The data-set table: one row per item, with each method's gap and error, sorted and paged.

Built once per store version with pandas (a few milliseconds per 10,000 items), then every page
request is a filter, a sort and a slice of that frame on the server, so the browser only ever
receives one page of rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from attribkit.core.saving import finite
from attribkit.serve.store import RunStore

__all__ = ["CURVES", "SLICES", "ItemTable", "gap_histograms", "label_of"]

#: Methods whose values are not one map per item (shown on the item page, not as table columns).
SPECIAL = ("interior_gradients",)
#: The per-item evaluations of ``attribkit report`` (``summary.json``), one column per method.
CURVES = ("aopc", "deletion", "insertion")
#: What the table can be sliced by.
SLICES = ("target_name", "label", "status")
_SAFE = re.compile(r"^[A-Za-z0-9_.:+-]{1,80}$")


def safe_name(text: str) -> bool:
    """A method name or sort key that may be echoed back (letters, digits, ``_.:+-``)."""
    return bool(_SAFE.match(text))


@dataclass
class Page:
    """One page of the table."""

    total: int
    page: int
    per_page: int
    rows: list[dict[str, Any]]


class ItemTable:
    """The per-item frame of a store and the queries the data-set page makes on it.

    Parameters
    ----------
    store : RunStore
        The opened store.
    """

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.version = -1
        self.frame = pd.DataFrame()
        self.methods: list[str] = []
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the frame when the store gained shards."""
        if self.version == self.store.version:
            return
        items = self.store.items.reset_index(drop=True)
        res = self.store.results
        self.methods = [m for m in pd.unique(res["method"]) if m not in SPECIAL] if len(res) \
            else []
        df = items[["item", "item_id", "source", "kind", "text", "status", "error",
                    "has_thumbnail"]].copy()
        ok = res[(res["status"] == "ok") & ~res["method"].isin(SPECIAL)] if len(res) else res
        if len(ok):
            # the item's main target: the one with the largest F(x) among its rows
            top = ok.sort_values("output", ascending=False, kind="stable").drop_duplicates("item")
            df = df.merge(top[["item", "target", "target_name", "output", "baseline_output"]],
                          on="item", how="left")
            main = ok.merge(top[["item", "target"]], on=["item", "target"])
            for m in self.methods:
                part = main[main["method"] == m].drop_duplicates("item", keep="last")
                part = part.set_index("item")
                df[f"gap:{m}"] = df["item"].map(part["gap"])
                df[f"rel_gap:{m}"] = df["item"].map(part["relative_gap"])
                df[f"error:{m}"] = df["item"].map(part["error_estimate"])
        else:  # every row failed: the same columns, empty, so that every query still works
            for col in ("target", "target_name", "output", "baseline_output"):
                df[col] = None
            for m in self.methods:
                for col in ("gap", "rel_gap", "error"):
                    df[f"{col}:{m}"] = np.nan
        failed = res[res["status"] == "failed"] if len(res) else res
        if len(failed):
            first_error = failed.drop_duplicates("item").set_index("item")["error"]
            df["error"] = df["error"].fillna(df["item"].map(first_error))
            # the item itself worked but some method failed on it: "partial"
            df.loc[df["item"].isin(failed["item"]) & (df["status"] == "ok"), "status"] = "partial"
        text = df["item_id"].astype(str) + "\n" + df["source"].fillna("").astype(str) + "\n" + \
            df["text"].fillna("").astype(str) + "\n" + df["target_name"].fillna("").astype(str)
        # plain NumPy object columns: taking 50 rows from one is cheap, while Arrow-backed
        # columns concatenated from many shards pay per chunk on every page
        for col in df.columns:
            if not pd.api.types.is_numeric_dtype(df[col]) and col != "_search":
                df[col] = df[col].astype(object)
        df["_search"] = text.str.lower()
        self._add_curves(df)
        if "label" in items.columns:  # a label column of the source (a CSV's, say)
            df["label"] = items["label"].fillna("").astype(str).to_numpy()
        else:  # a folder per class; one folder for everything is no label
            labels = [label_of(src) for src in df["source"].tolist()]
            df["label"] = labels if len(set(labels)) > 1 else [""] * len(labels)
        self.frame = df
        self.version = self.store.version
        self._orders: dict[tuple[Any, ...], Any] = {}

    def _add_curves(self, df: pd.DataFrame) -> None:
        """``aopc:M``, ``deletion:M``, ``insertion:M`` from ``summary.json``'s per-item scores."""
        summary = self.store.summary() or {}
        methods = summary.get("methods") if isinstance(summary, dict) else None
        self.curves: list[str] = []
        for m in self.methods:
            entry = methods.get(m) if isinstance(methods, dict) else None
            for key in CURVES:
                stat = entry.get(key) if isinstance(entry, dict) else None
                per = stat.get("per_item") if isinstance(stat, dict) else None
                if not isinstance(per, dict):
                    continue
                col = f"{key}:{m}"
                mapped = {int(k): finite(v) for k, v in per.items() if str(k).isdigit()}
                df[col] = df["item"].map(mapped).astype(np.float64)
                self.curves.append(col)

    def sort_keys(self) -> list[str]:
        """The accepted ``sort`` values."""
        keys = ["item", "item_id", "output", "target_name", "status"]
        for m in self.methods:
            keys += [f"gap:{m}", f"rel_gap:{m}", f"error:{m}"]
        return keys + list(getattr(self, "curves", [])) + ["label"]

    def ordered(self, *, sort: str = "item", descending: bool = False, q: str = "",
                status: str = "all", target: str = "", slice_by: str = "",
                slice_value: str = "") -> pd.DataFrame:
        """The filtered frame in the sorted order (cached per query: paging, the item page's
        previous / next and the export reuse it)."""
        self.refresh()
        if sort not in self.sort_keys():
            raise ValueError(f"unknown sort key {sort[:80]!r}; use one of "
                             f"{', '.join(self.sort_keys())}")
        if status not in ("all", "ok", "failed"):
            raise ValueError("status must be all, ok or failed")
        if slice_by and slice_by not in SLICES:
            raise ValueError(f"slice must be one of {', '.join(SLICES)}")
        key_t = (sort, descending, q, status, target, slice_by, slice_value)
        hit = self._orders.get(key_t)
        if hit is not None:
            return hit
        df = self.frame
        mask = np.ones(len(df), dtype=bool)
        if status == "ok":
            mask &= (df["status"] == "ok").to_numpy()
        elif status == "failed":  # anything that failed: the item, or a method on it
            mask &= (df["status"] != "ok").to_numpy()
        if q:
            mask &= df["_search"].str.contains(q.lower(), regex=False).to_numpy()
        if target:
            mask &= (df["target_name"].astype(str) == target).to_numpy() | \
                (df["target"].astype(str) == target).to_numpy()
        if slice_by:
            mask &= (slice_keys(df, slice_by) == slice_value).to_numpy()
        view = df[mask] if not mask.all() else df
        key = view[sort]
        if sort.startswith(("gap:", "rel_gap:")):
            key = key.abs()
        out = view.iloc[np.argsort(_sortable(key, descending), kind="stable")]
        if len(self._orders) > 16:
            self._orders.clear()
        self._orders[key_t] = out
        return out

    def query(self, *, page: int = 0, per_page: int = 50, sort: str = "item",
              descending: bool = False, q: str = "", status: str = "all",
              target: str = "", slice_by: str = "", slice_value: str = "") -> Page:
        """Filter, sort (server-side) and slice.

        ``gap:`` keys sort by the gap's magnitude (largest violations first when descending);
        missing values always go last.
        """
        view = self.ordered(sort=sort, descending=descending, q=q, status=status, target=target,
                            slice_by=slice_by, slice_value=slice_value)
        per_page = max(1, min(int(per_page), 500))
        total = len(view)
        page = max(0, int(page))
        chosen = view.iloc[page * per_page:(page + 1) * per_page]
        cols = [c for c in chosen.columns if c != "_search"]
        records = zip(*(chosen[c].tolist() for c in cols), strict=True)
        return Page(total, page, per_page,
                    [self._row(dict(zip(cols, r, strict=True))) for r in records])

    def forget(self) -> None:
        """Drop the cached orders (benchmarks time a query from scratch)."""
        self._orders.clear()

    def neighbours(self, item: int, **query: Any) -> tuple[int | None, int | None, int, int]:
        """``(previous, next, position, total)`` of ``item`` in the sorted, filtered order
        (position -1 when the filter leaves it out)."""
        items = self.ordered(**query)["item"].to_numpy()
        where = np.flatnonzero(items == item)
        if not where.size:
            return None, None, -1, len(items)
        k = int(where[0])
        prev = int(items[k - 1]) if k > 0 else None
        nxt = int(items[k + 1]) if k + 1 < len(items) else None
        return prev, nxt, k, len(items)

    def export_frame(self, **query: Any) -> pd.DataFrame:
        """The sorted, filtered table as the page shows it, for CSV and Parquet export."""
        view = self.ordered(**query)
        cols = ["item", "item_id", "source", "label", "status", "error", "target",
                "target_name", "output", "baseline_output"]
        for m in self.methods:
            cols += [f"gap:{m}", f"rel_gap:{m}", f"error:{m}"]
        cols += list(self.curves)
        return view[[c for c in cols if c in view.columns]].reset_index(drop=True)

    def _row(self, r: dict[str, Any]) -> dict[str, Any]:
        text = r.get("text")
        out: dict[str, Any] = {
            "item": int(r["item"]), "item_id": str(r["item_id"]), "kind": r.get("kind"),
            "text": (str(text)[:160] if isinstance(text, str) else None),
            "status": r.get("status"), "error": _str(r.get("error")),
            "thumbnail": r.get("kind") == "image" and r.get("status") != "failed",
            "target": _int(r.get("target")), "target_name": _str(r.get("target_name")),
            "output": finite(r.get("output")), "methods": {},
        }
        out["label"] = _str(r.get("label"))
        for m in self.methods:
            out["methods"][m] = {"gap": finite(r.get(f"gap:{m}")),
                                 "relative_gap": finite(r.get(f"rel_gap:{m}")),
                                 "error_estimate": finite(r.get(f"error:{m}")),
                                 **{k: finite(r.get(f"{k}:{m}")) for k in CURVES
                                    if f"{k}:{m}" in r}}
        return out


def label_of(source: Any) -> str:
    """The label a source carries: the folder of a file in a folder per class
    (``data/cat/1.png`` -> ``cat``); empty when there is none."""
    if not isinstance(source, str) or "/" not in source.replace("\\", "/"):
        return ""
    parts = [p for p in source.replace("\\", "/").split("/") if p]
    return parts[-2] if len(parts) >= 2 and "." not in parts[-2] else ""


def slice_keys(df: pd.DataFrame, by: str) -> pd.Series:
    """The group of each row when slicing by ``by`` (one of :data:`SLICES`)."""
    if by == "status":
        return df["status"].fillna("ok").astype(str)
    return df[by].fillna("").astype(str)


def _sortable(key: pd.Series, descending: bool) -> Any:
    """Ranks for argsort: numbers or strings, descending if asked, missing values last."""
    missing = key.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(key):
        vals = key.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        vals = pd.factorize(key.astype(str), sort=True)[0].astype(np.float64)
    vals = -vals if descending else vals
    return np.where(missing, np.inf, vals)


def _int(x: Any) -> int | None:
    f = finite(x)
    return None if f is None else int(f)


def _str(x: Any) -> str | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return str(x)


def gap_histograms(table: ItemTable, bins: int | None = None) -> dict[str, Any]:
    """Per method: a histogram of ``log10 |relative gap|`` and the median / 90th percentile."""
    table.refresh()
    out: dict[str, Any] = {}
    for m in table.methods:
        rel = table.frame[f"rel_gap:{m}"].to_numpy(dtype=np.float64, na_value=np.nan)
        gap = table.frame[f"gap:{m}"].to_numpy(dtype=np.float64, na_value=np.nan)
        rel = np.abs(rel[np.isfinite(rel)])
        absgap = np.abs(gap[np.isfinite(gap)])
        if not rel.size:
            continue
        logs = np.log10(np.maximum(rel, 1e-12))
        lo, hi = float(np.floor(logs.min())), float(np.ceil(logs.max()))
        hi = max(hi, lo + 1)
        k = bins or int(np.clip(2 * np.sqrt(rel.size), 6, 24))
        counts, edges = np.histogram(logs, bins=k, range=(lo, hi))
        out[m] = {"n": int(rel.size), "counts": counts.tolist(),
                  "log10_edges": [round(float(e), 4) for e in edges],
                  "median_relative_gap": float(np.median(rel)),
                  "p90_relative_gap": float(np.percentile(rel, 90)),
                  "median_abs_gap": float(np.median(absgap)) if absgap.size else None}
    return out
