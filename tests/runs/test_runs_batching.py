"""Batching across items changes nothing: a run that stacks several photos into each model call
(and decodes and writes in threads) stores the values of one explain call per photo, and leaves
the model's parameters and flags as they were."""

from __future__ import annotations

import pathlib

import numpy as np
import torch
from PIL import Image
from tests.runs import _models

import attribkit
import attribkit.runs as runs
from attribkit.zoo.specs import plain

OPTIONS = {"integrated_gradients": {"steps": 8}, "saliency": {}, "occlusion": {"window": 8},
           "lime": {"n_samples": 24, "seed": 3}}
METHODS = list(OPTIONS.items())


def _state(model: torch.nn.Module) -> list[tuple[str, int, bool, torch.Tensor]]:
    return [(name, t.data_ptr(), t.requires_grad, t.detach().clone())
            for name, t in [*model.named_parameters(), *model.named_buffers()]]


def test_batched_run_equals_per_item_calls_and_leaves_the_model(photos: pathlib.Path,
                                                                tmp_path: pathlib.Path) -> None:
    net = _models.cnn().double()  # float64: a chunk that spans items must not change a digit
    before = _state(net)
    res = runs.run(plain(net), photos, METHODS, out=tmp_path / "store", batch_size=3,
                   progress=False)
    assert (res.items, res.computed, res.failed) == (8, 8, 0)
    store = runs.open(tmp_path / "store")
    rows = store.results
    assert len(rows) == 8 * len(METHODS)
    for row in rows.itertuples():
        rgb = np.array(Image.open(photos / f"{row.item_id}.png").convert("RGB"))
        x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).double() / 255.0
        direct = attribkit.explain(net, x, method=row.method, **OPTIONS[row.method])
        want = direct.values[0].numpy()
        got = store.values(row.item, row.method)
        np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-6,
                                   atol=1e-6 * float(np.abs(want).max()))
        assert row.target == int(direct.target[0])
    after = _state(net)
    assert not net.training
    for (n0, p0, g0, v0), (n1, p1, g1, v1) in zip(before, after, strict=True):
        assert (n0, p0, g0) == (n1, p1, g1)
        assert torch.equal(v0, v1)
