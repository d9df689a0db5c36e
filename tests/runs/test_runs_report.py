"""``attribkit run`` / ``attribkit report``: exit codes, summary.json against independent
computations (pandas, scipy's t quantile, a direct deletion-curve call), links in the page."""

from __future__ import annotations

import json
import math
import pathlib
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from tests.runs import _models

import attribkit.runs as runs
from attribkit.cli import main
from attribkit.evaluate import deletion_curve, insertion_curve

SPEC = "tests.runs._models:tiny_cnn"


@pytest.fixture(scope="module")
def reported(photos: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    tmp = tmp_path_factory.mktemp("report")
    folder = tmp / "photos"
    shutil.copytree(photos, folder)
    (folder / "zz-broken.png").write_text("not an image")
    out = tmp / "store"
    assert main(["run", SPEC, str(folder), "-m", "ig:steps=8", "-m", "saliency", "--out",
                 str(out), "-q"]) == 1  # one item failed
    assert main(["report", str(out), "--steps", "4"]) == 0
    return out


def test_summary_statistics_match_independent_computations(reported: pathlib.Path,
                                                           photos: pathlib.Path) -> None:
    summary = json.loads((reported / "summary.json").read_text())
    res = runs.open(reported).results
    ig = res[(res["method"] == "integrated_gradients") & (res["status"] == "ok")]
    rel = ig["relative_gap"].to_numpy()
    s = summary["methods"]["integrated_gradients"]
    assert (s["ok"], s["failed"]) == (8, 1)
    assert s["relative_gap"]["mean"] == pytest.approx(rel.mean(), rel=1e-12)
    half = stats.t.ppf(0.975, len(rel) - 1) * rel.std(ddof=1) / math.sqrt(len(rel))
    assert s["relative_gap"]["ci"] == pytest.approx([rel.mean() - half, rel.mean() + half])
    row = ig.iloc[0]
    a = np.asarray(Image.open(photos / f"{row['item_id']}.png").convert("RGB"), np.float32)
    x = torch.from_numpy(a / 255.0).permute(2, 0, 1).unsqueeze(0)
    vals = torch.from_numpy(runs.open(reported).values(int(row["item"]), "ig"))[None]
    tgt = torch.tensor([int(row["target"])])
    dele = deletion_curve(_models.cnn(), x, vals, steps=4, target=tgt, baseline=0.0)
    ins = insertion_curve(_models.cnn(), x, vals, steps=4, target=tgt, baseline=0.0)
    per_item = s["deletion"]["per_item"][str(int(row["item"]))]
    assert per_item == pytest.approx(float(dele.area_per_example[0]), rel=1e-5)
    assert s["insertion"]["per_item"][str(int(row["item"]))] == pytest.approx(
        float(ins.area_per_example[0]), rel=1e-5)
    worst = s["worst_gap"][0]
    assert worst["relative_gap"] == pytest.approx(rel.max())


def test_report_links_worst_and_failed_items(reported: pathlib.Path) -> None:
    page = (reported / "report.html").read_text()
    links = set(re.findall(r'href="#(item-\d+)"', page))
    anchors = set(re.findall(r'id="(item-\d+)"', page))
    assert links and links <= anchors
    assert "zz-broken" in page and "cannot read" in page
    assert "95% CI" in page and page.count("<img") >= 3


def test_failures_are_grouped_by_error_with_counts() -> None:
    import pandas as pd

    from attribkit.cli.report import failure_groups

    failed = pd.DataFrame({"item": [3, 3, 5, 7, 9], "item_id": ["a", "a", "b", "c", "d"],
                           "method": ["ig", "saliency", "ig", "ig", "ig"],
                           "error": ["cannot read x\ntrace", "cannot read x", "too big",
                                     "cannot read x", "cannot read x"]})
    g = failure_groups(failed, examples=2)
    assert [(x["error"], x["count"]) for x in g] == [("cannot read x", 4), ("too big", 1)]
    assert g[0]["methods"] == ["ig", "saliency"] and g[0]["items"] == [3, 7, 9]
    assert g[0]["examples"] == ["a", "c"]


def test_report_groups_failures(reported: pathlib.Path) -> None:
    page = (reported / "report.html").read_text()
    assert "Failures grouped by error" in page and "distinct errors" in page


def test_a_table_store_names_its_features_by_the_csv_header(tmp_path: pathlib.Path) -> None:
    from attribkit.cli.report import write_report
    from attribkit.cli.report_table import feature_names, feature_values

    w = torch.tensor([[0.5], [-3.0], [1.25]], dtype=torch.float64)  # F(x) = x @ w
    model = torch.nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(w.T)
    csv = tmp_path / "people.csv"
    csv.write_text("age,income,height\n1,2,3\n-1,0.5,2\n4,4,-4\n")
    header = csv.read_text().splitlines()[0].split(",")
    runs.run(model, csv, [("ig", {"steps": 4})], out=tmp_path / "s", progress=False)
    store = runs.open(tmp_path / "s")
    rec = store.item(1)
    assert list(rec["feature_names"]) == header
    assert feature_names(rec, 3) == header and feature_names(rec, 4)[0] == "x[0]"
    np.testing.assert_allclose(feature_values(rec, 3), [-1.0, 0.5, 2.0])  # the CSV's row
    page = write_report(tmp_path / "s").read_text()
    # the features section: IG of a linear model from 0 is w * x, so mean |a| = |w| mean |x|
    rows = np.array([[1, 2, 3], [-1, 0.5, 2], [4, 4, -4]], dtype=np.float64)
    mean_abs = np.abs(w[:, 0].numpy()) * np.abs(rows).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")
    cells = re.findall(r"<tr><td>(\w+)</td><td>([-0-9.e+]+)</td></tr>", page)
    assert [c[0] for c in cells] == [header[j] for j in order]
    assert [float(c[1]) for c in cells] == pytest.approx(mean_abs[order].tolist(), rel=1e-3)
    assert "integrated_gradients: target" in page  # the worst items' waterfalls, captioned
    assert "values of shape" not in page
