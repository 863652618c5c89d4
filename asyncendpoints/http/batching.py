"""Group commit for submissions: jobs of one name submitted while the store is busy
storing the previous ones are stored together, with one ``create_many`` (one script call
on Redis).

Alone, a submission waits for nothing: it is sent at the end of the event-loop turn.
Under load, while one batch is on its way to the store, the next submissions of that
name gather, and go as the next batch as soon as it returns: batches grow with the load
(to at most :data:`MAX_BATCH`), and each job costs the store client a fraction of a
call (on Redis, a fraction of one round trip and one script run).

A batch is atomic: when the queue cannot take all of it, every job of the batch is
refused (429), as ``create_many`` does. Submissions with an idempotency key are not
batched (each is looked up and stored by itself).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from asyncendpoints.job import Job, NewJob
from asyncendpoints.manager import JobManager
from asyncendpoints.types import JobName

MAX_BATCH = 256
"""Jobs per store call at most."""

_Waiting = list[tuple[NewJob, "asyncio.Future[Job]"]]
_Key = tuple[asyncio.AbstractEventLoop, JobName]


@dataclass
class _Lane:
    """The submissions of one job name (in one event loop)."""

    waiting: _Waiting = field(default_factory=list)
    busy: bool = False
    """A batch is being stored, or one is scheduled to go at the end of this turn."""


class SubmitBatcher:
    """Stores concurrent submissions of one job name together (one batch in flight)."""

    def __init__(self, manager: JobManager, max_batch: int = MAX_BATCH) -> None:
        self.manager = manager
        self.max_batch = max_batch
        self._lanes: dict[_Key, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def create(self, job: NewJob) -> Job:
        """Store ``job`` (with the others that gather meanwhile); the stored job."""
        loop = asyncio.get_running_loop()
        key = (loop, job.name)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        future: asyncio.Future[Job] = loop.create_future()
        lane.waiting.append((job, future))
        if not lane.busy:
            lane.busy = True
            loop.call_soon(self._send_next, key, lane)
        return await future

    def _send_next(self, key: _Key, lane: _Lane) -> None:
        if not lane.waiting:
            lane.busy = False
            if self._lanes.get(key) is lane:
                del self._lanes[key]
            return
        batch = lane.waiting[: self.max_batch]
        del lane.waiting[: self.max_batch]
        task = key[0].create_task(self._send(key, lane, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, key: _Key, lane: _Lane, batch: _Waiting) -> None:
        """Store ``batch``; every one of its futures is resolved, whatever happens."""
        try:
            stored = await self.manager.create_many([job for job, _ in batch])
            if len(stored) != len(batch):
                raise RuntimeError(f"the store returned {len(stored)} jobs for {len(batch)}")
        except asyncio.CancelledError:  # the loop is closing: nothing more will be sent
            for _, future in [*batch, *lane.waiting]:
                future.cancel()
            lane.waiting.clear()
            self._send_next(key, lane)
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), job in zip(batch, stored, strict=True):
                if not future.done():
                    future.set_result(job)
        self._send_next(key, lane)


__all__ = ["MAX_BATCH", "SubmitBatcher"]
