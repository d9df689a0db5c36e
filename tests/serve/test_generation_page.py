"""The explorer's item page for a generation run: ``/api/items/N/generation`` and its page.

The store is a real run of a seeded random GPT-2 (``tests.runs._models:tiny_generation``); the
matrices are checked against ``explain_generation`` called directly, the scales against NumPy.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from tests.serve.synthetic import write_store

import attribkit.runs as runs
from attribkit.sequences import explain_generation
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer
from attribkit.serve import create_app

HOST = ["testserver"]
SPEC = "tests.runs._models:tiny_generation"
PROMPTS = ("the cat sat on the", "paris is the capital of france and the", "one two three",
           " ".join(["the cat sat on the road and the dog ran to the house ."] * 10))


def generation_store(folder: pathlib.Path) -> pathlib.Path:
    """A run of the tiny GPT-2 over :data:`PROMPTS` with gradient x input and occlusion."""
    (folder / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    out = folder / "store"
    runs.run(SPEC, folder / "prompts.txt", ["gradient_x_input", "occlusion"], out=out,
             progress=False, max_new_tokens=4)
    return out


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    return TestClient(create_app(generation_store(tmp_path_factory.mktemp("g")), hosts=HOST))


def test_generation_json_is_the_methods_matrix(client: TestClient) -> None:
    model, tok = tiny_model("tiny-gpt2", dtype=torch.float64), tiny_tokenizer()
    for n, prompt in enumerate(PROMPTS):
        body = client.get(f"/api/items/{n}/generation").json()
        assert body["item"] == n and body["prompt"] == prompt
        assert [m["method"] for m in body["methods"]] == ["gradient_x_input", "occlusion"]
        for m in body["methods"]:
            ref = explain_generation(model, tok, prompt, method=m["method"], max_new_tokens=4)
            assert m["status"] == "ok"
            assert m["prompt_tokens"] == list(ref.prompt_tokens) == body["prompt_tokens"]
            assert m["generated_tokens"] == list(ref.generated_tokens)
            matrix = np.asarray(m["matrix"], dtype=np.float64)
            assert matrix.shape == (4, len(ref.prompt_tokens))  # generated x prompt
            np.testing.assert_allclose(matrix, ref.matrix.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(m["totals"], ref.totals.numpy(), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(m["logprobs"], ref.logprobs.numpy(), rtol=1e-9)
            top = [float(np.percentile(np.abs(r), 99)) for r in matrix]
            np.testing.assert_allclose(m["scale"]["token"], top, rtol=1e-12)
            assert m["scale"]["matrix"] == pytest.approx(np.percentile(np.abs(matrix), 99))


def test_item_json_points_to_the_generation_view(client: TestClient) -> None:
    body = client.get("/api/items/1").json()
    assert body["kind"] == "generation"
    assert {r["view"] for r in body["results"]} == {"generation"}
    assert all("vector" not in r for r in body["results"])  # the matrix comes from its route
    assert body["results"][0]["shape"] == [4, 8]
    page = client.get("/item/1?method=occlusion&token=2&scale=matrix")
    assert page.status_code == 200 and 'id="generation"' in page.text
    js = client.get("/static/generation.js")
    assert js.status_code == 200 and "renderGeneration" in js.text
    assert "generation.js" in client.get("/static/item.js").text


def test_missing_and_other_items_are_refused(client: TestClient,
                                             tmp_path: pathlib.Path) -> None:
    r = client.get("/api/items/99/generation")
    assert r.status_code == 404 and r.json()["error"] == "no item 99 in this store"
    assert client.get("/api/items/x/generation").status_code == 422
    images = TestClient(create_app(write_store(tmp_path / "run", 3, size=8), hosts=HOST))
    r = images.get("/api/items/0/generation")
    assert r.status_code == 404
    assert r.json()["error"] == ("item 0 is not a generation (its kind is image); its "
                                "page is /item/0")


def test_a_store_without_labels_falls_back_to_the_items_tokens(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    store = client.app.state.explorer.store  # type: ignore[attr-defined]
    monkeypatch.setattr(store, "extra", lambda *args, **kw: None)  # as a store written before
    body = client.get("/api/items/0/generation").json()
    m = body["methods"][0]
    assert m["prompt_tokens"] == PROMPTS[0].split()  # the item's tokens (one per word here)
    assert m["generated_tokens"] == ["#0", "#1", "#2", "#3"]
    assert m["logprobs"] is None and m["relative_gap"] is None and len(m["matrix"]) == 4
