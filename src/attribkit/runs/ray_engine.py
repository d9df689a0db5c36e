"""The Ray engine (extra ``distributed``): the only module of attribkit that imports ``ray``.

Ray Data reads the task list; ``map_batches`` runs :class:`_RayWorker` on an actor pool, one
model per actor, *built inside the actor* from the model spec string (a model is never
pickled). Each actor writes the shards of the batches it does, so the driver only collects a
small status table (and the records of the shards written, which the driver, the holder of the
store's lock, puts into the manifest). A dead actor is restarted and its batch retried by Ray
(Ray Data's default for actor pools); within a run, shard names are deterministic and never
rewritten, so a retried batch cannot write an item twice.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from attribkit.runs.sources import Item
from attribkit.runs.work import Task, Worker, balanced_batches, threads_per_worker

__all__ = ["probe", "run_ray", "start"]


class _RayWorker:
    """A callable class for ``map_batches``: builds the model once per actor."""

    def __init__(self, spec: str, methods: Sequence[Mapping[str, Any]], target: Any, out: str,
                 kind: str, env: Mapping[str, str], threads: int, token: str,
                 max_pixels: int, interactions: Mapping[str, Any] | None = None,
                 feature_names: Sequence[str] | None = None,
                 max_new_tokens: int | None = None) -> None:
        os.environ.update(env)
        import torch

        from attribkit.startup import keep_freed_memory

        keep_freed_memory()  # this actor's process is attribkit's: see attribkit.startup
        torch.set_num_threads(threads_per_worker(threads, 1))  # threads: this actor's CPUs
        self.kind = kind
        self.worker = Worker(spec, methods, target, out, token, max_pixels,
                             interactions=interactions, feature_names=feature_names,
                             max_new_tokens=max_new_tokens)

    def __call__(self, batch: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
        tasks = [Task(Item(int(i), str(iid), str(src), pickle.loads(raw)),
                      tuple(str(ms).split("\n")), bool(w))
                 for i, iid, src, raw, ms, w in zip(batch["item"], batch["item_id"],
                                                    batch["source"], batch["raw"],
                                                    batch["methods"], batch["write_item"],
                                                    strict=True)]
        summary, shards = self.worker.process(tasks, self.kind)
        records = [""] * len(summary)  # the shards' records ride on the first row
        if records:
            records[0] = json.dumps(shards)
        return {"item": np.array([s["item"] for s in summary], dtype=np.int64),
                "method": np.array([s["method"] for s in summary], dtype=object),
                "status": np.array([s["status"] for s in summary], dtype=object),
                "shards": np.array(records, dtype=object)}


def start(num_cpus: int | None = None, address: str | None = None, attempts: int = 2) -> None:
    """Start a local Ray instance (or join ``address``) unless Ray is running already.

    Ray gives a starting node 30 s to register; on a loaded machine that can pass, so a failed
    local start is tried again once before the error is raised.
    """
    import ray

    if ray.is_initialized():
        return
    for attempt in range(attempts):
        try:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            return
        except Exception as err:
            ray.shutdown()
            if address or attempt == attempts - 1:
                where = f"join the Ray cluster at {address!r}" if address else "start Ray"
                raise RuntimeError(f"could not {where}: {str(err).splitlines()[0]}") from err


def _describe(spec: str, methods: Sequence[Mapping[str, Any]],
              interactions: Mapping[str, Any] | None, env: Mapping[str, str]
              ) -> dict[str, Any]:
    """In a Ray worker: build the model and describe it (errors returned as one line)."""
    os.environ.update(env)
    from attribkit.runs.checks import MethodError
    from attribkit.runs.probe import describe
    from attribkit.runs.work import one_line
    from attribkit.zoo.specs import build

    try:
        kind, notes = describe(build(spec), methods, interactions)
    except MethodError as err:
        return {"error": str(err), "method_error": True}
    except Exception as err:  # the factory's own error, said in the driver in one line
        return {"error": one_line(err), "method_error": False}
    return {"kind": kind, "notes": notes}


def probe(spec: str, methods: Sequence[Mapping[str, Any]],
          interactions: Mapping[str, Any] | None, *, address: str | None,
          num_cpus: int | None) -> tuple[str, list[str]]:
    """Build the model of ``spec`` once in a Ray task (its process then exits, freeing what the
    model held) and return what :func:`attribkit.runs.probe.describe` says of it: the kind and
    the notes. The driver never builds the model, so a client of a cluster need not hold it.

    Raises
    ------
    MethodError
        When a method's settings cannot work with the model (one line).
    ValueError
        When the model cannot be built (one line: the factory's error).
    """
    import ray

    from attribkit.runs.checks import MethodError

    start(num_cpus, address)
    resources = ray.available_resources() or ray.cluster_resources()  # type: ignore[no-untyped-call]
    gpus = 1 if resources.get("GPU", 0) else 0
    env = {k: v for k, v in os.environ.items() if k.startswith("ATTRIBKIT_")}
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_calls=1)(_describe)
    got = ray.get(task.remote(spec, [dict(m) for m in methods], interactions, env))
    if "error" in got and got["method_error"]:
        raise MethodError(got["error"])
    if "error" in got:
        raise ValueError(f"{spec!r} could not be built in a Ray worker: {got['error']}")
    return str(got["kind"]), [str(n) for n in got["notes"]]


def run_ray(spec: str, methods: Sequence[Mapping[str, Any]], target: Any, out: str,
            tasks: Sequence[Task], *, kind: str, batch_size: int, concurrency: int | None,
            address: str | None, num_cpus: int | None, progress: bool, token: str,
            max_pixels: int, interactions: Mapping[str, Any] | None = None,
            feature_names: Sequence[str] | None = None, max_new_tokens: int | None = None,
            record: Callable[[Sequence[Mapping[str, Any]]], None] | None = None
            ) -> list[dict[str, Any]]:
    """Do ``tasks`` on Ray: a local instance unless ``address`` names a cluster.

    Parameters
    ----------
    concurrency
        Actors (model copies); default one per available CPU (or per GPU when there are GPUs).
    num_cpus
        CPUs of the local Ray instance this call starts (ignored when Ray is running already or
        ``address`` is given).
    token, max_pixels, interactions, feature_names, max_new_tokens
        As for :class:`~attribkit.runs.work.Worker`.
    record
        Receives the records of the shards written, as the batches finish.
    """
    try:
        import ray
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the ray engine needs Ray: pip install 'attribkit[distributed]'"
                          ) from err
    start(num_cpus, address)
    resources = ray.available_resources() or ray.cluster_resources()  # type: ignore[no-untyped-call]
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    actors = concurrency or (gpus if gpus else cpus)
    threads = max(1, cpus // actors)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    ctx.verbose_stats_logs = False
    rows = [{"item": t.item.item, "item_id": t.item.item_id, "source": t.item.source,
             "raw": pickle.dumps(t.item.raw), "methods": "\n".join(t.methods),
             "write_item": t.write_item} for t in tasks]
    # one batch per block, as many blocks per actor, of equal sizes (no actor idle at the end)
    blocks = len(balanced_batches(tasks, batch_size, actors))
    ds = ray.data.from_items(rows, override_num_blocks=max(1, blocks))
    env = {k: v for k, v in os.environ.items() if k.startswith("ATTRIBKIT_")}
    out_ds = ds.map_batches(
        _RayWorker, batch_size=None, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=threads if not gpus else 1, num_gpus=1 if gpus else None,
        fn_constructor_kwargs={"spec": spec, "methods": [dict(m) for m in methods],
                               "target": target, "out": out, "kind": kind, "env": env,
                               "threads": threads, "token": token, "max_pixels": max_pixels,
                               "interactions": interactions,
                               "feature_names": None if feature_names is None
                               else list(feature_names), "max_new_tokens": max_new_tokens})
    summary = []
    for r in out_ds.iter_rows():
        summary.append({"item": int(r["item"]), "method": str(r["method"]),
                        "status": str(r["status"])})
        if record is not None and r.get("shards"):
            record(json.loads(str(r["shards"])))
    return summary
