"""`attribkit explain MODEL INPUT -m interactions`: the top pairs printed and written as JSON,
the heat map and bars as PNG; equal to attribkit.interactions on the same input."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch

import attribkit
from attribkit.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pair_model(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # F(x) = x0 x1 + 0.5 x2 - 2 x1 x3 (one output): pairs (0, 1) and (1, 3)
    (tmp_path / "ak_pairs_models.py").write_text(
        "import torch\n"
        "class Pairs(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return (x[:, 0] * x[:, 1] + 0.5 * x[:, 2] - 2 * x[:, 1] * x[:, 3])[:, None]\n"
        "def pairs():\n"
        "    return Pairs().double()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "ak_pairs_models:pairs"


def test_interactions_from_the_command_line(capsys: pytest.CaptureFixture[str],
                                            tmp_path: pathlib.Path, pair_model: str) -> None:
    out_dir = tmp_path / "o"
    code, out, _err = _run(capsys, "explain", pair_model, "1,2,3,0.5", "-m", "interactions",
                           "--set", "index=FSII", "--set", "order=2", "--top", "2",
                           "-o", str(out_dir))
    assert code == 0, out
    assert "FSII order 2, 4 players, exact" in out
    assert "-2  1 × 3" in out and "+2  0 × 1" in out  # x0 x1 = 2, -2 x1 x3 = -2
    files = sorted(p.name for p in out_dir.iterdir())
    assert [f for f in files if f.endswith(".png")] == [
        f for f in files if f.endswith("_interactions_bars.png")
        or f.endswith("_interactions_heatmap.png")] and len(files) == 4
    page = (out_dir / "report.html").read_text()
    assert "FSII up to order 2 over 4 players (exact)" in page
    assert page.count("<img") == 2 and "1 × 3" in page
    rec = json.loads(next(out_dir.glob("*_interactions.json")).read_text())
    x = torch.tensor([[1.0, 2.0, 3.0, 0.5]], dtype=torch.float64)
    ref = attribkit.interactions(lambda t: (t[:, 0] * t[:, 1] + 0.5 * t[:, 2]
                                            - 2 * t[:, 1] * t[:, 3])[:, None], x,
                                 index="FSII", order=2, target=0)
    pairs = [r for r in rec["top_interactions"] if len(r["players"]) == 2]
    assert [tuple(r["players"]) for r in pairs] == [(0, 1), (1, 3)] or \
        [tuple(r["players"]) for r in pairs] == [(1, 3), (0, 1)]
    for r in rec["top_interactions"]:
        assert r["value"] == pytest.approx(float(ref.value(r["players"])[0]), abs=1e-12)
    assert rec["exact"] and rec["evaluations"] == 16 and rec["index"] == "FSII"


def test_interactions_with_a_budget_give_errors_and_bad_settings_are_refused(
        capsys: pytest.CaptureFixture[str], pair_model: str) -> None:
    code, out, _ = _run(capsys, "explain", pair_model, "1,2,3,0.5", "-m", "interactions",
                        "--set", "budget=12", "--set", "index=SII", "--json")
    doc = json.loads(out)
    assert code == 0 and not doc["results"][0]["exact"]
    assert all("stderr" in r for r in doc["results"][0]["top_interactions"])
    code, _, err = _run(capsys, "explain", pair_model, "1,2,3,0.5", "-m", "interactions",
                        "--set", "steps=3")
    assert code != 0 and "does not take steps" in err
    code, _, err = _run(capsys, "explain", pair_model, "1,2,3,0.5", "-m", "interactions",
                        "-m", "ig")
    assert code != 0 and "runs on its own" in err


def test_interactions_on_a_csv_name_the_players_by_its_header(
        capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, pair_model: str) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("age,income,height,weight\n1,2,3,0.5\n")
    header = csv.read_text().splitlines()[0].split(",")
    code, out, _err = _run(capsys, "explain", pair_model, str(csv), "-m", "interactions",
                           "--set", "index=FSII", "--set", "order=2", "--top", "2", "--json")
    assert code == 0, out
    rec = json.loads(out)["results"][0]
    assert rec["top_interactions"]
    for r in rec["top_interactions"]:
        assert r["names"] == [header[p] for p in sorted(r["players"])]
