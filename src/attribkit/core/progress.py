"""Progress reporting (tqdm), off unless asked for."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "pt") -> Any:
    """A tqdm bar over ``total`` units, or a silent one when ``enabled`` is false."""
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False,
                dynamic_ncols=True)
