"""``-m interactions`` in a run: each item's top interactions in its row (docs/runs.md).

The model ``F(x) = 3 x0 x1 + x2 - 2 x1 x3`` is a game of pairs, so with the zero baseline its
Harsanyi dividends are the closed form: ``3 x0 x1`` for {0, 1}, ``-2 x1 x3`` for {1, 3}, ``x2``
for {2}, nothing else; FSII of order 2 equals them (the game has no higher dividends).
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

import attribkit.runs as runs
from attribkit.cli import main

SPEC = "tests.runs.test_runs_interactions:pairs_model"
ROWS = [[0.5, -1.0, 2.0, 0.25], [1.5, 2.0, -0.5, 1.0], [-1.0, 0.5, 1.0, -2.0]]


class Pairs(nn.Module):
    """``3 x0 x1 + x2 - 2 x1 x3``, one output per example."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3 * x[:, 0] * x[:, 1] + x[:, 2] - 2 * x[:, 1] * x[:, 3]


def pairs_model() -> nn.Module:
    """The model for ``module:callable`` specs."""
    return Pairs().double()


def _csv(folder: pathlib.Path) -> pathlib.Path:
    path = folder / "rows.csv"
    path.write_text("a,b,c,d\n" + "\n".join(",".join(str(v) for v in r) for r in ROWS) + "\n")
    return path


def _header(path: pathlib.Path) -> list[str]:
    """The CSV's column names, read back from its first line."""
    return path.read_text().splitlines()[0].split(",")


def _dividends(r: list[float]) -> dict[tuple[int, ...], float]:
    return {(0, 1): 3 * r[0] * r[1], (1, 3): -2 * r[1] * r[3], (2,): r[2]}


def test_run_stores_top_interactions_per_item(tmp_path: pathlib.Path) -> None:
    out, csv = tmp_path / "store", _csv(tmp_path)
    header = _header(csv)
    res = runs.run(pairs_model(), csv,
                   ["saliency", ("interactions", {"index": "fsii", "top": 3})], out=out,
                   progress=False)
    assert res.failed == 0
    store = runs.open(out)
    assert store.manifest["interactions"] == {"index": "FSII", "order": 2, "top": 3}
    assert [m["name"] for m in store.manifest["methods"]] == ["saliency"]
    assert "interactions" in store.items.columns
    for i, r in enumerate(ROWS):
        rec = store.interactions(i)
        assert rec is not None
        assert (rec["index"], rec["order"], rec["players"], rec["exact"]) == ("FSII", 2, 4, True)
        assert rec["output"] == pytest.approx(sum(_dividends(r).values()), abs=1e-9)
        assert rec["baseline_output"] == pytest.approx(0.0, abs=1e-12)
        pairs = [t for t in rec["top"] if len(t["players"]) == 2]
        singles = [t for t in rec["top"] if len(t["players"]) == 1]
        assert len(pairs) == 3 and len(singles) == 3
        want = _dividends(r)
        for t in rec["top"]:
            key = tuple(t["players"])
            assert t["value"] == pytest.approx(want.get(key, 0.0), abs=1e-9), key
            assert t["names"] == [header[p] for p in key]  # the CSV's column names
        strongest = max(((0, 1), (1, 3)), key=lambda k: abs(want[k]))
        assert tuple(pairs[0]["players"]) == strongest
        assert list(store.item(i)["feature_names"]) == header
    # plain pyarrow sees a string column of JSON
    table = pq.read_table(out / "items")
    assert json.loads(table.column("interactions")[0].as_py())["index"] == "FSII"


def test_run_without_interactions_writes_no_column(tmp_path: pathlib.Path) -> None:
    runs.run(pairs_model(), _csv(tmp_path), ["saliency"], out=tmp_path / "s", progress=False)
    store = runs.open(tmp_path / "s")
    assert "interactions" not in store.manifest
    assert "interactions" not in store.items.columns
    assert store.interactions(0) is None


def test_cli_run_with_interactions_and_resume(tmp_path: pathlib.Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    csv, out = _csv(tmp_path), tmp_path / "cli"
    args = ["run", SPEC, str(csv), "-m", "saliency", "-m", "interactions:index=FSII,order=2",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    rec = runs.open(out).interactions(1)
    assert rec is not None and rec["index"] == "FSII"
    top_pair = next(t for t in rec["top"] if len(t["players"]) == 2)
    assert top_pair["value"] == pytest.approx(3 * 1.5 * 2.0, abs=1e-9)
    assert top_pair["names"] == [_header(csv)[p] for p in top_pair["players"]]
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    # another interaction configuration is another run: refused in one line
    other = [a.replace("FSII", "STII") for a in args]
    assert main(other) == 2
    assert "its interactions is" in capsys.readouterr().err


@pytest.mark.parametrize(("methods", "message"), [
    (["interactions"], "add one, e.g. -m saliency"),
    (["saliency", ("interactions", {"depth": 2})], "no option 'depth'"),
    (["saliency", ("interactions", {"order": 0})], "order must be a positive integer"),
    (["saliency", ("interactions", {"index": "XYZ"})], "unknown interaction index"),
    (["saliency", "interactions", "interaction"], "given twice"),
])
def test_bad_interaction_settings_are_refused(tmp_path: pathlib.Path, methods: list[object],
                                              message: str) -> None:
    with pytest.raises(ValueError, match=message):
        runs.run(pairs_model(), _csv(tmp_path), methods, out=tmp_path / "bad",  # type: ignore[arg-type]
                 progress=False)
    assert not (tmp_path / "bad").exists()


def test_an_item_whose_index_cannot_be_computed_records_why(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(["1.0"] * 21) + "\n")
    model = nn.Sequential(nn.Linear(21, 1), nn.Flatten(0)).double()
    runs.run(model, path, ["saliency", "interactions"], out=tmp_path / "w", progress=False)
    rec = runs.open(tmp_path / "w").interactions(0)
    assert rec is not None and "budget" in rec["error"]
    assert np.isfinite(runs.open(tmp_path / "w").values(0, "saliency")).all()


def test_image_players_are_a_grid_of_patches(tmp_path: pathlib.Path) -> None:
    from tests.runs.conftest import write_photos

    photos = write_photos(tmp_path / "p", names=("coffee",))
    out = tmp_path / "img"
    runs.run("tests.runs._models:tiny_cnn", photos,
             ["saliency", ("interactions", {"budget": 600, "seed": 0, "top": 2})], out=out,
             progress=False)
    store = runs.open(out)
    rec = store.interactions(0)
    assert rec is not None
    assert (rec["players"], rec["exact"]) == (16, False)
    assert rec["evaluations"] <= 600
    row = store.results.iloc[0]
    assert rec["target"] == int(row["target"])
    assert rec["output"] == pytest.approx(float(row["output"]), rel=1e-5)
    assert all("stderr" in t and t["stderr"] >= 0 for t in rec["top"])
    assert {len(t["players"]) for t in rec["top"]} == {1, 2}


def test_ray_workers_get_the_csv_header(tmp_path: pathlib.Path) -> None:
    # the actor class Ray builds per worker, called here directly (no Ray needed)
    from attribkit.runs.ray_engine import _RayWorker
    from attribkit.runs.sources import Item
    from attribkit.runs.work import Task

    header = _header(_csv(tmp_path))
    (tmp_path / "s" / "items").mkdir(parents=True)
    (tmp_path / "s" / "results").mkdir()
    worker = _RayWorker(SPEC, [{"name": "saliency", "params": {}}], None, str(tmp_path / "s"),
                        {}, 1, "tok", 10**6, {"index": "FSII", "order": 2, "top": 2}, header)
    assert worker.ready()
    worker.process([Task(Item(0, "row 0", "rows.csv row 0", ROWS[0]), ("saliency",), True)],
                   "tabular")
    items = pq.read_table(tmp_path / "s" / "items")
    assert items.column("feature_names")[0].as_py() == header
    top = json.loads(items.column("interactions")[0].as_py())["top"]
    assert all(t["names"] == [header[p] for p in t["players"]] for t in top)
