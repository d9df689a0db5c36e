"""`attribkit explain` runs: isolation of failures, inputs, naming, settings, regions, notes."""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from attribkit.cli import main
from attribkit.cli.settings import parse_value
from attribkit.methods import registry

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cnn(tmp_path: pathlib.Path) -> str:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(16, 3)).eval()
    path = tmp_path / "cnn.pt"
    torch.jit.trace(model, torch.zeros(1, 3, 16, 16)).save(str(path))
    return str(path)


@pytest.fixture
def mlp_csv(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, pathlib.Path]:
    (tmp_path / "ak_runs_models.py").write_text(
        "import torch\n"
        "def mlp():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),\n"
        "                               torch.nn.Linear(4, 2)).double()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    csv = tmp_path / "patients.csv"
    csv.write_text("a,b,c\n1,2,3\n0.5,-1,2\n\n4,0,1\n")
    return "ak_runs_models:mlp", csv


def test_one_failing_method_does_not_stop_the_others(
        capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path,
        monkeypatch: pytest.MonkeyPatch, mlp_csv: tuple[str, pathlib.Path]) -> None:
    info = registry.get("saliency")

    @functools.wraps(info.fn)
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("injected failure\nsecond line")

    monkeypatch.setitem(registry._REGISTRY, "saliency", dataclasses.replace(info, fn=boom))
    model, csv = mlp_csv
    out_dir = tmp_path / "o"
    code, out, _err = _run(capsys, "explain", model, str(csv), "-m", "ig", "-m", "saliency",
                          "-m", "occlusion", "--steps", "4", "-o", str(out_dir), "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["exit_code"] == 1
    status = {(r["name"], r["method"]): r["status"] for r in doc["results"]}
    assert len(status) == 9  # 3 rows x 3 methods: every row of the CSV
    for row in ("patients_row1", "patients_row2", "patients_row3"):
        assert status[(row, "saliency")] == "failed"
        assert status[(row, "integrated_gradients")] == status[(row, "occlusion")] == "ok"
        assert (out_dir / f"{row}_integrated_gradients.png").is_file()
        assert (out_dir / f"{row}_occlusion.png").is_file()
        assert not (out_dir / f"{row}_saliency.png").exists()
    failed = next(r for r in doc["results"] if r["status"] == "failed")
    assert failed["error"] == "RuntimeError: injected failure"
    page = (out_dir / "report.html").read_text(encoding="utf-8")
    assert page.count("saliency: failed: RuntimeError: injected failure") == 3


def test_csv_rows_are_explained_in_order(capsys: pytest.CaptureFixture[str],
                                         mlp_csv: tuple[str, pathlib.Path]) -> None:
    model, csv = mlp_csv
    code, out, err = _run(capsys, "explain", model, str(csv), "--steps", "8", "--json")
    assert code == 0, err
    rows = json.loads(out)["results"]
    assert [r["input"] for r in rows] == ["patients.csv:2", "patients.csv:3", "patients.csv:5"]
    net = __import__("ak_runs_models").mlp()
    for r, x in zip(rows, ([1, 2, 3], [0.5, -1, 2], [4, 0, 1]), strict=True):
        y = net(torch.tensor([x], dtype=torch.float64))[0]
        assert r["target"] == int(y.argmax())  # the predicted class by default
        assert r["output"] == pytest.approx(float(y.detach().max()), abs=1e-12)


def test_folder_of_images_and_names(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path,
                                    cnn: str) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("astronaut.png", "cat.jpg", "notes.txt"):
        if name.endswith(".txt"):
            (folder / name).write_text("not an image")
            continue
        Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(folder / name)
    code, out, err = _run(capsys, "explain", cnn, str(folder), "-m", "ig", "--steps", "4",
                          "-o", str(tmp_path / "o"), "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o").glob("*.png")) == [
        "astronaut_integrated_gradients.png", "cat_integrated_gradients.png"]
    assert "\x1b[" not in out


def test_settings_reach_the_method(capsys: pytest.CaptureFixture[str], cnn: str,
                                   tmp_path: pathlib.Path) -> None:
    img = tmp_path / "x.png"
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(img)
    code, out, err = _run(capsys, "explain", cnn, str(img), "-m", "occlusion", "--window", "4",
                          "--stride", "4", "--baseline", "0.5", "--json")
    assert code == 0, err
    # the same call through the Python API gives the same numbers
    from attribkit import occlusion

    model = torch.jit.load(cnn)
    x = torch.full((1, 3, 16, 16), 200 / 255)
    ref = occlusion(lambda t: model(t), x, window=(4, 4), stride=(4, 4), baseline=0.5)
    (r,) = json.loads(out)["results"]
    assert r["sum"] == pytest.approx(float(ref.values.sum()), rel=1e-6)
    code, _, err = _run(capsys, "explain", cnn, str(img), "-m", "ig", "--set", "steps=3",
                        "--set", "rule=riemann_middle", "--json")
    assert code == 0, err
    code, out, err = _run(capsys, "explain", cnn, str(img), "-m", "ig", "--set",
                          "rule=no_such_rule")
    assert code == 1 and "integrated_gradients | failed" in out and "no_such_rule" in out
    assert "1 of 1 results failed" in err


def test_grad_cam_picks_the_last_convolution(capsys: pytest.CaptureFixture[str],
                                             tmp_path: pathlib.Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ak_cam_models.py").write_text(
        "import torch\n"
        "def cnn():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),\n"
        "        torch.nn.Conv2d(4, 5, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),\n"
        "        torch.nn.Flatten(), torch.nn.Linear(5, 2))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    img = tmp_path / "x.png"
    Image.fromarray((np.random.default_rng(1).random((12, 12, 3)) * 255).astype(np.uint8)).save(
        img)
    from attribkit import grad_cam

    model = __import__("ak_cam_models").cnn().eval()
    x = torch.from_numpy(np.asarray(Image.open(img), np.float32) / 255).permute(2, 0, 1)[None]
    for argv, layer in (((), "2"), (("--layer", "0"), "0")):
        code, out, err = _run(capsys, "explain", "ak_cam_models:cnn", str(img), "-m",
                              "grad_cam", "--json", *argv)
        assert code == 0, err
        ref = grad_cam(model, x, layer=model.get_submodule(layer))
        assert json.loads(out)["results"][0]["sum"] == pytest.approx(
            float(ref.values.sum()), rel=1e-5)
    code, _, err = _run(capsys, "explain", "ak_cam_models:cnn", str(img), "-m", "grad_cam",
                        "--layer", "nope")
    assert code == 2 and "no layer 'nope'" in err and "last convolution is '2'" in err


def test_module_methods_on_a_model_file_are_refused_before_work(
        capsys: pytest.CaptureFixture[str], cnn: str, tmp_path: pathlib.Path) -> None:
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(img)
    code, out, _ = _run(capsys, "explain", cnn, str(img), "-m", "lrp", "-m", "saliency",
                        "--json")
    doc = json.loads(out)
    assert code == 1 and [r["status"] for r in doc["results"]] == ["refused", "ok"]
    assert "needs an nn.Module" in doc["results"][0]["error"]


def test_regions_are_in_the_files_coordinates() -> None:
    """A bright block at a known place of a 600 x 448 photo: the crop puts it where the region
    of the attribution maps it back to (checked against vision.center_crop itself)."""
    vision = pytest.importorskip("attribkit.zoo.vision")
    from attribkit.cli.explain_run import _regions
    from attribkit.cli.inputs import Item

    photo = np.zeros((448, 600, 3), np.uint8)
    photo[200:216, 176:192] = 255  # x 176..191, y 200..215 in the file
    crop = vision.center_crop(photo)
    ys, xs = np.nonzero(crop[:, :, 0] > 128)
    values = torch.zeros(3, 224, 224)
    values[:, ys, xs] = 1.0  # the attribution lights exactly the block, as the model saw it
    s = 224 / 448
    left = (round(600 * s) - 224) // 2
    item = Item("p", "p.png", extra={"size": (600, 448), "crop": (left, 0, s, s)})
    (top,) = _regions(values, 1, item)
    x0, y0, x1, y1 = top["box"]
    assert x0 <= 176 and x1 >= 192 and y0 <= 200 and y1 >= 216  # holds the whole block
    assert x1 - x0 == y1 - y0 == 32  # a 16-px cell of the crop is 32 px of the file


def test_parse_value() -> None:
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5
    assert parse_value("true") is True and parse_value("False") is False
    assert parse_value("[16, 16]") == (16, 16) and parse_value("null") is None
    assert parse_value("riemann_middle") == "riemann_middle"


def test_slow_run_is_announced(capsys: pytest.CaptureFixture[str], cnn: str,
                               tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import attribkit.cli.explain as ex

    monkeypatch.setattr(ex, "_forward_seconds", lambda *_a: 0.5)  # a slow model
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(img)
    code, _, err = _run(capsys, "explain", cnn, str(img), "-m", "occlusion", "--window", "1",
                        "--stride", "1")
    assert code == 0 and "occlusion on x will take about 2 min" in err


def test_text_first_run_says_why_it_waits(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    text = pytest.importorskip("attribkit.zoo.text")
    import attribkit.cli.models as models

    calls: list[bool] = []

    def fake_load(progress: bool = False) -> object:
        calls.append(progress)
        raise KeyboardInterrupt  # stop here: the note is what is checked

    monkeypatch.setattr(text, "sentiment_head_cached", lambda *a: False)
    monkeypatch.setattr(text, "load_sentiment_classifier", fake_load)
    monkeypatch.setattr(models, "_ZOO", {})
    code, _, err = _run(capsys, "explain", "minilm-sentiment", "good")
    assert code == 130 and calls == [True]
    assert "training the sentiment head once" in err and "cached in" in err


def test_csv_report_has_global_views(capsys: pytest.CaptureFixture[str],
                                     tmp_path: pathlib.Path) -> None:
    tabular = pytest.importorskip("attribkit.zoo.tabular")
    data = tabular.breast_cancer_data()
    csv = tmp_path / "rows.csv"
    csv.write_text("\n".join(",".join(f"{v:.6g}" for v in r)
                             for r in data.unstandardise(data.X_test[:3]).tolist()))
    code, _, err = _run(capsys, "explain", "breast-cancer-mlp", str(csv), "-m", "ig",
                        "--steps", "4", "-o", str(tmp_path / "o"), "-q")
    assert code == 0, err
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    # these rows are predicted as two classes: one set of views per explained class
    assert "integrated_gradients: the 2 of 3 rows explained for class" in page
    assert len(sorted((tmp_path / "o").glob("rows_row*_integrated_gradients.png"))) == 3


def test_table_report_is_one_compact_row_per_item(
        capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path,
        mlp_csv: tuple[str, pathlib.Path]) -> None:
    import base64
    import io
    import re

    model, csv = mlp_csv
    rng = np.random.default_rng(0)
    csv.write_text("a,b,c\n" + "".join(",".join(f"{v:.3f}" for v in rng.normal(size=3)) + "\n"
                                       for _ in range(20)))
    # one class for every row (the SHAP convention), so each method has one set of global views
    code, _, err = _run(capsys, "explain", model, str(csv), "-m", "ig", "-m", "occlusion",
                        "--steps", "4", "--target", "0", "-o", str(tmp_path / "o"), "--quiet")
    assert code == 0, err
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert page.index("global views") < page.index("Each row (20)")  # the global views on top
    assert page.count("<h4") == 20
    heights = [Image.open(io.BytesIO(base64.b64decode(b))).size[1] for b in
               re.findall(r'data:image/[a-z]+;base64,([A-Za-z0-9+/=]+)', page)]
    rows = heights[-40:]  # 20 rows x 2 methods, side by side
    assert len(heights) == 40 + 2 * 3 and max(rows) <= 320
    assert "each dot is one of 20 examples" in page
