"""Shared helpers of the benchmark scripts: timing and writing a section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from attribkit.core import pages

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    """One line describing the machine and the libraries."""
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores visible, torch "
            f"{torch.__version__} with {torch.get_num_threads()} threads, Python "
            f"{platform.python_version()}")


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paired_times(fn_a: Callable[[], object], fn_b: Callable[[], object], repeats: int = 31,
                 warmup: int = 3) -> tuple[float, float, float]:
    """Median wall times of ``fn_a`` and ``fn_b`` run alternately, and the median of b / a.

    Alternating (a, b, a, b, ...) keeps slow drifts of a shared machine (other processes, clock
    changes) from favouring whichever function happened to be timed second; the median of the
    ratios of neighbouring runs is steadier than the ratio of the medians.
    """
    for _ in range(warmup):
        fn_a()
        fn_b()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, ta), (fn_b, tb)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    ratio = statistics.median(b / a for a, b in zip(ta, tb, strict=True))
    return statistics.median(ta), statistics.median(tb), ratio


def write_section(name: str, body: str, path: Path = DOCS) -> None:
    """Replace (or append) the section ``name`` of ``path`` (docs/benchmarks.md), between markers.

    Text outside the markers (hand-written readings of the numbers) is kept.
    """
    pages.write_section(path, name, body, title="# Benchmarks")


#: ``explain_generation`` settings that compute what Captum's ``LayerIntegratedGradients`` does
#: (a fixed Gauss-Legendre rule; every prompt token interpolated), for comparisons at equal steps.
SAME_AS_CAPTUM = {"rule": "gauss_legendre", "keep_first": False}
