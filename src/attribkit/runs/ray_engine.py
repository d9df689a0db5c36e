"""The Ray engine (extra ``distributed``): the only module of attribkit that imports ``ray``.

The run starts one Ray actor per model copy; each builds the model *inside the actor* from the
model spec string (a model is never pickled) and, once built, takes a batch of the task list,
then the next when it finishes (the driver hands them out: no actor queues a second batch while
another is idle). Each actor decodes, explains and writes the shards of its batches, so the
driver only collects a small status table (and the records of the shards written, which the
driver, the holder of the store's lock, puts into the manifest). A dead actor is replaced and
its batch given to the first actor free; within a run, shard names are deterministic and never
rewritten, so a retried batch cannot write an item twice.
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attribkit.core.progress import progress_bar
from attribkit.runs.work import Task, Worker, balanced_batches, one_line, threads_per_worker

__all__ = ["probe", "run_ray", "start"]

TRIES = 3  # deaths of a batch's actor that end the run


class _RayWorker:
    """A Ray actor's state: the model, built once per actor from its spec string."""

    def __init__(self, spec: str, methods: Sequence[Mapping[str, Any]], target: Any, out: str,
                 env: Mapping[str, str], threads: int, token: str, max_pixels: int,
                 interactions: Mapping[str, Any] | None = None,
                 feature_names: Sequence[str] | None = None,
                 max_new_tokens: int | None = None) -> None:
        os.environ.update(env)
        import torch

        from attribkit.startup import keep_freed_memory

        keep_freed_memory()  # this actor's process is attribkit's: see attribkit.startup
        torch.set_num_threads(threads_per_worker(threads, 1))  # threads: this actor's CPUs
        self.worker = Worker(spec, methods, target, out, token, max_pixels,
                             interactions=interactions, feature_names=feature_names,
                             max_new_tokens=max_new_tokens)

    def ready(self) -> bool:
        """Answered once the model is built: the actor can take a batch."""
        return True

    def process(self, tasks: Sequence[Task], kind: str
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Decode, explain and write one batch: its status summary and its shards' records."""
        return self.worker.process(tasks, kind)


def _attribkit_env() -> dict[str, str]:
    """The ``ATTRIBKIT_*`` environment variables, passed on to Ray's worker processes."""
    return {k: v for k, v in os.environ.items() if k.startswith("ATTRIBKIT_")}


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
    env = _attribkit_env()
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
    env = _attribkit_env()
    cls = ray.remote(_RayWorker).options(  # type: ignore[attr-defined]
        num_cpus=threads if not gpus else 1, num_gpus=1 if gpus else 0,
        max_restarts=0, max_task_retries=0)
    kwargs = {"spec": spec, "methods": [dict(m) for m in methods], "target": target,
              "out": out, "env": env, "threads": threads, "token": token,
              "max_pixels": max_pixels, "interactions": interactions,
              "feature_names": None if feature_names is None else list(feature_names),
              "max_new_tokens": max_new_tokens}
    batches = balanced_batches(tasks, batch_size, actors)
    summary: list[dict[str, Any]] = []

    def finish(part: list[dict[str, Any]], shards: list[dict[str, Any]], n: int) -> None:
        if record is not None:
            record(shards)
        summary.extend(part)
        bar.update(n)

    with progress_bar(len(tasks), "attribkit run", progress, unit="item") as bar:
        _schedule(lambda: cls.remote(**kwargs), batches, actors, kind, finish)
    return summary


def _schedule(make: Callable[[], Any], batches: Sequence[Sequence[Task]], actors: int,
              kind: str, finish: Callable[[list[dict[str, Any]], list[dict[str, Any]], int],
                                          None]) -> None:
    """Run ``batches`` on ``actors`` actors made by ``make``, one batch per actor at a time.

    An actor gets a batch once its model is built (the first ready takes the first batch), and
    its next one when it finishes. An actor that dies (its process killed, its node lost) is
    replaced by a new one; its batch goes back to the front of the queue for the first actor
    free. A batch whose actor died :data:`TRIES` times ends the run with one line. Every actor
    of the run is ended when it returns or raises (Ctrl-C included).
    """
    import ray
    from ray.exceptions import RayActorError

    queue = collections.deque(enumerate(batches))
    deaths = collections.Counter[int]()  # per batch: deaths of the actors doing it
    build_deaths = 0  # actors whose process died while building the model
    starting: dict[Any, Any] = {}  # ready() ref -> actor being built
    working: dict[Any, tuple[Any, int, Sequence[Task]]] = {}  # process() ref -> its batch
    made: list[Any] = []

    def hire() -> None:
        actor = make()
        made.append(actor)
        starting[actor.ready.remote()] = actor

    try:
        for _ in range(min(actors, len(batches))):
            hire()
        while queue or working:
            done, _ = ray.wait([*starting, *working], num_returns=1)
            ref = done[0]
            if ref in starting:
                actor = starting.pop(ref)
                try:
                    ray.get(ref)
                except RayActorError as err:
                    if err.actor_init_failed:  # the model's own error: its last line says it
                        lines = [ln for ln in str(err).splitlines() if ln.strip()]
                        raise RuntimeError(f"a Ray worker could not build the model: "
                                           f"{lines[-1].strip()}") from None
                    build_deaths += 1  # its process died while building: another one
                    if build_deaths >= TRIES:
                        raise RuntimeError(f"Ray workers died {TRIES} times while building the "
                                           f"model ({one_line(err)})") from None
                    hire()
                    continue
            else:
                actor, index, batch = working.pop(ref)
                try:
                    part, shards = ray.get(ref)
                except RayActorError as err:
                    deaths[index] += 1
                    if deaths[index] >= TRIES:
                        raise RuntimeError(
                            f"a batch of {len(batch)} item(s) (from "
                            f"{batch[0].item.item_id!r}) ended its Ray worker {TRIES} times; "
                            f"what finished is in the store ({one_line(err)})") from None
                    queue.appendleft((index, batch))
                    hire()
                    continue
                finish(part, shards, len(batch))
            if queue:
                index, batch = queue.popleft()
                working[actor.process.remote(batch, kind)] = (actor, index, batch)
            else:
                ray.kill(actor)
    finally:
        for actor in made:
            with contextlib.suppress(Exception):  # ended already
                ray.kill(actor)
