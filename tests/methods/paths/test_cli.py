"""The new path methods through the ``attribkit explain`` command, on a linear model whose
answers are closed forms."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch
from torch import nn

from attribkit.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


class _Lin(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


def test_guided_ig_and_idgi_on_a_linear_model(capsys, tmp_path: pathlib.Path):
    w = torch.tensor([1.0, -2.0, 3.0, 0.5])
    path = tmp_path / "lin.pt"
    torch.jit.script(_Lin(w)).save(str(path))
    x = np.array([2.0, 1.0, -1.0, 4.0])
    code = main(["explain", str(path), ",".join(map(str, x)), "--method", "guided_ig",
                 "--method", "idgi", "--steps", "8", "--json", "--out", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = {r["method"]: r for r in json.loads(out)["results"]}

    def values(r: dict) -> np.ndarray:
        got = {f["index"][0]: f["value"] for f in r["top_features"]}
        return np.array([got[i] for i in range(4)])

    wn = w.numpy()
    # any path: the gradient is w everywhere, so Guided IG is (x - 0) * w
    np.testing.assert_allclose(values(res["guided_ig"]), x * wn, atol=1e-5)
    # IDGI shares every rise by w^2 / |w|^2: (x . w) w^2 / |w|^2, not x * w
    np.testing.assert_allclose(values(res["idgi"]), (x @ wn) * wn**2 / (wn**2).sum(),
                               atol=1e-5)
    assert res["idgi"]["gap"] == pytest.approx(0.0, abs=1e-5)
