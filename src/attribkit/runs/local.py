"""The local engine (the default): one process, items batched for the model, a progress bar.

The model is built once. Three stages overlap: while batch ``i`` is explained in the calling
thread, one thread decodes and prepares batch ``i + 1`` and another writes the shards of batch
``i - 1``. Only the calling thread calls the model; shards are written atomically and in order of
the batches, so an interrupted run leaves complete shards of the batches it finished.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from attribkit.core.progress import progress_bar
from attribkit.runs.work import Loaded, Task, Worker

__all__ = ["run_local"]


def run_local(worker: Worker, tasks: Sequence[Task], *, kind: str, batch_size: int,
              progress: bool,
              record: Callable[[Sequence[Mapping[str, Any]]], None] | None = None
              ) -> list[dict[str, Any]]:
    """Do ``tasks`` in batches of ``batch_size`` items; the bar shows items/s and the ETA.
    ``record`` receives the records of each batch's shards as soon as they are written."""
    batches = [list(tasks[s:s + batch_size]) for s in range(0, len(tasks), batch_size)]
    summary: list[dict[str, Any]] = []

    def written_out(future: Future[list[dict[str, Any]]]) -> None:
        shards = future.result()  # a failed write stops the run here, with its error
        if record is not None:
            record(shards)

    with (progress_bar(len(tasks), "attribkit run", progress, unit="item") as bar,
          ThreadPoolExecutor(1, thread_name_prefix="attribkit-load") as loader,
          ThreadPoolExecutor(1, thread_name_prefix="attribkit-write") as writer):
        ahead: Future[Loaded] | None = (loader.submit(worker.load, batches[0], kind)
                                        if batches else None)
        written: Future[list[dict[str, Any]]] | None = None
        for i, chunk in enumerate(batches):
            assert ahead is not None
            loaded = ahead.result()
            ahead = (loader.submit(worker.load, batches[i + 1], kind)
                     if i + 1 < len(batches) else None)
            done = worker.compute(loaded)
            if written is not None:
                written_out(written)
            written = writer.submit(worker.write, done)
            summary.extend(done.summary)
            bar.update(len(chunk))
        if written is not None:
            written_out(written)
    return summary
