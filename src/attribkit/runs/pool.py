"""Worker processes for the local engine: several model copies on one machine, without Ray.

``concurrency=N`` on the local engine works with ``N`` copies of the model: the calling process
(whose model is built already) and ``N - 1`` processes (``spawn``), each building the model once
from its spec string. Every copy runs ``CPUs / N`` torch threads (``ATTRIBKIT_THREADS``
overrides) and takes the next batch when it finishes one, so a slower copy takes fewer; each
decodes, explains and writes whole batches (:meth:`Worker.process`), and the calling process
records their shards in the manifest as they finish. On CPUs several single-threaded copies use
the cores better than one copy with several threads (small convolutions parallelise poorly
inside one call).

A worker process that dies (killed, out of memory) ends the run with one clear error once the
other copies have finished their batches; everything finished is in the store, and running the
same command again computes the rest.

Ctrl-C (SIGINT, in a terminal sent to the worker processes too) is handled by the calling
process alone: the worker processes block SIGINT from their start (they inherit the feeding
thread's signal mask) and ignore it once started, so none prints a traceback. The first Ctrl-C
stops the calling process's batch and the handing out of batches; the batches in flight in the
worker processes are finished and recorded (a note says how many), then the run raises
KeyboardInterrupt (the command says ``attribkit: interrupted``, exit code 130). A second Ctrl-C
ends the worker processes at once, their batches in flight lost. Either way no worker process
is left running, everything recorded stays in the store, and running the same command again
computes exactly the rest.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from attribkit.core.progress import progress_bar
from attribkit.core.threads import torch_threads
from attribkit.runs.work import Task, Worker, threads_per_worker

__all__ = ["run_pool"]

_WORKER: Worker | None = None


def _start(spec: str, methods: Sequence[Mapping[str, Any]], target: Any, out: str, token: str,
           max_pixels: int, interactions: Mapping[str, Any] | None,
           feature_names: Sequence[str] | None, max_new_tokens: int | None,
           threads: int) -> None:
    """Process initialiser: the threads first, then the model, once per process."""
    import torch

    from attribkit.startup import keep_freed_memory

    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the calling process's to handle
    keep_freed_memory()  # this process is attribkit's: see attribkit.startup
    torch.set_num_threads(threads)
    _WORKER = Worker(spec, methods, target, out, token, max_pixels,
                     interactions=interactions, feature_names=feature_names,
                     max_new_tokens=max_new_tokens)


def _process(tasks: Sequence[Task], kind: str
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    assert _WORKER is not None, "the worker process was not initialised"
    return _WORKER.process(tasks, kind)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """Terminate the pool's processes now (a second Ctrl-C); the pool then reports itself broken,
    which ends the futures of their batches."""
    procs = getattr(pool, "_processes", None) or {}  # CPython's pid -> Process
    for proc in list(procs.values()):
        proc.terminate()


def run_pool(here: Worker, spec: str, batches: Sequence[Sequence[Task]], *, kind: str,
             workers: int, progress: bool,
             record: Callable[[Sequence[Mapping[str, Any]]], None] | None = None,
             note: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Do ``batches`` with ``workers`` copies of the model; the status summary of every row.

    Parameters
    ----------
    here
        The calling process's worker (its model built); the worker processes are made like it.
    spec
        The model's spec string (a zoo name or ``module:callable``), built in each process.
    batches
        The work, in batches (:func:`~attribkit.runs.work.balanced_batches`).
    kind
        The items' kind, as for :meth:`Worker.load`.
    workers
        Copies of the model at work: the calling process and ``workers - 1`` processes.
    progress
        Show a progress bar (items/s and ETA).
    record
        Receives the records of each batch's shards as soon as they are written.
    note
        Receives one line when a Ctrl-C waits for the worker processes' batches in flight.

    Raises
    ------
    RuntimeError
        When a worker process died; what finished is in the store.
    KeyboardInterrupt
        On Ctrl-C, once the worker processes have stopped (see the module's docstring).
    """
    threads = threads_per_worker(os.cpu_count() or 1, workers)
    todo = iter(batches)
    lock = threading.Lock()
    summary: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    pending: dict[Future[Any], int] = {}  # the worker processes' batches in flight

    def take() -> list[Task] | None:
        with lock:  # after an error of the calling process or Ctrl-C, nothing more
            if failures and not isinstance(failures[0], BrokenProcessPool):
                return None
            b = next(todo, None)
            return None if b is None else list(b)

    def finish(part: list[dict[str, Any]], shards: list[dict[str, Any]], n: int) -> None:
        with lock:
            if record is not None:
                record(shards)
            summary.extend(part)
            bar.update(n)

    def feed(pool: ProcessPoolExecutor) -> None:
        """Keep every worker process busy with one batch until none is left."""
        if hasattr(signal, "pthread_sigmask"):  # inherited by the processes started from here
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for _ in range(workers - 1):
                if (b := take()) is not None:
                    pending[pool.submit(_process, b, kind)] = len(b)
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    part, shards = f.result()
                    finish(part, shards, pending.pop(f))
                    if (b := take()) is not None:
                        pending[pool.submit(_process, b, kind)] = len(b)
        except BaseException as err:  # the calling process finishes its share, then raises
            with lock:
                failures.append(err)

    def settle(pool: ProcessPoolExecutor) -> None:
        """Wait for the feeder, that is for the worker processes' batches in flight. A Ctrl-C
        while waiting stops the handing out of batches; one when the run is stopping already
        (an error, an earlier Ctrl-C) ends the worker processes."""
        told = False
        while True:
            stopping = False
            try:
                with lock:
                    stopping = bool(failures) and not isinstance(failures[0], BrokenProcessPool)
                    interrupted = stopping and isinstance(failures[0], KeyboardInterrupt)
                    busy = len(pending) if interrupted else 0
                if busy and not told and note is not None:
                    told = True
                    aside = getattr(bar, "external_write_mode", None)  # tqdm: off the bar
                    with aside(file=sys.stderr) if aside else contextlib.nullcontext():
                        note(f"interrupted: storing the {busy} batch(es) in flight in worker "
                             f"processes; Ctrl-C again to stop them at once")
                feeder.join()
                return
            except KeyboardInterrupt as err:
                if stopping:
                    _end_workers(pool)
                else:
                    with lock:
                        failures.insert(0, err)

    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch's threads
    init = (spec, here.entries, here.manifest_target, here.out,
            here.token, here.max_pixels, here.interactions, here.feature_names,
            here.max_new_tokens, threads)
    with (progress_bar(sum(len(b) for b in batches), "attribkit run", progress,
                       unit="item") as bar,
          ProcessPoolExecutor(workers - 1, mp_context=ctx, initializer=_start,
                              initargs=init) as pool):
        feeder = threading.Thread(target=feed, args=(pool,), name="attribkit-feed", daemon=True)
        feeder.start()
        try:
            with torch_threads(threads):
                while (b := take()) is not None:
                    part, shards = here.process(b, kind)
                    finish(part, shards, len(b))
        except BaseException as own:
            with lock:
                failures.insert(0, own)
            raise
        finally:
            settle(pool)
    if failures:
        first = failures[0]
        if isinstance(first, BrokenProcessPool):
            raise RuntimeError(
                f"a worker process of the local engine died ({first}); the batches finished "
                f"are in the store: run the same command again to compute the rest, with fewer "
                f"workers (concurrency) or a smaller batch size if memory ran out") from first
        raise first
    return summary
