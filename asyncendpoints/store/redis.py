"""The Redis job store: every transition one Lua script (:mod:`.scripts`) of one hash slot.

Runs on a single Redis, Sentinel or Redis Cluster (every script's keys share the job
name's hash tag; ``wait_for_work`` on several names and the worker registry are the
exceptions: on Cluster, wait on one name per call). The client is redis-py asyncio with
a socket timeout on every command, so nothing hangs: an unreachable Redis raises
:class:`StoreUnavailableError` with the redis-py error chained. Scripts are loaded once
and run by EVALSHA (after a restart, a NOSCRIPT reply loads them again).
Semantics: :mod:`asyncendpoints.store.base`. Claiming and waiting for work live in
:mod:`.redis_claims`, the worker registry in :mod:`.redis_workers`, the connection-level
pieces in :mod:`.redis_io`; this module holds the rest of the transitions.

Where jobs go: a released job to the FRONT of its queue (it runs next); a promoted
(retry) or recovered job to the BACK, as a new job would (a job that kills its workers
does not block the queue). Create + claim + complete cost about 6-7 Redis commands per
job (``INFO commandstats``, batches' fixed costs amortized; tests/core/store).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from asyncendpoints.errors import (
    ConfigurationError,
    InvalidTransitionError,
    JobNotFoundError,
    QueueFullError,
    StaleLeaseError,
)
from asyncendpoints.job import (
    Claim,
    Job,
    JobError,
    JobStatus,
    Lease,
    NewJob,
    QueueStats,
    WorkerInfo,
    name_tag,
    tag_of,
    valid_job_id,
)
from asyncendpoints.settings import Settings
from asyncendpoints.store import keys as k
from asyncendpoints.store import scripts
from asyncendpoints.store.codec import (
    by_name,
    decode_job,
    job_from_fields,
    job_from_new,
    lease_member,
    new_job_args,
    plausible,
)
from asyncendpoints.store.keys import KeySpace
from asyncendpoints.store.redis_claims import RedisClaimer
from asyncendpoints.store.redis_io import Call, close_client, guard, make_client, ms, run_scripts
from asyncendpoints.store.redis_workers import RedisWorkerRegistry
from asyncendpoints.types import JobId, JobName, JSONBytes, WorkerId

CHUNK = scripts.CHUNK


class RedisJobStore:
    """A :class:`~asyncendpoints.store.base.JobStore` in Redis.

    A given ``client`` must not decode responses; the store closes only a client it made.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "ae",
        retention_seconds: float = 86_400.0,
        timeout: float = 5.0,
        max_connections: int = 64,
        client: aioredis.Redis | None = None,
    ) -> None:
        self.retention_seconds = retention_seconds
        self.keys = KeySpace(prefix)
        self._timeout = timeout
        self._owned = client is None
        self._client = client = client or make_client(url, timeout, max_connections)
        reg = client.register_script
        self._create = reg(scripts.CREATE)
        self._complete, self._fail = reg(scripts.COMPLETE), reg(scripts.FAIL)
        self._release, self._cancel = reg(scripts.RELEASE), reg(scripts.CANCEL)
        self._progress, self._heartbeat = reg(scripts.PROGRESS), reg(scripts.HEARTBEAT)
        self._promote = reg(scripts.PROMOTE)
        self._recover_expired = reg(scripts.RECOVER_EXPIRED)
        self._recover_worker = reg(scripts.RECOVER_WORKER)
        self._claimer = RedisClaimer(
            client,
            self.keys,
            timeout=timeout,
            release=self.release,
            reload_scripts=self.open_scripts,
        )
        self._registry = RedisWorkerRegistry(client, self.keys)
        self._opened = self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisJobStore:
        if settings.redis_url is None:
            raise ConfigurationError("the Redis store needs ASYNCENDPOINTS_REDIS_URL")
        return cls(
            str(settings.redis_url),
            prefix=settings.key_prefix,
            retention_seconds=settings.retention_seconds,
            timeout=settings.redis_timeout,
        )

    # --- connection ------------------------------------------------------------------
    @guard
    async def open(self) -> None:
        if not self._opened:
            await self.open_scripts()
            self._opened = True

    async def open_scripts(self) -> None:
        """Load every script (again: a restarted Redis forgets them)."""
        pipe = self._client.pipeline(transaction=False)
        for text in scripts.ALL.values():
            pipe.script_load(text)
        await pipe.execute()

    async def close(self) -> None:
        if self._owned and not self._closed:
            self._closed = True
            await close_client(self._client)

    @guard
    async def ping(self) -> None:
        await self._client.ping()

    async def _run(self, calls: list[Call]) -> list[Any]:
        return await run_scripts(self._client, calls)

    async def _per_name(
        self, names: Sequence[JobName], call: Callable[[JobName], Call]
    ) -> list[Any]:
        return await self._run([call(name) for name in names])

    # --- names -----------------------------------------------------------------------
    @guard
    async def register_names(self, names: Sequence[JobName]) -> None:
        if names:
            await self._client.execute_command("SADD", self.keys.names, *names)

    @guard
    async def names(self) -> list[JobName]:
        members = await self._client.execute_command("SMEMBERS", self.keys.names)
        return sorted(m.decode() for m in members)

    # --- create / read -----------------------------------------------------------------
    def _create_call(
        self, jobs: Sequence[NewJob], limit: int | None, now: float, idem: str | None = None
    ) -> Call:
        name, ks = jobs[0].name, self.keys
        keys = [ks.queue(name), ks.notify(name), ks.job_prefix(name)]
        args: list[Any] = [name, "" if limit is None else limit, "0", self._retention, repr(now)]
        for job in jobs:
            if tag_of(job.id) != name_tag(job.name):
                raise ValueError(f"job id {job.id!r} does not carry the tag of {job.name!r}")
            keys.append(ks.job(job.id))
            args += new_job_args(job)
        if idem is not None:
            keys.append(idem)
            args[2] = "1"
        return self._create, keys, args

    @property
    def _retention(self) -> int:
        return ms(self.retention_seconds)

    @guard
    async def create(
        self,
        job: NewJob,
        *,
        max_queue_size: int | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        idem = None
        if idempotency_key is not None:
            raw = f"{job.tenant or ''}\0{idempotency_key}".encode()
            idem = self.keys.idempotency(job.name, hashlib.sha256(raw).hexdigest())
        now = time.time()
        [reply] = await self._run([self._create_call([job], max_queue_size, now, idem)])
        if reply[0] == b"full":
            raise QueueFullError(job.name, max_queue_size or 0)
        return decode_job(reply[1]) if reply[0] == b"dup" else job_from_new(job, now)

    @guard
    async def create_many(
        self, jobs: Sequence[NewJob], *, max_queue_size: int | None = None
    ) -> list[Job]:
        """Atomic per name (each name has its own slot). With several names and a limit,
        every queue is checked first, so a full one normally stores nothing at all."""
        groups: dict[JobName, list[NewJob]] = {}
        for job in jobs:
            groups.setdefault(job.name, []).append(job)
        if max_queue_size is not None and len(groups) > 1:
            pipe = self._client.pipeline(transaction=False)
            for name in groups:
                pipe.llen(self.keys.queue(name))
            for (name, batch), length in zip(groups.items(), await pipe.execute(), strict=True):
                if length + len(batch) > max_queue_size:
                    raise QueueFullError(name, max_queue_size)
        now = time.time()
        replies = await self._run(
            [self._create_call(b, max_queue_size, now) for b in groups.values()]
        )
        for name, reply in zip(groups, replies, strict=True):
            if reply[0] == b"full":
                raise QueueFullError(name, max_queue_size or 0)
        return [job_from_new(job, now) for job in jobs]

    @guard
    async def get(self, job_id: JobId) -> Job:
        if not valid_job_id(job_id):
            raise JobNotFoundError(job_id)  # no Redis call for a malformed id
        raw = await self._client.execute_command("HGETALL", self.keys.job(job_id))
        if not raw:
            raise JobNotFoundError(job_id)
        return job_from_fields({key.decode(): value for key, value in raw.items()})

    # --- claiming: :class:`RedisClaimer` ---------------------------------------------------
    @guard
    async def claim(
        self, worker_id: WorkerId, names: Sequence[JobName], *, count: int, lease_seconds: float
    ) -> list[Claim]:
        return await self._claimer.claim(worker_id, names, count=count, lease_seconds=lease_seconds)

    @guard
    async def wait_and_claim(
        self,
        worker_id: WorkerId,
        names: Sequence[JobName],
        *,
        count: int,
        lease_seconds: float,
        timeout: float,
    ) -> list[Claim]:
        return await self._claimer.wait_and_claim(
            worker_id, names, count=count, lease_seconds=lease_seconds, timeout=timeout
        )

    @guard
    async def wait_for_work(self, names: Sequence[JobName], timeout: float) -> bool:
        return await self._claimer.wait_for_work(names, timeout)

    @guard
    async def heartbeat(self, leases: Sequence[Lease], lease_seconds: float) -> list[Lease]:
        groups = by_name([(lease, None) for lease in leases], CHUNK)
        calls: list[Call] = [
            (self._heartbeat, [self.keys.leases(name)], [ms(lease_seconds)]) for name, _ in groups
        ]
        for (_, group), (_, _, args) in zip(groups, calls, strict=True):
            args += [lease_member(lease) for _, lease, _ in group]
        lost = {i for i, lease in enumerate(leases) if not plausible(lease)}
        for (_, group), reply in zip(groups, await self._run(calls), strict=True):
            lost.update(group[j - 1][0] for j in reply)
        return [leases[i] for i in sorted(lost)]

    # --- finishing -----------------------------------------------------------------------
    @guard
    async def complete(self, lease: Lease, result: JSONBytes) -> None:
        if not (await self.complete_many([(lease, result)]))[0]:
            raise StaleLeaseError(lease.job_id, lease.token)

    @guard
    async def complete_many(self, items: Sequence[tuple[Lease, JSONBytes]]) -> list[bool]:
        done = [False] * len(items)
        groups = by_name(items, CHUNK)
        calls: list[Call] = []
        for name, group in groups:
            keys = [self.keys.leases(name), self.keys.stats(name)]
            keys += [self.keys.job(lease.job_id) for _, lease, _ in group]
            args = [self._retention, *(x for _, ls, res in group for x in (lease_member(ls), res))]
            calls.append((self._complete, keys, args))
        for (_, group), reply in zip(groups, await self._run(calls), strict=True):
            for (i, _, _), ok in zip(group, reply, strict=True):
                done[i] = ok == 1
        return done

    @guard
    async def fail(self, lease: Lease, error: JobError, *, retry_delay: float | None) -> JobStatus:
        if not plausible(lease):
            raise StaleLeaseError(lease.job_id, lease.token)
        ks, name = self.keys, lease.name
        keys = [ks.leases(name), ks.scheduled(name), ks.stats(name), ks.job(lease.job_id)]
        delay = "" if retry_delay is None else max(0, int(retry_delay * 1000))
        args = [lease_member(lease), lease.job_id, error.to_json(), delay, self._retention]
        reply = await self._fail(keys=keys, args=args)
        if reply == b"stale":
            raise StaleLeaseError(lease.job_id, lease.token)
        return JobStatus(reply.decode())

    @guard
    async def release(self, leases: Sequence[Lease]) -> int:
        calls: list[Call] = []
        for name, group in by_name([(lease, None) for lease in leases], CHUNK):
            keys = [self.keys.leases(name), self.keys.queue(name), self.keys.notify(name)]
            keys += [self.keys.job(lease.job_id) for _, lease, _ in group]
            args = [x for _, lease, _ in group for x in (lease_member(lease), lease.job_id)]
            calls.append((self._release, keys, args))
        return sum(await self._run(calls))

    @guard
    async def cancel(self, job_id: JobId) -> Job:
        if not valid_job_id(job_id):
            raise JobNotFoundError(job_id)
        key = self.keys.job(job_id)
        raw = await self._client.execute_command("HGET", key, k.F_NAME)  # it never changes
        if raw is None:
            raise JobNotFoundError(job_id)
        name, ks = raw.decode(), self.keys
        keys = [key, ks.queue(name), ks.scheduled(name), ks.leases(name), ks.stats(name)]
        reply = await self._cancel(keys=keys, args=[job_id, self._retention])
        if reply[0] == b"missing":
            raise JobNotFoundError(job_id)
        if reply[0] == b"invalid":
            raise InvalidTransitionError(job_id, reply[1].decode(), JobStatus.CANCELED.value)
        return decode_job(reply[1])

    @guard
    async def report_progress(self, lease: Lease, fraction: float, message: str | None) -> bool:
        if not plausible(lease):
            return False
        keys = [self.keys.leases(lease.name), self.keys.job(lease.job_id)]
        value = repr(min(1.0, max(0.0, float(fraction))))
        args = [lease_member(lease), value, message or "", "0" if message is None else "1"]
        return bool(await self._progress(keys=keys, args=args) == 1)

    # --- time-driven moves ----------------------------------------------------------------
    def _promote_call(self, name: JobName) -> Call:
        ks = self.keys
        keys = [ks.scheduled(name), ks.queue(name), ks.notify(name), ks.job_prefix(name)]
        return self._promote, keys, [CHUNK]

    def _recover_keys(self, name: JobName) -> list[str]:
        ks = self.keys
        return [
            ks.leases(name),
            ks.queue(name),
            ks.notify(name),
            ks.stats(name),
            ks.job_prefix(name),
        ]

    def _expired_call(self, name: JobName) -> Call:
        return self._recover_expired, self._recover_keys(name), [self._retention, CHUNK]

    @guard
    async def promote_due(self, names: Sequence[JobName]) -> int:
        total, todo = 0, list(names)
        while todo:  # at most CHUNK per name and call
            moved = await self._per_name(todo, self._promote_call)
            total += sum(moved)
            todo = [name for name, n in zip(todo, moved, strict=True) if n >= CHUNK]
        return total

    @guard
    async def recover_expired(self, names: Sequence[JobName]) -> list[JobId]:
        out: list[JobId] = []
        todo = list(names)
        while todo:  # at most CHUNK leases per name and call
            replies = await self._per_name(todo, self._expired_call)
            out += [job_id.decode() for reply in replies for job_id in reply[1:]]
            todo = [name for name, r in zip(todo, replies, strict=True) if r[0] >= CHUNK]
        return out

    @guard
    async def recover_worker(self, worker_id: WorkerId, names: Sequence[JobName]) -> list[JobId]:
        args = [self._retention, worker_id]
        replies = await self._per_name(
            names, lambda name: (self._recover_worker, self._recover_keys(name), args)
        )
        return [job_id.decode() for reply in replies for job_id in reply]

    # --- numbers ----------------------------------------------------------------
    @guard
    async def stats(self, name: JobName) -> QueueStats:
        pipe, ks = self._client.pipeline(transaction=False), self.keys
        pipe.llen(ks.queue(name))
        pipe.zcard(ks.scheduled(name))
        pipe.zcard(ks.leases(name))
        pipe.hmget(ks.stats(name), [k.S_COMPLETED, k.S_FAILED, k.S_CANCELED])
        queued, scheduled, running, counters = await pipe.execute()
        done, failed, canceled = (int(c or 0) for c in counters)
        return QueueStats(name, queued, scheduled, running, done, failed, canceled)

    # --- workers: :class:`RedisWorkerRegistry` --------------------------------------------
    @guard
    async def register_worker(self, info: WorkerInfo, ttl: float) -> None:
        await self._registry.register(info, ttl)

    @guard
    async def unregister_worker(self, worker_id: WorkerId) -> None:
        await self._registry.unregister(worker_id)

    @guard
    async def workers(self) -> list[WorkerInfo]:
        return await self._registry.workers()

    @guard
    async def dead_workers(self, names: Sequence[JobName]) -> list[WorkerId]:
        return await self._registry.dead(names)


__all__ = ["RedisJobStore"]
