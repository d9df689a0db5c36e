"""Routes across stores and slices: the stores served, comparisons of two runs (or two methods)
item by item and in aggregate, the difference map of one item, slices of the table, and the
export of the sorted, filtered table as CSV or Parquet."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from attribkit.serve import render
from attribkit.serve.compare import MEASURES, Side, compare
from attribkit.serve.explorer import Explorer
from attribkit.serve.slices import slices

__all__ = ["register"]

def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def register(app: FastAPI, ex: Explorer) -> None:
    """Add the comparison, slice and export routes for ``ex`` to ``app``."""

    def side(index: int, method: str) -> Side:
        if not 0 <= index < len(ex.stores):
            raise ValueError(f"store {index} is not served (0..{len(ex.stores) - 1})")
        table = ex.tables[index]
        table.refresh()
        if not table.methods:
            raise ValueError(f"the store {ex.names()[index]} has no results yet")
        m = method or table.methods[0]
        if m not in table.methods:
            raise ValueError(f"the store {ex.names()[index]} has no method {m[:80]!r}; it has "
                             f"{', '.join(table.methods)}")
        return Side(ex.names()[index], table, m)

    @app.get("/api/stores")
    async def stores() -> dict[str, Any]:
        out = []
        for name, st, table in zip(ex.names(), ex.stores, ex.tables, strict=True):
            table.refresh()
            out.append({"name": name, "model": str(st.manifest.get("model", "")),
                        "kind": st.kind, "items": len(st.items), "methods": table.methods})
        return {"stores": out, "measures": MEASURES}

    @app.get("/api/compare")
    def compare_runs(a: int = 0, b: int = 1, ma: str = Query("", max_length=100),
                     mb: str = Query("", max_length=100),
                     measure: str = Query("rel_gap", max_length=20),
                     page: int = Query(0, ge=0), per_page: int = Query(50, ge=1, le=500)
                     ) -> Any:
        try:
            return compare(side(a, ma), side(b if len(ex.stores) > 1 else 0, mb),
                           measure=measure, page=page, per_page=per_page,
                           cache=ex.comparisons)
        except ValueError as err:
            return _error(400, str(err))

    @app.get("/api/compare/diff.png")
    def diff_png(item_a: int, item_b: int, a: int = 0, b: int = 1,
                 ma: str = Query("", max_length=100),
                 mb: str = Query("", max_length=100)) -> Response:
        try:
            sa, sb = side(a, ma), side(b if len(ex.stores) > 1 else 0, mb)
            va = sa.table.store.values(item_a, sa.method)
            vb = sb.table.store.values(item_b, sb.method)
        except (ValueError, KeyError) as err:
            return _error(404, f"no such attribution: {err}")
        ra, rb = render.reduce_map(va, "signed"), render.reduce_map(vb, "signed")
        if ra.shape != rb.shape:
            return _error(400, f"the maps differ in shape ({ra.shape} and {rb.shape}); only "
                               "maps of the same input size have a difference map")
        return Response(render.map_png(rb - ra, "signed"), media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/slices")
    async def slice_table(by: str = Query("target_name", max_length=20), store: int = 0) -> Any:
        if not 0 <= store < len(ex.tables):
            return _error(404, f"store {store} is not served")
        try:
            return slices(ex.tables[store], by)
        except ValueError as err:
            return _error(400, str(err))

    def _export(fmt: str, sort: str, desc: bool, q: str, status: str, target: str,
                slice_by: str, slice_value: str) -> Response:
        try:
            frame = ex.table.export_frame(sort=sort, descending=desc, q=q, status=status,
                                          target=target, slice_by=slice_by,
                                          slice_value=slice_value)
        except ValueError as err:
            return _error(400, str(err))
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in ex.store.root.name)
        if fmt == "csv":
            body = frame.to_csv(index=False).encode("utf-8")
            ctype = "text/csv; charset=utf-8"
        else:
            buf = io.BytesIO()
            frame.replace({np.nan: None}).to_parquet(buf, index=False)
            body, ctype = buf.getvalue(), "application/vnd.apache.parquet"
        return Response(body, media_type=ctype, headers={
            "Content-Disposition": f'attachment; filename="{name or "items"}.{fmt}"'})

    def exporter(fmt: str) -> Any:
        def route(sort: str = Query("item", max_length=100), desc: bool = False,
                  q: str = Query("", max_length=200),
                  status: str = Query("all", pattern="^(all|ok|failed)$"),
                  target: str = Query("", max_length=200),
                  slice: str = Query("", max_length=20),
                  value: str = Query("", max_length=200)) -> Response:
            return _export(fmt, sort, desc, q, status, target, slice, value)
        return route

    for fmt in ("csv", "parquet"):
        app.add_api_route(f"/api/export.{fmt}", exporter(fmt), methods=["GET"])
