"""`attribkit explain -m all` on every zoo model: each method gives a result or a clean refusal.

Runs in-process through ``main()``; the CLI keeps zoo models loaded per process, so each model
loads once for the module. Settings are small (4 steps, 2 samples, big occlusion windows) to keep
the cost affordable; what is checked is that every method runs, not its accuracy.
"""

from __future__ import annotations

import json
import math
import pathlib

import pytest

from attribkit.cli import main
from attribkit.methods import methods

pytestmark = pytest.mark.slow

CHEAP = ("--steps", "4", "--samples", "2", "--json", "-m", "all")


def _explain(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main(["explain", *argv, *CHEAP])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _check_every_method(doc: dict, n_inputs: int = 1) -> dict[str, dict]:
    results = doc["results"]
    assert len(results) == n_inputs * len(methods())
    by_method = {r["method"]: r for r in results}
    assert set(by_method) == set(methods())
    for r in results:
        assert r["status"] in ("ok", "refused"), (r["method"], r.get("error"))
        if r["status"] == "refused":
            assert r["error"] and "\n" not in r["error"]
        else:
            assert r["sum"] is not None and math.isfinite(r["sum"]), r["method"]
    # with -m all, methods that do not apply are refused without failing the run
    assert doc["exit_code"] == (1 if any(r["status"] == "failed" for r in results) else 0)
    return by_method


def test_every_method_on_the_photo(capsys: pytest.CaptureFixture[str],
                                   tmp_path: pathlib.Path) -> None:
    vision = pytest.importorskip("attribkit.zoo.vision")
    from PIL import Image

    photo = tmp_path / "astronaut.png"
    Image.fromarray(vision.load_photo("astronaut")).save(photo)
    code, doc, _err = _explain(capsys, "efficientnet-lite0", str(photo), "--window", "56",
                              "--stride", "56", "-o", str(tmp_path / "o"), "--top", "3")
    by = _check_every_method(doc)
    # the methods the issue names run on the CLI's own EfficientNet
    for name in ("grad_cam", "lrp", "guided_backprop", "deeplift", "deepshap", "occlusion"):
        assert by[name]["status"] == "ok", (name, by[name].get("error"))
    assert code == doc["exit_code"]
    ig = by["integrated_gradients"]
    assert ig["target_name"] and ig["files"] == [str(tmp_path / "o" / "astronaut_"
                                                     "integrated_gradients.png")]
    w, h = Image.open(photo).size
    for f in ig["top_features"]:  # regions in the user's file, not the 224-px crop
        x0, y0, x1, y1 = f["box"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 > 16
    assert (tmp_path / "o" / "report.html").is_file()


def test_every_method_on_a_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("attribkit.zoo.text")
    code, doc, _ = _explain(capsys, "minilm-sentiment", "a wonderful, warm film")
    by = _check_every_method(doc)
    ig = by["integrated_gradients"]
    assert ig["status"] == "ok" and ig["target"] == 1 and ig["target_name"] == "positive"
    assert by["occlusion"]["status"] == "refused"
    code, out = main(["explain", "minilm-sentiment", "a dull and boring film", "-q",
                      "--steps", "4"]), capsys.readouterr().out
    assert code == 0 and "target 0 (negative)" in out and "predicted 0 negative" in out
    assert "\x1b[" not in out  # no colour codes when stdout is not a terminal


def test_every_method_on_csv_rows(capsys: pytest.CaptureFixture[str],
                                  tmp_path: pathlib.Path) -> None:
    tabular = pytest.importorskip("attribkit.zoo.tabular")
    data = tabular.breast_cancer_data()
    rows = data.unstandardise(data.X_test[:2]).tolist()
    csv = tmp_path / "patients.csv"
    csv.write_text(",".join(n.replace(" ", "_") for n in data.feature_names) + "\n"
                   + "\n".join(",".join(f"{v:.6g}" for v in r) for r in rows) + "\n")
    _code, doc, _ = _explain(capsys, "breast-cancer-mlp", str(csv))
    by = _check_every_method(doc, n_inputs=2)
    assert by["grad_cam"]["status"] == "refused"  # no convolution in an MLP
    names = {r["name"] for r in doc["results"]}
    assert names == {"patients_row1", "patients_row2"}  # every row, named after the file
    header = csv.read_text().splitlines()[0].split(",")
    ig = by["integrated_gradients"]  # features named by the CSV's own header
    assert ig["top_features"] and {f["name"] for f in ig["top_features"]} <= set(header)


def test_every_method_on_a_molecule(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rdkit")
    _code, doc, _ = _explain(capsys, "tpsa-graphnet", "OC(=O)c1ccccc1N", "--top", "3")
    by = _check_every_method(doc)
    ig = by["integrated_gradients"]
    assert ig["status"] == "ok" and ig["top_features"][0]["name"][0] in "NO"  # polar atoms
