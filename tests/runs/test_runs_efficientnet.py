"""The one run test on a real model: EfficientNet-Lite0 by its zoo name, equal to direct calls."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest
from PIL import Image

import attribkit
import attribkit.runs as runs


@pytest.mark.slow
def test_efficientnet_run_equals_direct_calls(tmp_path: pathlib.Path) -> None:
    from tests.runs.conftest import write_photos

    from attribkit.zoo import vision

    folder = write_photos(tmp_path / "photos", size=224, names=("chelsea", "coffee"))
    res = runs.run("efficientnet-lite0", folder, [("ig", {"steps": 4}), "saliency"],
                   out=tmp_path / "store", progress=False)
    assert res.failed == 0
    store = runs.open(tmp_path / "store")
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
    names = {}
    for row in store.results.itertuples():
        x = vision.load_image(folder / f"{row.item_id}.png")
        ig = row.method == "integrated_gradients"
        opts = {"steps": 4, "baseline": vision.black_baseline(x)} if ig else {}
        want = attribkit.explain(model, x, method=row.method, **opts)
        got = store.values(row.item, row.method)
        np.testing.assert_allclose(got, want.values[0].numpy(), rtol=1e-3,
                                   atol=1e-4 * float(want.values.abs().max()))
        assert row.target == int(want.target[0])
        assert row.output == pytest.approx(float(want.output[0]), rel=1e-4)
        names[row.item_id] = row.target_name
    assert names["coffee"] == vision.class_name(967) == "espresso"
    thumb = Image.open(io.BytesIO(store.item(0)["thumbnail"]))
    assert thumb.size == (224, 224)
