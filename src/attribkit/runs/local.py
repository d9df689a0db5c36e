"""The local engine (the default): one process, items batched for the model, a progress bar."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attribkit.core.progress import progress_bar
from attribkit.runs.work import Task, Worker

__all__ = ["run_local"]


def run_local(worker: Worker, tasks: Sequence[Task], *, kind: str, batch_size: int,
              progress: bool) -> list[dict[str, Any]]:
    """Do ``tasks`` in batches of ``batch_size`` items; the bar shows items/s and the ETA."""
    summary: list[dict[str, Any]] = []
    with progress_bar(len(tasks), "attribkit run", progress, unit="item") as bar:
        for start in range(0, len(tasks), batch_size):
            chunk = tasks[start:start + batch_size]
            summary.extend(worker.process(chunk, kind))
            bar.update(len(chunk))
    return summary
