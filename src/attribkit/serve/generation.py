"""The item page of a generation run (``attribkit run smollm2 prompts.txt``): each method's
token x token matrix with its labels, for ``static/generation.js``.

``GET /api/items/N/generation`` answers, per method stored for the prompt, the generated tokens
(rows), the prompt tokens (columns: tokens, or one label per group), the ``(generated x prompt)``
matrix, each generated token's log-probability, the row sums and the colour scales the page
uses: the 99th percentile of ``|a|`` in each row (``"token"``) and in the whole matrix
(``"matrix"``). Labels come from the row's ``extra`` (docs/runs.md); a store written before it
held them falls back to the item's tokens and ``#t`` for the generated ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from attribkit.core.saving import finite
from attribkit.serve.explorer import Explorer
from attribkit.serve.render import map_scale
from attribkit.serve.store import RunStore
from attribkit.serve.table import SPECIAL

__all__ = ["generation_payload", "register"]

Array = np.ndarray[Any, Any]


def _labels(given: Any, count: int, fallback: list[str]) -> list[str]:
    if isinstance(given, list) and len(given) == count:
        return [str(s) for s in given]
    return fallback


def _numbers(given: Any, count: int) -> list[float | None] | None:
    if isinstance(given, list) and len(given) == count:
        return [finite(v) for v in given]
    return None


def _method_entry(store: RunStore, n: int, row: dict[str, Any],
                  item_tokens: list[str] | None) -> dict[str, Any]:
    method = str(row["method"])
    entry: dict[str, Any] = {"method": method, "status": row.get("status"),
                             "error": row.get("error") if isinstance(row.get("error"), str)
                             else None, "output": finite(row.get("output"))}
    if entry["status"] != "ok":
        return entry
    try:
        vals = np.asarray(store.values_at(str(row["_file"]), int(row["_row"])), np.float64)
    except (KeyError, ValueError):
        return {**entry, "status": "failed", "error": "values missing from the store"}
    if vals.ndim != 2:
        return {**entry, "status": "failed",
                "error": f"values of shape {list(vals.shape)} are not a token x token matrix"}
    t, p = vals.shape
    extra = store.extra(n, method) or {}
    prompt = _labels(extra.get("prompt_tokens"), p,
                     item_tokens if item_tokens and len(item_tokens) == p
                     else [f"#{j}" for j in range(p)])
    generated = _labels(extra.get("generated_tokens"), t, [f"#{i}" for i in range(t)])
    clean = np.where(np.isfinite(vals), vals, 0.0)
    return {**entry, "prompt_tokens": prompt, "generated_tokens": generated,
            "matrix": [[finite(v) for v in r] for r in vals],
            "totals": [finite(v) for v in clean.sum(axis=1)],
            "logprobs": _numbers(extra.get("logprobs"), t),
            "relative_gap": _numbers(extra.get("relative_gap"), t),
            "scale": {"token": [map_scale(r) for r in vals], "matrix": map_scale(vals)}}


def generation_payload(store: RunStore, n: int) -> dict[str, Any]:
    """The JSON of ``/api/items/N/generation`` for item ``n`` of a generation store.

    Parameters
    ----------
    store : RunStore
        The store (its item ``n`` must exist).
    n : int
        The item.

    Returns
    -------
    dict
        ``item``, ``prompt`` (the text), ``prompt_tokens`` and ``generated_tokens`` (of the
        first method that succeeded), and ``methods``: per method ``method``, ``status``,
        ``error``, ``output`` (``log p`` of the answer) and, when it succeeded, its own
        ``prompt_tokens``, ``generated_tokens``, ``matrix`` (rows: generated tokens),
        ``totals``, ``logprobs``, ``relative_gap`` and ``scale``.
    """
    rec = store.item_record(n)
    tokens = rec.get("tokens")
    item_tokens = None if tokens is None else [str(s) for s in tokens]
    methods = [_method_entry(store, n, r, item_tokens) for r in store.result_rows(n)
               if r["method"] not in SPECIAL]
    first = next((m for m in methods if m["status"] == "ok"), None)
    text = rec.get("text")
    return {"item": n, "item_id": str(rec["item_id"]),
            "prompt": text if isinstance(text, str) else None,
            "prompt_tokens": first["prompt_tokens"] if first else item_tokens or [],
            "generated_tokens": first["generated_tokens"] if first else [],
            "methods": methods}


def register(app: FastAPI, ex: Explorer) -> None:
    """Add ``GET /api/items/{n}/generation`` for ``ex``'s store to ``app``."""
    store = ex.store

    @app.get("/api/items/{n}/generation")
    def generation(n: int) -> Any:
        store.reload()
        if n not in store.items.index:
            return JSONResponse({"error": f"no item {n} in this store"}, status_code=404)
        kind = str(store.item_record(n).get("kind") or store.kind)
        if kind != "generation":
            return JSONResponse({"error": f"item {n} is not a generation (its kind is {kind}); "
                                          f"its page is /item/{n}"}, status_code=404)
        return generation_payload(store, n)
