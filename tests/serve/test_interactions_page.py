"""The item page's interactions: a run with ``-m interactions`` shows its top pairs."""

from __future__ import annotations

import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from tests.runs.test_runs_interactions import ROWS, pairs_model

import attribkit.runs as runs
from attribkit.serve import create_app
from attribkit.serve.interactions import item_interactions

HOST = ["testserver"]


def _store(tmp_path: pathlib.Path, methods: list[object]) -> pathlib.Path:
    csv = tmp_path / "rows.csv"
    csv.write_text("\n".join(",".join(str(v) for v in r) for r in ROWS) + "\n")
    out = tmp_path / "store"
    runs.run(pairs_model(), csv, methods, out=out, progress=False)  # type: ignore[arg-type]
    return out


def test_item_json_has_the_stored_pairs(tmp_path: pathlib.Path) -> None:
    root = _store(tmp_path, ["saliency", ("interactions", {"index": "FSII", "top": 2})])
    c = TestClient(create_app(root, hosts=HOST))
    body = c.get("/api/items/1").json()
    x = body["interactions"]
    assert (x["index"], x["order"], x["players"], x["exact"], x["error"]) == (
        "FSII", 2, 4, True, None)
    pairs = [t for t in x["top"] if len(t["players"]) == 2]
    r = ROWS[1]  # F = 3 x0 x1 + x2 - 2 x1 x3: the pairs' dividends in closed form
    assert [t["players"] for t in pairs] == [["0", "1"], ["1", "3"]]
    assert [t["value"] for t in pairs] == pytest.approx([3 * r[0] * r[1], -2 * r[1] * r[3]])
    assert all(t["stderr"] is None for t in pairs)  # exact
    assert body["results"][0]["method"] == "saliency"  # the attributions are still there
    page = c.get("/item/1")
    assert page.status_code == 200 and 'id="interactions"' in page.text
    js = c.get("/static/item.js").text
    assert "renderInteractions" in js and "item.interactions" in js


def test_item_json_without_interactions(tmp_path: pathlib.Path) -> None:
    root = _store(tmp_path, ["saliency"])
    body = TestClient(create_app(root, hosts=HOST)).get("/api/items/0").json()
    assert body["interactions"] is None


def test_a_recorded_failure_and_bad_text_are_shown_safely(tmp_path: pathlib.Path) -> None:
    rec = {"interactions": json.dumps({"index": "SII", "order": 2, "error": "InputError: too "
                                       "many players"})}
    x = item_interactions(rec)
    assert x is not None and x["error"] == "InputError: too many players" and x["top"] == []
    assert item_interactions({"interactions": "not json"}) is None
    assert item_interactions({"interactions": "[1, 2]"}) is None
    assert item_interactions({}) is None
    nan = item_interactions({"interactions": '{"top": [{"players": [0, 1], "value": NaN}]}'})
    assert nan is not None and nan["top"][0]["value"] is None
    # and through the API, on a store whose items shard carries a failure
    root = _store(tmp_path, ["saliency"])
    shard = next((root / "items").glob("part-*.parquet"))
    table = pq.read_table(shard)
    table = table.append_column("interactions", pa.array([rec["interactions"]] * len(table)))
    pq.write_table(table, shard)
    body = TestClient(create_app(root, hosts=HOST)).get("/api/items/0").json()
    assert body["interactions"]["error"] == "InputError: too many players"
