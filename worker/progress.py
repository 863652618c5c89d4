"""Progress reporting: the :class:`JobContext` sink of one running job.

``ctx.report_progress(fraction, message)`` writes through ``store.report_progress`` at
most once per :data:`MIN_INTERVAL` per job (a handler reporting in a tight loop costs no
more than ten writes a second); an update that arrives sooner is held and written when
the interval has passed, so the last value reported always reaches the store. A fraction
of 1.0 is written at once. When the store answers that the lease is not current any
more (the job was canceled), the worker stops the job at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from asyncendpoints.job import Lease
from asyncendpoints.store.base import JobStore

log = logging.getLogger("asyncendpoints.worker")

MIN_INTERVAL = 0.1
"""Seconds between two progress writes of one job."""

_background: set[asyncio.Task[None]] = set()


class ProgressReporter:
    """Throttled progress writes for one lease (a :data:`ProgressSink`)."""

    __slots__ = ("_closed", "_last", "_lease", "_on_lost", "_pending", "_store", "_timer")

    def __init__(self, store: JobStore, lease: Lease, on_lost: Callable[[Lease], None]) -> None:
        self._store = store
        self._lease = lease
        self._on_lost = on_lost
        self._last = -MIN_INTERVAL
        self._pending: tuple[float, str | None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def __call__(self, fraction: float, message: str | None) -> None:
        if self._closed:
            return
        now = time.monotonic()
        wait = self._last + MIN_INTERVAL - now
        if wait > 0 and fraction < 1.0:
            self._pending = (fraction, message)
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(wait, self._flush_later)
            return
        self._cancel_timer()
        self._last = now
        await self._write(fraction, message)

    def close(self) -> None:
        """The job ended: drop any held update."""
        self._closed = True
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush_later(self) -> None:
        self._timer = None
        pending, self._pending = self._pending, None
        if pending is None or self._closed:
            return
        self._last = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._write(*pending))
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _write(self, fraction: float, message: str | None) -> None:
        lease = self._lease
        try:
            current = await self._store.report_progress(lease, fraction, message)
        except Exception as exc:
            log.warning(
                "could not store progress: %s",
                exc,
                extra={"job_id": lease.job_id, "job_name": lease.name},
            )
            return
        if not current and not self._closed:
            self._on_lost(lease)


__all__ = ["MIN_INTERVAL", "ProgressReporter"]
