"""Claiming in the Redis store: the CLAIM script's calls, and waiting for work by BLPOP.

:class:`RedisClaimer` is the part of :class:`~asyncendpoints.store.redis.RedisJobStore`
that hands jobs to workers (``claim``, ``wait_for_work``, ``wait_and_claim``); the store
delegates to it. Nothing here sleeps in a loop: an idle worker blocks in BLPOP on the
names' notify lists, which every create, release, promotion and recovery pushes to.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.commands.core import AsyncScript

from asyncendpoints.job import Claim, Lease
from asyncendpoints.store import scripts
from asyncendpoints.store.codec import claimed_job
from asyncendpoints.store.keys import KeySpace
from asyncendpoints.store.redis_io import (
    blocking_replies,
    blpop_timeout,
    call_script,
    checkin,
    checkout,
    ms,
)
from asyncendpoints.types import JobName, WorkerId

CHUNK = scripts.CHUNK
ClaimCall = tuple[JobName, tuple[list[str], list[Any]]]
"""One name's CLAIM call: the name, then the script's KEYS and ARGV."""


class RedisClaimer:
    """Claims for workers, by the CLAIM script; blocks for work by BLPOP.

    ``release`` puts back claims that nobody will run (an abandoned wait);
    ``reload_scripts`` loads the scripts again after a NOSCRIPT reply (a restarted Redis).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: KeySpace,
        *,
        timeout: float,
        release: Callable[[Sequence[Lease]], Awaitable[int]],
        reload_scripts: Callable[[], Awaitable[None]],
    ) -> None:
        self._client = client
        self.keys = keys
        self._timeout = timeout
        self._script: AsyncScript = client.register_script(scripts.CLAIM)
        self._release = release
        self._reload_scripts = reload_scripts
        self._turn = 0

    async def claim(
        self, worker_id: WorkerId, names: Sequence[JobName], *, count: int, lease_seconds: float
    ) -> list[Claim]:
        if count <= 0 or not names:
            return []
        self._turn = turn = (self._turn + 1) % len(names)  # no name starves the others
        claims: list[Claim] = []
        for name in [*names[turn:], *names[:turn]]:
            while (want := min(count - len(claims), CHUNK)) > 0:
                keys, args = self._call(worker_id, name, want, lease_seconds)
                reply = await call_script(self._client, self._script, keys, args)
                got = self._claims(name, worker_id, reply)
                claims += got
                if len(got) < want:
                    break
        return claims

    def _call(
        self, worker_id: WorkerId, name: JobName, count: int, lease_seconds: float
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of one CLAIM script call."""
        ks = self.keys
        keys = [ks.queue(name), ks.scheduled(name), ks.leases(name), ks.notify(name)]
        keys += [ks.seq(name), ks.job_prefix(name)]
        return keys, [worker_id, count, ms(lease_seconds), CHUNK]

    @staticmethod
    def _claims(name: JobName, worker_id: WorkerId, reply: list[Any]) -> list[Claim]:
        """The claims in a CLAIM script's reply: ``{now, {token, hash before}, ...}``."""
        now, *got = reply
        if not got:
            return []
        at = float(now)
        claims: list[Claim] = []
        for token, flat in got:
            job = claimed_job(flat, at, worker_id, token)
            claims.append(Claim(job, Lease(job.id, name, token, worker_id)))
        return claims

    def _claimed(
        self, worker_id: WorkerId, calls: list[ClaimCall], replies: list[Any]
    ) -> list[Claim]:
        return [
            c
            for (name, _), reply in zip(calls, replies, strict=True)
            for c in self._claims(name, worker_id, reply)
        ]

    async def wait_and_claim(
        self,
        worker_id: WorkerId,
        names: Sequence[JobName],
        *,
        count: int,
        lease_seconds: float,
        timeout: float,
    ) -> list[Claim]:
        """Block until work may be there, then claim, in ONE round trip after the wake-up.

        The CLAIM scripts are pipelined behind the BLPOP on the same connection, so Redis
        runs them the moment the BLPOP returns: a submit reaches an idle worker's handler
        after one wake-up, not a wake-up and a claim. Each name claims at most
        ``count // len(names)`` (at least 1), so the total never exceeds ``count``.
        """
        if count <= 0 or not names:
            return []
        block = min(timeout, await self._until_work(names))
        if block <= 0:
            return await self.claim(worker_id, names, count=count, lease_seconds=lease_seconds)
        share = max(1, min(CHUNK, count // len(names)))
        calls = [(name, self._call(worker_id, name, share, lease_seconds)) for name in names]
        commands: list[tuple[Any, ...]] = [
            ("BLPOP", *(self.keys.notify(name) for name in names), blpop_timeout(block))
        ]
        commands += [("EVALSHA", self._script.sha, len(ks), *ks, *av) for _, (ks, av) in calls]
        pool = self._client.connection_pool
        conn = await checkout(pool)
        try:
            await conn.send_packed_command(conn.pack_commands(commands))
            try:
                await conn.read_response(  # woken, or timed out
                    timeout=block + self._timeout, disconnect_on_error=False
                )
            except asyncio.CancelledError:
                # Redis still holds the BLPOP and runs the claims behind it when it ends:
                # end it now and put back what they claim, so no job is left stranded.
                await self._abandon(conn, worker_id, names, calls, block)
                raise
            replies = [await conn.read_response(timeout=self._timeout) for _ in calls]
        except rex.NoScriptError:  # Redis restarted and lost the scripts: load, claim again
            await conn.disconnect()
            await checkin(pool, conn)
            await self._reload_scripts()
            return await self.claim(worker_id, names, count=count, lease_seconds=lease_seconds)
        except BaseException:
            await conn.disconnect()  # replies may still come: never reuse it
            await checkin(pool, conn)
            raise
        claims = self._claimed(worker_id, calls, replies)
        await checkin(pool, conn)
        return claims

    async def _abandon(
        self,
        conn: Any,
        worker_id: WorkerId,
        names: Sequence[JobName],
        calls: list[ClaimCall],
        block: float,
    ) -> None:
        """End an abandoned wait: wake its BLPOP (a peer may take the token: then it ends
        by its own timeout), read the claims pipelined behind it and release them, so they
        go back to the front of their queues without counting an attempt."""
        try:
            await self._client.lpush(self.keys.notify(names[0]), b"1")
            await conn.read_response(timeout=block + self._timeout)
            replies = [await conn.read_response(timeout=self._timeout) for _ in calls]
            claims = self._claimed(worker_id, calls, replies)
            if claims:
                await self._release([claim.lease for claim in claims])
        except Exception:  # best effort: lease recovery takes over what is left
            await conn.disconnect()

    async def wait_for_work(self, names: Sequence[JobName], timeout: float) -> bool:
        if not names:
            return False
        until_due = await self._until_work(names)
        if until_due <= 0:
            return True  # queued already, or a Scheduled job is due (a claim promotes it)
        if timeout <= 0:
            return False
        block = min(timeout, until_due)
        woken = await self._blpop([self.keys.notify(name) for name in names], block)
        return woken or until_due <= timeout  # else: a Scheduled job fell due

    async def _until_work(self, names: Sequence[JobName]) -> float:
        """Seconds until a job of ``names`` is claimable: 0 when one is queued (or a
        Scheduled one is due), infinity when nothing is queued or scheduled."""
        pipe = self._client.pipeline(transaction=False)
        pipe.time()
        for name in names:
            pipe.llen(self.keys.queue(name))
            pipe.zrange(self.keys.scheduled(name), 0, 0, withscores=True)
        (sec, usec), *rest = await pipe.execute()
        if any(rest[0::2]):
            return 0.0
        due = [first[0][1] for first in rest[1::2] if first]
        if not due:
            return math.inf
        return max(0.0, float(min(due) - (sec * 1000 + usec / 1000)) / 1000)

    async def _blpop(self, keys: list[str], block: float) -> bool:
        command = ("BLPOP", *keys, blpop_timeout(block))
        [reply] = await blocking_replies(
            self._client, [command], block=block, timeout=self._timeout
        )
        return reply is not None


__all__ = ["RedisClaimer"]
