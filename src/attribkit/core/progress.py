"""Progress reporting (tqdm), off unless asked for."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


class _Silent:
    """What a disabled bar needs to be: a context manager with ``update``, at no cost.

    (A disabled tqdm still costs about 0.1 ms to build, which shows on millisecond problems.)
    """

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def update(self, n: float = 1) -> None:
        """Ignore progress."""


_SILENT = _Silent()


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "pt") -> Any:
    """A tqdm bar over ``total`` units, or a silent one when ``enabled`` is false."""
    if not enabled:
        return _SILENT
    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)
