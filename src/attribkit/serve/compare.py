"""Comparing runs: two stores (or two methods of one) matched item by item.

Items are matched by ``item_id`` (the same input in both runs). For each evaluation (the
relative completeness gap, and AOPC / deletion / insertion where ``attribkit report`` computed
them) the change ``B - A`` is averaged over the items both runs scored, with a 95 % interval
over items (paired: the same items on both sides): a percentile bootstrap up to
:data:`BOOTSTRAP_MAX` items, the normal interval of the mean above (which the bootstrap
approaches there, at a fraction of the time).

Joining two runs is the costly part (matching 100,000 item ids), so :class:`Comparisons` keeps
each pair's joined items, differences and aggregate intervals until either store's item table
is rebuilt (new shards or ledger entries); a page then only sorts and slices the cached arrays.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from attribkit.core.saving import finite
from attribkit.serve.table import CURVES, ItemTable

__all__ = ["BOOTSTRAP_MAX", "MEASURES", "Comparisons", "Joined", "Side", "aggregate",
           "bootstrap_interval", "compare", "interval", "join", "matched"]

BOOTSTRAP_MAX = 1000
"""Up to this many paired differences the interval is a percentile bootstrap (1,000
resamples); above, the normal interval of the mean."""

#: The evaluations compared: table column prefix -> what it is (and which way is better).
MEASURES = {"rel_gap": "relative completeness gap (lower is better)",
            "aopc": "AOPC (higher is better)", "deletion": "deletion area (lower is better)",
            "insertion": "insertion area (higher is better)"}


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a store's table and one of its methods."""

    name: str
    table: ItemTable
    method: str


_RESAMPLES: dict[int, np.ndarray[Any, Any]] = {}


def _resamples(n: int, resamples: int = 1000, seed: int = 0) -> np.ndarray[Any, Any]:
    """The bootstrap's item indices for ``n`` items (seeded: the same for every measure)."""
    if n not in _RESAMPLES:
        if len(_RESAMPLES) > 8:
            _RESAMPLES.clear()
        _RESAMPLES[n] = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    return _RESAMPLES[n]


def interval(d: np.ndarray[Any, Any]) -> tuple[float | None, float | None, str]:
    """The 95 % interval of the mean of ``d`` and how it was computed (see the module)."""
    if d.size <= BOOTSTRAP_MAX:
        if d.size < 2:
            return None, None, "bootstrap"
        means = d[_resamples(d.size)].mean(axis=1)
        lo, hi = np.percentile(means, [2.5, 97.5])
        return float(lo), float(hi), "bootstrap"
    half = 1.959964 * float(d.std(ddof=1)) / float(np.sqrt(d.size))
    m = float(d.mean())
    return m - half, m + half, "normal"


def bootstrap_interval(d: np.ndarray[Any, Any], *, resamples: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean of ``d`` (``None`` with fewer than 2 values)."""
    d = np.asarray(d, dtype=np.float64)
    if d.size < 2:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    means = d[idx].mean(axis=1)
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def _column(frame: pd.DataFrame, measure: str, method: str) -> pd.Series:
    col = f"{measure}:{method}"
    if col not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=np.float64)
    v = frame[col].astype(np.float64)
    return v.abs() if measure == "rel_gap" else v


def matched(a: Side, b: Side) -> pd.DataFrame:
    """One row per item in both runs: ``item_id``, ``item_a``, ``item_b``, and for every
    measure ``M`` the columns ``M:a``, ``M:b`` and ``M:diff`` (``b - a``)."""
    a.table.refresh()
    b.table.refresh()
    fa, fb = a.table.frame, b.table.frame
    left = pd.DataFrame({"item_id": fa["item_id"].astype(str).to_numpy(),
                         "item_a": fa["item"].to_numpy(),
                         "class_a": fa["target_name"].to_numpy()})
    right = pd.DataFrame({"item_id": fb["item_id"].astype(str).to_numpy(),
                          "item_b": fb["item"].to_numpy(),
                          "class_b": fb["target_name"].to_numpy()})
    for m in MEASURES:
        left[f"{m}:a"] = _column(fa, m, a.method).to_numpy()
        right[f"{m}:b"] = _column(fb, m, b.method).to_numpy()
    out = left.drop_duplicates("item_id").merge(right.drop_duplicates("item_id"), on="item_id")
    for m in MEASURES:
        out[f"{m}:diff"] = out[f"{m}:b"] - out[f"{m}:a"]
    return out


def aggregate(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Per measure of :func:`matched`'s frame: the items both runs scored, the mean of each
    side, the mean change ``B - A`` and its 95 % interval (see :func:`interval`)."""
    agg = []
    for m, label in MEASURES.items():
        d = df[f"{m}:diff"].to_numpy(dtype=np.float64)
        ok = np.isfinite(d)
        if not ok.any():
            continue
        lo, hi, how = interval(d[ok])
        agg.append({"measure": m, "label": label, "n": int(ok.sum()), "interval": how,
                    "mean_a": finite(np.nanmean(df[f"{m}:a"].to_numpy(dtype=np.float64)[ok])),
                    "mean_b": finite(np.nanmean(df[f"{m}:b"].to_numpy(dtype=np.float64)[ok])),
                    "mean_diff": finite(d[ok].mean()), "ci": [finite(lo), finite(hi)]})
    return agg


@dataclass
class Joined:
    """Two sides matched item by item, with what every page of their comparison shares."""

    frames: tuple[pd.DataFrame, pd.DataFrame]
    """The two item tables' frames it was built from (a rebuilt table makes it stale)."""
    df: pd.DataFrame
    """:func:`matched`'s frame."""
    aggregate: list[dict[str, Any]]
    """:func:`aggregate` of ``df``."""
    orders: dict[tuple[str, bool], np.ndarray[Any, Any]] = field(default_factory=dict)
    """The row order per ``(measure, descending)``, filled as pages ask for them."""
    columns: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    """``df``'s columns as plain NumPy arrays (a page takes its rows from them)."""

    def __post_init__(self) -> None:
        if not self.columns:
            for c in self.df.columns:
                col = self.df[c]
                self.columns[c] = col.to_numpy(dtype=np.float64, na_value=np.nan) if \
                    pd.api.types.is_float_dtype(col) else col.to_numpy(dtype=object)

    def rows(self, idx: np.ndarray[Any, Any]) -> list[dict[str, Any]]:
        """The page rows of positions ``idx`` (JSON-ready: missing numbers are None)."""
        cols = {c: v[idx].tolist() for c, v in self.columns.items()}
        out = []
        for k in range(len(idx)):
            ca, cb = cols["class_a"][k], cols["class_b"][k]
            out.append({"item_id": str(cols["item_id"][k]), "item_a": int(cols["item_a"][k]),
                        "item_b": int(cols["item_b"][k]),
                        "class_a": ca if isinstance(ca, str) else None,
                        "class_b": cb if isinstance(cb, str) else None,
                        **{f"{m}:{s}": finite(cols[f"{m}:{s}"][k]) for m in MEASURES
                           for s in ("a", "b", "diff")}})
        return out

    def order(self, measure: str, descending: bool) -> np.ndarray[Any, Any]:
        """Rows by the size of the change of ``measure``; items without it last."""
        hit = self.orders.get((measure, descending))
        if hit is None:
            key = np.abs(self.df[f"{measure}:diff"].to_numpy(dtype=np.float64))
            key = np.where(np.isfinite(key), -key if descending else key, np.inf)
            hit = self.orders[(measure, descending)] = np.argsort(key, kind="stable")
        return hit


def join(a: Side, b: Side) -> Joined:
    """Match ``a`` and ``b`` and compute the aggregate (no cache)."""
    a.table.refresh()
    b.table.refresh()
    frames = (a.table.frame, b.table.frame)
    df = matched(a, b)
    return Joined(frames, df, aggregate(df))


class Comparisons:
    """The joined comparisons of the pairs of sides asked for, reused while both stores'
    item tables stay the same.

    Parameters
    ----------
    size : int
        How many pairs are kept (the least recently used goes first).
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._joined: OrderedDict[tuple[int, str, int, str], Joined] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, a: Side, b: Side) -> Joined:
        """The joined comparison of ``a`` and ``b``, rebuilt when either table was."""
        a.table.refresh()
        b.table.refresh()
        key = (id(a.table), a.method, id(b.table), b.method)
        with self._lock:
            hit = self._joined.get(key)
            if hit is not None and hit.frames[0] is a.table.frame and \
                    hit.frames[1] is b.table.frame:
                self._joined.move_to_end(key)
                return hit
        fresh = join(a, b)
        with self._lock:
            self._joined[key] = fresh
            self._joined.move_to_end(key)
            while len(self._joined) > self.size:
                self._joined.popitem(last=False)
        return fresh

    def forget(self) -> None:
        """Drop the cached row orders (benchmarks time a page's sort from scratch)."""
        with self._lock:
            for j in self._joined.values():
                j.orders.clear()


def compare(a: Side, b: Side, *, measure: str = "rel_gap", page: int = 0, per_page: int = 50,
            descending: bool = True, cache: Comparisons | None = None) -> dict[str, Any]:
    """The aggregate change of each measure with its interval, and a page of items sorted by
    the change of ``measure`` (largest ``|B - A|`` first when ``descending``); with ``cache``
    the joined items are reused from it."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}")
    j = cache.get(a, b) if cache is not None else join(a, b)
    df = j.df
    order = j.order(measure, descending)
    per_page = max(1, min(int(per_page), 500))
    rows = j.rows(order[page * per_page:(page + 1) * per_page])
    return {"a": {"store": a.name, "method": a.method}, "b": {"store": b.name, "method": b.method},
            "matched": len(df), "aggregate": [dict(x) for x in j.aggregate], "measure": measure,
            "page": page, "per_page": per_page, "rows": rows, "curves": list(CURVES)}
