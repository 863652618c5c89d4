"""The API app: the async routes plus health, readiness and metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from fastapi import FastAPI
from starlette.responses import JSONResponse, Response

import asyncendpoints
from api.metrics import Metrics, MetricsMiddleware
from asyncendpoints import AsyncEndpoints
from asyncendpoints.errors import StoreUnavailableError
from asyncendpoints.http import add_routes
from asyncendpoints.http.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    add_problem_handlers,
    problem_responses,
)

log = logging.getLogger("asyncendpoints.api")

Embedded = Callable[[AsyncEndpoints], contextlib.AbstractAsyncContextManager[None]]
"""Something run alongside the API for as long as it serves (``dev``: a worker)."""

DESCRIPTION = """\
Long requests as jobs: each submit route stores a job and answers `202 Accepted` with
`Location: /jobs/{id}`; poll that URL (`?wait=N` long-polls) for the status and result.
Errors are `application/problem+json` (RFC 9457).
"""


async def _open_store(ae: AsyncEndpoints) -> None:
    try:
        await ae.startup()
    except StoreUnavailableError as exc:
        log.warning("the job store is unreachable; serving anyway, /readyz answers 503: %s", exc)


def create_app(ae: AsyncEndpoints, *, embedded: Sequence[Embedded] = ()) -> FastAPI:
    """The FastAPI app of ``ae``: its routes, ``/healthz``, ``/readyz``, ``/metrics``.

    On startup it opens the store (a store that is down only makes ``/readyz`` fail),
    then enters each ``embedded(ae)`` context; on shutdown it leaves them in reverse
    order and closes the store.
    """
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await _open_store(ae)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for factory in embedded:
                    await stack.enter_async_context(factory(ae))
                yield
        finally:
            await ae.shutdown()

    app = FastAPI(
        title=ae.title,
        version=asyncendpoints.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.metrics = metrics
    add_routes(app.router, ae, observer=metrics)
    # The docs routes, added after the async routes: a submission is matched first.
    app.openapi_url, app.docs_url, app.redoc_url = "/openapi.json", "/docs", "/redoc"
    app.setup()
    add_problem_handlers(app, everything=True)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="The job store answers",
        responses=problem_responses(503),
    )
    async def readyz() -> Response:
        try:
            await ae.startup()
            await ae.store.ping()
        except Exception as exc:
            log.warning("readiness: the job store does not answer: %s", exc)
            return Problem(
                503,
                "store-unavailable",
                "The job store does not answer.",
                headers={"Retry-After": "2"},
            ).response("/readyz")
        return JSONResponse({"status": "ready"})

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    return app


__all__ = ["PROBLEM_MEDIA_TYPE", "Embedded", "create_app"]
