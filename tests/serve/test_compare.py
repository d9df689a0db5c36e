"""Comparing stores, slicing and exporting: the explorer's API checked against pandas by hand."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.serve.synthetic import write_store

from attribkit.serve import create_app
from attribkit.serve.compare import bootstrap_interval
from attribkit.serve.store import RunStore
from attribkit.serve.table import ItemTable, label_of

HOST = ("testserver",)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    tmp = tmp_path_factory.mktemp("cmp")
    a = write_store(tmp / "runA", 30, failed=(4,), seed=1, folders=True)
    b = write_store(tmp / "runB", 30, failed=(4, 9), seed=2, folders=True)
    return a, b


@pytest.fixture(scope="module")
def client(stores: tuple[pathlib.Path, pathlib.Path]) -> TestClient:
    return TestClient(create_app(stores[0], hosts=HOST, others=[stores[1]]))


def _gaps(store: pathlib.Path, method: str) -> pd.Series:
    cols = ["item_id", "item", "method", "status", "relative_gap"]
    res = pd.concat([pd.read_parquet(f, columns=cols)
                     for f in sorted((store / "results").glob("*.parquet"))])
    ok = res[(res["method"] == method) & (res["status"] == "ok")]
    return ok.drop_duplicates("item").set_index("item_id")["relative_gap"].abs()


def test_compare_two_stores_matches_a_paired_difference(
        client: TestClient, stores: tuple[pathlib.Path, pathlib.Path]) -> None:
    r = client.get("/api/stores").json()
    assert [s["name"] for s in r["stores"]] == ["runA", "runB"]
    doc = client.get("/api/compare?a=0&b=1&ma=integrated_gradients&mb=integrated_gradients"
                     "&per_page=100").json()
    ga, gb = _gaps(stores[0], "integrated_gradients"), _gaps(stores[1], "integrated_gradients")
    d = (gb - ga).dropna()  # items both runs explained
    agg = {x["measure"]: x for x in doc["aggregate"]}
    assert agg["rel_gap"]["n"] == len(d) == 28
    assert agg["rel_gap"]["mean_diff"] == pytest.approx(float(d.mean()), rel=1e-12)
    lo, hi = agg["rel_gap"]["ci"]
    assert lo < float(d.mean()) < hi
    assert {"aopc", "deletion", "insertion"} <= set(agg)  # the report's per-item scores
    diffs = [abs(r["rel_gap:diff"]) for r in doc["rows"] if r["rel_gap:diff"] is not None]
    assert diffs == sorted(diffs, reverse=True) and len(doc["rows"]) == 30
    # two methods of one store
    one = client.get("/api/compare?a=0&b=0&ma=integrated_gradients&mb=saliency").json()
    assert one["a"]["method"] == "integrated_gradients" and one["b"]["method"] == "saliency"
    assert client.get("/api/compare?a=0&b=1&ma=nope").status_code == 400
    assert client.get("/api/compare?a=0&b=7").status_code == 400


def test_difference_map_of_one_item(client: TestClient) -> None:
    r = client.get("/api/compare/diff.png?item_a=2&item_b=2&a=0&b=1&ma=saliency&mb=saliency")
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/api/compare/diff.png?item_a=4&item_b=4").status_code == 404  # failed


def test_bootstrap_interval_covers_the_mean_and_narrows() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0.3, 1.0, 400)
    lo, hi = bootstrap_interval(d)
    assert lo is not None and hi is not None and lo < d.mean() < hi
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)  # the normal interval, independently
    assert hi - lo == pytest.approx(2 * half, rel=0.15)
    assert bootstrap_interval(d[:1]) == (None, None)


def test_slices_by_class_label_and_failure(client: TestClient,
                                           stores: tuple[pathlib.Path, pathlib.Path]) -> None:
    items = pd.concat([pd.read_parquet(f, columns=["source"])
                       for f in sorted((stores[0] / "items").glob("*.parquet"))])
    by_label = client.get("/api/slices?by=label").json()
    sizes = {g["key"]: g["n"] for g in by_label["groups"]}
    assert sizes == items["source"].map(label_of).value_counts().to_dict()
    assert set(sizes) == {"cats", "dogs", "cups"}
    g = by_label["groups"][0]
    assert sum(g["methods"]["saliency"]["counts"]) == g["methods"]["saliency"]["n"]
    assert "aopc" in g["methods"]["saliency"]
    by_status = {x["key"]: x["n"] for x in client.get("/api/slices?by=status").json()["groups"]}
    assert by_status["failed"] == 1 and sum(by_status.values()) == 30
    assert client.get("/api/slices?by=nope").status_code == 400
    page = client.get("/api/items?slice=label&value=cats&per_page=100").json()
    assert page["total"] == sizes["cats"] and all(r["label"] == "cats" for r in page["rows"])


def test_curve_columns_sort_and_neighbours_follow_the_order(client: TestClient) -> None:
    page = client.get("/api/items?sort=aopc:saliency&desc=true&per_page=100").json()
    vals = [r["methods"]["saliency"]["aopc"] for r in page["rows"]]
    known = [v for v in vals if v is not None]
    assert known == sorted(known, reverse=True) and vals[len(known):] == [None] * (30 - len(known))
    order = [r["item"] for r in page["rows"]]
    mid = order[5]
    it = client.get(f"/api/items/{mid}?sort=aopc:saliency&desc=true").json()
    assert (it["previous"], it["next"], it["position"]) == (order[4], order[6], 5)


def test_export_csv_and_parquet_are_the_sorted_filtered_table(client: TestClient) -> None:
    q = "sort=rel_gap:saliency&desc=true&slice=label&value=dogs"
    page = client.get(f"/api/items?{q}&per_page=100").json()
    csv = client.get(f"/api/export.csv?{q}")
    assert csv.status_code == 200 and "attachment" in csv.headers["content-disposition"]
    df = pd.read_csv(io.StringIO(csv.text))
    assert df["item"].tolist() == [r["item"] for r in page["rows"]]
    pq_ = client.get(f"/api/export.parquet?{q}")
    back = pd.read_parquet(io.BytesIO(pq_.content))
    assert back["item"].tolist() == df["item"].tolist()
    assert np.allclose(back["aopc:saliency"].astype(float), df["aopc:saliency"], equal_nan=True)
    assert client.get("/api/export.csv?sort=nope").status_code == 400


def test_label_from_folder_per_class(tmp_path: pathlib.Path) -> None:
    assert label_of("data/cats/1.png") == "cats" and label_of("row 3") == ""
    one_folder = write_store(tmp_path / "s", 6)  # every image in data/: no label
    assert set(ItemTable(RunStore(one_folder)).frame["label"]) == {""}


def test_large_comparisons_use_the_normal_interval() -> None:
    from attribkit.serve.compare import BOOTSTRAP_MAX, interval

    rng = np.random.default_rng(1)
    d = rng.normal(-0.2, 0.5, BOOTSTRAP_MAX + 500)
    lo, hi, how = interval(d)
    assert how == "normal" and lo is not None and hi is not None
    blo, bhi = bootstrap_interval(d)  # the bootstrap agrees within its own noise
    assert blo is not None and bhi is not None
    assert lo == pytest.approx(blo, abs=0.01) and hi == pytest.approx(bhi, abs=0.01)
    assert interval(d[:50])[2] == "bootstrap"


def test_summary_leaves_the_per_item_scores_to_the_table(client: TestClient) -> None:
    doc = client.get("/api/summary").json()
    aopc = doc["summary"]["methods"]["saliency"]["aopc"]
    assert "per_item" not in aopc and aopc["mean"] == pytest.approx(0.41)
    row = client.get("/api/items?per_page=1").json()["rows"][0]
    assert row["methods"]["saliency"]["aopc"] is not None


def _independent(store: pathlib.Path, method: str) -> pd.DataFrame:
    """Per item id, straight from the shards and ``summary.json``: |relative gap| and the
    report's AOPC / deletion / insertion of ``method``."""
    import json

    items = pd.concat([pd.read_parquet(f, columns=["item", "item_id"])
                       for f in sorted((store / "items").glob("*.parquet"))])
    per = json.loads((store / "summary.json").read_text())["methods"][method]
    out = pd.DataFrame({"item_id": items["item_id"].to_numpy()}, index=items["item"].to_numpy())
    out["rel_gap"] = out["item_id"].map(_gaps(store, method))
    for key in ("aopc", "deletion", "insertion"):
        scores = {int(k): v for k, v in per[key]["per_item"].items()}
        out[key] = [scores.get(int(i), np.nan) for i in out.index]
    return out.set_index("item_id")


@pytest.mark.parametrize("measure", ["rel_gap", "aopc", "deletion", "insertion"])
def test_every_page_of_a_comparison_matches_an_independent_join(
        client: TestClient, stores: tuple[pathlib.Path, pathlib.Path], measure: str) -> None:
    a = _independent(stores[0], "integrated_gradients")
    b = _independent(stores[1], "saliency")
    seen: list[str] = []
    for page in range(5):  # 30 items, 7 a page: the cached join serves every page
        doc = client.get(f"/api/compare?a=0&b=1&ma=integrated_gradients&mb=saliency"
                         f"&measure={measure}&per_page=7&page={page}").json()
        for r in doc["rows"]:
            for m in ("rel_gap", "aopc", "deletion", "insertion"):
                va, vb = a.loc[r["item_id"], m], b.loc[r["item_id"], m]
                for got, want in ((r[f"{m}:a"], va), (r[f"{m}:b"], vb),
                                  (r[f"{m}:diff"], vb - va)):
                    assert (got is None) == bool(np.isnan(want))
                    assert got is None or got == pytest.approx(want, rel=1e-12, abs=1e-15)
        seen += [r["item_id"] for r in doc["rows"]]
        agg = {x["measure"]: x for x in doc["aggregate"]}
        d = (b[measure] - a[measure]).dropna()
        assert agg[measure]["n"] == len(d)
        assert agg[measure]["mean_diff"] == pytest.approx(float(d.mean()), rel=1e-12)
        assert agg[measure]["mean_a"] == pytest.approx(float(a[measure][d.index].mean()),
                                                       rel=1e-12)
    assert sorted(seen) == sorted(a.index)  # every item once, over the pages
    d = (b[measure] - a[measure]).abs()
    mags = [float(d[i]) for i in seen]
    known = [v for v in mags if not np.isnan(v)]
    assert known == sorted(known, reverse=True)  # largest change first, missing ones last
    assert all(np.isnan(v) for v in mags[len(known):])


def test_the_cached_comparison_follows_new_shards(tmp_path: pathlib.Path) -> None:
    import shutil

    from attribkit.serve.compare import Comparisons, Side, compare

    full = write_store(tmp_path / "full", 30, shard=20, seed=3)
    grow = tmp_path / "grow"
    for sub in ("items", "results"):
        (grow / sub).mkdir(parents=True)
        for f in (full / sub).glob("*-00000000-00000019.parquet"):
            shutil.copy(f, grow / sub / f.name)
    shutil.copy(full / "manifest.json", grow / "manifest.json")
    other = write_store(tmp_path / "other", 30, shard=30, seed=4)
    ta, tb = ItemTable(RunStore(grow)), ItemTable(RunStore(other))
    cache = Comparisons()
    sa, sb = Side("grow", ta, "integrated_gradients"), Side("other", tb, "integrated_gradients")
    first = compare(sa, sb, cache=cache, per_page=100)
    assert first["matched"] == 20
    assert compare(sa, sb, cache=cache)["aggregate"] == first["aggregate"]  # reused
    for sub in ("items", "results"):
        for f in (full / sub).glob("*-00000020-00000029.parquet"):
            shutil.copy(f, grow / sub / f.name)
    ta.store.reload()
    later = compare(sa, sb, cache=cache, per_page=100)
    assert later["matched"] == 30  # the ten new items joined in
    d = (_gaps(other, "integrated_gradients") - _gaps(full, "integrated_gradients")).dropna()
    agg = {x["measure"]: x for x in later["aggregate"]}
    assert agg["rel_gap"]["mean_diff"] == pytest.approx(float(d.mean()), rel=1e-12)
    assert later == compare(sa, sb, per_page=100)  # the same as without a cache
