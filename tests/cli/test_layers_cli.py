"""`attribkit explain -m layer_conductance --layer NAME`: the CLI passes the named layer."""

from __future__ import annotations

import json
import pathlib

import pytest

from attribkit.cli import main


def test_layer_conductance_on_a_named_layer(capsys: pytest.CaptureFixture[str],
                                            tmp_path: pathlib.Path) -> None:
    tabular = pytest.importorskip("attribkit.zoo.tabular")
    data = tabular.breast_cancer_data()
    row = data.unstandardise(data.X_test[:1]).tolist()[0]
    csv = tmp_path / "p.csv"
    csv.write_text(",".join(n.replace(" ", "_") for n in data.feature_names) + "\n"
                   + ",".join(f"{v:.6g}" for v in row) + "\n")
    code = main(["explain", "breast-cancer-mlp", str(csv), "-m", "layer_conductance",
                 "-m", "neuron_conductance", "--layer", "1", "--json", "-o",
                 str(tmp_path / "o")])
    out, _ = capsys.readouterr()
    by = {r["method"]: r for r in json.loads(out)["results"]}
    cond = by["layer_conductance"]
    assert cond["status"] == "ok", cond.get("error")
    assert abs(cond["sum"] - (cond["output"] - cond["baseline_output"])) < 1e-2 * abs(
        cond["output"] - cond["baseline_output"])  # complete over the layer's units
    assert by["neuron_conductance"]["status"] == "refused"
    assert "attribkit.neuron(layer, index)" in by["neuron_conductance"]["error"]
    assert code == 1  # a method named on the command line was refused
