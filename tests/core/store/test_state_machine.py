"""Random operation sequences on a store and on a small pure model of the lifecycle.

After every step each job's status and retry count equal the model's, every status
change the store shows is allowed by ``lifecycle.TRANSITIONS``, and the per-name counts
agree. The model keeps the queue as groups: a job enqueued or released is a group of
one; jobs promoted or recovered together form one group whose inner order is not
specified (equal due times, a set of leases).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncendpoints.errors import InvalidTransitionError, StaleLeaseError
from asyncendpoints.job import JobError, JobStatus, Lease, NewJob
from asyncendpoints.lifecycle import CANCELABLE, TRANSITIONS
from asyncendpoints.store.base import JobStore
from asyncendpoints.store.memory import InMemoryJobStore
from asyncendpoints.store.redis import RedisJobStore
from tests.core.store.conftest import NAME, delete_prefix

Q, S, P = JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.IN_PROGRESS
C, F, X = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED
BOOM = JobError("RuntimeError", "boom")
WORKERS = ("w1", "w2")


@dataclass
class Modeled:
    id: str
    max_retries: int
    status: JobStatus = Q
    retry: int = 0
    worker: str | None = None
    lease: Lease | None = None  # the current lease (InProgress only)
    last_lease: Lease | None = None  # the latest lease ever handed out
    due: bool = False  # Scheduled and already due (retry delay 0)


@dataclass
class Model:
    jobs: list[Modeled] = field(default_factory=list)
    queue: list[set[str]] = field(default_factory=list)
    via: dict[str, JobStatus] = field(default_factory=dict)  # passed through in one step

    def by_id(self, job_id: str) -> Modeled:
        return next(job for job in self.jobs if job.id == job_id)

    def enqueue(self, ids: list[str], *, front: bool = False) -> None:
        if ids:
            self.queue.insert(0, set(ids)) if front else self.queue.append(set(ids))

    def unqueue(self, job_id: str) -> None:
        for group in self.queue:
            group.discard(job_id)
        self.queue = [group for group in self.queue if group]

    def promote(self) -> int:
        due = [job for job in self.jobs if job.status is S and job.due]
        for job in due:
            job.status, job.due = Q, False
            self.via[job.id] = Q  # a claim may take it on at once: Scheduled -> Queued -> ...
        self.enqueue([job.id for job in due])
        return len(due)

    def count(self, status: JobStatus) -> int:
        return sum(job.status is status for job in self.jobs)


OPS = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 2)),
    st.tuples(st.just("create"), st.integers(0, 2)),
    st.tuples(st.just("claim"), st.sampled_from(WORKERS), st.integers(1, 3)),
    st.tuples(st.just("claim"), st.sampled_from(WORKERS), st.just(1)),
    st.tuples(st.just("complete"), st.integers(0, 50)),
    st.tuples(st.just("fail"), st.integers(0, 50), st.sampled_from([None, 0.0, 60.0])),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("release"), st.integers(0, 50)),
    st.tuples(st.just("recover_worker"), st.sampled_from(WORKERS)),
    st.tuples(st.just("promote")),
)


async def step(store: JobStore, model: Model, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "create":
        made = await store.create(NewJob.build(NAME, b"{}", max_retries=op[1]))
        model.jobs.append(Modeled(made.id, op[1]))
        model.enqueue([made.id])
        return
    if kind == "claim":
        model.promote()
        got = await store.claim(op[1], [NAME], count=op[2], lease_seconds=60)
        assert len(got) == min(op[2], sum(len(group) for group in model.queue))
        ids = [claim.job.id for claim in got]
        while ids:  # claimed oldest first: each group's jobs before the next group's
            group = model.queue[0]
            take, ids = ids[: len(group)], ids[len(group) :]
            assert set(take) <= group and len(set(take)) == len(take)
            group -= set(take)
            if not group:
                model.queue.pop(0)
        for claim in got:
            held = model.by_id(claim.job.id)
            previous = held.last_lease.token if held.last_lease else 0
            assert claim.lease.token > previous
            held.status, held.worker, held.lease = P, op[1], claim.lease
            held.last_lease = claim.lease
        return
    if kind == "recover_worker":
        mine = [job for job in model.jobs if job.status is P and job.worker == op[1]]
        recovered = await store.recover_worker(op[1], [NAME])
        assert sorted(recovered) == sorted(job.id for job in mine)
        for job in mine:
            job.lease = None
            if job.retry >= job.max_retries:
                job.status = F
            else:
                job.status, job.retry, job.worker = Q, job.retry + 1, None
        model.enqueue([job.id for job in mine if job.status is Q])
        return
    if kind == "promote":
        assert await store.promote_due([NAME]) == model.promote()
        return
    if not model.jobs:
        return
    job = model.jobs[op[1] % len(model.jobs)]
    if kind == "cancel":
        if job.status in CANCELABLE:
            assert (await store.cancel(job.id)).status is X
            model.unqueue(job.id)
            job.status, job.lease = X, None
        else:
            with pytest.raises(InvalidTransitionError):
                await store.cancel(job.id)
        return
    # lease operations pick a job that holds a lease: even index, a current one; odd,
    # any job ever claimed (its lease may be stale)
    holders = [j for j in model.jobs if j.lease is not None] if op[1] % 2 == 0 else []
    holders = holders or [j for j in model.jobs if j.last_lease is not None]
    if not holders:
        return
    job = holders[op[1] // 2 % len(holders)]
    lease = job.last_lease
    assert lease is not None
    current = job.lease == lease
    if kind == "complete":
        assert await store.complete_many([(lease, b"1")]) == [current]
        if current:
            job.status, job.lease = C, None
    elif kind == "release":
        assert await store.release([lease]) == int(current)
        if current:
            job.status, job.lease, job.worker = Q, None, None
            model.enqueue([job.id], front=True)
    elif kind == "fail":
        delay = op[2]
        if not current:
            with pytest.raises(StaleLeaseError):
                await store.fail(lease, BOOM, retry_delay=delay)
            return
        status = await store.fail(lease, BOOM, retry_delay=delay)
        job.lease = None
        if delay is None or job.retry >= job.max_retries:
            job.status = F
        else:
            job.status, job.retry, job.due = S, job.retry + 1, delay == 0.0
        assert status is job.status


async def check(store: JobStore, model: Model, seen: dict[str, JobStatus]) -> None:
    for job in model.jobs:
        stored = await store.get(job.id)
        assert (stored.status, stored.retry_count) == (job.status, job.retry), job
        chain = [seen.get(job.id), model.via.pop(job.id, None), stored.status]
        path = [status for status in chain if status is not None]
        for before, after in itertools.pairwise(path):
            if before is not after:
                assert after in TRANSITIONS[before], (before, after)
        seen[job.id] = stored.status
    stats = await store.stats(NAME)
    assert (stats.queued, stats.scheduled, stats.in_progress) == (
        model.count(Q),
        model.count(S),
        model.count(P),
    )


async def run(make: Callable[[], Awaitable[JobStore]], ops: list[tuple[Any, ...]]) -> None:
    store = await make()
    try:
        model, seen = Model(), dict[str, JobStatus]()
        for op in ops:
            await step(store, model, op)
            await check(store, model, seen)
    finally:
        await store.close()


@pytest.mark.parametrize("kind", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_store_follows_the_model(kind: str, request: pytest.FixtureRequest) -> None:
    url: str | None = request.getfixturevalue("redis_url") if kind == "redis" else None

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(OPS, min_size=4, max_size=30))
    def example(ops: list[tuple[Any, ...]]) -> None:
        if url is None:

            async def make() -> JobStore:
                return InMemoryJobStore()

            asyncio.run(run(make, ops))
            return
        prefix = f"sm{uuid.uuid4().hex[:10]}"

        async def make_redis() -> JobStore:
            store = RedisJobStore(url, prefix=prefix)
            await store.open()
            return store

        async def run_and_clean() -> None:
            try:
                await run(make_redis, ops)
            finally:
                await delete_prefix(url, prefix)

        asyncio.run(run_and_clean())

    example()
