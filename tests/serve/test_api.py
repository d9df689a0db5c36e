"""The explorer's HTTP API through FastAPI's test client, on synthetic stores written by pyarrow."""

from __future__ import annotations

import io
import json
import pathlib
import struct
import time
import zlib
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from tests.serve.synthetic import write_store
from tests.serve.tiny_model import build, build_mlp

from attribkit.cli import main as cli_main
from attribkit.cli.models import Loaded
from attribkit.serve import StoreError, create_app

HOST = ["testserver"]


@pytest.fixture(scope="module")
def image_store(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return write_store(tmp_path_factory.mktemp("s") / "run", 60, size=12, failed=[3],
                       shard=25, alphas=6)


@pytest.fixture(scope="module")
def client(image_store: pathlib.Path) -> TestClient:
    return TestClient(create_app(image_store, hosts=HOST))


def _live(store: pathlib.Path, **kw: Any) -> TestClient:
    model = Loaded(build(), "tensor", "tests.serve.tiny_model:build")
    return TestClient(create_app(store, model=model, hosts=HOST, **kw))


def _png(size: tuple[int, int] = (20, 16), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height, with a tiny (wrong) body: Pillow must refuse
    it from the header alone."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + \
        chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _results(root: pathlib.Path, method: str) -> Any:
    """One method's result shards read back with pyarrow alone (the oracle of the reader)."""
    import pandas as pd

    return pd.concat([pq.read_table(p).to_pandas()
                      for p in sorted((root / "results").glob(f"part-{method}-*.parquet"))])


def _wait(c: TestClient, job: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    t0 = time.time()
    while job["state"] in ("queued", "running"):
        assert time.time() - t0 < timeout, job
        time.sleep(0.05)
        job = c.get(f"/api/live/jobs/{job['id']}").json()
    return job


# --------------------------------------------------------------------------- listing and sorting
def test_sort_by_gap_matches_pyarrow(client: TestClient, image_store: pathlib.Path) -> None:
    # oracle: the results read back with pyarrow alone, sorted by |gap| with numpy
    res = pq.read_table(image_store / "results", columns=["item", "method", "gap"]).to_pandas()
    ig = res[(res["method"] == "integrated_gradients") & res["gap"].notna()]
    expected = ig.assign(a=ig["gap"].abs()).sort_values("a", ascending=False)["item"].tolist()
    got: list[int] = []
    for page in range(3):
        r = client.get("/api/items", params={"sort": "gap:integrated_gradients", "desc": True,
                                             "page": page, "per_page": 25})
        assert r.status_code == 200
        body = r.json()
        assert body["total"] == 60
        got += [row["item"] for row in body["rows"]]
    assert got[:len(expected)] == expected
    assert got[-1] == 3  # the failed item has no gap: last whatever the direction
    asc = client.get("/api/items", params={"sort": "gap:integrated_gradients",
                                           "per_page": 60}).json()["rows"]
    assert [r["item"] for r in asc][:len(expected)] == expected[::-1]


def test_filter_status_and_text(client: TestClient) -> None:
    failed = client.get("/api/items", params={"status": "failed"}).json()
    assert failed["total"] == 1 and failed["rows"][0]["item"] == 3
    assert "cannot identify" in failed["rows"][0]["error"]
    bold = client.get("/api/items", params={"q": "<b>bold</b>"}).json()
    assert bold["total"] == 12 - (1 if 3 % 5 == 4 else 0)
    assert all(r["target_name"] == "<b>bold</b> & co" for r in bold["rows"])
    none = client.get("/api/items", params={"q": "no such thing"}).json()
    assert none["total"] == 0 and none["rows"] == []


def test_bad_queries_are_refused(client: TestClient) -> None:
    assert client.get("/api/items", params={"sort": "../../etc"}).status_code == 400
    assert client.get("/api/items", params={"per_page": 100000}).status_code == 422
    assert client.get("/api/items", params={"status": "x"}).status_code == 422
    assert client.get("/api/items/9999").status_code == 404
    assert client.get("/api/items/0/map.png", params={"method": "nope"}).status_code == 404


# --------------------------------------------------------------------------- items and pictures
def test_item_numbers_and_values(client: TestClient, image_store: pathlib.Path) -> None:
    body = client.get("/api/items/5").json()
    table = _results(image_store, "saliency")
    row = table[table["item"] == 5].iloc[0]
    got = next(r for r in body["results"] if r["method"] == "saliency")
    assert got["gap"] == pytest.approx(row["gap"]) and got["output"] == pytest.approx(row["output"])
    assert got["view"] == "map" and got["shape"] == [3, 12, 12]
    vals = np.asarray(row["values"], dtype=np.float64).reshape(3, 12, 12)
    assert got["scale"]["absolute"] == pytest.approx(np.percentile(np.abs(vals).sum(0), 99),
                                                     rel=1e-5)
    assert body["next"] == 6 and body["previous"] == 4


def test_map_png_colours_follow_the_sign(client: TestClient, image_store: pathlib.Path) -> None:
    table = _results(image_store, "integrated_gradients")
    row = table[table["item"] == 7].iloc[0]
    m = np.asarray(row["values"], dtype=np.float64).reshape(3, 12, 12).sum(0)
    r = client.get("/api/items/7/map.png", params={"method": "integrated_gradients"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA")).astype(int)
    k = img.shape[0] // 12  # upscaled by an integer factor, nearest neighbour
    small = img[::k, ::k]
    hi, lo = np.unravel_index(m.argmax(), m.shape), np.unravel_index(m.argmin(), m.shape)
    assert small[hi][0] > small[hi][2] + 60 and small[hi][3] > 200  # red, opaque
    assert small[lo][2] > small[lo][0] + 60  # blue
    a = client.get("/api/items/7/map.png", params={"method": "integrated_gradients",
                                                   "sign": "absolute"})
    alpha = np.asarray(Image.open(io.BytesIO(a.content)).convert("RGBA"))[::k, ::k, 3]
    mag = np.abs(np.asarray(row["values"]).reshape(3, 12, 12)).sum(0)
    assert np.corrcoef(alpha.ravel(), np.minimum(mag, np.percentile(mag, 99)).ravel())[0, 1] > 0.9
    assert client.get("/api/items/7/map.png", params={"method": "integrated_gradients",
                                                      "sign": "upside"}).status_code == 422


def test_interior_frames_change_with_alpha(client: TestClient) -> None:
    meta = client.get("/api/items/0/interior").json()
    assert meta["frames"] == 6 and len(meta["alphas"]) == 6 and meta["scores"][0] < 1
    frames = [client.get(f"/api/items/0/interior/{k}.png").content for k in (0, 5)]
    assert frames[0] != frames[1]
    assert client.get("/api/items/0/interior/6.png").status_code == 404
    assert client.get("/api/items/1/interior").status_code == 404


def test_text_store_list_and_shape_values(tmp_path: pathlib.Path) -> None:
    root = write_store(tmp_path / "t", 9, kind="text", methods=("integrated_gradients",))
    c = TestClient(create_app(root, hosts=HOST))
    body = c.get("/api/items/4").json()
    res = pq.read_table(root / "results").to_pandas()
    stored = res[res["item"] == 4].iloc[0]
    r = body["results"][0]
    assert r["view"] == "tokens" and len(body["tokens"]) == len(r["vector"])
    assert r["vector"] == pytest.approx(list(stored["values"]))
    tab = write_store(tmp_path / "tab", 4, kind="tabular", methods=("saliency",))
    r = TestClient(create_app(tab, hosts=HOST)).get("/api/items/1").json()
    assert r["results"][0]["view"] == "bars" and len(r["feature_names"]) == 8


def test_molecule_atoms_coloured(tmp_path: pathlib.Path) -> None:
    root = write_store(tmp_path / "m", 4, kind="smiles", methods=("saliency",))
    c = TestClient(create_app(root, hosts=HOST))
    body = c.get("/api/items/2").json()
    assert body["text"] == "CC(=O)Nc1ccc(O)cc1"
    r = body["results"][0]
    assert r["view"] == "molecule" and len(r["vector"]) == 11  # one score per heavy atom
    signed = c.get("/api/items/2/molecule.png", params={"method": "saliency"})
    absolute = c.get("/api/items/2/molecule.png", params={"method": "saliency",
                                                          "sign": "absolute"})
    assert signed.status_code == absolute.status_code == 200
    a = np.asarray(Image.open(io.BytesIO(signed.content)).convert("RGB"), dtype=int)
    b = np.asarray(Image.open(io.BytesIO(absolute.content)).convert("RGB"), dtype=int)
    # some atoms are negative: blue highlights in the signed drawing, none in the absolute one
    blue = (a[..., 2] > a[..., 0] + 40).sum()
    assert min(r["vector"]) < 0 and blue > 50 and (b[..., 2] > b[..., 0] + 40).sum() < blue / 10


def test_live_csv_row(tmp_path: pathlib.Path) -> None:
    root = write_store(tmp_path / "rows", 3, kind="tabular", methods=("saliency",))
    c = TestClient(create_app(root, model=Loaded(build_mlp(), "tensor", "mlp"), hosts=HOST))
    h = {"X-Attribkit": "1"}
    bad = c.post("/api/live/jobs?input=row", content=b"1,2,x", headers=h)
    assert bad.status_code == 400 and "comma-separated numbers" in bad.json()["error"]
    row = "0.5,-1,2,0,0.25,1,-0.5,3"
    r = c.post("/api/live/jobs?input=row&method=gradient_x_input&target=1", content=row,
               headers=h)
    job = _wait(c, r.json())
    assert job["state"] == "done", job
    got = c.get(f"/api/items/{job['item']}").json()["results"][0]
    x = torch.tensor([[float(v) for v in row.split(",")]], requires_grad=True)
    build_mlp()(x)[0, 1].backward()  # oracle: gradient x input by autograd
    assert got["view"] == "bars" and got["target"] == 1
    np.testing.assert_allclose(got["vector"], (x.grad * x).detach()[0].numpy(), rtol=1e-5,
                               atol=1e-7)


def test_live_sentence_is_stored_as_tokens(tmp_path: pathlib.Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The zoo's MiniLM path (zoo.text.explain_text) replaced by a stand-in that attributes a
    # linear model over one number per word: this checks the wiring (tokens, per-token scores,
    # numbers stored and shown), not MiniLM.
    from types import SimpleNamespace

    from attribkit.methods.registry import explain
    from attribkit.zoo import text as ztext

    seen: dict[str, Any] = {}

    def fake(sentence: str, method: str, target: Any, steps: int, model: Any) -> Any:
        words = sentence.split()
        x = torch.arange(1.0, len(words) + 1).reshape(1, -1)
        attr = explain(lambda z: torch.stack([z.sum(1), -z.sum(1)], 1), x, method=method,
                       target=target, steps=steps)
        seen.update(words=words, scores=attr.values[0].tolist())
        return SimpleNamespace(attribution=attr, tokens=words, scores=attr.values[0])

    monkeypatch.setattr(ztext, "explain_text", fake)
    root = write_store(tmp_path / "txt", 3, kind="text", methods=("integrated_gradients",))
    live = Loaded(torch.nn.Identity(), "text", "minilm-sentiment",
                  label=lambda c: ("negative", "positive")[c])
    c = TestClient(create_app(root, model=live, hosts=HOST))
    r = c.post("/api/live/jobs?input=text&steps=8", content=b"a <b>warm</b> film",
               headers={"X-Attribkit": "1"})
    job = _wait(c, r.json())
    assert job["state"] == "done", job
    body = c.get(f"/api/items/{job['item']}").json()
    assert body["tokens"] == seen["words"] == ["a", "<b>warm</b>", "film"]
    res = body["results"][0]
    assert res["view"] == "tokens" and res["target_name"] == "positive"
    assert res["vector"] == pytest.approx(seen["scores"])
    assert res["gap"] == pytest.approx(0.0, abs=1e-9)  # IG is exact on a linear model
    assert c.post("/api/live/jobs?input=image", content=_png(),
                  headers={"X-Attribkit": "1"}).status_code == 400


# --------------------------------------------------------------------------- safety
@pytest.mark.parametrize("path", [
    "/static/../manifest.json", "/static/..%2Fmanifest.json", "/static/%2e%2e%2fstore.py",
    "/static/..%252F..%252Fmanifest.json", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/api/items/..%2F..%2Fetc%2Fpasswd", "/item/..%2F..%2Fmanifest.json",
    "/../manifest.json", "/results/part-saliency-0-24.parquet", "/manifest.json",
    "/static/app.py", "/static/", "/api/items/0/map.png?method=../../manifest",
])
def test_no_path_reaches_the_file_system(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (400, 404, 422), (path, r.status_code)
    assert b"attribkit-run" not in r.content and b"sha256" not in r.content
    assert b"PAR1" not in r.content and b"root:" not in r.content


def test_headers_host_and_csrf(client: TestClient, image_store: pathlib.Path) -> None:
    for path in ("/", "/item/1", "/static/item.js", "/api/info", "/nope"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    page = client.get("/").text
    assert "<script>" not in page and "onclick" not in page  # no inline script
    assert client.get("/api/info", headers={"host": "evil.example:8765"}).status_code == 403
    live = _live(image_store)
    r = live.post("/api/live/jobs?input=image", content=_png())  # no X-Attribkit header
    assert r.status_code == 403


def test_static_assets_use_no_html_sinks() -> None:
    static = pathlib.Path(__file__).resolve().parents[2] / "src/attribkit/serve/static"
    for js in static.glob("*.js"):
        text = js.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, (js.name, sink)
    assert all(p.suffix in {".html", ".js", ".css", ".svg"} for p in static.iterdir())


def test_uploads_are_bounded(image_store: pathlib.Path) -> None:
    c = _live(image_store, max_upload=4096)
    h = {"X-Attribkit": "1"}
    big = c.post("/api/live/jobs?input=image", content=b"\0" * 5000, headers=h)
    assert big.status_code == 413 and "larger than" in big.json()["error"]

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming
        for _ in range(10):
            yield b"\0" * 1000
    assert c.post("/api/live/jobs?input=image", content=chunks(), headers=h).status_code == 413
    bomb = c.post("/api/live/jobs?input=image", content=_bomb_png(40000, 40000), headers=h)
    assert bomb.status_code == 400 and "too large" in bomb.json()["error"]
    junk = c.post("/api/live/jobs?input=image", content=b"not an image", headers=h)
    assert junk.status_code == 400 and "not an image" in junk.json()["error"]
    text = c.post("/api/live/jobs?input=text", content=b"hello", headers=h)
    assert text.status_code == 400 and "not text" in text.json()["error"]
    off = TestClient(create_app(image_store, hosts=HOST))
    assert off.post("/api/live/jobs?input=image", content=_png(), headers=h).status_code == 409


def test_live_upload_is_explained_and_stored(tmp_path: pathlib.Path) -> None:
    root = write_store(tmp_path / "live", 5, size=12, interior=())
    c = _live(root)
    r = c.post("/api/live/jobs?input=image&method=integrated_gradients&method=saliency&steps=16"
               "&name=red <img>", content=_png(), headers={"X-Attribkit": "1"})
    assert r.status_code == 202
    job = _wait(c, r.json())
    assert job["state"] == "done", job
    n = job["item"]
    assert n == 5
    body = c.get(f"/api/items/{n}").json()
    assert body["item_id"] == "red _img_" and body["source"] == "live upload"
    assert {x["method"] for x in body["results"]} == {"integrated_gradients", "saliency"}
    # oracle: attribkit.explain called directly on the same input (read back from the store)
    from attribkit.methods.registry import explain

    item = pq.read_table(root / "items" / f"part-{n:08d}-{n:08d}.parquet").to_pylist()[0]
    x = torch.tensor(item["input"]).reshape(item["input_shape"]).unsqueeze(0)
    assert tuple(item["input_shape"]) == (3, 12, 12)  # resized to the store's images
    direct = explain(build(), x, method="integrated_gradients", steps=16)
    res = pq.read_table(root / "results" /
                        f"part-integrated_gradients-{n:08d}-{n:08d}.parquet")
    stored = res.column("values").combine_chunks().to_numpy_ndarray()[0]
    np.testing.assert_allclose(stored, direct.values[0].numpy(), rtol=1e-5, atol=1e-7)
    row = res.to_pylist()[0]
    assert row["gap"] == pytest.approx(float(direct.gap[0]), abs=1e-6)
    listed = c.get("/api/items", params={"q": "red _img_"}).json()
    assert listed["total"] == 1 and listed["rows"][0]["item"] == n
    assert not list((root / "results").glob(".*"))  # no temporary file left


def test_live_interior_gradients_match_autograd(tmp_path: pathlib.Path) -> None:
    root = write_store(tmp_path / "ii", 3, size=10, interior=())
    c = _live(root)
    assert c.get("/api/items/1").json()["can_compute_interior"] is True
    r = c.post("/api/items/1/interior?target=2&alphas=4", headers={"X-Attribkit": "1"})
    job = _wait(c, r.json())
    assert job["state"] == "done", job
    meta = c.get("/api/items/1/interior").json()
    assert meta["frames"] == 4 and meta["alphas"][-1] == pytest.approx(1.0)
    # oracle: the gradient at alpha * x (zero baseline) by plain autograd
    item = pq.read_table(root / "items").to_pandas().set_index("item").loc[1]
    x = torch.tensor(np.asarray(item["input"], dtype=np.float32)).reshape(1, 3, 10, 10)
    model = build()
    xa = (0.5 * x).requires_grad_(True)
    model(xa)[0, 2].backward()
    res = pq.read_table(root / "results" / "part-interior_gradients-00000001-00000001.parquet")
    grads = res.column("values").combine_chunks().to_numpy_ndarray()[0]
    np.testing.assert_allclose(grads[1], xa.grad[0].numpy(), rtol=1e-4, atol=1e-7)
    extra = json.loads(res.column("extra")[0].as_py())
    with torch.no_grad():
        assert extra["scores"][-1] == pytest.approx(float(model(x)[0, 2]), rel=1e-5)


# --------------------------------------------------------------------------- broken stores
def test_store_written_by_a_failed_run(tmp_path: pathlib.Path) -> None:
    root = write_store(tmp_path / "f", 30, size=8, shard=10, failed=[2, 11], summary=False)
    # the run died: one results shard half written and a temporary file left behind
    shard = root / "results" / "part-saliency-00000020-00000029.parquet"
    shard.write_bytes(shard.read_bytes()[:300])
    tmp = root / "results" / ".tmp-0123-part-saliency-00000030-00000039.parquet.tmp"
    tmp.write_bytes(b"PAR1garbage")
    (root / "items" / "part-00000030-00000039.parquet.tmp").write_bytes(b"")
    c = TestClient(create_app(root, hosts=HOST))
    info = c.get("/api/info").json()
    assert info["items"] == 30 and info["failed"] == 2
    assert any("part-saliency-00000020-00000029.parquet" in p for p in info["problems"])
    assert c.get("/api/summary").json()["summary"] is None
    failed = c.get("/api/items/11").json()
    assert failed["status"] == "failed" and "cannot identify" in failed["error"]
    body = c.get("/api/items/25").json()  # saliency lost, integrated gradients kept
    assert [r["method"] for r in body["results"]] == ["integrated_gradients"]
    rows = c.get("/api/items", params={"sort": "gap:saliency", "per_page": 30}).json()["rows"]
    assert rows[-1]["methods"]["saliency"]["gap"] is None
    assert c.get("/").status_code == 200


def test_missing_and_newer_stores_say_what_to_do(tmp_path: pathlib.Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        create_app(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match=r"no manifest\.json"):
        create_app(tmp_path / "empty")
    newer = write_store(tmp_path / "v3", 2, version=3)
    with pytest.raises(StoreError, match=r"version 3.*upgrade attribkit"):
        create_app(newer)
    assert cli_main(["serve", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and err.count("\n") == 1
    assert cli_main(["serve", str(newer), "--port", "0"]) == 2
    from attribkit.cli import _parser

    args = _parser().parse_args(["serve", "runs/x"])
    assert (args.host, args.port, args.model) == ("127.0.0.1", 8765, None)
