"""Job hash <-> :class:`Job`, and lease members: how the Redis store encodes them.

The field names are those of :mod:`asyncendpoints.store.keys`. Absent or empty fields
decode to the model's default (``None``, ``0``); timestamps are seconds as text.
A Completed job shows no error (an earlier attempt's error stays in the hash).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from asyncendpoints.job import (
    HttpContext,
    Job,
    JobError,
    JobStatus,
    Lease,
    NewJob,
    name_tag,
    tag_of,
    valid_job_id,
)
from asyncendpoints.store import keys as k
from asyncendpoints.types import JobName

ArgT = bytes | str | int | float

NEW_JOB_ARGS = 6
"""Values per job that :func:`new_job_args` gives the CREATE script."""


def fields(flat: Sequence[bytes]) -> dict[str, bytes]:
    """A flat HGETALL reply (field, value, field, value, ...) as a dict."""
    it = iter(flat)
    return {key.decode(): value for key, value in zip(it, it, strict=True)}


def _text(value: bytes | None) -> str | None:
    return value.decode() if value else None


def _float(value: bytes | None) -> float | None:
    return float(value) if value else None


def job_from_fields(f: dict[str, bytes]) -> Job:
    """The job a hash holds (``f`` from :func:`fields`)."""
    status = JobStatus(f[k.F_STATUS].decode())
    return Job(
        id=f[k.F_ID].decode(),
        name=f[k.F_NAME].decode(),
        status=status,
        payload=f.get(k.F_PAYLOAD, b""),
        created_at=float(f[k.F_CREATED]),
        last_updated_at=float(f[k.F_UPDATED]),
        retry_count=int(f.get(k.F_RETRY) or 0),
        max_retries=int(f.get(k.F_MAX_RETRIES) or 0),
        timeout=_float(f.get(k.F_TIMEOUT)),
        retry_delay_until=_float(f.get(k.F_DELAY_UNTIL)),
        started_at=_float(f.get(k.F_STARTED)),
        completed_at=_float(f.get(k.F_COMPLETED)),
        result=f.get(k.F_RESULT),
        error=None if status is JobStatus.COMPLETED else JobError.from_json(f.get(k.F_ERROR)),
        worker_id=_text(f.get(k.F_WORKER)),
        token=int(f.get(k.F_TOKEN) or 0),
        context=HttpContext.from_json(f.get(k.F_CONTEXT)),
        tenant=_text(f.get(k.F_TENANT)),
        progress=_float(f.get(k.F_PROGRESS)),
        progress_message=_text(f.get(k.F_PROGRESS_MESSAGE)),
    )


_IN_PROGRESS = JobStatus.IN_PROGRESS
_ID, _NAME, _PAYLOAD = k.F_ID.encode(), k.F_NAME.encode(), k.F_PAYLOAD.encode()
_CREATED, _RETRY, _MAX_RETRIES = k.F_CREATED.encode(), k.F_RETRY.encode(), k.F_MAX_RETRIES.encode()
_TIMEOUT, _DELAY_UNTIL = k.F_TIMEOUT.encode(), k.F_DELAY_UNTIL.encode()
_COMPLETED, _RESULT, _ERROR = k.F_COMPLETED.encode(), k.F_RESULT.encode(), k.F_ERROR.encode()
_CONTEXT, _TENANT = k.F_CONTEXT.encode(), k.F_TENANT.encode()


def claimed_job(flat: Sequence[bytes], now: float, worker_id: str, token: int) -> Job:
    """The job a claim made of the hash ``flat`` (HGETALL before the claim): what
    :func:`job_from_fields` gives after the claim's writes (InProgress, ``worker_id``,
    ``token``, started and updated ``now``, no progress), decoded in one pass: this is on
    the path from an idle worker's wake-up to its handler."""
    it = iter(flat)
    f: dict[bytes, bytes] = dict(zip(it, it, strict=True))
    get = f.get
    timeout = get(_TIMEOUT)
    due = get(_DELAY_UNTIL)
    finished = get(_COMPLETED)
    error = get(_ERROR)
    context = get(_CONTEXT)
    tenant = get(_TENANT)
    return Job(
        id=f[_ID].decode(),
        name=f[_NAME].decode(),
        status=_IN_PROGRESS,
        payload=get(_PAYLOAD, b""),
        created_at=float(f[_CREATED]),
        last_updated_at=now,
        retry_count=int(get(_RETRY) or 0),
        max_retries=int(get(_MAX_RETRIES) or 0),
        timeout=float(timeout) if timeout else None,
        retry_delay_until=float(due) if due else None,
        started_at=now,
        completed_at=float(finished) if finished else None,
        result=get(_RESULT),
        error=JobError.from_json(error) if error else None,
        worker_id=worker_id or None,
        token=token,
        context=HttpContext.from_json(context),
        tenant=tenant.decode() if tenant else None,
    )


def decode_job(flat: Sequence[bytes]) -> Job:
    return job_from_fields(fields(flat))


def new_job_args(job: NewJob) -> list[ArgT]:
    """id, payload, context, tenant, max retries, timeout (``""`` for none)."""
    ctx = job.context
    context: ArgT = ctx.to_json() if ctx.headers or ctx.route_params or ctx.query_params else ""
    timeout: ArgT = "" if job.timeout is None else repr(float(job.timeout))
    return [job.id, job.payload, context, job.tenant or "", job.max_retries, timeout]


def job_from_new(job: NewJob, now: float) -> Job:
    """The job CREATE stored for ``job`` at ``now`` (Redis' clock)."""
    return Job(
        id=job.id,
        name=job.name,
        status=JobStatus.QUEUED,
        payload=job.payload,
        created_at=now,
        last_updated_at=now,
        max_retries=job.max_retries,
        timeout=job.timeout,
        context=job.context,
        tenant=job.tenant or None,
    )


# --- leases ----------------------------------------------------------------------------
Item = TypeVar("Item")


def lease_member(lease: Lease) -> str:
    """A lease in the ``leases`` zset: ``<id>:<token>`` (present while the token is current)."""
    return f"{lease.job_id}:{lease.token}"


def plausible(lease: Lease) -> bool:
    """Whether a lease can be current at all: a well-formed id of its name's hash slot."""
    return valid_job_id(lease.job_id) and tag_of(lease.job_id) == name_tag(lease.name)


def by_name(
    items: Sequence[tuple[Lease, Item]], chunk: int
) -> list[tuple[JobName, list[tuple[int, Lease, Item]]]]:
    """Plausible leases' items grouped by name in chunks, with their input positions."""
    groups: dict[JobName, list[tuple[int, Lease, Item]]] = {}
    for i, (lease, extra) in enumerate(items):
        if plausible(lease):
            groups.setdefault(lease.name, []).append((i, lease, extra))
    return [
        (name, group[at : at + chunk])
        for name, group in groups.items()
        for at in range(0, len(group), chunk)
    ]


__all__ = [
    "NEW_JOB_ARGS",
    "by_name",
    "claimed_job",
    "decode_job",
    "fields",
    "job_from_fields",
    "job_from_new",
    "lease_member",
    "new_job_args",
    "plausible",
]
