"""Scaling decisions, as pure functions (no I/O, no clock: the caller passes ``now``).

* :func:`desired_replicas`: ``ceil((queued + in progress) / targetJobsPerReplica)``
  clamped to ``[minReplicas, maxReplicas]``; an empty backlog with ``minReplicas: 0``
  scales to zero.
* :func:`stabilize`: up at once, down only as far as the highest desired count seen
  during the stabilization window (the HorizontalPodAutoscaler's rule): a backlog that
  dips for a moment does not remove workers that the next burst needs again.
* :func:`decide`: both, with the reason and the message of the Event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple


class Recommendation(NamedTuple):
    """A desired replica count computed at time ``at`` (seconds, monotonic)."""

    at: float
    replicas: int


def desired_replicas(
    backlog: int, target_per_replica: int, min_replicas: int, max_replicas: int
) -> int:
    """Replicas for ``backlog`` jobs (queued + in progress) at ``target_per_replica`` each."""
    if target_per_replica < 1:
        raise ValueError("target_per_replica must be at least 1")
    raw = math.ceil(max(backlog, 0) / target_per_replica)
    return max(min_replicas, min(max_replicas, raw))


def prune(history: Sequence[Recommendation], now: float, window: float) -> list[Recommendation]:
    """The recommendations still inside the window ``(now - window, now]``."""
    return [r for r in history if r.at > now - window]


def stabilize(
    history: Sequence[Recommendation], now: float, window: float, desired: int, current: int
) -> tuple[int, list[Recommendation]]:
    """The replica count to apply now, and the history to keep for the next call.

    ``desired`` is recorded first. Scaling up (or staying) applies ``desired`` at once;
    scaling down applies the highest recommendation within the window, never more than
    ``current`` (so a stale high recommendation cannot cause a scale-up).
    """
    kept = [*prune(history, now, window), Recommendation(now, desired)]
    if desired >= current:
        return desired, kept
    return min(current, max(r.replicas for r in kept)), kept


def replicas_text(count: int) -> str:
    """``1 replica``, ``3 replicas``."""
    return f"{count} replica{'' if count == 1 else 's'}"


class Backlog(NamedTuple):
    """The pool's queues summed over its job names."""

    queued: int = 0
    in_progress: int = 0
    scheduled: int = 0

    @property
    def total(self) -> int:
        """What the workers must carry now (scheduled jobs are not due yet)."""
        return self.queued + self.in_progress

    def describe(self) -> str:
        return f"{self.queued} queued, {self.in_progress} in progress"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with the Deployment's replicas this tick."""

    current: int
    desired: int
    """What the backlog asks for, clamped to [min, max] (before stabilization)."""
    replicas: int
    """What to apply: ``desired`` after stabilization."""
    reason: str
    message: str

    @property
    def changes(self) -> bool:
        return self.replicas != self.current

    @property
    def direction(self) -> str:
        if self.replicas == self.current:
            return "none"
        return "up" if self.replicas > self.current else "down"


def decide(
    backlog: Backlog,
    *,
    current: int,
    target_per_replica: int,
    min_replicas: int,
    max_replicas: int,
    window: float,
    history: Sequence[Recommendation],
    now: float,
) -> tuple[Decision, list[Recommendation]]:
    """The decision for this tick and the history to keep (see the module docstring)."""
    desired = desired_replicas(backlog.total, target_per_replica, min_replicas, max_replicas)
    replicas, kept = stabilize(history, now, window, desired, current)
    what = backlog.describe()
    if replicas > current:
        reason, message = "ScaledUp", f"scaled {current} -> {replicas}: {what}"
    elif replicas < current:
        reason, message = "ScaledDown", f"scaled {current} -> {replicas}: {what}"
    elif desired < current:
        reason = "ScaleDownStabilizing"
        message = (
            f"holding {replicas_text(current)} ({desired} desired) for the {window:g} s "
            f"stabilization window: {what}"
        )
    elif desired == max_replicas and backlog.total > max_replicas * target_per_replica:
        reason, message = "AtMaxReplicas", f"at maxReplicas {max_replicas}: {what}"
    else:
        reason, message = "Steady", f"{replicas_text(current)}: {what}"
    return Decision(current, desired, replicas, reason, message), kept
