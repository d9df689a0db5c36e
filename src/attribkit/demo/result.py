"""What a demo task returns, how long its stages took, and the summary it prints."""

from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemoResult", "Stages", "log", "print_summary"]


@dataclass
class DemoResult:
    """What the demo produced."""

    report: pathlib.Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: str = ""


class Stages:
    """Wall-clock and CPU seconds of each demo stage."""

    def __init__(self) -> None:
        self.times: dict[str, tuple[float, float]] = {}
        self._name = ""
        self._t = (0.0, 0.0)

    def start(self, name: str) -> None:
        """Stop the running stage (if any) and start timing ``name``."""
        self.stop()
        self._name, self._t = name, (time.perf_counter(), time.process_time())

    def stop(self) -> None:
        """Record the running stage's seconds."""
        if self._name:
            self.times[self._name] = (time.perf_counter() - self._t[0],
                                      time.process_time() - self._t[1])
            self._name = ""

    def text(self) -> str:
        """The recorded stages as ``"name 3 s (cpu 5 s), ..."``."""
        return ", ".join(f"{k} {w:.0f} s (cpu {c:.0f} s)" for k, (w, c) in self.times.items())


def log(msg: str, quiet: bool) -> None:
    """Print a step message unless ``quiet``."""
    if not quiet:
        print(msg, flush=True)


def print_summary(result: DemoResult) -> None:
    """Print the summary rows, the notes, the stage timings and where the report went."""
    if result.rows:
        keys = list(result.rows[0])
        print("  ".join(f"{k:>12.12s}" for k in keys))
        for r in result.rows:
            print("  ".join(f"{v:>12.4g}" if isinstance(v, float) else f"{v!s:>12.12s}"
                            for v in r.values()))
    for note in result.notes:
        print(f"note: {note}")
    if result.timings:
        print(f"stages: {result.timings}")
    print(f"wrote {result.report} in {result.seconds:.1f} s (cpu {time.process_time():.0f} s)")
