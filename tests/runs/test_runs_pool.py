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


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("moment", ["start-up", "busy", "twice"])
def test_ctrl_c_stops_the_workers_and_a_second_run_completes_it(
        moment: str, photos: pathlib.Path, tmp_path: pathlib.Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in a terminal: SIGINT to the whole process group, the worker process included.
    The calling process does one batch and is held in its second when the signal comes; the
    worker process is then still starting (importing torch: ``start-up``), or has done one batch
    and is held in its second (``busy``, or ``twice``: a second Ctrl-C follows the first's note).
    The worker's batch in flight is finished and recorded, except after a second Ctrl-C, which
    ends the worker at once. Always: the command exits 130 with two lines on stderr (the note
    and ``attribkit: interrupted``; no traceback, no KeyboardInterrupt from any process), no
    process it started survives, and the same run again computes exactly the missing items."""
    hold, log, out, first = (tmp_path / n for n in ("hold", "stderr.txt", "s", "first"))
    hold.touch()
    cmd = [sys.executable, "-m", "attribkit.cli", "run", SPEC, str(photos), "-m", "saliency",
           "--out", str(out), "--batch-size", "1", "--concurrency", "2", "-q"]
    env = {**os.environ, **env_with_paths(), "ATTRIBKIT_TEST_HOLD": str(hold),
           "ATTRIBKIT_TEST_HOLD_AFTER": "1", "ATTRIBKIT_TEST_COUNTER": str(first)}
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)  # its own process group, as in a shell

    def held() -> dict[int, str]:  # pid -> the stem of the item it waits in
        return {int(p.suffix[1:]): p.read_text() for p in tmp_path.glob("hold.*")
                if p.suffix[1:].isdigit()}

    def ready() -> bool:
        if moment != "start-up":
            return len(held()) == 2
        return (proc.pid in held() and any(_workers(proc.pid).values())
                and len(first.read_text().split()) == 2)  # the worker prepared nothing yet

    try:
        _until(lambda: proc.poll() is not None or ready(), f"the moment {moment!r}")
        assert proc.poll() is None, log.read_text()
        waiting, children = held(), _workers(proc.pid)
        assert proc.pid in waiting and all(children[p] for p in set(waiting) - {proc.pid})
        os.killpg(proc.pid, signal.SIGINT)
        _until(lambda: proc.poll() is not None or "Ctrl-C again" in log.read_text(),
               "the note of the first Ctrl-C")
        if moment == "twice":
            os.killpg(proc.pid, signal.SIGINT)
        elif moment == "busy":
            hold.unlink()  # the worker process finishes its batch in flight
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        hold.unlink(missing_ok=True)
    assert log.read_text().splitlines() == [
        "attribkit: interrupted: storing the 1 batch(es) in flight in worker processes; "
        "Ctrl-C again to stop them at once", "attribkit: interrupted"]
    _until(lambda: not any(_alive(p) for p in children), "the processes to end", 30)

    # stored: what was prepared (the first item of each copy and the items held), less the
    # calling process's held item (interrupted) and, after a second Ctrl-C, the worker's
    prepared = first.read_text().split()
    lost = {waiting[proc.pid]} if moment != "twice" else set(waiting.values())
    stored = set(pq.read_table(out / "items", columns=["item_id"]).column("item_id").to_pylist())
    assert len(prepared) == (3 if moment == "start-up" else 4)
    assert stored == set(prepared) - lost and len(stored) == len(prepared) - len(lost)
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
