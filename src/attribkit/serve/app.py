"""The explorer's web application: pages, static files and the security around them.

Security model (see ``docs/serve.md``):

* only the store given at start-up is read, through :class:`~attribkit.serve.store.RunStore`;
  routes take item numbers and method names checked against the store, never paths, and the
  static files are a fixed list read from the package at start-up;
* every response carries a Content-Security-Policy that allows scripts, styles and images from
  the app itself only (no inline script, no ``eval``, no other origin), ``nosniff`` and
  ``no-referrer``; pages build their DOM with ``textContent``, never with HTML from data;
* requests whose ``Host`` is not the address served are refused (DNS rebinding), and requests
  that change the store need the ``X-Attribkit`` header, which a page of another origin cannot
  send without a CORS preflight the app never grants;
* uploads are read up to a size limit and images are decoded with Pillow's bomb check as an error.
"""

from __future__ import annotations

import importlib.resources
import pathlib
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attribkit.serve import generation, routes_compare, routes_data, routes_live
from attribkit.serve.explorer import Explorer
from attribkit.serve.live import JobRunner, LiveModel
from attribkit.serve.store import RunStore

__all__ = ["CSP", "Explorer", "create_app"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}


SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cross-origin-resource-policy", b"same-origin")]


class Guard:
    """ASGI middleware: refuse unknown ``Host`` headers and unmarked writes; add the security
    headers to every response (plain ASGI: cheaper than Starlette's ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGIApp, hosts: set[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message,
                           "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1").lower()
        name = host.split("]")[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
        refusal = None
        if name not in self.hosts and "*" not in self.hosts:
            refusal = "unknown Host header; open the explorer at the address it printed."
        elif scope["method"] not in ("GET", "HEAD") and headers.get(b"x-attribkit") != b"1":
            refusal = "requests that change the store need the X-Attribkit: 1 header."
        if refusal is not None:
            await JSONResponse({"error": refusal}, status_code=403)(scope, receive, send_secure)
            return
        await self.app(scope, receive, send_secure)


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every file of ``serve/static`` (read once): name -> (bytes, content type)."""
    out: dict[str, tuple[bytes, str]] = {}
    root = importlib.resources.files("attribkit.serve") / "static"
    for entry in root.iterdir():
        suffix = pathlib.PurePosixPath(entry.name).suffix
        if entry.is_file() and suffix in _TYPES:
            out[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return out


def create_app(store: str | pathlib.Path | RunStore, *, model: LiveModel | None = None,
               hosts: Sequence[str] = ("127.0.0.1", "localhost"),
               max_upload: int = 8 * 1024 * 1024,
               max_pixels: int | None = None,
               others: Sequence[str | pathlib.Path | RunStore] = ()) -> FastAPI:
    """The explorer for one run store, compared with ``others`` if given.

    Parameters
    ----------
    store : path or RunStore
        The store's folder (``runs/NAME``). A missing folder or manifest, or a store of a newer
        format version, raises :class:`~attribkit.serve.store.StoreError` with the fix.
    model : LiveModel, optional
        A loaded model (``attribkit.cli.models.load_model``): enables live mode.
    hosts : sequence of str
        Accepted ``Host`` header names (the served address and ``localhost``; ``"*"``: any,
        which turns the DNS-rebinding check off).
    max_upload : int, default 8 MiB
        The largest request body accepted by the live endpoints, in bytes.
    max_pixels : int, optional
        The largest uploaded image in pixels (default: Pillow's ``Image.MAX_IMAGE_PIXELS``).
    others : sequence of path or RunStore, optional
        More stores to compare with ``store`` (``attribkit serve runA runB``): the compare
        page matches their items by ``item_id``.

    Returns
    -------
    fastapi.FastAPI
        The application (serve it with uvicorn).
    """
    st = store if isinstance(store, RunStore) else RunStore(store)
    limit = int(max_pixels or Image.MAX_IMAGE_PIXELS or 89_478_485)
    runner = JobRunner(st, model, limit) if model is not None else None
    more = [o if isinstance(o, RunStore) else RunStore(o) for o in others]
    ex = Explorer(st, runner, max_upload, more)
    app = FastAPI(title="attribkit explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.explorer = ex
    static = _static_files()
    allowed = {h.lower() for h in hosts}

    app.add_middleware(Guard, hosts=allowed)

    def page(name: str) -> Response:
        body, ctype = static[name]
        return Response(body, media_type=ctype, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return page("index.html")

    @app.get("/item/{n}", include_in_schema=False)
    async def item_page(n: int) -> Response:
        return page("item.html")

    @app.get("/compare", include_in_schema=False)
    async def compare_page() -> Response:
        return page("compare.html")

    @app.get("/slices", include_in_schema=False)
    async def slices_page() -> Response:
        return page("slices.html")

    @app.get("/live", include_in_schema=False)
    async def live_page() -> Response:
        return page("live.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in static:  # a fixed list: no path ever reaches the file system
            return JSONResponse({"error": "no such file"}, status_code=404)
        body, ctype = static[name]
        return Response(body, media_type=ctype, headers={"Cache-Control": "max-age=300"})

    routes_data.register(app, ex)
    routes_live.register(app, ex)
    routes_compare.register(app, ex)
    generation.register(app, ex)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Any) -> Response:
        return JSONResponse({"error": "not found"}, status_code=404)

    return app
