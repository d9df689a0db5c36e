"""`attribkit explain --segments`: feature masks from the command line, shown in the report."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import attribkit
from attribkit.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path: pathlib.Path) -> tuple[str, pathlib.Path, np.ndarray]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(16, 3)).eval()
    path = tmp_path / "cnn.pt"
    torch.jit.trace(model, torch.zeros(1, 3, 16, 16)).save(str(path))
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    pixels[:, :8] //= 4  # a dark left half: two clear regions for the superpixels
    img = tmp_path / "x.png"
    Image.fromarray(pixels).save(img)
    return str(path), img, pixels


def test_grid_segments_reach_occlusion(capsys: pytest.CaptureFixture[str],
                                       files: tuple[str, pathlib.Path, np.ndarray]) -> None:
    cnn, img, pixels = files
    code, out, err = _run(capsys, "explain", cnn, str(img), "-m", "occlusion", "--segments",
                          "grid:4", "--baseline", "0.5", "--json")
    assert code == 0, err
    model = torch.jit.load(cnn)
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255
    ref = attribkit.occlusion(lambda t: model(t), x, baseline=0.5,
                              feature_mask=attribkit.masks.grid((3, 16, 16), 4))
    (r,) = json.loads(out)["results"]
    assert r["sum"] == pytest.approx(float(ref.values.sum()), rel=1e-5)
    # the same through --set
    code, out2, err = _run(capsys, "explain", cnn, str(img), "-m", "occlusion", "--set",
                           "feature_mask=grid:4", "--baseline", "0.5", "--json")
    assert code == 0, err
    assert json.loads(out2)["results"][0]["sum"] == pytest.approx(r["sum"], rel=1e-9)


def test_slic_segments_in_the_report(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path,
                                     files: tuple[str, pathlib.Path, np.ndarray]) -> None:
    cnn, img, _ = files
    out_dir = tmp_path / "out"
    code, _, err = _run(capsys, "explain", cnn, str(img), "-m", "occlusion", "-m", "shapley",
                          "--segments", "slic:6", "--samples", "4", "--out", str(out_dir), "-q")
    assert code == 0, err
    page = (out_dir / "report.html").read_text()
    assert "segments (feature mask) used by occlusion, shapley_values" in page


def test_bad_segments_are_usage_errors(capsys: pytest.CaptureFixture[str],
                                       files: tuple[str, pathlib.Path, np.ndarray]) -> None:
    cnn, img, _ = files
    code, _, err = _run(capsys, "explain", cnn, str(img), "-m", "occlusion", "--segments",
                        "watershed")
    assert code == 2 and "--segments takes slic" in err
    code, _, err = _run(capsys, "explain", cnn, str(img), "-m", "saliency", "--segments",
                        "grid:4")
    assert code == 2 and "feature_mask" in err
