"""The CLI on tables (issue 26): global views per explained class, black-box models."""

from __future__ import annotations

import pathlib

import pytest
from tests.reliability._cases import case

from attribkit.cli import main


def _rows_of_both_classes(tmp_path: pathlib.Path) -> pathlib.Path:
    from attribkit.zoo import tabular

    data = tabular.breast_cancer_data()
    y = data.y_test.tolist()
    pick = [y.index(0), y.index(1), y.index(0, y.index(0) + 1), y.index(1, y.index(1) + 1)]
    csv = tmp_path / "rows.csv"
    raw = data.unstandardise(data.X_test[pick]).tolist()
    csv.write_text("\n".join(",".join(f"{v:.6g}" for v in r) for r in raw))
    return csv


@case("report", "attribkit explain breast-cancer-mlp rows.csv with rows predicted as different "
      "classes (the beeswarm, mean |a| and dependence plots stacked attributions for different "
      "classes with no word)", "one set of global views per explained class, each headed with "
      "its class and a note saying why; --target C explains every row for class C (the SHAP "
      "convention) and the heading says so")
def test_global_views_per_explained_class(tmp_path: pathlib.Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    csv = _rows_of_both_classes(tmp_path)
    assert main(["explain", "breast-cancer-mlp", str(csv), "-m", "ig", "--steps", "4", "-o",
                 str(tmp_path / "a"), "-q"]) == 0
    page = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "integrated_gradients: the 2 of 4 rows explained for class 0" in page
    assert "integrated_gradients: the 2 of 4 rows explained for class 1" in page
    assert "do not share one plot" in page
    assert main(["explain", "breast-cancer-mlp", str(csv), "-m", "ig", "--steps", "4",
                 "--target", "1", "-o", str(tmp_path / "b"), "-q"]) == 0
    page = (tmp_path / "b" / "report.html").read_text(encoding="utf-8")
    assert "integrated_gradients: all 4 rows, each explained for class 1" in page


SKLEARN_MODEL = '''
import numpy as np
from sklearn.linear_model import LogisticRegression


def build():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * [1.0, 10.0, 100.0] + [5.0, 50.0, 500.0]
    y = (X[:, 0] - 5 + (X[:, 1] - 50) / 10 > 0).astype(int)
    return LogisticRegression(max_iter=1000).fit(X, y).predict_proba
'''


@case("cli", "attribkit explain mymodel:build data.csv where build() returns a scikit-learn "
      "predict_proba and the CSV has a header (it failed on .detach(); wrapped, it applied "
      "softmax to probabilities, lost the header's names and explained against the all-zero "
      "row in raw units)", "runs: the probabilities are shown as they are, the attributions "
      "carry the header's names, and the baseline is the mean of the CSV's rows (methods with "
      "a background get the rows); KernelSHAP stays complete against F(x) - F(mean row)")
def test_sklearn_model_through_the_cli(tmp_path: pathlib.Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import sys

    import numpy as np

    (tmp_path / "skmodel.py").write_text(SKLEARN_MODEL)
    (tmp_path / "data.csv").write_text("age,income,height\n6,55,510\n4,45,490\n5.5,52,505\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["explain", "skmodel:build", "data.csv", "-m", "kernel_shap", "--json",
                 "-o", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0, out
    recs = [r for r in json.loads(out)["results"] if r.get("method") == "kernel_shap"]
    assert len(recs) == 3
    proba = sys.modules["skmodel"].build()
    rows = np.array([[6, 55, 510], [4, 45, 490], [5.5, 52, 505]], dtype=np.float64)
    mean = rows.mean(0, keepdims=True)
    for rec, row in zip(recs, rows, strict=True):
        p = proba(row[None])[0]
        assert rec["target"] == int(p.argmax())
        assert rec["output"] == pytest.approx(p.max(), rel=1e-5)  # not a softmax of it
        assert rec["baseline_output"] == pytest.approx(proba(mean)[0, rec["target"]],
                                                       rel=1e-5)
        assert {f["name"] for f in rec["top_features"]} == {"age", "income", "height"}
        assert abs(rec["gap"]) < 1e-5
