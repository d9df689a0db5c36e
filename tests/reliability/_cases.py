"""The reliability cases: each test here says what was tried, what attribkit does, and the verdict.

``docs/reliability.md`` is generated from these records (``python -m tests.reliability.page`` or
the page test), so the page lists exactly the cases that are tested.

Use::

    @case("cli", "a .pt2 archive whose weight is marked use_pickle", "refused with one line, "
          "nothing unpickled; --trust-model-file loads it", verdict="fixed")
    def test_pt2_pickle_refused(tmp_path): ...

Stack the decorator for a test that covers several cases (a parametrised test, say). ``verdict``
is ``"fixed"`` (it went wrong before and a fix landed with the test) or ``"held"`` (it was tried
and was already right).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

AREAS = ("security", "threads", "model state", "silent errors", "bounds", "errors", "cli",
         "report", "runs", "serve")
VERDICTS = ("fixed", "held")


def case(area: str, tried: str, does: str, verdict: str = "fixed") -> Callable[[F], F]:
    """Record one reliability case on the decorated test."""
    if area not in AREAS:
        raise ValueError(f"unknown area {area!r}; one of {AREAS}")
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; one of {VERDICTS}")

    def mark(fn: F) -> F:
        records = list(getattr(fn, "__reliability__", []))
        records.insert(0, {"area": area, "tried": tried, "does": does, "verdict": verdict})
        fn.__reliability__ = records  # type: ignore[attr-defined]
        return fn

    return mark
