"""Worker processes for the local engine: several model copies on one machine, without Ray.

``concurrency=N`` on the local engine starts ``N`` processes (``spawn``), each building the model
once from its spec string with ``CPUs / N`` torch threads (``ATTRIBKIT_THREADS`` overrides).
Each process decodes, explains and writes whole batches (:meth:`Worker.process`); the calling
process hands out the batches, keeps the progress bar and records the shards in the manifest as
the batches finish. On CPUs several single-threaded copies use the cores better than one copy
with several threads (small convolutions parallelise poorly inside one call).

A worker process that dies (killed, out of memory) ends the run with one clear error; the batches
finished before it are in the store, and running the same command again computes the rest.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from attribkit.core.progress import progress_bar
from attribkit.runs.work import Task, Worker

__all__ = ["run_pool", "threads_per_worker"]

_WORKER: Worker | None = None


def threads_per_worker(cpus: int, workers: int) -> int:
    """Torch threads of each of ``workers`` copies: ``ATTRIBKIT_THREADS``, else ``cpus // workers``
    (at least one)."""
    forced = int(os.environ.get("ATTRIBKIT_THREADS", "0") or 0)
    return forced if forced > 0 else max(1, cpus // workers)


def _start(spec: str, methods: Sequence[Mapping[str, Any]], target: Any, out: str, token: str,
           max_pixels: int, interactions: Mapping[str, Any] | None,
           feature_names: Sequence[str] | None, threads: int) -> None:
    """Process initialiser: the threads first, then the model, once per process."""
    import torch

    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = Worker(spec, methods, target, out, token, max_pixels,
                     interactions=interactions, feature_names=feature_names)


def _process(tasks: Sequence[Task], kind: str
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    assert _WORKER is not None, "the worker process was not initialised"
    return _WORKER.process(tasks, kind)


def run_pool(spec: str, methods: Sequence[Mapping[str, Any]], target: Any, out: str,
             batches: Sequence[Sequence[Task]], *, kind: str, workers: int, progress: bool,
             token: str, max_pixels: int, interactions: Mapping[str, Any] | None = None,
             feature_names: Sequence[str] | None = None,
             record: Callable[[Sequence[Mapping[str, Any]]], None] | None = None
             ) -> list[dict[str, Any]]:
    """Do ``batches`` on ``workers`` processes; the status summary of every result row.

    Parameters
    ----------
    spec
        The model's spec string (a zoo name or ``module:callable``), built in each process.
    methods, target, out, token, max_pixels, interactions, feature_names
        As for :class:`~attribkit.runs.work.Worker`.
    batches
        The work, in batches (:func:`~attribkit.runs.work.balanced_batches`).
    kind
        The items' kind, as for :meth:`Worker.load`.
    workers
        Processes (model copies).
    progress
        Show a progress bar (items/s and ETA).
    record
        Receives the records of each batch's shards as soon as they are written.

    Raises
    ------
    RuntimeError
        When a worker process died; what finished before is in the store.
    """
    threads = threads_per_worker(os.cpu_count() or 1, workers)
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch's threads
    summary: list[dict[str, Any]] = []
    with (progress_bar(sum(len(b) for b in batches), "attribkit run", progress,
                       unit="item") as bar,
          ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start,
                              initargs=(spec, [dict(m) for m in methods], target, out, token,
                                        max_pixels, interactions,
                                        None if feature_names is None else list(feature_names),
                                        threads)) as pool):
        pending: dict[Future[Any], int] = {pool.submit(_process, list(b), kind): len(b)
                                           for b in batches}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    part, shards = f.result()
                    if record is not None:
                        record(shards)
                    summary.extend(part)
                    bar.update(pending.pop(f))
        except BrokenProcessPool as err:
            for f in pending:
                f.cancel()
            raise RuntimeError(
                f"a worker process of the local engine died ({err}); the batches finished "
                f"before it are in the store: run the same command again to compute the rest, "
                f"with fewer workers (concurrency) or a smaller batch size if memory ran out"
            ) from err
    return summary
