"""What the explorer's routes share: the stores, their item tables, the live runner and the limits.

:func:`attribkit.serve.app.create_app` builds one :class:`Explorer` and hands it to the route
modules (``routes_data.register``, ``routes_live.register``, ``routes_compare.register``), which
import it from here, below the app. The first store is the one the pages show; the others
(``attribkit serve runA runB``) are compared with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from attribkit.serve.compare import Comparisons
from attribkit.serve.live import JobRunner
from attribkit.serve.store import RunStore
from attribkit.serve.table import ItemTable

__all__ = ["Explorer"]


class Explorer:
    """What the routes share: the stores, their tables, the joined comparisons, the live
    runner and the limits."""

    def __init__(self, store: RunStore, runner: JobRunner | None, max_upload: int,
                 others: Sequence[RunStore] = ()) -> None:
        self.store = store
        self.table = ItemTable(store)
        self.runner = runner
        self.max_upload = max_upload
        self.stores = [store, *others]
        self.tables = [self.table, *(ItemTable(s) for s in others)]
        self.comparisons = Comparisons()

    def names(self) -> list[str]:
        """Each store's name (its folder), made unique by its position when two share one."""
        raw = [s.root.name for s in self.stores]
        return [n if raw.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(raw)]
