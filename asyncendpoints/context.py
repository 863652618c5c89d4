"""What a handler sees of its job: ids, the captured HTTP context, progress reporting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from asyncendpoints.job import Job
from asyncendpoints.types import JobId, JobName

ProgressSink = Callable[[float, str | None], Awaitable[None]]


async def _discard(fraction: float, message: str | None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class JobContext:
    """Passed to a handler that declares a parameter annotated ``JobContext``."""

    job_id: JobId
    name: JobName
    headers: Mapping[str, str] = field(default_factory=dict)
    route_params: Mapping[str, str] = field(default_factory=dict)
    query_params: Mapping[str, str] = field(default_factory=dict)
    retry_count: int = 0
    max_retries: int = 0
    tenant: str | None = None
    _progress: ProgressSink = field(default=_discard, repr=False, compare=False)

    @property
    def attempt(self) -> int:
        """1 on the first run, 2 on the first retry, ..."""
        return self.retry_count + 1

    async def report_progress(self, fraction: float, message: str | None = None) -> None:
        """Record how far the job is (0.0 to 1.0); ``GET /jobs/{id}`` shows it."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("progress is a fraction between 0.0 and 1.0")
        await self._progress(fraction, message)

    @classmethod
    def for_job(cls, job: Job, progress: ProgressSink = _discard) -> JobContext:
        return cls(
            job_id=job.id,
            name=job.name,
            headers=job.context.headers,
            route_params=job.context.route_params,
            query_params=job.context.query_params,
            retry_count=job.retry_count,
            max_retries=job.max_retries,
            tenant=job.tenant,
            _progress=progress,
        )
