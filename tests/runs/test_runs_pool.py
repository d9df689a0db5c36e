"""The local engine with worker processes (``concurrency > 1``): the same store as one process,
batches balanced across the workers, the calling process working as one of them, and a worker
process that dies ends the run with one clear error while every batch finished stays in the store
and a second run completes it; so does Ctrl-C, quietly, leaving no process behind."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from tests.runs.conftest import env_with_paths

import attribkit.runs as runs
from attribkit.runs.sources import Item
from attribkit.runs.work import Task, balanced_batches

SPEC = "tests.runs._models:tiny_cnn"
METHODS = [("ig", {"steps": 8}), "saliency"]


def _tasks(n: int) -> list[Task]:
    return [Task(Item(i, f"i{i}", "", None), ("ig",), True) for i in range(n)]


@pytest.mark.parametrize(("n", "size", "workers", "want"), [
    (24, 8, 2, [6, 6, 6, 6]),      # not 8 + 8 + 8: one worker would idle a third of the run
    (24, 8, 1, [8, 8, 8]),
    (7, 3, 2, [2, 2, 2, 1]),
    (3, 8, 4, [1, 1, 1]),          # fewer tasks than workers: one each
    (0, 8, 2, []),
    (10, 3, 3, [2, 2, 2, 2, 1, 1]),
])
def test_balanced_batches(n: int, size: int, workers: int, want: list[int]) -> None:
    batches = balanced_batches(_tasks(n), size, workers)
    assert [len(b) for b in batches] == want
    assert [t.item.item for b in batches for t in b] == list(range(n))  # in order, each once


def test_workers_give_the_store_of_one_process(photos: pathlib.Path,
                                               tmp_path: pathlib.Path) -> None:
    threads = torch.get_num_threads()
    one = runs.run(SPEC, photos, METHODS, out=tmp_path / "one", batch_size=3, progress=False)
    two = runs.run(SPEC, photos, METHODS, out=tmp_path / "two", batch_size=3, progress=False,
                   concurrency=2)
    assert (two.items, two.computed, two.failed) == (one.items, one.computed, 0) == (8, 8, 0)
    a, b = runs.open(tmp_path / "one"), runs.open(tmp_path / "two")
    cols = ["item", "item_id", "method", "params", "target", "status"]
    assert a.results[cols].equals(b.results[cols])
    for row in a.results.itertuples():
        np.testing.assert_allclose(b.values(row.item, row.method), a.values(row.item, row.method),
                                   rtol=1e-6, atol=1e-9)
    # 8 items, batches of 3, 2 workers: 4 batches of 2, each written by the copy that did it
    assert len(list((tmp_path / "two" / "items").glob("part-*.parquet"))) == 4
    assert torch.get_num_threads() == threads  # the calling process's threads are restored


def test_model_object_needs_a_spec_for_workers(photos: pathlib.Path,
                                               tmp_path: pathlib.Path) -> None:
    from tests.runs._models import cnn

    with pytest.raises(ValueError, match="concurrency > 1 builds the model in each worker"):
        runs.run(cnn(), photos, METHODS, out=tmp_path / "s", concurrency=2, progress=False)
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        runs.run(SPEC, photos, METHODS, out=tmp_path / "s", concurrency=0, progress=False)


def test_a_dead_worker_ends_the_run_and_a_second_run_completes_it(
        photos: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mark, counter = tmp_path / "died.txt", tmp_path / "count.txt"
    monkeypatch.setenv("ATTRIBKIT_TEST_DIE_ON", "*")  # a worker process dies on its first item
    monkeypatch.setenv("ATTRIBKIT_TEST_SPARE_PID", str(os.getpid()))  # this one works on
    monkeypatch.setenv("ATTRIBKIT_TEST_DIE_MARK", str(mark))
    monkeypatch.setenv("ATTRIBKIT_TEST_COUNTER", str(counter))
    out = tmp_path / "store"
    with pytest.raises(RuntimeError, match=r"worker process of the local engine died.*run the "
                                           r"same command again"):
        runs.run(SPEC, photos, METHODS, out=out, batch_size=1, progress=False, concurrency=2)
    assert mark.exists() and int(mark.read_text()) != os.getpid()  # a worker process died
    res = runs.run(SPEC, photos, METHODS, out=out, batch_size=1, progress=False, concurrency=2)
    # the calling process went on alone: only the dead worker's batch (one item) was missing
    assert (res.items, res.computed, res.failed) == (8, 1, 0)
    items = pq.read_table(out / "items").column("item").to_pylist()
    assert sorted(items) == list(range(8))
    rows = pq.read_table(out / "results", columns=["item", "method", "status"]).to_pandas()
    assert len(rows) == 16 and not rows.duplicated(["item", "method"]).any()
    assert set(rows["status"]) == {"ok"}


def test_cli_concurrency_on_the_local_engine(photos: pathlib.Path, tmp_path: pathlib.Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from attribkit.cli import main

    out = tmp_path / "s"
    argv = ["run", SPEC, str(photos), "-m", "saliency", "--out", str(out), "-q"]
    assert main([*argv, "--concurrency", "2"]) == 0
    assert "computed 8 item(s)" in capsys.readouterr().out
    assert sorted(runs.open(out).results["item"]) == list(range(8))
    assert main([*argv, "--concurrency", "2"]) == 0  # complete: nothing to do, no process started
    assert "nothing to do" in capsys.readouterr().out
    assert main([*argv, "--num-cpus", "2"]) == 2
    assert "--address and --num-cpus need --engine ray" in capsys.readouterr().err


def test_workers_pass_max_new_tokens_to_generations(tmp_path: pathlib.Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the cat sat on the\nparis is the capital of\none two three four\n")
    spec = "tests.runs._models:tiny_generation"
    for name, workers in (("one", 1), ("two", 2)):
        runs.run(spec, prompts, ["saliency"], out=tmp_path / name, batch_size=1,
                 progress=False, max_new_tokens=3, concurrency=workers)
    a, b = runs.open(tmp_path / "one"), runs.open(tmp_path / "two")
    assert b.manifest["max_new_tokens"] == 3 and b.manifest["kind"] == "generation"
    assert list(a.results["extra"]) == list(b.results["extra"])  # the same answers, 3 tokens
    for i in range(3):
        assert b.values(i, "saliency").shape[0] == 3
        np.testing.assert_allclose(b.values(i, "saliency"), a.values(i, "saliency"), rtol=1e-6)


def _until(done: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``done`` every 20 ms until it holds; fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def _workers(pid: int) -> dict[int, bool]:
    """The processes under ``pid`` (children, their children...), read from /proc: pid ->
    whether it is a worker process (``multiprocessing.spawn``)."""
    parent: dict[int, int] = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found: dict[int, bool] = {}
    todo = [pid]
    while todo:
        up = todo.pop()
        for kid in (c for c, p in parent.items() if p == up and c not in found):
            with contextlib.suppress(OSError):
                found[kid] = b"spawn_main" in pathlib.Path(f"/proc/{kid}/cmdline").read_bytes()
                todo.append(kid)
    return found


def _blocks_sigint(pid: int) -> bool:
    """Whether the main thread of ``pid`` blocks SIGINT (``SigBlk`` in /proc/PID/status)."""
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk:"))
    return bool(int(mask, 16) >> (signal.SIGINT - 1) & 1)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("moment", ["busy", "starting"])
def test_ctrl_c_stops_the_workers_and_a_second_run_completes_it(
        moment: str, photos: pathlib.Path, tmp_path: pathlib.Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in a terminal: SIGINT to the whole process group, the worker process included.
    The calling process does one batch and is held in its second when the signal comes. The
    worker process has done one batch and is held in its second (``busy``): it finishes that
    batch, which is recorded, once released after the note of the Ctrl-C. Or it is held while
    it builds the model (``starting``, its first batch handed to it): a second Ctrl-C after the
    note ends it at once. Always: the command exits 130 with two lines on stderr (the note and
    ``attribkit: interrupted``; no traceback, no KeyboardInterrupt from any process), no process
    it started survives, and the same run again computes exactly the missing items."""
    hold, start, log, out = tmp_path / "hold", tmp_path / "start", tmp_path / "log", tmp_path / "s"
    first = tmp_path / "first"  # the items prepared by the interrupted run
    hold.touch()
    start.touch()
    cmd = [sys.executable, "-m", "attribkit.cli", "run", SPEC, str(photos), "-m", "saliency",
           "--out", str(out), "--batch-size", "1", "--concurrency", "2", "-q"]
    env = {**os.environ, **env_with_paths(), "ATTRIBKIT_TEST_HOLD": str(hold),
           "ATTRIBKIT_TEST_HOLD_AFTER": "1", "ATTRIBKIT_TEST_COUNTER": str(first)}
    if moment == "starting":
        env["ATTRIBKIT_TEST_HOLD_START"] = str(start)
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)  # its own process group, as in a shell

    def held() -> dict[int, str]:  # pid -> the stem of the item it waits in, or "start"
        return {int(p.suffix[1:]): p.read_text() for p in tmp_path.glob("*.*")
                if p.stem in ("hold", "start") and p.suffix[1:].isdigit()}

    try:
        _until(lambda: proc.poll() is not None or len(held()) == 2, "both copies to be held")
        assert proc.poll() is None, log.read_text()
        waiting, children = held(), _workers(proc.pid)
        (worker,) = set(waiting) - {proc.pid}
        assert proc.pid in waiting and children[worker]
        assert _blocks_sigint(worker)  # from its start: a Ctrl-C while it imports torch is held
        os.killpg(proc.pid, signal.SIGINT)
        _until(lambda: proc.poll() is not None or "Ctrl-C again" in log.read_text(),
               "the note of the first Ctrl-C")
        if moment == "busy":
            hold.unlink()  # the worker process finishes its batch in flight
        else:
            os.killpg(proc.pid, signal.SIGINT)  # the worker process ends, still starting
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        hold.unlink(missing_ok=True)
        start.unlink()
    assert log.read_text().splitlines() == [
        "attribkit: interrupted: storing the 1 batch(es) in flight in worker processes; "
        "Ctrl-C again to stop them at once", "attribkit: interrupted"]
    _until(lambda: not any(_alive(p) for p in children), "the processes to end", 30)

    # stored: what was prepared (each copy's first item, and the items held), less the
    # calling process's held item (interrupted)
    prepared = first.read_text().split()
    assert len(prepared) == (4 if moment == "busy" else 2)
    stored = set(pq.read_table(out / "items", columns=["item_id"]).column("item_id").to_pylist())
    assert stored == set(prepared) - {waiting[proc.pid]} and len(stored) == len(prepared) - 1
    one = runs.run(SPEC, photos, ["saliency"], out=tmp_path / "one", batch_size=1,
                   progress=False)
    monkeypatch.setenv("ATTRIBKIT_TEST_COUNTER", str(tmp_path / "second"))
    again = runs.run(SPEC, photos, ["saliency"], out=out, batch_size=1, progress=False,
                     concurrency=2)
    assert (again.items, again.computed, again.failed) == (8, 8 - len(stored), 0)
    assert sorted((tmp_path / "second").read_text().split()) == sorted(
        {p.stem for p in photos.glob("*.png")} - stored)  # the missing items, each once
    a, b = runs.open(tmp_path / "one"), runs.open(out)
    assert len(b.results) == 8 and not b.results.duplicated(["item", "method"]).any()
    assert set(b.results["status"]) == {"ok"}
    for i in range(one.items):
        np.testing.assert_allclose(b.values(i, "saliency"), a.values(i, "saliency"),
                                   rtol=1e-6, atol=1e-9)
