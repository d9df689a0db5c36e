"""What the explorer's routes share: the store, its item table, the live runner and the limits.

:func:`attribkit.serve.app.create_app` builds one :class:`Explorer` and hands it to the route
modules (``routes_data.register``, ``routes_live.register``), which import it from here, below
the app.
"""

from __future__ import annotations

from attribkit.serve.live import JobRunner
from attribkit.serve.store import RunStore
from attribkit.serve.table import ItemTable

__all__ = ["Explorer"]


class Explorer:
    """What the routes share: the store, its table, the live runner and the limits."""

    def __init__(self, store: RunStore, runner: JobRunner | None, max_upload: int) -> None:
        self.store = store
        self.table = ItemTable(store)
        self.runner = runner
        self.max_upload = max_upload
