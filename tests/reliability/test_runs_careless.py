"""Reliability cases for data-set runs: what a careless or unlucky user does to a run store."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from tests.reliability._cases import case
from tests.runs.conftest import env_with_paths, write_photos

import attribkit.runs as runs
from attribkit.cli import main

SPEC = "tests.runs._models:tiny_cnn"


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """8 photos of 32 x 32 pixels."""
    return write_photos(tmp_path_factory.mktemp("photos"))


def _cli(*args: str) -> int:
    return main(["run", SPEC, *args, "-q"])


@case("runs", "a run with other methods pointed at an existing store",
      "refused with one line naming the difference (exit 2); the store is untouched",
      verdict="held")
def test_different_configuration_refused(photos: pathlib.Path, tmp_path: pathlib.Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    assert _cli(str(photos), "-m", "saliency", "--out", str(out)) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    manifest = (out / "manifest.json").read_bytes()
    capsys.readouterr()
    assert _cli(str(photos), "-m", "saliency", "-m", "ig", "--out", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another configuration" in err and "methods" in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert (out / "manifest.json").read_bytes() == manifest
    assert main(["run", SPEC, str(photos), "-m", "saliency", "--target", "1", "--out", str(out),
                 "-q"]) == 2
    assert "target" in capsys.readouterr().err


@case("runs", "a missing input folder, an empty folder, a folder of non-images",
      "one line each (exit 1), nothing written", verdict="held")
def test_missing_and_empty_inputs(tmp_path: pathlib.Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(str(tmp_path / "nope"), "--out", str(tmp_path / "a")) == 1
    assert "input not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("hi")
    assert _cli(str(tmp_path / "empty"), "--out", str(tmp_path / "b")) == 1
    err = capsys.readouterr().err
    assert "no image files" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@case("runs", "--out naming a non-empty folder that is not a run store, or a future version",
      "refused with one line; nothing in the folder is touched", verdict="held")
def test_out_not_a_store(photos: pathlib.Path, tmp_path: pathlib.Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    assert _cli(str(photos), "--out", str(tmp_path / "mine")) == 2
    assert "not a run store" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["thesis.tex"]
    future = tmp_path / "future"
    future.mkdir()
    (future / "manifest.json").write_text(json.dumps({"format": "attribkit-run", "version": 3}))
    assert _cli(str(photos), "--out", str(future)) == 2
    assert "version 3" in capsys.readouterr().err


@case("runs", "the same command run twice, and a restart after a crash left temporary files",
      "nothing is recomputed; the temporary files are removed and never read", verdict="held")
def test_same_command_twice(photos: pathlib.Path, tmp_path: pathlib.Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    assert _cli(str(photos), "-m", "saliency", "--out", str(out)) == 0
    junk = out / "results" / ".tmp-0123456789ab-part-saliency-00000000-00000007.parquet.tmp"
    junk.write_bytes(b"half a file")
    capsys.readouterr()
    assert _cli(str(photos), "-m", "saliency", "--out", str(out)) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert not junk.exists()
    assert len(runs.open(out).results) == 8


@case("runs", "an unknown model, a misspelt method setting, a text model with a method that "
      "cannot attribute at a layer, a model object for the Ray engine",
      "refused before any work (and before Ray starts) with one line", verdict="fixed")
def test_refused_before_work(photos: pathlib.Path, tmp_path: pathlib.Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no.such.module:make", str(photos), "--out", str(tmp_path / "a"),
                 "--engine", "ray", "-q"]) == 1
    assert "no module named 'no.such.module'" in capsys.readouterr().err
    assert _cli(str(photos), "-m", "ig:stpes=8", "--out", str(tmp_path / "b")) == 2
    assert "has no option 'stpes'" in capsys.readouterr().err
    txt = tmp_path / "s.txt"
    txt.write_text("a fine film\n")
    with pytest.raises(ValueError, match="cannot attribute at a layer"):
        runs.run("tests.runs._models:tiny_text", txt, ["occlusion"], out=tmp_path / "c",
                 progress=False)
    from tests.runs._models import cnn

    with pytest.raises(ValueError, match="builds the model in each worker"):
        runs.run(cnn(), photos, ["saliency"], out=tmp_path / "d", engine="ray")
    if "ray" in sys.modules:
        import ray

        assert not ray.is_initialized()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@case("runs", "the driver killed with SIGKILL in the middle of a run, then the same command "
      "again", "every shard on disk is whole; the restart prepares only the items that were "
      "missing and the store holds each (item, method) once", verdict="held")
def test_killed_and_restarted(photos: pathlib.Path, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "attribkit.cli", "run", SPEC, str(photos), "-m", "saliency",
           "-m", "ig:steps=4", "--out", str(out), "--batch-size", "2", "-q"]
    env = {**os.environ, **env_with_paths(), "ATTRIBKIT_TEST_SLOW": "0.4",
           "ATTRIBKIT_TEST_COUNTER": str(tmp_path / "first.txt")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "results").glob("part-*.parquet"))) >= 2:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    shards = list((out / "results").glob("part-*.parquet"))
    assert shards and all(pq.read_table(f).num_rows > 0 for f in shards)  # whole files only
    done = pq.read_table(out / "results", columns=["item_id", "method"]).to_pandas()
    complete = {i for i, g in done.groupby("item_id") if len(g) == 2}
    assert len(complete) < 8
    env.update(ATTRIBKIT_TEST_SLOW="0", ATTRIBKIT_TEST_COUNTER=str(tmp_path / "second.txt"))
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    prepared = (tmp_path / "second.txt").read_text().split()
    assert sorted(prepared) == sorted({p.stem for p in photos.glob("*.png")} - complete)
    res = runs.open(out).results
    assert len(res) == 16 and not res.duplicated(["item", "method"]).any()
    assert set(res["status"]) == {"ok"}


@case("runs", "attribkit report on a folder that is not a run store",
      "one line naming the folder (exit 1)", verdict="held")
def test_report_not_a_store(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no run store" in err and len(err.strip().splitlines()) == 1
