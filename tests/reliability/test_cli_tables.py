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
