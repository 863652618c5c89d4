"""The job resource routes: read (with a long poll), cancel.

* ``GET /jobs/{id}``: the job; ``?wait=N`` holds the request until the job finished or N
  seconds passed (capped by ``long_poll_max_seconds``), and gives up at once when the
  client goes away.
* ``POST /jobs/{id}/cancel`` and ``DELETE /jobs/{id}``: cancel; 409 once finished.

A malformed id, an unknown or expired job, and another tenant's job are all 404.
"""

# No `from __future__ import annotations` here: FastAPI reads the route functions'
# annotations, and the long poll's cap is a local variable of add_job_routes.

import asyncio
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.params import Depends
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from asyncendpoints.app import AsyncEndpoints
from asyncendpoints.errors import JobNotFoundError
from asyncendpoints.http.guard import Guard, guarded_route, request_tenant
from asyncendpoints.http.problems import Problem, problem_responses
from asyncendpoints.http.resources import JobResource, JobUrls
from asyncendpoints.job import Job, valid_job_id

JobIdParam = Annotated[str, Path(description="The job's id, as in `Location`.")]


async def _until_disconnected(request: Request) -> None:
    try:
        while (await request.receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a server that cannot tell: the long poll just runs its course
        await asyncio.Event().wait()


def add_job_routes(
    router: APIRouter,
    ae: AsyncEndpoints,
    *,
    guard: Guard,
    urls: JobUrls,
    dependencies: Sequence[Depends] = (),
) -> None:
    """Add ``GET /jobs/{id}``, ``POST /jobs/{id}/cancel`` and ``DELETE /jobs/{id}``."""
    route_class = guarded_route(guard)
    cap = ae.settings.long_poll_max_seconds
    manager = ae.manager
    auth_on = guard.authenticator.enabled

    async def visible(request: Request, job_id: str) -> Job:
        if not valid_job_id(job_id):
            raise JobNotFoundError(job_id)
        await ae.startup()
        job = await manager.get(job_id)
        if auth_on and job.tenant != request_tenant(request):
            raise JobNotFoundError(job_id)
        return job

    async def long_poll(request: Request, job: Job, seconds: float) -> Job:
        waiter = asyncio.ensure_future(manager.wait_finished(job.id, seconds))
        watcher = asyncio.ensure_future(_until_disconnected(request))
        try:
            done, _ = await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            waiter.cancel()
        return waiter.result() if waiter in done else job  # else the client went away

    wait_param = Annotated[
        float | None,
        Query(
            ge=0,
            allow_inf_nan=False,
            description=(
                "Long poll: answer as soon as the job finished, or after this many "
                f"seconds (at most {cap:g})."
            ),
        ),
    ]

    async def get_job(request: Request, job_id: JobIdParam, wait: wait_param = None) -> Response:
        job = await visible(request, job_id)
        if wait and not job.status.finished:
            job = await long_poll(request, job, min(wait, cap))
        return urls.response(request, job)

    async def cancel_job(request: Request, job_id: JobIdParam) -> Response:
        await visible(request, job_id)
        return urls.response(request, await manager.cancel(job_id))

    common = {
        "response_model": JobResource,
        "tags": ["jobs"],
        "dependencies": list(dependencies),
        "route_class_override": route_class,
    }
    router.add_api_route(
        "/jobs/{job_id}",
        get_job,
        methods=["GET"],
        name=urls.route_name,
        operation_id="get_job",
        summary="Read a job (long poll with ?wait=N)",
        responses=problem_responses(401, 404, 422, 503),
        **common,  # type: ignore[arg-type]
    )
    cancel_responses = problem_responses(401, 404, 409, 422, 503)
    router.add_api_route(
        "/jobs/{job_id}/cancel",
        cancel_job,
        methods=["POST"],
        name=f"{urls.route_name}.cancel",
        operation_id="cancel_job",
        summary="Cancel a job (409 once it finished)",
        responses=cancel_responses,
        **common,  # type: ignore[arg-type]
    )
    router.add_api_route(
        "/jobs/{job_id}",
        cancel_job,
        methods=["DELETE"],
        name=f"{urls.route_name}.delete",
        operation_id="delete_job",
        summary="Cancel a job (as POST /jobs/{id}/cancel)",
        responses=cancel_responses,
        **common,  # type: ignore[arg-type]
    )


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


def add_method_not_allowed_routes(router: APIRouter, routes: Sequence[BaseRoute]) -> None:
    """405 with the full ``Allow`` list on paths served by several of ``routes``.

    Starlette's 405 names the methods of the first route whose path matches only; a
    hidden route per such path answers the other methods with all of them instead.
    """
    allowed: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, APIRoute) and route.methods:
            allowed.setdefault(route.path, set()).update(route.methods)
    for path, methods in allowed.items():
        if len(methods - {"HEAD"}) < 2:
            continue
        if "GET" in methods:
            methods.add("HEAD")
        problem = Problem(
            405, "method-not-allowed", headers={"Allow": ", ".join(sorted(methods))}, typed=False
        )

        async def not_allowed(request: Request, problem: Problem = problem) -> Response:
            return problem.response(request.url.path)

        router.add_route(
            path, not_allowed, methods=sorted(METHODS - methods), include_in_schema=False
        )


__all__ = ["add_job_routes", "add_method_not_allowed_routes"]
