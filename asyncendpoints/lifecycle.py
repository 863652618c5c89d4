"""The job state machine: which status may follow which.

::

    Queued ──> InProgress ──> Completed
       ^           │  └─────> Failed        (retries exhausted, permanent error, worker lost)
       │           └────────> Scheduled ──> Queued   (retry after a backoff)
       └────────── InProgress              (released on shutdown, or recovered from a dead worker)
    Queued / Scheduled / InProgress ──> Canceled

Every store applies exactly these moves atomically; anything else raises
:class:`~asyncendpoints.errors.InvalidTransitionError`.
"""

from __future__ import annotations

from asyncendpoints.errors import InvalidTransitionError
from asyncendpoints.job import JobStatus

Q, S, P = JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.IN_PROGRESS
C, F, X = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    Q: frozenset({P, X}),
    S: frozenset({Q, X}),
    P: frozenset({C, F, S, Q, X}),
    C: frozenset(),
    F: frozenset(),
    X: frozenset(),
}
"""Allowed moves from each status. ``InProgress -> Queued`` is a release or a recovery."""

CANCELABLE = frozenset({Q, S, P})


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]


def check_transition(job_id: str, current: JobStatus, target: JobStatus) -> None:
    """Raise :class:`InvalidTransitionError` unless ``current -> target`` is allowed."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransitionError(job_id, current.value, target.value)
