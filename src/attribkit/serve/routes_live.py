"""Live-mode routes: start an explanation of an upload, poll its job, compute interior gradients.

Request bodies are read chunk by chunk and refused (413) as soon as they pass the limit, whatever
``Content-Length`` claims.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from attribkit.serve.explorer import Explorer
from attribkit.serve.live import UploadError

__all__ = ["register"]

METHODS = Query(["integrated_gradients"], max_length=8)
_NAME = re.compile(r"[^\w .,()+-]")


class TooLarge(Exception):
    """The body passed the upload limit."""


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request body, or :class:`TooLarge` once more than ``limit`` bytes arrived."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def register(app: FastAPI, ex: Explorer) -> None:
    """Add the live routes (they answer 409 when the explorer runs without ``--model``)."""

    def no_live() -> JSONResponse:
        return _error(409, "live mode is off; start the explorer with --model MODEL.")

    @app.post("/api/live/jobs")
    async def start(request: Request,
                    input: str = Query(..., pattern="^(image|text|row)$"),
                    method: list[str] = METHODS,
                    steps: int | None = Query(None, ge=1, le=4096),
                    target: int | None = Query(None, ge=0),
                    name: str = Query("upload", max_length=120)) -> Any:
        if ex.runner is None:
            return no_live()
        from attribkit.methods.registry import get

        try:
            methods = [get(m).name for m in method]
        except Exception as err:
            return _error(400, str(err).splitlines()[0])
        try:
            body = await read_bounded(request, ex.max_upload)
        except TooLarge:
            return _error(413, f"the upload is larger than {ex.max_upload // 1024} KiB; send a "
                               "smaller file.")
        runner = ex.runner
        try:
            prepared = runner.prepare(input, body)
        except UploadError as err:
            return _error(400, str(err))
        label = _NAME.sub("_", name)[:120] or "upload"
        job = runner.submit(f"{label} · {', '.join(methods)}",
                            lambda j: runner.explain_upload(j, prepared, methods, steps, target,
                                                            label))
        return JSONResponse(job.public(), status_code=202)

    @app.get("/api/live/jobs/{job_id}")
    def poll(job_id: str) -> Any:
        if ex.runner is None:
            return no_live()
        job = ex.runner.jobs.get(job_id)
        return _error(404, "no such job") if job is None else job.public()

    @app.post("/api/items/{n}/interior")
    def compute_interior(n: int, target: int | None = Query(None, ge=0),
                         alphas: int = Query(24, ge=2, le=64)) -> Any:
        if ex.runner is None:
            return no_live()
        if n not in ex.store.items.index:
            return _error(404, f"no item {n} in this store")
        runner = ex.runner
        job = runner.submit(f"interior gradients of item {n}",
                            lambda j: runner.interior(j, n, target, alphas))
        return JSONResponse(job.public(), status_code=202)
