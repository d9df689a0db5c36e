"""Reliability cases for the run store (issue 26): one writer at a time, resumes that check what
they find, images that cannot blow up a run, and stores that every reader can open."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from tests.reliability._cases import case
from tests.runs.conftest import env_with_paths, write_photos

import attribkit.runs as runs
from attribkit.cli import main

SPEC = "tests.runs._models:tiny_cnn"
NAMES = ("chelsea", "coffee", "astronaut", "rocket")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """4 photos of 32 x 32 pixels."""
    return write_photos(tmp_path_factory.mktemp("photos"), names=NAMES)


def _cli(*args: str) -> int:
    return main(["run", SPEC, *args, "-q"])


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "attribkit.cli", "run", SPEC, *args, "-q"]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, **env_with_paths(), **extra}


def _wait_for(check: object, proc: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"never happened; the run ended with {proc.poll()}: "
                         f"{proc.stderr.read() if proc.stderr and proc.poll() is not None else ''}")


def _raw_results(out: pathlib.Path) -> pa.Table:
    return pq.read_table(out / "results", columns=["item", "method", "target", "status"])


@case("runs", "`attribkit run` on a folder holding a 17 KB PNG of 12000 x 12000 pixels among "
      "good images, in one batch", "the bomb is refused from its header, before decoding, and "
      "fails alone (one failed row per method naming --max-image-pixels); the good images of "
      "its batch are done; a bad --max-image-pixels is a usage error")
def test_image_bomb_fails_alone(photos: pathlib.Path, tmp_path: pathlib.Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    Image.new("1", (12000, 12000)).save(folder / "bomb.png", optimize=True)
    assert (folder / "bomb.png").stat().st_size < 30_000
    out = tmp_path / "s"
    assert _cli(str(folder), "-m", "saliency", "--batch-size", "8", "--out", str(out)) == 1
    assert "more than the limit of 89,478,485" in capsys.readouterr().err
    store = runs.open(out)
    failed = store.failed
    assert list(failed["item_id"]) == ["bomb"]
    assert "12000 x 12000 pixels" in failed["error"].iloc[0]
    assert "--max-image-pixels" in failed["error"].iloc[0]
    ok = store.results[store.results["status"] == "ok"]
    assert sorted(ok["item_id"]) == sorted(NAMES)
    assert _cli(str(folder), "--max-image-pixels", "0", "--out", str(tmp_path / "t")) == 2
    assert "--max-image-pixels must be a positive integer" in capsys.readouterr().err


@case("runs", "two `attribkit run` processes on one store at once, with different "
      "--batch-size", "the second refuses with one line naming the writer's pid and host "
      "(exit 1) and touches nothing; with --wait it waits, then finds the store complete; "
      "every (item, method, target) is in the store once")
def test_two_writers(photos: pathlib.Path, tmp_path: pathlib.Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    out, hold, counter = tmp_path / "s", tmp_path / "hold", tmp_path / "count.txt"
    hold.touch()
    first = subprocess.Popen(_cmd(str(photos), "-m", "saliency", "--batch-size", "1",
                                  "--out", str(out)),
                             env=_env(ATTRIBKIT_TEST_HOLD=str(hold),
                                      ATTRIBKIT_TEST_COUNTER=str(counter)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    notes: list[str] = []
    waiter = threading.Thread(target=lambda: notes.append(str(runs.run(
        SPEC, photos, ["saliency"], out=out, batch_size=3, progress=False, wait=True,
        note=notes.append).computed)))
    try:
        _wait_for(counter.exists, first)  # it holds the lock and works on its first item
        lock = out / "writer.lock"
        info = json.loads(lock.read_text())
        assert (info["pid"], info["host"]) == (first.pid, socket.gethostname())
        before = sorted(p.name for p in out.rglob("*"))
        assert _cli(str(photos), "-m", "saliency", "--batch-size", "3", "--out", str(out)) == 1
        assert capsys.readouterr().err.splitlines() == [
            f"attribkit: error: {str(out)!r} is being written by another run (pid {first.pid} "
            f"on host {socket.gethostname()}, since {info['started']}); wait for it to "
            "finish, or pass --wait"]
        assert sorted(p.name for p in out.rglob("*")) == before
        waiter.start()
        deadline = time.monotonic() + 120
        while not notes and time.monotonic() < deadline:
            time.sleep(0.02)
        assert notes[0].startswith(f"waiting for the run writing {str(out)!r} "
                                   f"(pid {first.pid} on host"), notes
        hold.unlink()
        assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
        waiter.join(timeout=300)
    finally:
        hold.unlink(missing_ok=True)
        if first.poll() is None:
            first.kill()
    assert notes[1:] == ["0"]  # the waiting run found the store complete
    raw = _raw_results(out).to_pandas()
    assert len(raw) == 4 and not raw.duplicated(["item", "method", "target"]).any()
    assert not (out / "writer.lock").exists()


@case("runs", "a run killed with SIGKILL while it holds the store's lock, then the same command",
      "the lock of the dead pid on this host is taken over with a one-line note; the run "
      "completes with each row once")
def test_stale_lock_taken_over(photos: pathlib.Path, tmp_path: pathlib.Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    args = (str(photos), "-m", "saliency", "--batch-size", "1", "--out", str(out))
    proc = subprocess.Popen(_cmd(*args), env=_env(ATTRIBKIT_TEST_SLOW="0.5"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: any((out / "results").glob("part-*.parquet")), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((out / "writer.lock").read_text())["pid"] == proc.pid
    assert _cli(*args) == 0
    assert (f"attribkit: took over the lock of a run that is no longer running (pid {proc.pid} "
            f"on host {socket.gethostname()}") in capsys.readouterr().err
    raw = _raw_results(out).to_pandas()
    assert len(raw) == 4 and not raw.duplicated(["item", "method", "target"]).any()


@case("runs", "a broken image fixed after the run, then `attribkit run` again, then with "
      "--retry-failed", "the resume exits 1 naming --retry-failed; --retry-failed takes the "
      "failed rows out and computes them again under a new shard name (exit 0, no failed row "
      "left in the Parquet files, each row once)")
def test_retry_failed(photos: pathlib.Path, tmp_path: pathlib.Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "s"
    args = (str(folder), "-m", "saliency", "-m", "ig:steps=4", "--batch-size", "8",
            "--out", str(out))
    assert _cli(*args) == 1
    shutil.copy(folder / "coffee.png", folder / "broken.png")  # the user fixes the file
    capsys.readouterr()
    assert _cli(*args) == 1
    assert "--retry-failed computes them again" in capsys.readouterr().err
    assert _cli(*args, "--retry-failed") == 0
    captured = capsys.readouterr()
    assert "retrying 2 failed result row(s)" in captured.err
    assert "computed 1 item(s)" in captured.out
    raw = _raw_results(out).to_pandas()
    assert set(raw["status"]) == {"ok"} and len(raw) == 10
    assert not raw.duplicated(["item", "method", "target"]).any()
    store = runs.open(out)
    assert set(store.items["status"]) == {"ok"} and len(store.items) == 5
    ids = store.items.set_index("item_id")["item"]  # the fixed file is a copy of coffee.png
    np.testing.assert_allclose(store.values(int(ids["broken"]), "saliency"),  # float32, batched
                               store.values(int(ids["coffee"]), "saliency"), rtol=0, atol=1e-7)


@case("runs", "the failed rows deleted by hand from their shard (rewritten under its own name), "
      "then the same command", "the resume says the shard changed after it was written and "
      "computes the missing items into a shard of a new name (it used to say 'computed 2 "
      "items', exit 0, and write nothing)")
def test_edited_shard_is_noticed(photos: pathlib.Path, tmp_path: pathlib.Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    for name in ("aaa", "zzz"):  # the first and the last item of the batch fail
        (folder / f"{name}.png").write_bytes(b"not an image")
    out = tmp_path / "s"
    args = (str(folder), "-m", "saliency", "--batch-size", "8", "--out", str(out))
    assert _cli(*args) == 1
    for name in ("aaa", "zzz"):
        shutil.copy(folder / "coffee.png", folder / f"{name}.png")
    (shard,) = (out / "results").glob("part-*.parquet")
    table = pq.read_table(shard)
    pq.write_table(table.filter(pa.compute.equal(table["status"], "ok")), shard)  # the edit
    capsys.readouterr()
    assert _cli(*args) == 0
    captured = capsys.readouterr()
    assert f"results/{shard.name} changed after it was written" in captured.err
    assert "computed 2 item(s)" in captured.out
    res = runs.open(out).results
    assert len(res) == 6 and set(res["status"]) == {"ok"}
    assert len(list((out / "results").glob("part-*.parquet"))) == 2


@case("runs", "a resume after a shard was deleted, another copied in from elsewhere, and one "
      "replaced by a truncated file", "one line each: the missing shard's rows are computed "
      "again, the unrecorded one is kept, the unreadable one is named and skipped")
def test_resume_checks_against_the_manifest(photos: pathlib.Path, tmp_path: pathlib.Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    args = (str(photos), "-m", "saliency", "--batch-size", "1", "--out", str(out))
    assert _cli(*args) == 0
    shards = sorted((out / "results").glob("part-*.parquet"))
    shards[0].unlink()
    copied = shards[1].with_name(shards[1].name.rsplit("-", 1)[0] + "-r0123456789.parquet")
    shards[1].rename(copied)
    shards[2].write_bytes(shards[2].read_bytes()[:40])
    capsys.readouterr()
    assert _cli(*args) == 0
    err = capsys.readouterr().err
    assert f"results/{shards[0].name}, recorded in the manifest, is missing" in err
    assert f"results/{copied.name} was not recorded in the manifest" in err
    assert f"results/{shards[2].name} is skipped: not a Parquet file" in err
    store = runs.open(out)
    assert len(store.results) == 4 and set(store.results["status"]) == {"ok"}
    assert len(store.problems) == 1
    assert store.problems[0].startswith(f"results/{shards[2].name} is skipped: not a Parquet")


@case("runs", "`attribkit run -m ig -m grad_cam` on a CNN; `-m grad_cam:layer=...` with a "
      "good and a misspelt layer", "grad_cam works at the last convolution (said in one line) "
      "or the named layer; a misspelt layer is refused before any work, naming the last "
      "convolution (exit 2)")
def test_grad_cam_in_runs(photos: pathlib.Path, tmp_path: pathlib.Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from tests.runs._models import cnn

    import attribkit

    assert _cli(str(photos), "-m", "ig:steps=4", "-m", "grad_cam", "--out",
                str(tmp_path / "a")) == 0
    assert "grad_cam works at layer '3' (the last convolution" in capsys.readouterr().err
    store = runs.open(tmp_path / "a")
    assert set(store.results["status"]) == {"ok"} and len(store.results) == 8
    x = np.asarray(Image.open(photos / "astronaut.png").convert("RGB"), np.float32) / 255
    item = int(store.items.set_index("item_id").loc["astronaut", "item"])
    want = attribkit.grad_cam(cnn(), torch.from_numpy(x).permute(2, 0, 1)[None],
                              layer="3", target=int(store.results.set_index(
                                  ["item", "method"]).loc[(item, "grad_cam"), "target"]))
    np.testing.assert_allclose(store.values(item, "grad_cam"), want.values[0].numpy(),
                               rtol=1e-5, atol=1e-6)
    assert _cli(str(photos), "-m", "grad_cam:layer=0", "--out", str(tmp_path / "b")) == 0
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["methods"] == [
        {"name": "grad_cam", "params": {"layer": "0"}}]
    capsys.readouterr()
    assert _cli(str(photos), "-m", "ig", "-m", "grad_cam:layer=conv9", "--out",
                str(tmp_path / "c")) == 2
    err = capsys.readouterr().err
    assert "no layer 'conv9' (its last convolution is '3')" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "c").exists()


@case("serve", "the explorer's live mode asked for grad_cam", "the method gets the layer the "
      "store names, or the model's last convolution (it used to raise a raw TypeError)")
def test_grad_cam_in_live_mode() -> None:
    import torch
    from tests.runs._models import cnn

    from attribkit import explain
    from attribkit.serve.live import method_options

    net, x = cnn(), torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    opts = method_options("grad_cam", steps=None, target=1, baseline=None, model=net)
    assert opts["layer"] is net[3]
    got = explain(net, x, method="grad_cam", **opts)
    want = explain(net, x, method="grad_cam", target=1, layer=net[3])
    torch.testing.assert_close(got.values, want.values, rtol=0, atol=0)
    assert method_options("grad_cam", steps=None, target=1, baseline=None, model=net,
                          layer="0")["layer"] is net[0]


@case("report", "`attribkit report` on a valid store whose images have two sizes",
      "the curves group the items by shape; every item gets its AOPC, deletion and insertion "
      "(it used to fail in torch.cat)")
def test_report_two_image_sizes(photos: pathlib.Path, tmp_path: pathlib.Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    write_photos(folder, size=40, names=("china", "flower"))
    out = tmp_path / "s"
    assert _cli(str(folder), "-m", "saliency", "--batch-size", "6", "--out", str(out)) == 0
    assert main(["report", str(out), "--steps", "4"]) == 0
    summary = json.loads((out / "summary.json").read_text())["methods"]["saliency"]
    assert summary["aopc"]["n"] == summary["deletion"]["n"] == summary["insertion"]["n"] == 6
    assert {r.shape for r in (runs.open(out).item(i)["input"] for i in range(6))} == {
        (3, 32, 32), (3, 40, 40)}


@case("serve", "the explorer on a store where every row failed", "/api/summary and the table "
      "answer 200 with empty gaps (it used to be a 500)")
def test_every_row_failed_summary(tmp_path: pathlib.Path) -> None:
    from fastapi.testclient import TestClient

    from attribkit.serve import create_app

    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.png").write_bytes(b"not an image")
    out = tmp_path / "s"
    assert _cli(str(folder), "-m", "saliency", "-m", "ig", "--out", str(out)) == 1
    client = TestClient(create_app(out, hosts=["testserver"]))
    got = client.get("/api/summary")
    assert got.status_code == 200 and got.json()["gaps"] == {}
    for sort in ("item", "gap:saliency", "rel_gap:integrated_gradients"):
        page = client.get("/api/items", params={"sort": sort, "descending": "true"})
        assert page.status_code == 200 and page.json()["total"] == 2


@case("serve", "a shard whose `item` column was rewritten as strings, and a shard that is a "
      "symbolic link to a file outside the store", "`attribkit serve` and `attribkit report` "
      "start, name the tampered file in one line and leave it out; the link is not followed")
def test_tampered_and_linked_shards(photos: pathlib.Path, tmp_path: pathlib.Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from attribkit.serve.store import RunStore as ServeStore

    out = tmp_path / "s"
    assert _cli(str(photos), "-m", "saliency", "--batch-size", "2", "--out", str(out)) == 0
    first, second = sorted((out / "results").glob("part-*.parquet"))
    table = pq.read_table(first)
    idx = table.schema.get_field_index("item")
    pq.write_table(table.set_column(idx, "item", pa.array(["x", "y"])), first)
    outside = tmp_path / "elsewhere.parquet"
    shutil.copy(second, outside)
    (out / "results" / "part-saliency-00000009-00000009.parquet").symlink_to(outside)
    served = ServeStore(out)
    assert served.problems == [f"results/{first.name} could not be read (ShardError: its "
                               "'item' column is string, not an integer); it is left out."]
    assert len(served.results) == 2 and set(served.results["item"]) == {2, 3}
    store = runs.open(out)
    assert len(store.results) == 2
    assert store.problems == [f"results/{first.name} is skipped: its 'item' column is string, "
                              "not an integer"]
    capsys.readouterr()
    assert main(["report", str(out), "--no-curves"]) == 0
    assert f"results/{first.name} is skipped" in capsys.readouterr().err


@case("runs", "a headerless CSV saved by Excel as \"CSV UTF-8\" (it starts with a byte-order "
      "mark), to `attribkit run` and `attribkit explain`", "every row is an item; the first is "
      "no longer taken for a header")
def test_csv_with_bom(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    from attribkit.cli.inputs import csv_rows

    data = tmp_path / "rows.csv"
    data.write_bytes("\ufeff1,2,3,4\r\n5,6,7,8\r\n9,10,11,12\r\n".encode())
    out = tmp_path / "s"
    assert main(["run", "tests.runs._models:mlp", str(data), "-m", "saliency", "--out",
                 str(out), "-q"]) == 0
    store = runs.open(out)
    assert store.manifest["inputs"]["count"] == 3
    np.testing.assert_array_equal(store.item(0)["input"], [1, 2, 3, 4])
    assert [v for _, v in csv_rows(str(data))] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]


@case("cli", "Ctrl-C in the first second of `attribkit` (while torch is imported), through "
      "the console script and `python -m attribkit.cli`", "one line `attribkit: interrupted`, "
      "exit 130, no traceback")
def test_ctrl_c_while_importing() -> None:
    script = pathlib.Path(sys.executable).with_name("attribkit")
    commands = [[sys.executable, "-m", "attribkit.cli", "methods"]]
    if script.exists():
        commands.append([str(script), "methods"])
    for cmd in commands:
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(0.4)
        assert proc.poll() is None  # still importing torch
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, err, out) == (130, "attribkit: interrupted\n", ""), cmd


@case("cli", "`attribkit methods --json | true` (the reader of the output is gone)",
      "exits quietly (code 141), no BrokenPipeError traceback")
def test_broken_pipe_is_quiet() -> None:
    reader = subprocess.Popen(["true"], stdin=subprocess.PIPE)
    reader.wait()
    assert reader.stdin is not None
    proc = subprocess.run([sys.executable, "-m", "attribkit.cli", "methods", "--json"],
                          env=_env(), stdout=reader.stdin, stderr=subprocess.PIPE, text=True,
                          timeout=120)
    reader.stdin.close()
    assert (proc.returncode, proc.stderr) == (141, "")
