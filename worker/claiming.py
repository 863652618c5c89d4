"""In which order a worker serving several job names claims from their queues.

The store claims name by name (each name lives in its own hash slot, so one script
cannot pop from two queues). Trying the names in a fixed rotation would spend a round
trip on every empty queue before reaching the busy one; :class:`ClaimOrder` instead
tries first the names whose last claim found work (in rotation, so busy names share the
worker fairly), then the others. While busy names fill every claim, the idle names go
first once per :data:`PROBE_SECONDS`, so a name that receives work while another keeps
a backlog waits at most that long.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from asyncendpoints.types import JobName

PROBE_SECONDS = 0.1


class ClaimOrder:
    """The order of names for the next claim, learned from what the last claims found."""

    __slots__ = ("_busy", "_names", "_next", "_probe_at", "probe_seconds")

    def __init__(self, names: Sequence[JobName], probe_seconds: float = PROBE_SECONDS) -> None:
        if not names:
            raise ValueError("at least one job name")
        self._names = list(names)
        self._busy = dict.fromkeys(self._names, True)
        self._next = 0
        self._probe_at = 0.0
        self.probe_seconds = probe_seconds

    def plan(self, saturated: bool) -> list[JobName]:
        """Every name once: busy names first (rotated), idle ones after. While the busy
        names keep filling every claim (``saturated``), the idle ones go first once per
        :attr:`probe_seconds`."""
        names = self._names
        if len(names) == 1:
            return names
        start = self._next
        self._next = (start + 1) % len(names)
        rotated = names[start:] + names[:start]
        busy = [n for n in rotated if self._busy[n]]
        idle = [n for n in rotated if not self._busy[n]]
        now = time.monotonic()
        if not saturated:
            self._probe_at = now + self.probe_seconds
        elif idle and now >= self._probe_at:
            self._probe_at = now + self.probe_seconds
            return idle + busy
        return busy + idle

    def found(self, name: JobName, claimed: int) -> None:
        """Record what a claim from ``name`` returned."""
        self._busy[name] = claimed > 0


__all__ = ["PROBE_SECONDS", "ClaimOrder"]
