"""The worker's two periodic duties besides running jobs.

* :class:`Heartbeat`: every ``heartbeat_seconds``, extend the leases of every job this
  worker holds and refresh its registration (TTL three heartbeats). The leases the store
  reports lost (the job was canceled, or recovered after this worker looked dead) are
  handed back so the worker stops those jobs at once.
* :class:`Recovery`: every ``recovery_seconds`` (with jitter, so a fleet does not sweep
  in step), put back the jobs whose lease expired and the jobs of workers whose
  registration expired. Each store call is atomic, so any number of workers (and the
  controller) may sweep at the same time.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Sequence

from asyncendpoints.job import Lease, WorkerInfo
from asyncendpoints.store.base import JobStore
from asyncendpoints.types import JobName, WorkerId

log = logging.getLogger("asyncendpoints.worker")

ErrorCallback = Callable[[BaseException], None]


class Heartbeat:
    """Lease renewal and worker registration."""

    def __init__(
        self,
        store: JobStore,
        *,
        interval: float,
        lease_seconds: float,
        leases: Callable[[], Iterable[Lease]],
        info: Callable[[], WorkerInfo],
        on_lost: Callable[[Lease], None],
        on_error: ErrorCallback | None = None,
    ) -> None:
        self.store = store
        self.interval = interval
        self.lease_seconds = lease_seconds
        self.ttl = 3 * interval
        self._leases = leases
        self._info = info
        self._on_lost = on_lost
        self._on_error = on_error
        self.beats = 0

    async def register(self) -> None:
        await self.store.register_worker(self._info(), ttl=self.ttl)

    async def beat(self) -> int:
        """Extend the leases and re-register; returns how many leases were lost."""
        leases = list(self._leases())
        lost: list[Lease] = []
        if leases:
            lost = await self.store.heartbeat(leases, self.lease_seconds)
            for lease in lost:
                self._on_lost(lease)
        await self.register()
        self.beats += 1
        return len(lost)

    async def run(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.beat()
            except Exception as exc:
                if self._on_error is not None:
                    self._on_error(exc)
                if not failing:
                    log.warning("heartbeat failed (leases not extended): %s", exc)
                failing = True
            else:
                if failing:
                    log.info("heartbeat restored")
                failing = False


class Recovery:
    """Sweeps expired leases and dead workers' jobs back into their queues."""

    def __init__(
        self,
        store: JobStore,
        *,
        names: Sequence[JobName],
        interval: float,
        own_id: WorkerId,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self.store = store
        self.names = list(names)
        self.interval = interval
        self.own_id = own_id
        self._on_error = on_error
        self.recovered = 0

    async def sweep(self) -> list[str]:
        """One pass; returns the recovered job ids."""
        recovered = list(await self.store.recover_expired(self.names))
        if recovered:
            log.info("recovered jobs whose lease expired", extra={"jobs": len(recovered)})
        for dead in await self.store.dead_workers(self.names):
            if dead == self.own_id:
                continue
            ids = await self.store.recover_worker(dead, self.names)
            if ids:
                log.info(
                    "recovered the jobs of a dead worker",
                    extra={"dead_worker": dead, "jobs": len(ids)},
                )
            recovered.extend(ids)
        self.recovered += len(recovered)
        return recovered

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0.0, self.interval))
        while True:
            try:
                await self.sweep()
            except Exception as exc:
                if self._on_error is not None:
                    self._on_error(exc)
                log.warning("recovery sweep failed: %s", exc)
            await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))


__all__ = ["Heartbeat", "Recovery"]
