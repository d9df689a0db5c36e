"""The store format is public (docs/runs.md, now version 2): a store written by an earlier
attribkit (version 1, committed in tests/runs/data/store_v1) must still open, read and resume."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest
import torch
from tests.runs._models import mlp, v1_data

import attribkit
import attribkit.runs as runs

V1 = pathlib.Path(__file__).parent / "data" / "store_v1"


def test_version_1_store_opens_reads_and_resumes(tmp_path: pathlib.Path) -> None:
    store = runs.open(V1)
    assert store.manifest["version"] == 1 and store.manifest["target"] == "top_k:2"
    res = store.results
    assert len(res) == 12 and set(res["status"]) == {"ok"}
    assert list(store.items["item_id"]) == ["0", "1", "2"]
    for i, x in enumerate(v1_data()):
        np.testing.assert_array_equal(store.item(i)["input"], x.numpy())
        for target in (0, 1):
            want = attribkit.integrated_gradients(mlp(), x[None], target=target, steps=8)
            np.testing.assert_allclose(store.values(i, "integrated_gradients", target=target),
                                       want.values[0].numpy(), rtol=1e-5, atol=1e-7)
    out = tmp_path / "copy"
    shutil.copytree(V1, out)
    again = runs.run("tests.runs._models:mlp", v1_data(), [("ig", {"steps": 8}), "saliency"],
                     out=out, batch_size=2, target="top_k:2", progress=False)
    assert again.computed == 0
    upgraded = runs.open(out).manifest  # the resume upgraded the manifest to version 2
    assert upgraded["version"] == 2 and sorted(upgraded["shards"]) == sorted(
        f"{p.parent.name}/{p.name}" for p in V1.glob("*/part-*.parquet"))
    with pytest.raises(runs.ConfigMismatch, match="inputs differ"):
        runs.run("tests.runs._models:mlp", [torch.zeros(4)] * 4, [("ig", {"steps": 8}),
                 "saliency"], out=out, target="top_k:2", progress=False)
