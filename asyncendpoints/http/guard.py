"""The route class of every async route: checks that come before FastAPI parses a request,
and problems for everything that goes wrong after.

In order: the bearer token (401), then, on routes with a body, the content type (415)
and the size (413: the ``Content-Length`` header first, then the bytes as they stream
in, so a chunked upload stops at the limit). Only then does FastAPI parse and validate
the body (422). Whatever is raised on the way, including by the user's dependencies,
becomes an ``application/problem+json`` answer (see :mod:`asyncendpoints.http.problems`),
and is reported to the observer.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from asyncendpoints.http.auth import Authenticator
from asyncendpoints.http.observer import HttpObserver
from asyncendpoints.http.problems import Problem, to_problem

TENANT_KEY = "asyncendpoints.tenant"
"""Where the guard leaves the request's tenant in the ASGI scope (None: auth is off)."""

HEADERS_KEY = "asyncendpoints.headers"
"""Where the request's headers are kept as a dict, read once (see :func:`headers_of`)."""

RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]
DirectHandler = Callable[[Request, bytes], Coroutine[Any, Any, Response]]
"""Answers a submit request from its raw body, without FastAPI's request handler."""


def request_tenant(request: Request) -> str | None:
    tenant: str | None = request.scope.get(TENANT_KEY)
    return tenant


def headers_of(request: Request) -> dict[str, str]:
    """The request's headers by lower-case name, repeated ones joined with ``", "``
    (read from the scope once: Starlette's ``Headers`` scans the list on every lookup)."""
    headers: dict[str, str] | None = request.scope.get(HEADERS_KEY)
    if headers is None:
        headers = {}
        for raw_name, raw_value in request.scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        request.scope[HEADERS_KEY] = headers
    return headers


def is_json(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json``, with any parameters."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def too_large(limit: int) -> Problem:
    return Problem(413, "too-large", f"The body is larger than {limit} bytes.")


def unsupported(content_type: str | None) -> Problem:
    what = f"not {content_type!r}" if content_type else "with a Content-Type header"
    return Problem(
        415,
        "unsupported-media-type",
        f"The body must be sent as application/json, {what}.",
        headers={"Accept-Post": "application/json"},
    )


@dataclass(frozen=True, slots=True)
class Guard:
    """What every async route of one router shares."""

    authenticator: Authenticator
    max_body_bytes: int
    observer: HttpObserver

    async def read_body(self, request: Request) -> tuple[Request, bytes]:
        """The body, read within the limit, and the request to hand on (whose body
        FastAPI can read again)."""
        headers = headers_of(request)
        limit = self.max_body_bytes
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise Problem(400, "bad-request", "Content-Length is not a number.") from None
            if declared > limit:
                raise too_large(limit)
        content_type = headers.get("content-type")
        if content_type is not None and not is_json(content_type):
            raise unsupported(content_type)
        if length is not None:
            body = await request.body()  # the server reads exactly Content-Length bytes
        else:
            body = await self._stream(request)
            request = _with_body(request, body)
        if body and content_type is None:
            raise unsupported(None)
        return request, body

    async def _stream(self, request: Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large(self.max_body_bytes)
            chunks.append(chunk)
        return b"".join(chunks)


def _with_body(request: Request, body: bytes) -> Request:
    """A request over the same scope whose first receive replays ``body``."""
    receive = request.receive
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, replay)


def guarded_route(
    guard: Guard, job_name: str | None = None, direct: DirectHandler | None = None
) -> type[APIRoute]:
    """An APIRoute class applying ``guard``; ``job_name`` marks a submit route.

    With ``direct``, the route answers from the raw body itself (validating it with
    pydantic's JSON parser) instead of through FastAPI's request handler, but only
    where FastAPI could not add anything: the handler built when the route is created,
    which serves it in the router it was added to, and only when that router gave it no
    dependencies. FastAPI builds another handler for each router that includes it
    (which may bring dependencies): those always take FastAPI's full path.
    """

    class AsyncEndpointsRoute(APIRoute):
        _built = False

        def get_route_handler(self) -> RouteHandler:
            handler = super().get_route_handler()
            has_body = self.body_field is not None
            fast = direct if not (self._built or self.dependant.dependencies) else None
            self._built = True

            async def guarded(request: Request) -> Response:
                try:
                    headers = headers_of(request)
                    request.scope[TENANT_KEY] = guard.authenticator.tenant(headers)
                    if not has_body:
                        return await handler(request)
                    request, body = await guard.read_body(request)
                    if fast is not None:
                        return await fast(request, body)
                    return await handler(request)
                except Exception as exc:
                    problem = to_problem(exc)
                    guard.observer.rejected(problem.reason)
                    if job_name is not None:
                        guard.observer.submitted(job_name, "rejected")
                    return problem.response(request.url.path)

            return guarded

    return AsyncEndpointsRoute


__all__ = [
    "HEADERS_KEY",
    "TENANT_KEY",
    "DirectHandler",
    "Guard",
    "guarded_route",
    "headers_of",
    "is_json",
    "request_tenant",
]
