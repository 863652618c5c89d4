"""The job resource: what ``202 Accepted`` and ``GET /jobs/{id}`` answer with.

:class:`JobResource` documents the shape in OpenAPI; :func:`render_job` builds the same
document straight from a :class:`~asyncendpoints.job.Job` with orjson (the stored result
is embedded as it is, never parsed), which is what the routes send. The tests check
that every rendered document validates against :class:`JobResource`.
"""

from __future__ import annotations

import secrets
import time
import weakref
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from asyncendpoints.job import Job, JobStatus


class JobErrorInfo(BaseModel):
    """Why the job failed (or why its last attempt failed, while Scheduled)."""

    type: str = Field(description="The error's type, e.g. `TimeoutError` or `WorkerLost`.")
    message: str


class JobProgress(BaseModel):
    """How far an InProgress job is, as its handler last reported."""

    fraction: float = Field(ge=0.0, le=1.0)
    message: str | None = None


class JobLinks(BaseModel):
    self: str = Field(description="This resource (poll it; add `?wait=N` to long-poll).")
    cancel: str | None = Field(
        default=None, description="POST here to cancel; null once the job finished."
    )


class JobResource(BaseModel):
    """A job as the HTTP API shows it. Timestamps are ISO 8601 in UTC."""

    id: str = Field(description="Random and unguessable; the job's URL is `/jobs/{id}`.")
    name: str = Field(description="The job name of the endpoint that created it.")
    status: JobStatus
    retryCount: int = Field(ge=0, description="Attempts that failed and were retried.")
    maxRetries: int = Field(ge=0)
    createdAt: datetime
    startedAt: datetime | None = Field(default=None, description="Start of the last attempt.")
    completedAt: datetime | None = Field(default=None, description="When it finished.")
    lastUpdatedAt: datetime
    retryDelayUntil: datetime | None = Field(
        default=None, description="While Scheduled: when the next attempt may start."
    )
    result: Any = Field(default=None, description="The handler's result, once Completed.")
    error: JobErrorInfo | None = Field(
        default=None, description="When Failed; while Scheduled, the last attempt's error."
    )
    progress: JobProgress | None = Field(default=None, description="While InProgress.")
    links: JobLinks


_last_second: tuple[int, str] = (-1, "")
"""The last whole second formatted, and its text (swapped as one tuple: thread-safe)."""


def iso(timestamp: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC with milliseconds: ``2026-11-01T08:00:00.123Z``."""
    global _last_second
    whole = int(timestamp)
    millis = int((timestamp - whole) * 1000)
    last = _last_second
    if last[0] != whole:
        last = _last_second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{last[1]}.{millis:03d}Z"


def _iso_or_none(timestamp: float | None) -> str | None:
    return None if timestamp is None else iso(timestamp)


def job_document(job: Job, self_url: str) -> dict[str, Any]:
    """The job resource as a dict ready for ``orjson.dumps`` (the result stays encoded)."""
    status = job.status
    error = None
    if job.error is not None and status in (JobStatus.FAILED, JobStatus.SCHEDULED):
        error = {"type": job.error.type, "message": job.error.message}
    progress = None
    if status is JobStatus.IN_PROGRESS and job.progress is not None:
        progress = {"fraction": job.progress, "message": job.progress_message}
    result: Any = None
    if status is JobStatus.COMPLETED and job.result is not None:
        result = orjson.Fragment(job.result)
    return {
        "id": job.id,
        "name": job.name,
        "status": status.value,
        "retryCount": job.retry_count,
        "maxRetries": job.max_retries,
        "createdAt": iso(job.created_at),
        "startedAt": _iso_or_none(job.started_at),
        "completedAt": _iso_or_none(job.completed_at),
        "lastUpdatedAt": iso(job.last_updated_at),
        "retryDelayUntil": (
            _iso_or_none(job.retry_delay_until) if status is JobStatus.SCHEDULED else None
        ),
        "result": result,
        "error": error,
        "progress": progress,
        "links": {
            "self": self_url,
            "cancel": None if status.finished else f"{self_url}/cancel",
        },
    }


def render_job(job: Job, self_url: str) -> bytes:
    """The job resource as JSON bytes."""
    return orjson.dumps(job_document(job, self_url))


class JobUrls:
    """Where a router's ``GET /jobs/{id}`` route is, in the app that serves the request.

    Found with ``url_path_for`` (so a prefix given to ``include_router`` or ``install``
    counts), once per app, plus the request's ``root_path`` (a mount, a proxy prefix).
    """

    _PLACEHOLDER = "__job_id__"

    def __init__(self) -> None:
        self.route_name = f"asyncendpoints.job.{secrets.token_hex(4)}"
        self._templates: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def self_url(self, request: Request, job_id: str) -> str:
        app = request.app
        template = self._templates.get(app)
        if template is None:
            template = str(app.url_path_for(self.route_name, job_id=self._PLACEHOLDER))
            self._templates[app] = template
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return root + template.replace(self._PLACEHOLDER, job_id)

    def response(
        self,
        request: Request,
        job: Job,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """The job resource; with 202, ``Location`` names it."""
        url = self.self_url(request, job.id)
        if status_code == 202:  # a POST's answer: not cacheable anyway
            all_headers = {"Location": url, **(headers or {})}
        else:
            all_headers = {"Cache-Control": "no-store", **(headers or {})}
        return Response(
            render_job(job, url),
            status_code=status_code,
            headers=all_headers,
            media_type="application/json",
        )


__all__ = [
    "JobErrorInfo",
    "JobLinks",
    "JobProgress",
    "JobResource",
    "JobUrls",
    "iso",
    "job_document",
    "render_job",
]
