"""``attribkit serve``: a local web explorer of a run store (FastAPI, no build step, no network).

:func:`create_app` builds the application for one store; the ``attribkit serve`` command runs it
with uvicorn on 127.0.0.1. See ``docs/serve.md`` for the pages and the security model.
"""

from __future__ import annotations

from attribkit.serve.app import create_app
from attribkit.serve.store import RunStore, StoreError

__all__ = ["RunStore", "StoreError", "create_app"]
