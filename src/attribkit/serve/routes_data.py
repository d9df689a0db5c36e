"""Read-only routes: store information, the paged item table, one item, and its pictures."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from attribkit.core.saving import finite
from attribkit.serve import render
from attribkit.serve.explorer import Explorer
from attribkit.serve.interactions import item_interactions
from attribkit.serve.table import SPECIAL, gap_histograms

__all__ = ["register"]

SIGN = Query("signed", pattern="^(signed|absolute)$")
PNG_CACHE = {"Cache-Control": "private, max-age=3600"}
MAX_VECTOR = 4096


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _png(data: bytes) -> Response:
    return Response(data, media_type="image/png", headers=PNG_CACHE)


def _num(x: Any) -> Any:
    return finite(x)


def view_of(kind: str, values: np.ndarray[Any, Any]) -> str:
    """How the page shows one result: ``map``, ``tokens``, ``molecule``, ``generation`` (a
    token x token matrix, ``/api/items/N/generation``) or ``bars``."""
    if kind == "generation":
        return "generation"
    if kind == "text":
        return "tokens"
    if kind == "smiles":
        return "molecule"
    v = values
    while v.ndim > 3 and v.shape[0] == 1:
        v = v[0]
    if kind in ("image", "tensor") and v.ndim in (2, 3) and min(v.shape[-2:]) >= 2:
        return "map"
    return "bars"


def _vector(values: np.ndarray[Any, Any], view: str) -> list[float | None]:
    v = np.asarray(values, dtype=np.float64)
    if view == "tokens" and v.ndim == 2:
        v = v.sum(axis=-1)  # per-token: the sum over the embedding
    v = v.reshape(-1)[:MAX_VECTOR]
    return [finite(a) for a in v]


def register(app: FastAPI, ex: Explorer) -> None:
    """Add the read-only routes for ``ex`` to ``app``."""
    store = ex.store

    def known(n: int) -> bool:
        return n in store.items.index

    cached: dict[int, dict[str, Any]] = {}

    @app.get("/api/info")
    async def info() -> dict[str, Any]:
        store.reload()
        if store.version not in cached:
            cached.clear()
            cached[store.version] = _info()
        return cached[store.version]

    def _info() -> dict[str, Any]:
        ex.table.refresh()
        m = store.manifest
        from attribkit.methods.registry import methods

        return {"model": str(m.get("model", "")), "kind": store.kind,
                "name": store.root.name, "created": m.get("created"),
                "attribkit": m.get("attribkit"), "methods": ex.table.methods,
                "method_params": m.get("methods", []), "items": len(store.items),
                "failed": int((ex.table.frame["status"] == "failed").sum()),
                "partial": int((ex.table.frame["status"] == "partial").sum()),
                "expected_items": m.get("inputs", {}).get("count"),
                "problems": list(store.problems), "live": ex.runner is not None,
                "live_kind": ex.runner.loaded.kind if ex.runner else None,
                "model_live": ex.runner.loaded.name if ex.runner else None,
                "live_methods": sorted(methods()) if ex.runner else [],
                "sort_keys": ex.table.sort_keys(), "version": store.version,
                "stores": len(ex.stores), "curves": ex.table.curves}

    summaries: dict[tuple[int, int], dict[str, Any]] = {}

    @app.get("/api/summary")
    async def summary() -> dict[str, Any]:
        # the per-item scores are table columns (and would make this answer megabytes)
        path = store.root / "summary.json"
        key = (store.version, path.stat().st_mtime_ns if path.is_file() else -1)
        if key not in summaries:
            summaries.clear()
            summaries[key] = {"gaps": gap_histograms(ex.table),
                              "summary": _without(store.summary(), "per_item")}
        return summaries[key]

    @app.get("/api/items")
    async def items(page: int = Query(0, ge=0), per_page: int = Query(50, ge=1, le=500),
              sort: str = Query("item", max_length=100), desc: bool = False,
              q: str = Query("", max_length=200),
              status: str = Query("all", pattern="^(all|ok|failed)$"),
              target: str = Query("", max_length=200), slice: str = Query("", max_length=20),
              value: str = Query("", max_length=200)) -> Any:
        try:
            p = ex.table.query(page=page, per_page=per_page, sort=sort, descending=desc, q=q,
                               status=status, target=target, slice_by=slice, slice_value=value)
        except ValueError as err:
            return _error(400, str(err))
        return {"total": p.total, "page": p.page, "per_page": p.per_page, "rows": p.rows,
                "methods": ex.table.methods, "curves": ex.table.curves}

    @app.get("/api/items/{n}")
    async def item(n: int, sort: str = Query("item", max_length=100), desc: bool = False,
                   q: str = Query("", max_length=200),
                   status: str = Query("all", pattern="^(all|ok|failed)$"),
                   target: str = Query("", max_length=200), slice: str = Query("", max_length=20),
                   value: str = Query("", max_length=200)) -> Any:
        store.reload()
        if not known(n):
            return _error(404, f"no item {n} in this store")
        try:  # previous / next follow the table's sorted, filtered order
            prev, nxt, pos, total = ex.table.neighbours(
                n, sort=sort, descending=desc, q=q, status=status, target=target,
                slice_by=slice, slice_value=value)
        except ValueError as err:
            return _error(400, str(err))
        if pos < 0:  # the filter leaves this item out: the store's order
            prev, nxt = _neighbour(store.items.index, n, -1), _neighbour(store.items.index, n, 1)
        rec = store.item_record(n)
        kind = str(rec.get("kind") or store.kind)
        rows = store.result_rows(n)
        results, interior = [], []
        for r in rows:
            entry = {k: _num(r.get(k)) for k in ("output", "baseline_output", "gap",
                                                 "relative_gap", "error_estimate",
                                                 "steps_used", "seconds")}
            tgt = finite(r.get("target"))
            entry.update(method=str(r["method"]), target=None if tgt is None else int(tgt),
                         target_name=_text(r.get("target_name")), status=r.get("status"),
                         error=_text(r.get("error")), params=_params(r.get("params")))
            if r["method"] in SPECIAL:
                if entry["status"] == "ok":
                    interior.append(entry)
                continue
            if entry["status"] == "ok":
                try:
                    vals = store.values_at(str(r["_file"]), int(r["_row"]))
                except (KeyError, ValueError):
                    entry.update(status="failed", error="values missing from the store")
                else:
                    view = view_of(kind, vals)
                    entry.update(view=view, shape=list(vals.shape))
                    if view == "map":
                        entry["scale"] = {s: render.map_scale(render.reduce_map(vals, s))
                                          for s in ("signed", "absolute")}
                    elif view != "generation":  # its matrix: /api/items/N/generation
                        vec = _vector(vals, view)
                        entry["vector"] = vec
                        mag = [abs(v) for v in vec if v is not None]
                        entry["scale"] = {"signed": max(mag, default=0.0),
                                          "absolute": max(mag, default=0.0)}
            results.append(entry)
        tokens = rec.get("tokens")
        names = rec.get("feature_names")
        return {"item": n, "item_id": str(rec["item_id"]), "source": _text(rec.get("source")),
                "kind": kind, "text": _text(rec.get("text")),
                "tokens": None if tokens is None else [str(t) for t in tokens],
                "feature_names": None if names is None else [str(t) for t in names],
                "status": rec.get("status"), "error": _text(rec.get("error")),
                "picture": kind in ("image", "tensor"), "results": results,
                "interior": interior, "interactions": item_interactions(rec),
                "can_compute_interior": ex.runner is not None and not interior
                and kind in ("image", "tensor"),
                "previous": prev, "next": nxt, "position": pos, "in_view": total,
                "version": store.version}

    @app.get("/api/items/{n}/input.png")
    async def input_png(n: int) -> Response:
        if not known(n):
            return _error(404, f"no item {n}")
        data = store.thumbnail(n)
        if data is None:
            x = store.model_input(n)
            data = None if x is None else render.input_png(x)
        return _error(404, "this item has no picture") if data is None else _png(data)

    @app.get("/api/items/{n}/map.png")
    def map_png(n: int, method: str = Query(..., max_length=100), target: int | None = None,
                sign: str = SIGN) -> Response:
        try:
            vals = store.values(n, method, target)
        except KeyError:
            return _error(404, "no such attribution in this store")
        return _png(render.map_png(vals, sign))

    @app.get("/api/items/{n}/molecule.png")
    def molecule_png(n: int, method: str = Query(..., max_length=100), target: int | None = None,
                     sign: str = SIGN) -> Response:
        if not known(n):
            return _error(404, f"no item {n}")
        smiles = store.item_record(n).get("text")
        try:
            vals = store.values(n, method, target)
        except KeyError:
            return _error(404, "no such attribution in this store")
        data = render.molecule_png(str(smiles), vals.reshape(-1), sign) if smiles else None
        return _error(404, "cannot draw this molecule") if data is None else _png(data)

    @app.get("/api/items/{n}/interior")
    async def interior(n: int, target: int | None = None) -> Any:
        try:
            vals = store.values(n, "interior_gradients", target)
        except KeyError:
            return _error(404, "no interior gradients stored for this item")
        extra = store.extra(n, "interior_gradients", target) or {}
        a = int(vals.shape[0])
        alphas = extra.get("alphas") or list(np.linspace(1.0 / a, 1.0, a))
        scores = extra.get("scores") or extra.get("curve") or extra.get("saturation")
        mags = [float(np.abs(vals[k]).mean()) for k in range(a)]
        return {"frames": a, "alphas": [finite(v) for v in alphas][:a],
                "scores": None if scores is None else [finite(v) for v in scores][:a],
                "mean_abs_gradient": mags}

    @app.get("/api/items/{n}/interior/{k}.png")
    def interior_frame(n: int, k: int, target: int | None = None, sign: str = SIGN,
                       scale: str = Query("own", pattern="^(own|common)$")) -> Response:
        try:
            vals = store.values(n, "interior_gradients", target)
        except KeyError:
            return _error(404, "no interior gradients stored for this item")
        if not 0 <= k < vals.shape[0]:
            return _error(404, f"frame {k} is outside 0..{vals.shape[0] - 1}")
        top = None
        if scale == "common":
            top = max(render.map_scale(render.reduce_map(vals[j], sign))
                      for j in range(vals.shape[0]))
        return _png(render.map_png(vals[k], sign, top))


def _without(obj: Any, key: str) -> Any:
    """``obj`` with every ``key`` of its nested dictionaries left out."""
    if isinstance(obj, dict):
        return {k: _without(v, key) for k, v in obj.items() if k != key}
    if isinstance(obj, list):
        return [_without(v, key) for v in obj]
    return obj


def _neighbour(index: Any, n: int, step: int) -> int | None:
    pos = int(index.get_loc(n)) + step
    return int(index[pos]) if 0 <= pos < len(index) else None


def _text(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def _params(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
