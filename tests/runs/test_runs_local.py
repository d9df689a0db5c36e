"""The local engine and the store: values equal direct explain calls, the store reads back with
pyarrow and DuckDB alone, resume computes only what is missing, bad items fail alone."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from tests.runs import _models

import attribkit
import attribkit.runs as runs

SPEC = "tests.runs._models:tiny_cnn"
METHODS = [("ig", {"steps": 8}), "saliency"]


def _direct(path: pathlib.Path, method: str, **opts: object) -> attribkit.Attribution:
    """An explain call on one photo, read independently of attribkit (PIL, / 255)."""
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    x = torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()
    return attribkit.explain(_models.cnn(), x, method=method, **opts)


@pytest.fixture(scope="module")
def local_store(photos: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("local") / "store"
    res = runs.run(SPEC, photos, METHODS, out=out, batch_size=3, progress=False)
    assert (res.items, res.computed, res.failed) == (8, 8, 0)
    return out


def test_values_equal_direct_explain_calls(local_store: pathlib.Path, photos: pathlib.Path
                                           ) -> None:
    store = runs.open(local_store)
    res = store.results
    assert len(res) == 16 and set(res["status"]) == {"ok"}
    for row in res.itertuples():
        path = photos / f"{row.item_id}.png"
        opts = {"steps": 8} if row.method == "integrated_gradients" else {}
        direct = _direct(path, row.method, **opts)
        got = store.values(row.item, row.method)
        want = direct.values[0].numpy()
        assert got.shape == want.shape == (3, 32, 32)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * np.abs(want).max())
        assert row.target == int(direct.target[0])
        assert row.output == pytest.approx(float(direct.output[0]), rel=1e-5)
        if row.method == "integrated_gradients":
            assert row.gap == pytest.approx(float(direct.gap[0]), abs=1e-5)
            assert row.steps_used == 8
        else:
            assert np.isnan(row.gap) and np.isnan(row.baseline_output)


def test_store_reads_back_with_pyarrow_and_duckdb_alone(local_store: pathlib.Path) -> None:
    manifest = json.loads((local_store / "manifest.json").read_text())
    assert manifest["format"] == "attribkit-run" and manifest["version"] == 2
    assert manifest["methods"] == [{"name": "integrated_gradients", "params": {"steps": 8}},
                                   {"name": "saliency", "params": {}}]
    assert manifest["inputs"]["count"] == 8
    (first,) = (local_store / "results").glob("part-integrated_gradients-00000000-00000002-*")
    table = pq.read_table(first)
    assert manifest["shards"][f"results/{first.name}"]["rows"] == 3
    col = table.column("values").combine_chunks()
    assert str(col.type.extension_name) == "arrow.fixed_shape_tensor"
    arr = col.to_numpy_ndarray()
    assert arr.shape == (3, 3, 32, 32) and arr.dtype == np.float32
    store = runs.open(local_store)
    for j, item in enumerate(table.column("item").to_pylist()):
        np.testing.assert_array_equal(arr[j], store.values(item, "ig"))
    # sum of the values minus F(x) - F(x') is the gap column, recomputed from the raw table
    out, base = table.column("output").to_numpy(), table.column("baseline_output").to_numpy()
    gap = arr.reshape(3, -1).astype(np.float64).sum(axis=1) - (out - base)
    np.testing.assert_allclose(gap, table.column("gap").to_numpy(), atol=1e-4)
    items = pq.read_table(local_store / "items")
    assert sorted(items.column("item").to_pylist()) == list(range(8))
    duckdb = pytest.importorskip("duckdb")
    got = duckdb.sql(f"SELECT method, count(*), count(DISTINCT item) FROM "
                     f"'{local_store}/results/*.parquet' GROUP BY method ORDER BY method"
                     ).fetchall()
    assert got == [("integrated_gradients", 8, 8), ("saliency", 8, 8)]


def test_restart_computes_only_missing_pairs(local_store: pathlib.Path, tmp_path: pathlib.Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    out = tmp_path / "store"
    shutil.copytree(local_store, out)
    counter = tmp_path / "count.txt"
    monkeypatch.setenv("ATTRIBKIT_TEST_COUNTER", str(counter))
    again = runs.run(SPEC, runs.open(out).manifest["inputs"]["source"], METHODS, out=out,
                     batch_size=3, progress=False)
    assert again.computed == 0 and not counter.exists()
    (lost,) = (out / "results").glob("part-saliency-00000003-00000005-*.parquet")
    lost.unlink()
    again = runs.run(SPEC, runs.open(out).manifest["inputs"]["source"], METHODS, out=out,
                     batch_size=3, progress=False)
    assert again.computed == 3
    prepared = counter.read_text().split()
    ids = runs.open(out).items.set_index("item")["item_id"]
    assert sorted(prepared) == sorted(ids[i] for i in (3, 4, 5))
    res = runs.open(out).results
    assert len(res) == 16 and not res.duplicated(["item", "method"]).any()
    assert len(list((out / "items").glob("*.parquet"))) == 3  # items not written again


def test_corrupt_image_and_nan_fail_alone(photos: pathlib.Path, tmp_path: pathlib.Path) -> None:
    import shutil

    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    res = runs.run(SPEC, folder, METHODS, out=tmp_path / "a", batch_size=4, progress=False)
    assert (res.items, res.failed) == (9, 2)
    store = runs.open(tmp_path / "a")
    failed = store.failed
    assert set(failed["item_id"]) == {"broken"}
    assert failed["error"].str.contains("broken.png").all()
    items = store.items
    assert items.set_index("item_id").loc["broken", "status"] == "failed"
    assert (items["status"] == "ok").sum() == 8
    # a model whose output is NaN on bright photos: those items fail, the others do not
    bright = {p.stem for p in photos.glob("*.png")
              if np.asarray(Image.open(p).convert("RGB"), dtype=np.float32).mean() / 255 > 0.5}
    assert 0 < len(bright) < 8
    res = runs.run("tests.runs._models:nan_cnn", photos, ["saliency"], out=tmp_path / "b",
                   progress=False)
    failed = runs.open(tmp_path / "b").failed
    assert set(failed["item_id"]) == bright and res.failed == len(bright)
    assert failed["error"].str.contains("NaN").all()


def test_sources_csv_text_smiles_and_python(tmp_path: pathlib.Path) -> None:
    from attribkit.runs.sources import collect

    csv = tmp_path / "rows.csv"
    csv.write_text("a,b,c\n1,2,3\n\n4,5,x\n")
    src = collect(csv)
    assert [(i.item_id, i.raw) for i in src.items] == [("row 0", [1.0, 2.0, 3.0]),
                                                       ("row 1", ["4", "5", "x"])]
    txt = tmp_path / "s.txt"
    txt.write_text("a good film\n\n# a comment\nbad\n")
    assert [(i.item_id, i.raw) for i in collect(txt).items] == [("line 1", "a good film"),
                                                               ("line 4", "bad")]
    smi = tmp_path / "m.smi"
    smi.write_text("CCO ethanol\nc1ccccc1#N benzonitrile\n")
    assert [i.raw for i in collect(smi).items] == ["CCO", "c1ccccc1#N"]
    data = torch.utils.data.TensorDataset(torch.zeros(3, 2), torch.arange(3))
    src = collect(data)
    assert len(src.items) == 3 and src.items[2].raw.shape == (2,)
    assert collect(x for x in [torch.ones(2)]).items[0].item_id == "0"
    assert collect(csv).sha256 != collect(txt).sha256


def test_python_data_and_tabular_rows(tmp_path: pathlib.Path) -> None:
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    data = [torch.randn(4, generator=gen) for _ in range(5)]
    res = runs.run(model, data, [("ig", {"steps": 16})], out=tmp_path / "py", batch_size=2,
                   target=1, progress=False)
    assert res.failed == 0
    store = runs.open(tmp_path / "py")
    for i, x in enumerate(data):
        want = attribkit.integrated_gradients(model, x[None], target=1, steps=16).values[0]
        np.testing.assert_allclose(store.values(i, "ig"), want.numpy(), rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(store.item(i)["input"], x.numpy())
    assert set(store.results["target"]) == {1}
    csv = tmp_path / "rows.csv"
    csv.write_text("\n".join(",".join(f"{v:.6f}" for v in x.tolist()) for x in data))
    runs.run(model, csv, [("ig", {"steps": 16})], out=tmp_path / "csv", target=1,
             progress=False)
    np.testing.assert_allclose(runs.open(tmp_path / "csv").values(3, "ig"),
                               store.values(3, "ig"), atol=1e-5)


def test_top_k_targets_and_text_of_varying_length(photos: pathlib.Path,
                                                  tmp_path: pathlib.Path) -> None:
    runs.run(SPEC, photos, ["saliency"], out=tmp_path / "k", target="top_k:2", progress=False)
    store = runs.open(tmp_path / "k")
    res = store.results
    assert len(res) == 16 and (res.groupby("item")["target"].nunique() == 2).all()
    row = res[res["item"] == 0]
    second = int(row["target"].iloc[1])
    direct = _direct(photos / f"{row['item_id'].iloc[0]}.png", "saliency", target=second)
    np.testing.assert_allclose(store.values(0, "saliency", target=second),
                               direct.values[0].numpy(), rtol=1e-4, atol=1e-7)
    txt = tmp_path / "s.txt"
    txt.write_text("a fine film\nthe worst plot of the year\nok\n")
    runs.run("tests.runs._models:tiny_text", txt, [("ig", {"steps": 8})],
             out=tmp_path / "t", progress=False)
    store = runs.open(tmp_path / "t")
    table = pq.read_table(next((tmp_path / "t" / "results").glob("*.parquet")))
    assert "values_shape" in table.column_names  # lengths differ: list column
    for i, words in enumerate(["a fine film", "the worst plot of the year", "ok"]):
        v = store.values(i, "ig")
        assert v.shape == (len(words.split()),)
        assert list(store.item(i)["tokens"]) == words.split()
        row = store.results.iloc[i]
        assert float(v.astype(np.float64).sum()) == pytest.approx(
            row.output - row.baseline_output, abs=1e-3)
