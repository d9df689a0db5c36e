"""Data-set summaries of a run store: per method, the completeness gaps and AOPC / deletion /
insertion over the items, each as a mean with a 95 % confidence interval.

The perturbation curves come from :mod:`attribkit.evaluate` and need the model again: it is
built from the manifest's spec, the inputs and values are read from the store. Curves are
computed for image, tabular and tensor stores (text stores keep per-token scores, not values
at the model's input, and get the gap statistics only).
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from attribkit.runs.reader import RunStore
from attribkit.runs.store import write_atomic

__all__ = ["interval", "summarise"]

CURVE_KINDS = ("image", "tabular", "tensor")


def interval(values: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Mean, Student-t confidence interval, median, 90th percentile and max of ``values``."""
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(a.size)
    if n == 0:
        return {"n": 0, "mean": None, "ci": [None, None], "median": None, "p90": None,
                "max": None}
    mean = float(a.mean())
    if n > 1:
        from scipy import stats

        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * a.std(ddof=1) / math.sqrt(n))
    else:
        half = math.nan
    ci = [mean - half, mean + half] if math.isfinite(half) else [None, None]
    return {"n": n, "mean": mean, "ci": ci, "level": level, "median": float(np.median(a)),
            "p90": float(np.quantile(a, 0.9)), "max": float(a.max())}


def _curve_inputs(store: RunStore, built: Any, rows: Any
                  ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[int]]:
    xs, bs, keep = [], [], []
    for i in rows["item"].tolist():
        rec = store.item(int(i))
        if rec.get("input") is None:
            continue
        x = torch.from_numpy(np.asarray(rec["input"])).unsqueeze(0)
        baseline = None
        raw = rec["source"] if pathlib.Path(str(rec["source"])).is_file() else None
        if raw is not None:
            try:
                prepared = built.prepare(raw)
                baseline = prepared.baseline
            except Exception:
                baseline = None
        xs.append(x)
        bs.append(torch.zeros_like(x) if baseline is None else baseline.to(torch.float32))
        keep.append(int(i))
    return xs, bs, keep


def _curves(store: RunStore, method: str, rows: Any, steps: int, batch: int
            ) -> dict[str, dict[int, float]]:
    from attribkit.zoo.specs import build, model_dtype

    built = build(store.manifest["model"])
    dtype = model_dtype(built.model)
    xs, bs, keep = _curve_inputs(store, built, rows)
    targets = dict(zip(rows["item"].tolist(), rows["target"].tolist(), strict=True))
    out: dict[str, dict[int, float]] = {"aopc": {}, "deletion": {}, "insertion": {}}
    shapes: dict[tuple[int, ...], list[int]] = {}  # items of one shape are evaluated together
    for j, x in enumerate(xs):
        shapes.setdefault(tuple(x.shape), []).append(j)
    for group in shapes.values():
        for start in range(0, len(group), batch):
            _curve_batch(built, dtype, store, method, [keep[j] for j in group[start:start + batch]],
                         [xs[j] for j in group[start:start + batch]],
                         [bs[j] for j in group[start:start + batch]], targets, steps, out)
    return out


def _curve_batch(built: Any, dtype: torch.dtype, store: RunStore, method: str, ids: list[int],
                 xs: list[torch.Tensor], bs: list[torch.Tensor], targets: dict[Any, Any],
                 steps: int, out: dict[str, dict[int, float]]) -> None:
    """The three curves of one batch of items of one shape, into ``out``."""
    from attribkit.evaluate import ablation_curve, deletion_curve, insertion_curve

    x = torch.cat(xs).to(dtype)
    b = torch.cat(bs).to(dtype)
    vals = torch.stack([torch.from_numpy(store.values(i, method)) for i in ids]).to(dtype)
    tgt_list = [targets[i] for i in ids]
    tgt = None if any(t is None or t != t for t in tgt_list) else torch.tensor(
        [int(t) for t in tgt_list])
    per_sample = x[0, 0].numel() if x.dim() == 4 else x[0].numel()
    k = max(1, per_sample // (10 * steps))  # AOPC: 10 % of the features in `steps` steps
    abl = ablation_curve(built.model, x, vals, k=k, steps=steps, target=tgt, baseline=b)
    dele = deletion_curve(built.model, x, vals, steps=steps, target=tgt, baseline=b)
    ins = insertion_curve(built.model, x, vals, steps=steps, target=tgt, baseline=b)
    for j, i in enumerate(ids):
        out["aopc"][i] = float(abl.aopc_per_example[j, -1])
        out["deletion"][i] = float(dele.area_per_example[j])
        out["insertion"][i] = float(ins.area_per_example[j])


def summarise(path: str | pathlib.Path, *, curves: bool = True, steps: int = 10,
              batch_size: int = 8, worst: int = 5) -> dict[str, Any]:
    """Compute the data-set summary of a store and write it to ``summary.json``.

    Parameters
    ----------
    path
        The store folder.
    curves
        Also compute AOPC (pixel ablation of 10 % of the features), deletion and insertion
        curves per item (needs the model; image, tabular and tensor stores).
    steps
        Steps of each curve.
    batch_size
        Items per evaluation batch.
    worst
        How many worst items to list per method.

    Returns
    -------
    dict
        ``{"methods": {name: {...}}, ...}`` as written to ``summary.json``.
    """
    store = RunStore(path)
    res = store.results
    kind = store.manifest.get("kind")
    summary: dict[str, Any] = {"version": 1, "model": store.manifest.get("model"),
                               "kind": kind, "items": store.manifest["inputs"]["count"],
                               "curve_steps": steps if curves else None, "methods": {}}
    for entry in store.manifest["methods"]:
        name = entry["name"]
        rows = res[res["method"] == name] if len(res) else res
        ok = rows[rows["status"] == "ok"] if len(rows) else rows
        m: dict[str, Any] = {
            "params": entry["params"], "rows": len(rows), "ok": len(ok),
            "failed": int((rows["status"] == "failed").sum()) if len(rows) else 0,
            "abs_gap": interval([abs(g) for g in ok["gap"].dropna()]) if len(ok) else
            interval([]),
            "relative_gap": interval(list(ok["relative_gap"].dropna())) if len(ok) else
            interval([]),
            "seconds_per_item": interval(list(ok["seconds"])) if len(ok) else interval([]),
        }
        per_item: dict[str, dict[int, float]] = {}
        if curves and kind in CURVE_KINDS and len(ok) and \
                not str(store.manifest["model"]).startswith("python:"):
            first = ok.drop_duplicates("item")
            per_item = _curves(store, name, first, steps, batch_size)
            for key, vals in per_item.items():
                m[key] = interval(list(vals.values()))
                m[key]["per_item"] = {str(i): v if math.isfinite(v) else None
                                      for i, v in vals.items()}
        ranked = []
        for r in ok.drop_duplicates("item").itertuples() if len(ok) else []:
            rel = r.relative_gap if r.relative_gap == r.relative_gap else None
            margin = None
            if per_item:
                ins, dele = per_item["insertion"].get(r.item), per_item["deletion"].get(r.item)
                margin = None if ins is None or dele is None else ins - dele
            ranked.append({"item": int(r.item), "item_id": r.item_id, "relative_gap": rel,
                           "insertion_minus_deletion": margin})
        by_gap = sorted((d for d in ranked if d["relative_gap"] is not None),
                        key=lambda d: -d["relative_gap"])[:worst]
        by_margin = sorted((d for d in ranked if d["insertion_minus_deletion"] is not None),
                           key=lambda d: d["insertion_minus_deletion"])[:worst]
        m["worst_gap"] = by_gap
        m["worst_faithfulness"] = by_margin
        summary["methods"][name] = m
    write_atomic(pathlib.Path(path) / "summary.json",
                 json.dumps(summary, indent=2, allow_nan=False).encode())
    return summary
