"""The job model: what a job carries from submission to its result.

Payloads and results are JSON documents kept as encoded bytes, so the store never
parses them and a worker decodes each one once.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from asyncendpoints.types import JobId, JobName, JSONBytes, Timestamp, WorkerId


class JobStatus(enum.StrEnum):
    """The six states of a job (see :mod:`asyncendpoints.lifecycle` for the moves)."""

    QUEUED = "Queued"
    SCHEDULED = "Scheduled"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
"""A job name: letters, digits, ``_ . -``; at most 63 characters (a DNS label fits)."""

JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[A-Za-z0-9_-]{22}$")
"""A job id: the 8-hex-digit tag of its name, a dash, 128 random bits in base64url."""


def name_tag(name: JobName) -> str:
    """The hash-slot tag of a job name: every key of that name shares it (Redis Cluster)."""
    return hashlib.blake2b(name.encode(), digest_size=4).hexdigest()


def new_job_id(name: JobName) -> JobId:
    """A random, unguessable job id that carries its name's tag."""
    return f"{name_tag(name)}-{secrets.token_urlsafe(16)}"


def tag_of(job_id: JobId) -> str:
    """The tag carried in a job id (its first 8 characters)."""
    return job_id[:8]


def valid_job_id(job_id: str) -> bool:
    return JOB_ID_PATTERN.fullmatch(job_id) is not None


@dataclass(frozen=True, slots=True)
class HttpContext:
    """What the submitting HTTP request carried, captured for the handler.

    Sensitive headers (Authorization, Cookie, ...) are removed before this is built.
    """

    headers: dict[str, str] = field(default_factory=dict)
    route_params: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> JSONBytes:
        return orjson.dumps({"h": self.headers, "r": self.route_params, "q": self.query_params})

    @classmethod
    def from_json(cls, data: bytes | str | None) -> HttpContext:
        if not data:
            return cls()
        raw: dict[str, Any] = orjson.loads(data)
        return cls(raw.get("h") or {}, raw.get("r") or {}, raw.get("q") or {})


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job (or one attempt of it) failed."""

    type: str
    message: str

    def to_json(self) -> JSONBytes:
        return orjson.dumps({"type": self.type, "message": self.message})

    @classmethod
    def from_json(cls, data: bytes | str | None) -> JobError | None:
        if not data:
            return None
        raw: dict[str, Any] = orjson.loads(data)
        return cls(str(raw.get("type", "Error")), str(raw.get("message", "")))

    @classmethod
    def from_exception(cls, exc: BaseException) -> JobError:
        return cls(type(exc).__name__, str(exc) or type(exc).__name__)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job about to be stored: what :meth:`JobStore.create` takes."""

    id: JobId
    name: JobName
    payload: JSONBytes
    max_retries: int = 3
    timeout: float | None = None
    context: HttpContext = field(default_factory=HttpContext)
    tenant: str | None = None

    @classmethod
    def build(
        cls,
        name: JobName,
        payload: JSONBytes,
        *,
        max_retries: int = 3,
        timeout: float | None = None,
        context: HttpContext | None = None,
        tenant: str | None = None,
    ) -> NewJob:
        return cls(
            id=new_job_id(name),
            name=name,
            payload=payload,
            max_retries=max_retries,
            timeout=timeout,
            context=context or HttpContext(),
            tenant=tenant,
        )


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job, as read from the store (immutable: the store is the truth)."""

    id: JobId
    name: JobName
    status: JobStatus
    payload: JSONBytes
    created_at: Timestamp
    last_updated_at: Timestamp
    retry_count: int = 0
    max_retries: int = 3
    timeout: float | None = None
    retry_delay_until: Timestamp | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    result: JSONBytes | None = None
    error: JobError | None = None
    worker_id: WorkerId | None = None
    token: int = 0
    """The fencing token of the current (or last) claim; 0 when never claimed."""
    context: HttpContext = field(default_factory=HttpContext)
    tenant: str | None = None
    progress: float | None = None
    progress_message: str | None = None

    def with_(self, **changes: Any) -> Job:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's claim on one job: only the holder of the current token may finish it."""

    job_id: JobId
    name: JobName
    token: int
    worker_id: WorkerId


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed job and the lease that lets its worker finish it."""

    job: Job
    lease: Lease


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Per-name numbers: current counts, and counters since the store began."""

    name: JobName
    queued: int = 0
    scheduled: int = 0
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0

    @property
    def backlog(self) -> int:
        """The work a pool must carry now: queued and in progress."""
        return self.queued + self.in_progress


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker, as it registers itself (and refreshes with each heartbeat)."""

    worker_id: WorkerId
    names: tuple[JobName, ...] = ()
    concurrency: int = 1
    in_flight: int = 0
    started_at: Timestamp = 0.0
    last_seen: Timestamp = 0.0

    def to_json(self) -> JSONBytes:
        return orjson.dumps(
            {
                "worker_id": self.worker_id,
                "names": list(self.names),
                "concurrency": self.concurrency,
                "in_flight": self.in_flight,
                "started_at": self.started_at,
                "last_seen": self.last_seen,
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> WorkerInfo:
        raw: dict[str, Any] = orjson.loads(data)
        return cls(
            worker_id=str(raw["worker_id"]),
            names=tuple(raw.get("names") or ()),
            concurrency=int(raw.get("concurrency", 1)),
            in_flight=int(raw.get("in_flight", 0)),
            started_at=float(raw.get("started_at", 0.0)),
            last_seen=float(raw.get("last_seen", 0.0)),
        )
