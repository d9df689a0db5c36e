"""The local engine (the default): one process, items batched for the model, a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attribkit.core.progress import progress_bar
from attribkit.runs.work import Task, Worker

__all__ = ["run_local"]


def run_local(worker: Worker, tasks: Sequence[Task], *, kind: str, batch_size: int,
              progress: bool,
              record: Callable[[Sequence[Mapping[str, Any]]], None] | None = None
              ) -> list[dict[str, Any]]:
    """Do ``tasks`` in batches of ``batch_size`` items; the bar shows items/s and the ETA.
    ``record`` receives the records of each batch's shards as soon as they are written."""
    summary: list[dict[str, Any]] = []
    with progress_bar(len(tasks), "attribkit run", progress, unit="item") as bar:
        for start in range(0, len(tasks), batch_size):
            chunk = tasks[start:start + batch_size]
            rows, shards = worker.process(chunk, kind)
            summary.extend(rows)
            if record is not None:
                record(shards)
            bar.update(len(chunk))
    return summary
