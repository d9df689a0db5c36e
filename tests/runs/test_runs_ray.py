"""The Ray engine on a local Ray instance (2 CPUs, started once for this module): the same store
as the local engine and as direct explain calls; a worker that dies on one item is replaced and
its batch retried while the store still holds every item exactly once; the driver's scheduler
(one batch per actor at a time, dead actors, a model that cannot be built)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.runs.conftest import env_with_paths

import attribkit.runs as runs

ray = pytest.importorskip("ray")

SPEC = "tests.runs._models:tiny_cnn"
METHODS = [("ig", {"steps": 8}), "saliency"]


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_with_paths()["PYTHONPATH"]  # the workers import the test model
    from attribkit.runs.ray_engine import start

    if ray.is_initialized():  # started by an earlier test of this process, without the path
        ray.shutdown()
    start(num_cpus=2, attempts=3)
    try:
        yield
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture
def ray_store(ray_instance: None, photos: pathlib.Path,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[pathlib.Path, str]]:
    """One Ray run with 2 workers; the worker that prepares ``coffee`` first dies (os._exit)."""
    tmp = tmp_path_factory.mktemp("ray")
    mark = tmp / "died.txt"
    env = {"ATTRIBKIT_TEST_DIE_ON": "coffee", "ATTRIBKIT_TEST_DIE_MARK": str(mark),
           "ATTRIBKIT_TEST_COUNTER": str(tmp / "count.txt")}
    os.environ.update(env)
    try:
        res = runs.run(SPEC, photos, METHODS, out=tmp / "store", engine="ray", concurrency=2,
                       batch_size=3, progress=False)
    finally:
        for k in env:
            os.environ.pop(k, None)
    assert (res.items, res.computed, res.failed) == (8, 8, 0)
    yield tmp / "store", mark.read_text() if mark.exists() else ""


def test_ray_engine(ray_store: tuple[pathlib.Path, str], photos: pathlib.Path,
                    tmp_path: pathlib.Path) -> None:
    """One test, so that pytest-xdist keeps the Ray runs of this module in one worker."""
    _check_equals_local_store_and_direct_calls(ray_store, photos, tmp_path)
    _check_dead_worker_retried_and_items_stored_once(ray_store)
    _check_language_model_is_a_generation_run(tmp_path / "gen")
    _check_scheduler(tmp_path / "sched")


def _check_equals_local_store_and_direct_calls(
        ray_store: tuple[pathlib.Path, str], photos: pathlib.Path,
        tmp_path: pathlib.Path) -> None:
    from tests.runs.test_runs_local import _direct

    runs.run(SPEC, photos, METHODS, out=tmp_path / "local", batch_size=3, progress=False)
    local, remote = runs.open(tmp_path / "local"), runs.open(ray_store[0])
    a, b = local.results, remote.results
    cols = ["item", "item_id", "method", "params", "target", "status"]
    assert a[cols].equals(b[cols])
    np.testing.assert_allclose(a["output"], b["output"], rtol=1e-6)
    for row in b.itertuples():
        np.testing.assert_allclose(remote.values(row.item, row.method),
                                   local.values(row.item, row.method), rtol=1e-5, atol=1e-8)
    for item in (0, 5):
        row = b[(b["item"] == item) & (b["method"] == "integrated_gradients")].iloc[0]
        direct = _direct(photos / f"{row['item_id']}.png", "ig", steps=8)
        want = direct.values[0].numpy()
        np.testing.assert_allclose(remote.values(item, "ig"), want, rtol=1e-4,
                                   atol=1e-6 * np.abs(want).max())
    ds = ray.data.read_parquet(str(ray_store[0] / "results")).select_columns(["item", "method"])
    assert ds.count() == 16


def _check_dead_worker_retried_and_items_stored_once(
        ray_store: tuple[pathlib.Path, str]) -> None:
    out, died_pid = ray_store
    assert died_pid and int(died_pid) != os.getpid()  # a worker process did die
    count = (out.parent / "count.txt").read_text().split()
    assert count.count("coffee") == 2  # prepared again by the restarted worker
    items = pq.read_table(out / "items").column("item").to_pylist()
    assert sorted(items) == list(range(8))
    res = pq.read_table(out / "results", columns=["item", "method", "status"]).to_pandas()
    assert len(res) == 16 and not res.duplicated(["item", "method"]).any()
    assert set(res["status"]) == {"ok"}
    assert not list(out.rglob(".tmp-*"))
    # the driver recorded every shard the actors wrote, with its hash
    import hashlib
    import json

    shards = json.loads((out / "manifest.json").read_text())["shards"]
    on_disk = {f"{p.parent.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
               for p in out.glob("*/part-*.parquet")}
    assert {k: v["sha256"] for k, v in shards.items()} == on_disk


def _check_language_model_is_a_generation_run(tmp: pathlib.Path) -> None:
    """A module:callable language model on Ray: the manifest says ``generation`` (as the local
    engine's does), the answers have max_new_tokens tokens, the report shows them."""
    from attribkit.cli import main
    from attribkit.runs.store import CONFIG_KEYS

    spec = "tests.runs._models:tiny_generation"
    tmp.mkdir()
    prompts = tmp / "prompts.txt"
    prompts.write_text("the cat sat on the\nparis is the capital of\n")
    for engine in ("ray", "local"):
        runs.run(spec, prompts, ["saliency"], out=tmp / engine, engine=engine, concurrency=1,
                 progress=False, max_new_tokens=3)
    remote, local = runs.open(tmp / "ray"), runs.open(tmp / "local")
    assert remote.manifest["kind"] == "generation" and remote.manifest["max_new_tokens"] == 3
    assert {k: remote.manifest.get(k) for k in CONFIG_KEYS} == {
        k: local.manifest.get(k) for k in CONFIG_KEYS}
    assert set(remote.items["kind"]) == {"generation"}
    for item in (0, 1):
        np.testing.assert_allclose(remote.values(item, "saliency"),
                                   local.values(item, "saliency"), rtol=1e-9)
        assert remote.values(item, "saliency").shape[0] == 3
    assert main(["report", str(tmp / "ray")]) == 0
    page = (tmp / "ray" / "report.html").read_text()
    assert "Answers, token by token" in page and page.count('alt="saliency: ') == 2


def _check_scheduler(tmp: pathlib.Path) -> None:
    """The driver hands out batches itself: one at a time per actor (a second actor is not left
    idle while the first queues two batches), a batch that kills its actor every time ends the
    run in one line after the others finished, a model that cannot be built says why, and no
    actor outlives the run."""
    import time

    from tests.runs._models import ToyRayWorker

    from attribkit.runs.ray_engine import TRIES, _schedule
    from attribkit.runs.sources import Item
    from attribkit.runs.work import Task

    tmp.mkdir()
    toy = ray.remote(ToyRayWorker).options(num_cpus=1, max_restarts=0, max_task_retries=0)

    def batches(*names: str) -> list[list[Task]]:
        return [[Task(Item(i, n, n, None), ("saliency",), True)] for i, n in enumerate(names)]

    def run(log: pathlib.Path, names: list[str], **kw: object) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        _schedule(lambda: toy.remote(str(log), **kw), batches(*names), 2, "image",
                  lambda part, shards, n: rows.extend(part))
        return rows

    # each of 2 batches waits until two processes have started one: done only if both actors
    # got one (an actor given both would wait 60 s and then do them one after the other)
    log = tmp / "two.txt"
    t0 = time.perf_counter()
    rows = run(log, ["a", "b"], barrier=2)
    assert time.perf_counter() - t0 < 50
    assert sorted(r["item"] for r in rows) == [0, 1]
    assert len({r["pid"] for r in rows}) == 2
    # a batch that ends its actor every time: the others are done, then one line
    log = tmp / "die.txt"
    with pytest.raises(RuntimeError, match=f"from 'bad'.* ended its Ray worker {TRIES} times"):
        run(log, ["a", "bad", "b", "c"], die_on="bad")
    assert log.read_text().count("end") == 3
    with pytest.raises(RuntimeError, match="could not build the model: ValueError: no such"):
        run(tmp / "broken.txt", ["a"], broken=True)
    # no actor process of these runs is left
    pids = {int(ln.split()[0]) for f in (tmp / "two.txt", tmp / "die.txt")
            for ln in f.read_text().splitlines()}
    for _ in range(100):
        alive = [p for p in pids if _alive(p)]
        if not alive:
            break
        time.sleep(0.1)
    assert not alive


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
