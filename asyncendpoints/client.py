"""A small client of the HTTP API, on ``httpx.AsyncClient``.

.. code-block:: python

    async with AsyncEndpointsClient("http://reports.internal", token=TOKEN) as client:
        job = await client.submit("/reports/eu", {"month": "2026-11"}, idempotency_key=key)
        report = await client.result(job["id"], timeout=300)
        # or both at once:
        report = await client.submit_and_wait("/reports/eu", {"month": "2026-11"})

``base_url`` is where the async routes are mounted (include the prefix, if any). Problems
become the domain errors: 429 :class:`QueueFullError` (with the server's ``Retry-After``),
503 :class:`StoreUnavailableError`, 404 :class:`JobNotFoundError`, 409
:class:`InvalidTransitionError`, 413/415/422 :class:`PayloadError`; 401 is
:class:`UnauthorizedError` and anything else :class:`ApiError`.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import httpx

from asyncendpoints.errors import (
    AsyncEndpointsError,
    InvalidTransitionError,
    JobCanceledError,
    JobNotFoundError,
    PayloadError,
    QueueFullError,
    StoreUnavailableError,
)

LONG_POLL_SECONDS = 30.0
"""Each long poll asks for at most this long (the server caps it too)."""


class ApiError(AsyncEndpointsError):
    """The API answered with an error the other classes do not cover (or not at all)."""

    def __init__(self, message: str, status: int | None = None, problem: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem


class UnauthorizedError(ApiError):
    """401: no valid bearer token."""


class JobFailedError(AsyncEndpointsError):
    """The job finished as Failed; ``error_type`` and ``message`` say why."""

    def __init__(self, job: dict[str, Any]) -> None:
        error = job.get("error") or {}
        self.job = job
        self.error_type = str(error.get("type", "Error"))
        self.message = str(error.get("message", ""))
        super().__init__(f"job {job.get('id')!r} failed: {self.error_type}: {self.message}")


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return float(response.headers.get("retry-after", default))
    except ValueError:
        return default


def raise_for_problem(response: httpx.Response, *, job_id: str | None = None) -> None:
    """Raise the domain error a non-2xx answer stands for."""
    if response.is_success:
        return
    status = response.status_code
    try:
        problem: Any = response.json()
    except ValueError:
        problem = {}
    message = str(problem.get("detail", "")) if isinstance(problem, dict) else ""
    message = message or response.reason_phrase
    if not isinstance(problem, dict):
        problem = {}
    if status == 429:
        name, limit = str(problem.get("jobName", "")), int(problem.get("queueLimit", 0))
        raise QueueFullError(name, limit, retry_after=_retry_after(response, 1.0))
    if status == 503:
        raise StoreUnavailableError(message, retry_after=_retry_after(response, 2.0))
    if status == 404 and job_id is not None:
        raise JobNotFoundError(job_id)
    if status == 409 and job_id is not None:
        raise InvalidTransitionError(job_id, str(problem.get("jobStatus", "")), "Canceled")
    if status in (413, 415, 422):
        raise PayloadError(message)
    if status == 401:
        raise UnauthorizedError(message, status, problem)
    raise ApiError(f"{status} {message}", status, problem)


class AsyncEndpointsClient:
    """Submit jobs and read results over HTTP. Use it as an async context manager."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncEndpointsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(
        self, method: str, url: str, *, job_id: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            response = await self._http.request(method, url.lstrip("/"), **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(f"cannot reach the API: {exc}") from exc
        raise_for_problem(response, job_id=job_id)
        document: dict[str, Any] = response.json()
        return document

    async def submit(
        self,
        path: str,
        body: Any,
        idempotency_key: str | None = None,
        *,
        method: str = "POST",
    ) -> dict[str, Any]:
        """Submit a job; the job resource (``id``, ``status``, ``links``, ...)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self._send(method, path, json=body, headers=headers)

    async def get(self, job_id: str, *, wait: float = 0.0) -> dict[str, Any]:
        """The job resource; with ``wait``, once finished or after ``wait`` seconds."""
        params = {"wait": f"{wait:g}"} if wait > 0 else {}
        timeout: Any = httpx.USE_CLIENT_DEFAULT if wait <= 0 else wait + 10.0
        return await self._send(
            "GET", f"jobs/{job_id}", job_id=job_id, params=params, timeout=timeout
        )

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self._send("POST", f"jobs/{job_id}/cancel", job_id=job_id)

    async def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        """The job resource once it finished; :class:`TimeoutError` after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            job = await self.get(job_id, wait=max(0.0, min(remaining, LONG_POLL_SECONDS)))
            if job["status"] in ("Completed", "Failed", "Canceled"):
                return job
            if deadline - loop.time() <= 0:
                raise TimeoutError(f"job {job_id!r} is still {job['status']} after {timeout}s")

    async def result(self, job_id: str, timeout: float = 60.0) -> Any:
        """The result of a Completed job (long-polling until it finished).

        Raises :class:`JobFailedError`, :class:`JobCanceledError`, or
        :class:`TimeoutError` when it has not finished after ``timeout`` seconds.
        """
        job = await self.wait(job_id, timeout)
        if job["status"] == "Failed":
            raise JobFailedError(job)
        if job["status"] == "Canceled":
            raise JobCanceledError(f"job {job_id!r} was canceled")
        return job["result"]

    async def submit_and_wait(
        self,
        path: str,
        body: Any,
        timeout: float = 60.0,
        idempotency_key: str | None = None,
    ) -> Any:
        """Submit, then :meth:`result`."""
        job = await self.submit(path, body, idempotency_key)
        return await self.result(job["id"], timeout)


__all__ = [
    "ApiError",
    "AsyncEndpointsClient",
    "JobFailedError",
    "UnauthorizedError",
    "raise_for_problem",
]
