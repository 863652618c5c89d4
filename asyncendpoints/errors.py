"""The domain errors: one small hierarchy that every layer raises and catches.

Library errors (redis, httpx) are wrapped into these with the cause chained
(``raise StoreUnavailableError(...) from exc``), so callers never handle a
backend's own exception types.
"""

from __future__ import annotations


class AsyncEndpointsError(Exception):
    """The base of every error this package raises on purpose."""


class ConfigurationError(AsyncEndpointsError):
    """The app or the settings are wrong (unknown job name, bad app reference, ...)."""


class JobNotFoundError(AsyncEndpointsError):
    """No job has this id (or it expired, or it belongs to another tenant)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found")
        self.job_id = job_id


class InvalidTransitionError(AsyncEndpointsError):
    """The state machine refuses this transition (for example cancel a Completed job)."""

    def __init__(self, job_id: str, current: str, target: str) -> None:
        super().__init__(f"job {job_id!r} cannot go from {current} to {target}")
        self.job_id = job_id
        self.current = current
        self.target = target


class QueueFullError(AsyncEndpointsError):
    """The queue of this job name holds ``max_queue_size`` jobs: nothing was stored."""

    def __init__(self, name: str, limit: int, retry_after: float = 1.0) -> None:
        super().__init__(f"queue {name!r} is full ({limit} jobs)")
        self.name = name
        self.limit = limit
        self.retry_after = retry_after


class StaleLeaseError(AsyncEndpointsError):
    """The fencing token is no longer current: the job was recovered, released,
    re-claimed or canceled, and this worker's write was refused (nothing changed)."""

    def __init__(self, job_id: str, token: int) -> None:
        super().__init__(f"lease {token} on job {job_id!r} is no longer current")
        self.job_id = job_id
        self.token = token


class StoreUnavailableError(AsyncEndpointsError):
    """The job store cannot be reached (connection refused, timeout, failover)."""

    def __init__(self, message: str, retry_after: float = 2.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadError(AsyncEndpointsError):
    """A payload or result is not valid JSON, or does not fit the handler's model."""


class PermanentError(AsyncEndpointsError):
    """Raised by a handler: fail the job now, skip the remaining retries."""


class JobTimeoutError(AsyncEndpointsError):
    """The handler ran longer than the job's timeout."""


class JobCanceledError(AsyncEndpointsError):
    """The job was canceled while it ran."""


__all__ = [
    "AsyncEndpointsError",
    "ConfigurationError",
    "InvalidTransitionError",
    "JobCanceledError",
    "JobNotFoundError",
    "JobTimeoutError",
    "PayloadError",
    "PermanentError",
    "QueueFullError",
    "StaleLeaseError",
    "StoreUnavailableError",
]
