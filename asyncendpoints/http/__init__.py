"""The HTTP side of AsyncEndpoints: submit routes, job routes, problems, auth.

Served by ``asyncendpoints api``, or mounted into a FastAPI app of your own, where your
middleware and dependencies apply to the async routes too:

.. code-block:: python

    api = FastAPI(lifespan=my_lifespan)
    install(app, api, prefix="/async", dependencies=[Depends(verify_user)])
    # or, without the store's lifespan and the domain error handlers:
    api.include_router(build_router(app), prefix="/async")

The contract (``/docs`` shows it):

* one submit route per endpoint, with its method and path: the body is validated (422
  with the field errors), limited to ``max_body_bytes`` (413) and must be JSON (415);
  a job is stored and ``202 Accepted`` answers with ``Location: /jobs/{id}`` and the job
  resource. ``Idempotency-Key`` makes retries safe. A full queue is 429 and an
  unreachable store 503, both with ``Retry-After``; nothing is stored.
* ``GET /jobs/{id}`` (``?wait=N`` long-polls), ``POST /jobs/{id}/cancel`` and
  ``DELETE /jobs/{id}`` (409 once finished), 404 for unknown ids.
* errors are ``application/problem+json``; with bearer tokens configured, 401 without
  one, and each token (tenant) sees only its own jobs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.params import Depends

from asyncendpoints.app import AsyncEndpoints
from asyncendpoints.http.auth import Authenticator
from asyncendpoints.http.batching import SubmitBatcher
from asyncendpoints.http.context import dropped_headers
from asyncendpoints.http.guard import Guard
from asyncendpoints.http.jobs import add_job_routes, add_method_not_allowed_routes
from asyncendpoints.http.observer import HttpObserver, NullObserver
from asyncendpoints.http.problems import PROBLEM_MEDIA_TYPE, Problem, add_problem_handlers
from asyncendpoints.http.resources import JobResource, JobUrls
from asyncendpoints.http.submit import add_submit_route


def add_routes(
    router: APIRouter,
    ae: AsyncEndpoints,
    *,
    dependencies: Sequence[Depends] = (),
    observer: HttpObserver | None = None,
    batch_submissions: bool = True,
) -> None:
    """Add one submit route per endpoint declared so far, and the job routes, to ``router``.

    ``router`` may be an app's own (``app.router``): FastAPI then matches the routes
    directly, without the indirection of an included router (``asyncendpoints api``
    does this). ``dependencies`` run on every async route (after the bearer-token check
    and the body limits, before the handler); ``observer`` hears of submissions and
    rejections; ``batch_submissions`` stores the jobs submitted in one event-loop turn
    together (see :mod:`asyncendpoints.http.batching`).
    """
    settings = ae.settings
    guard = Guard(
        authenticator=Authenticator.from_settings(settings),
        max_body_bytes=settings.max_body_bytes,
        observer=observer or NullObserver(),
    )
    urls = JobUrls()
    dropped = dropped_headers(settings.sensitive_headers)
    batcher = SubmitBatcher(ae.manager) if batch_submissions else None
    deps = list(dependencies)
    first = len(router.routes)
    for endpoint in ae.endpoints.values():
        add_submit_route(
            router,
            ae,
            endpoint,
            guard=guard,
            urls=urls,
            dropped=dropped,
            batcher=batcher,
            dependencies=deps,
        )
    add_job_routes(router, ae, guard=guard, urls=urls, dependencies=deps)
    add_method_not_allowed_routes(router, router.routes[first:])


def build_router(
    ae: AsyncEndpoints,
    *,
    dependencies: Sequence[Depends] = (),
    observer: HttpObserver | None = None,
    batch_submissions: bool = True,
) -> APIRouter:
    """A router with the async routes (see :func:`add_routes`), to include in an app."""
    router = APIRouter(dependencies=list(dependencies))
    add_routes(router, ae, observer=observer, batch_submissions=batch_submissions)
    return router


def install(
    ae: AsyncEndpoints,
    fastapi_app: FastAPI,
    *,
    prefix: str = "",
    dependencies: Sequence[Depends] = (),
    observer: HttpObserver | None = None,
) -> None:
    """Mount the async routes into ``fastapi_app`` under ``prefix``.

    Also answers the domain errors (queue full, store unavailable, job not found, ...)
    raised anywhere in the app with problems, and opens the job store before the app's
    own lifespan starts (so it may submit jobs) and closes it after it ends.
    """
    fastapi_app.include_router(
        build_router(ae, dependencies=dependencies, observer=observer), prefix=prefix
    )
    add_problem_handlers(fastapi_app, everything=False)
    inner = fastapi_app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        await ae.startup()
        try:
            async with inner(app) as state:
                yield state
        finally:
            await ae.shutdown()

    fastapi_app.router.lifespan_context = lifespan


__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "HttpObserver",
    "JobResource",
    "Problem",
    "add_problem_handlers",
    "add_routes",
    "build_router",
    "install",
]
