"""Errors as ``application/problem+json`` (RFC 9457), and never a traceback.

:class:`Problem` is an exception that carries an HTTP answer. :func:`to_problem` turns
anything raised while serving an async route (validation errors, the domain errors,
``HTTPException``, and unexpected errors as a bare 500) into one; every problem has a
``reason`` slug that is also the metric label of the rejection and the last part of
its ``type`` URI (``urn:asyncendpoints:problem:<reason>``).

:func:`add_problem_handlers` registers the same conversion as exception handlers of a
FastAPI app: all of them on the app ``asyncendpoints api`` serves, only the domain
errors' on a user's app (:func:`asyncendpoints.http.install`), whose own handlers keep
answering for its own routes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from asyncendpoints.errors import (
    AsyncEndpointsError,
    InvalidTransitionError,
    JobNotFoundError,
    PayloadError,
    QueueFullError,
    StoreUnavailableError,
)

log = logging.getLogger("asyncendpoints.http")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:asyncendpoints:problem:"


class Problem(Exception):
    """An HTTP error answer: status, a short title, a detail, headers, extension members."""

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str | None = None,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
        typed: bool = True,
    ) -> None:
        self.status = status
        self.reason = reason
        self.title = title or _phrase(status)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})
        self.type = f"{TYPE_PREFIX}{reason}" if typed else "about:blank"
        super().__init__(f"{status} {self.title}: {detail or ''}")

    def document(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            doc["detail"] = self.detail
        if instance is not None:
            doc["instance"] = instance
        doc.update(self.extensions)
        return doc

    def response(self, instance: str | None = None) -> Response:
        return Response(
            orjson.dumps(self.document(instance)),
            status_code=self.status,
            headers=self.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )


_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}  # RFC 9110 names


def _phrase(status: int) -> str:
    if status in _PHRASES:
        return _PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def unauthorized(detail: str, *, invalid_token: bool) -> Problem:
    challenge = 'Bearer realm="asyncendpoints"'
    if invalid_token:
        challenge += ', error="invalid_token"'
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def field_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors without their ``input`` (it may echo secrets or megabytes)."""
    out: list[dict[str, Any]] = []
    for error in errors:
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        out.append(
            {"loc": loc, "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
        )
    return out


def to_problem(exc: BaseException) -> Problem:
    """The problem an exception answers with; unexpected errors are logged, then a bare 500."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = field_errors(exc.errors())
        return Problem(
            422,
            "validation",
            f"The request is not valid ({len(errors)} error{'s' if len(errors) != 1 else ''}).",
            extensions={"errors": errors},
        )
    if isinstance(exc, QueueFullError):
        return Problem(
            429,
            "queue-full",
            f"The queue of {exc.name!r} is full; nothing was stored. Retry later.",
            headers={"Retry-After": _retry_after(exc.retry_after)},
            extensions={"jobName": exc.name, "queueLimit": exc.limit},
        )
    if isinstance(exc, StoreUnavailableError):
        log.warning("job store unavailable: %s", exc)
        return Problem(
            503,
            "store-unavailable",
            "The job store cannot be reached; nothing was changed. Retry later.",
            headers={"Retry-After": _retry_after(exc.retry_after)},
        )
    if isinstance(exc, JobNotFoundError):
        return Problem(404, "job-not-found", "No job has this id (or it expired).")
    if isinstance(exc, InvalidTransitionError):
        return Problem(
            409,
            "invalid-transition",
            f"The job is {exc.current}; it cannot become {exc.target}.",
            extensions={"jobStatus": exc.current},
        )
    if isinstance(exc, PayloadError):
        return Problem(422, "invalid-payload", str(exc))
    if isinstance(exc, HTTPException):
        return from_http_exception(exc)
    log.error("unexpected error while serving a request", exc_info=exc)
    return Problem(500, "internal", "The server could not complete the request.", typed=False)


def from_http_exception(exc: HTTPException, *, reason: str | None = None) -> Problem:
    """The problem an ``HTTPException`` stands for (its status, detail and headers)."""
    raw: Any = exc.detail
    detail: str | None = raw if isinstance(raw, str) else None
    extensions: dict[str, Any] = {}
    if detail is None and raw is not None:
        try:
            orjson.dumps(raw)
        except TypeError:
            pass
        else:
            extensions["data"] = raw  # a structured detail, kept as an extension member
    reasons = {401: "unauthorized", 404: "not-found", 405: "method-not-allowed", 413: "too-large"}
    reason = reason or reasons.get(exc.status_code, f"http-{exc.status_code}")
    if detail == _phrase(exc.status_code):
        detail = None
    return Problem(
        exc.status_code,
        reason,
        detail,
        headers=exc.headers,
        extensions=extensions,
        typed=False,
    )


async def _handle(request: Request, exc: Exception) -> Response:
    return to_problem(exc).response(request.url.path)


def add_problem_handlers(app: FastAPI, *, everything: bool) -> None:
    """Answer the domain errors with problems; with ``everything``, also HTTP and
    validation errors and (as a bare 500) any other exception."""
    app.add_exception_handler(AsyncEndpointsError, _handle)
    if everything:
        app.add_exception_handler(HTTPException, _handle)
        app.add_exception_handler(RequestValidationError, _handle)
        app.add_exception_handler(Exception, _handle)


# --- OpenAPI: how the problems are documented -----------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Field errors (422).",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
                "required": ["loc", "msg", "type"],
            },
        },
        "jobStatus": {"type": "string", "description": "The job's status (409)."},
    },
    "required": ["type", "title", "status"],
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these statuses, as problem+json."""
    descriptions = {
        400: "Bad request (for example an invalid idempotency key, or refused by a precheck)",
        401: "A valid bearer token is required",
        404: "No such job (or not yours, or expired); on a submit route, no route matches",
        409: "The job already finished",
        413: "The body is larger than the limit",
        415: "The body must be application/json",
        422: "The request does not validate (field errors in `errors`)",
        429: "The queue is full; nothing was stored",
        503: "The job store is unavailable",
    }
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": descriptions.get(status, _phrase(status)),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
        }
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
            }
        responses[status] = entry
    return responses


__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "add_problem_handlers",
    "from_http_exception",
    "problem_responses",
    "to_problem",
    "unauthorized",
]
