"""The completion batcher: results of many jobs stored in one round trip.

A finished handler hands its result to :meth:`CompletionBatcher.add` and its slot is
free at once. One flusher task stores what is pending with ``store.complete_many``
(a single fenced script call on Redis): it wakes on the loop turn after the first
result arrives, so every job that finished in the same turn goes in the same call, and
while a call is in flight the next results pile up for the following one. So under load
a round trip carries up to ``max_batch`` completions, and an idle worker still stores a
lone result within a loop turn.

When the store is unreachable the batch is retried with a capped backoff; the leases
stay held (and heartbeated) meanwhile, so nothing is lost, and a result whose lease was
lost in the meantime is refused by the store's fencing and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from asyncendpoints.job import Lease
from asyncendpoints.store.base import JobStore
from asyncendpoints.types import JSONBytes

log = logging.getLogger("asyncendpoints.worker")

Item = tuple[Lease, JSONBytes]
ResultCallback = Callable[[Sequence[Item], Sequence[bool]], None]
ErrorCallback = Callable[[BaseException], None]


class CompletionBatcher:
    """Pipelines completions through ``store.complete_many``."""

    def __init__(
        self,
        store: JobStore,
        *,
        max_batch: int,
        on_result: ResultCallback,
        on_error: ErrorCallback | None = None,
        max_retry_delay: float = 2.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._on_result = on_result
        self._on_error = on_error
        self._max_retry_delay = max_retry_delay
        self._pending: list[Item] = []
        self._in_flight = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._give_up = False
        self.flushes = 0
        """Calls of ``complete_many`` made (the round trips spent on completions)."""

    @property
    def backlog(self) -> int:
        """Results handed over and not yet acknowledged by the store."""
        return len(self._pending) + self._in_flight

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, lease: Lease, result: JSONBytes) -> None:
        """Queue one result; it is stored on a following loop turn."""
        self._pending.append((lease, result))
        if len(self._pending) == 1:
            self._idle.clear()
            self._wakeup.set()

    async def close(self, timeout: float) -> bool:
        """Store what is pending (within ``timeout`` seconds), then stop.

        Returns False when results were left unstored (their leases will expire and the
        jobs will run again elsewhere).
        """
        flushed = True
        if self._task is not None and self.backlog:
            try:
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
            except TimeoutError:
                flushed = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not flushed:
            log.warning("%d results could not be stored before shutdown", len(self._pending))
        return flushed

    async def _run(self) -> None:
        pending = self._pending
        while True:
            if not pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = pending[: self._max_batch]
            del pending[: self._max_batch]
            self._in_flight = len(batch)
            try:
                await self._flush(batch)
            finally:
                self._in_flight = 0

    async def _flush(self, batch: list[Item]) -> None:
        delay = 0.05
        while True:
            try:
                done = await self._store.complete_many(batch)
            except Exception as exc:
                if self._on_error is not None:
                    self._on_error(exc)
                log.warning("could not store %d results (will retry): %s", len(batch), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
                continue
            self.flushes += 1
            self._on_result(batch, done)
            return


__all__ = ["CompletionBatcher"]
