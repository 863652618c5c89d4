"""The job store contract (``asyncendpoints/store/base.py``), line by line, on both stores."""

from __future__ import annotations

import asyncio
import time

import pytest

from asyncendpoints.errors import (
    InvalidTransitionError,
    JobNotFoundError,
    QueueFullError,
    StaleLeaseError,
)
from asyncendpoints.job import Claim, HttpContext, JobError, JobStatus, NewJob, WorkerInfo
from asyncendpoints.store.base import JobStore
from tests.core.store.conftest import NAME, OTHER, StoreKit

BOOM = JobError("ValueError", "boom")


def new(name: str = NAME, payload: bytes = b'{"n":1}', **kw: object) -> NewJob:
    return NewJob.build(name, payload, **kw)  # type: ignore[arg-type]


async def claim_one(store: JobStore, worker: str = "w1", lease: float = 30.0) -> Claim:
    [got] = await store.claim(worker, [NAME], count=1, lease_seconds=lease)
    return got


# --- create / get ------------------------------------------------------------------------


async def test_create_stores_a_queued_job_that_get_returns(store: JobStore) -> None:
    ctx = HttpContext({"x-trace": "1"}, {"region": "eu"}, {"q": "2"})
    before = time.time()
    job = await store.create(
        new(payload=b'{"month":"2024-05"}', max_retries=5, timeout=12.5, context=ctx, tenant="t1")
    )
    assert job.status is JobStatus.QUEUED
    got = await store.get(job.id)
    assert got == job
    assert got.payload == b'{"month":"2024-05"}'
    assert (got.name, got.max_retries, got.timeout, got.tenant) == (NAME, 5, 12.5, "t1")
    assert got.context == ctx
    assert got.retry_count == 0 and got.token == 0 and got.worker_id is None
    assert got.started_at is None and got.completed_at is None and got.result is None
    assert abs(got.created_at - before) < 5 and got.last_updated_at == got.created_at


async def test_get_unknown_id_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError):
        await store.get(new().id)


async def test_queue_full_raises_and_stores_nothing(store: JobStore) -> None:
    await store.create(new(), max_queue_size=2)
    await store.create(new(), max_queue_size=2)
    third = new()
    with pytest.raises(QueueFullError) as caught:
        await store.create(third, max_queue_size=2)
    assert caught.value.limit == 2 and caught.value.name == NAME
    with pytest.raises(JobNotFoundError):
        await store.get(third.id)
    assert (await store.stats(NAME)).queued == 2
    # an idempotent create refused as full leaves no key behind: it can succeed later
    with pytest.raises(QueueFullError):
        await store.create(new(), max_queue_size=2, idempotency_key="k")
    await store.claim("w", [NAME], count=1, lease_seconds=30)
    made = await store.create(new(), max_queue_size=2, idempotency_key="k")
    assert (await store.get(made.id)).status is JobStatus.QUEUED


async def test_create_many_is_all_or_nothing(store: JobStore) -> None:
    await store.create(new())
    batch = [new() for _ in range(3)]
    with pytest.raises(QueueFullError):
        await store.create_many(batch, max_queue_size=3)
    for job in batch:
        with pytest.raises(JobNotFoundError):
            await store.get(job.id)
    assert (await store.stats(NAME)).queued == 1
    made = await store.create_many(batch, max_queue_size=4)
    assert [j.id for j in made] == [j.id for j in batch]
    assert all(j.status is JobStatus.QUEUED for j in made)
    assert (await store.stats(NAME)).queued == 4


async def test_create_many_over_names_checks_every_queue(store: JobStore) -> None:
    await store.create(new(OTHER))
    batch = [new(NAME), new(OTHER)]
    with pytest.raises(QueueFullError):
        await store.create_many(batch, max_queue_size=1)
    assert (await store.stats(NAME)).queued == 0
    assert (await store.stats(OTHER)).queued == 1


async def test_idempotency_key_returns_the_first_job(store: JobStore) -> None:
    first = await store.create(new(tenant="a"), idempotency_key="order-1")
    again = await store.create(new(tenant="a"), idempotency_key="order-1")
    assert again.id == first.id
    assert (await store.stats(NAME)).queued == 1
    other_tenant = await store.create(new(tenant="b"), idempotency_key="order-1")
    other_key = await store.create(new(tenant="a"), idempotency_key="order-2")
    assert len({first.id, other_tenant.id, other_key.id}) == 3
    assert (await store.stats(NAME)).queued == 3


# --- claim ------------------------------------------------------------------------------


async def test_claim_is_fifo_and_sets_the_lease(store: JobStore) -> None:
    jobs = [await store.create(new(payload=f'{{"i":{i}}}'.encode())) for i in range(5)]
    first = await store.claim("w1", [NAME], count=2, lease_seconds=30)
    rest = await store.claim("w2", [NAME], count=10, lease_seconds=30)
    assert [c.job.id for c in first + rest] == [j.id for j in jobs]
    assert await store.claim("w3", [NAME], count=10, lease_seconds=30) == []
    for c in first:
        assert c.job.status is JobStatus.IN_PROGRESS and c.job.worker_id == "w1"
        assert c.lease.worker_id == "w1" and c.lease.job_id == c.job.id and c.lease.name == NAME
        assert c.job.token == c.lease.token > 0 and c.job.started_at is not None
        assert c.job.payload == next(j.payload for j in jobs if j.id == c.job.id)
        stored = await store.get(c.job.id)
        assert stored.status is JobStatus.IN_PROGRESS
        assert (stored.worker_id, stored.token) == ("w1", c.lease.token)
    stats = await store.stats(NAME)
    assert (stats.queued, stats.in_progress) == (0, 5)


async def test_claim_of_nothing_returns_at_once(store: JobStore) -> None:
    started = time.monotonic()
    assert await store.claim("w", [NAME, OTHER], count=10, lease_seconds=30) == []
    assert time.monotonic() - started < 0.5


async def test_claim_serves_several_names(store: JobStore) -> None:
    a, b = await store.create(new(NAME)), await store.create(new(OTHER))
    got = await store.claim("w", [NAME, OTHER], count=10, lease_seconds=30)
    assert sorted(c.job.id for c in got) == sorted([a.id, b.id])
    assert {c.lease.name for c in got} == {NAME, OTHER}


async def test_tokens_strictly_increase(store: JobStore) -> None:
    await store.create(new(max_retries=5))
    first = await claim_one(store)
    assert await store.release([first.lease]) == 1
    second = await claim_one(store)
    await store.recover_worker("w1", [NAME])
    third = await claim_one(store)
    assert first.lease.token < second.lease.token < third.lease.token


async def test_concurrent_claims_never_share_a_job(kit: StoreKit, store: JobStore) -> None:
    await store.create_many([new() for _ in range(60)])
    peers = [await kit.peer(store) for _ in range(4)]
    results = await asyncio.gather(
        *(p.claim(f"w{i}", [NAME], count=7, lease_seconds=30) for i, p in enumerate(peers * 3))
    )
    ids = [c.job.id for batch in results for c in batch]
    assert len(ids) == len(set(ids)) == 60


# --- waiting ------------------------------------------------------------------------------


async def test_wait_for_work_wakes_on_create(store: JobStore) -> None:
    assert await store.claim("w", [NAME], count=1, lease_seconds=30) == []
    waiter = asyncio.create_task(store.wait_for_work([OTHER, NAME], timeout=10))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    started = time.monotonic()
    await store.create(new())
    assert await asyncio.wait_for(waiter, 5) is True
    assert time.monotonic() - started < 1.0


async def test_wait_and_claim_blocks_then_claims_the_new_job(store: JobStore) -> None:
    assert await store.claim("w", [NAME], count=1, lease_seconds=30) == []
    waiter = asyncio.create_task(
        store.wait_and_claim("w", [NAME], count=5, lease_seconds=30, timeout=10)
    )
    await asyncio.sleep(0.2)
    assert not waiter.done()  # blocked, not polling
    job = await store.create(new())
    claims = await asyncio.wait_for(waiter, 5)
    assert [c.job.id for c in claims] == [job.id]
    assert claims[0].job.status is JobStatus.IN_PROGRESS
    assert (await store.get(job.id)).worker_id == "w"


async def test_wait_and_claim_never_takes_more_than_count(store: JobStore) -> None:
    for _ in range(4):
        await store.create(new(OTHER))
    for _ in range(4):
        await store.create(new())
    claims = await store.wait_and_claim("w", [OTHER, NAME], count=3, lease_seconds=30, timeout=5)
    assert 1 <= len(claims) <= 3
    assert len({c.job.id for c in claims}) == len(claims)


async def test_a_cancelled_wait_and_claim_strands_no_job(store: JobStore) -> None:
    waiter = asyncio.create_task(
        store.wait_and_claim("w", [NAME], count=5, lease_seconds=30, timeout=5)
    )
    await asyncio.sleep(0.2)
    waiter.cancel()
    job = await store.create(new())  # races with the cancellation, as a shutdown would
    with pytest.raises(asyncio.CancelledError):
        await waiter
    current = await store.get(job.id)
    assert current.status is JobStatus.QUEUED
    assert current.retry_count == 0
    [again] = await store.claim("w2", [NAME], count=5, lease_seconds=30)
    assert again.job.id == job.id


async def test_wait_and_claim_times_out_empty(store: JobStore) -> None:
    started = time.monotonic()
    assert await store.wait_and_claim("w", [NAME], count=5, lease_seconds=30, timeout=0.3) == []
    assert 0.25 <= time.monotonic() - started < 2.0


async def test_wait_for_work_times_out_with_false(store: JobStore) -> None:
    started = time.monotonic()
    assert await store.wait_for_work([NAME], timeout=0.3) is False
    assert 0.25 <= time.monotonic() - started < 2.0


async def test_wait_for_work_returns_at_once_when_work_is_queued(store: JobStore) -> None:
    await store.create(new())
    started = time.monotonic()
    assert await store.wait_for_work([OTHER, NAME], timeout=10) is True
    assert time.monotonic() - started < 0.5


async def test_wait_for_work_without_time_does_not_block(store: JobStore) -> None:
    await store.create(new())
    claimed = await claim_one(store)
    await store.fail(claimed.lease, BOOM, retry_delay=60)  # Scheduled, not due
    started = time.monotonic()
    assert await store.wait_for_work([NAME], timeout=0) is False
    assert time.monotonic() - started < 0.5


async def test_wait_for_work_returns_when_a_scheduled_job_falls_due(store: JobStore) -> None:
    await store.create(new())
    claimed = await claim_one(store)
    assert await store.fail(claimed.lease, BOOM, retry_delay=0.5) is JobStatus.SCHEDULED
    started, rounds, woke = time.monotonic(), 0, []
    while not (got := await store.claim("w2", [NAME], count=1, lease_seconds=30)):
        rounds += 1  # a worker's loop: claim, and wait only when nothing was claimable
        woke.append(await store.wait_for_work([NAME], timeout=10))
    assert 0.4 <= time.monotonic() - started < 3.0
    assert woke[-1] is True  # the due job counts as work, not as a timeout
    assert rounds <= 3  # blocked until due (spurious wake-ups allowed, polling not)
    assert got[0].job.id == claimed.job.id and got[0].job.retry_count == 1


# --- heartbeat ----------------------------------------------------------------------------


async def test_heartbeat_extends_current_leases(store: JobStore) -> None:
    await store.create(new())
    claimed = await claim_one(store, lease=1.0)
    for _ in range(3):
        await asyncio.sleep(0.5)
        assert await store.heartbeat([claimed.lease], 1.0) == []
    assert await store.recover_expired([NAME]) == []
    assert (await store.get(claimed.job.id)).status is JobStatus.IN_PROGRESS


async def test_heartbeat_returns_leases_lost_to_cancel_and_recovery(store: JobStore) -> None:
    await store.create_many([new(), new(), new()])
    a, b, c = await store.claim("w1", [NAME], count=3, lease_seconds=30)
    await store.cancel(a.job.id)
    await store.recover_worker("w1", [NAME])  # takes b and c
    c2 = await claim_one(store, worker="w2")
    lost = await store.heartbeat([a.lease, b.lease, c2.lease, c.lease], 30)
    assert lost == [a.lease, b.lease, c.lease]


# --- complete -----------------------------------------------------------------------------


async def test_complete_stores_the_result(store: JobStore) -> None:
    job = await store.create(new())
    claimed = await claim_one(store)
    await store.complete(claimed.lease, b'{"url":"s3://x"}')
    done = await store.get(job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.result == b'{"url":"s3://x"}' and done.error is None
    assert done.completed_at is not None and done.completed_at >= (claimed.job.started_at or 0)
    assert (await store.stats(NAME)).in_progress == 0


async def test_complete_with_a_stale_lease_changes_nothing(store: JobStore) -> None:
    job = await store.create(new())
    claimed = await claim_one(store)
    wrong = claimed.lease.__class__(job.id, NAME, claimed.lease.token + 1, "w1")
    with pytest.raises(StaleLeaseError):
        await store.complete(wrong, b'"forged"')
    assert (await store.get(job.id)).status is JobStatus.IN_PROGRESS
    await store.complete(claimed.lease, b'"first"')
    with pytest.raises(StaleLeaseError):
        await store.complete(claimed.lease, b'"second"')
    assert await store.complete_many([(claimed.lease, b'"third"')]) == [False]
    done = await store.get(job.id)
    assert done.result == b'"first"' and done.status is JobStatus.COMPLETED
    assert (await store.stats(NAME)).completed == 1


async def test_complete_many_reports_each_item(store: JobStore) -> None:
    await store.create_many([new(), new(), new(OTHER)])
    got = await store.claim("w", [NAME, OTHER], count=3, lease_seconds=30)
    await store.cancel(got[1].job.id)
    items = [(c.lease, f'"{c.job.id}"'.encode()) for c in got]
    assert await store.complete_many(items) == [True, False, True]
    for c, ok in zip(got, [True, False, True], strict=True):
        job = await store.get(c.job.id)
        assert job.status is (JobStatus.COMPLETED if ok else JobStatus.CANCELED)
        assert job.result == (f'"{c.job.id}"'.encode() if ok else None)


# --- fail ----------------------------------------------------------------------------------


async def test_fail_with_delay_schedules_then_promote_queues(store: JobStore) -> None:
    job = await store.create(new(max_retries=2))
    claimed = await claim_one(store)
    assert await store.fail(claimed.lease, BOOM, retry_delay=0.4) is JobStatus.SCHEDULED
    scheduled = await store.get(job.id)
    assert scheduled.status is JobStatus.SCHEDULED and scheduled.retry_count == 1
    assert scheduled.retry_delay_until is not None
    assert 0.2 < scheduled.retry_delay_until - scheduled.last_updated_at < 0.6
    assert (await store.stats(NAME)).scheduled == 1
    assert await store.promote_due([NAME]) == 0
    assert await store.claim("w", [NAME], count=1, lease_seconds=30) == []
    await asyncio.sleep(0.6)
    assert await store.promote_due([NAME]) == 1
    queued = await store.get(job.id)
    assert queued.status is JobStatus.QUEUED and queued.retry_count == 1
    again = await claim_one(store, worker="w2")
    assert again.job.id == job.id and again.job.retry_count == 1
    with pytest.raises(StaleLeaseError):
        await store.fail(claimed.lease, BOOM, retry_delay=0)


async def test_claim_promotes_due_jobs_itself(store: JobStore) -> None:
    job = await store.create(new())
    claimed = await claim_one(store)
    await store.fail(claimed.lease, BOOM, retry_delay=0)
    again = await claim_one(store)
    assert again.job.id == job.id and again.lease.token > claimed.lease.token


async def test_fail_permanent_and_exhausted_go_to_failed(store: JobStore) -> None:
    permanent = await store.create(new(max_retries=3))
    exhausted = await store.create(new(max_retries=0))
    a = await claim_one(store)
    b = await claim_one(store)
    assert await store.fail(a.lease, BOOM, retry_delay=None) is JobStatus.FAILED
    assert await store.fail(b.lease, BOOM, retry_delay=1.0) is JobStatus.FAILED
    for job_id, retries in ((permanent.id, 0), (exhausted.id, 0)):
        failed = await store.get(job_id)
        assert failed.status is JobStatus.FAILED and failed.error == BOOM
        assert failed.retry_count == retries and failed.completed_at is not None
    stats = await store.stats(NAME)
    assert (stats.failed, stats.scheduled, stats.in_progress) == (2, 0, 0)


async def test_retries_run_out_after_max_retries(store: JobStore) -> None:
    job = await store.create(new(max_retries=2))
    statuses = []
    for _ in range(3):
        claimed = await claim_one(store)
        statuses.append(await store.fail(claimed.lease, BOOM, retry_delay=0))
    assert statuses == [JobStatus.SCHEDULED, JobStatus.SCHEDULED, JobStatus.FAILED]
    final = await store.get(job.id)
    assert final.status is JobStatus.FAILED and final.retry_count == 2


# --- release ---------------------------------------------------------------------------------


async def test_release_puts_jobs_at_the_front_without_counting(store: JobStore) -> None:
    a, b = await store.create(new()), await store.create(new())
    claimed = await claim_one(store)
    assert claimed.job.id == a.id
    stale = claimed.lease.__class__(b.id, NAME, 999, "w1")
    assert await store.release([claimed.lease, stale]) == 1
    released = await store.get(a.id)
    assert released.status is JobStatus.QUEUED and released.retry_count == 0
    assert released.worker_id is None
    order = await store.claim("w2", [NAME], count=2, lease_seconds=30)
    assert [c.job.id for c in order] == [a.id, b.id]
    assert await store.release([claimed.lease]) == 0
    with pytest.raises(StaleLeaseError):
        await store.complete(claimed.lease, b"1")


# --- cancel ----------------------------------------------------------------------------------


async def test_cancel_a_queued_job(store: JobStore) -> None:
    job = await store.create(new())
    canceled = await store.cancel(job.id)
    assert canceled.status is JobStatus.CANCELED and canceled.completed_at is not None
    assert (await store.get(job.id)).status is JobStatus.CANCELED
    assert await store.claim("w", [NAME], count=5, lease_seconds=30) == []
    stats = await store.stats(NAME)
    assert (stats.queued, stats.canceled) == (0, 1)


async def test_cancel_a_scheduled_job(store: JobStore) -> None:
    job = await store.create(new())
    claimed = await claim_one(store)
    await store.fail(claimed.lease, BOOM, retry_delay=0)
    assert (await store.cancel(job.id)).status is JobStatus.CANCELED
    assert await store.promote_due([NAME]) == 0
    assert await store.claim("w", [NAME], count=5, lease_seconds=30) == []
    assert (await store.stats(NAME)).scheduled == 0


async def test_cancel_an_in_progress_job_makes_its_lease_stale(store: JobStore) -> None:
    job = await store.create(new())
    claimed = await claim_one(store)
    assert (await store.cancel(job.id)).status is JobStatus.CANCELED
    assert await store.heartbeat([claimed.lease], 30) == [claimed.lease]
    with pytest.raises(StaleLeaseError):
        await store.complete(claimed.lease, b"1")
    with pytest.raises(StaleLeaseError):
        await store.fail(claimed.lease, BOOM, retry_delay=None)
    assert await store.report_progress(claimed.lease, 0.5, None) is False
    assert (await store.get(job.id)).status is JobStatus.CANCELED
    assert (await store.stats(NAME)).in_progress == 0


@pytest.mark.parametrize("finish", ["complete", "fail", "cancel"])
async def test_cancel_a_finished_job_is_refused(store: JobStore, finish: str) -> None:
    job = await store.create(new())
    claimed = await claim_one(store)
    if finish == "complete":
        await store.complete(claimed.lease, b"1")
    elif finish == "fail":
        await store.fail(claimed.lease, BOOM, retry_delay=None)
    else:
        await store.cancel(job.id)
    before = await store.get(job.id)
    with pytest.raises(InvalidTransitionError) as caught:
        await store.cancel(job.id)
    assert caught.value.current == before.status.value
    assert caught.value.target == JobStatus.CANCELED.value
    assert await store.get(job.id) == before


async def test_cancel_unknown_is_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError):
        await store.cancel(new().id)


# --- recovery --------------------------------------------------------------------------------


async def test_recover_expired_requeues_counting_the_attempt(store: JobStore) -> None:
    job = await store.create(new(max_retries=1))
    claimed = await claim_one(store, lease=1.0)
    assert await store.recover_expired([NAME]) == []
    await asyncio.sleep(1.2)
    assert await store.recover_expired([NAME]) == [job.id]
    queued = await store.get(job.id)
    assert queued.status is JobStatus.QUEUED and queued.retry_count == 1
    again = await claim_one(store, worker="w2", lease=1.0)
    assert again.lease.token > claimed.lease.token
    with pytest.raises(StaleLeaseError):
        await store.complete(claimed.lease, b'"old"')
    await asyncio.sleep(1.2)
    assert await store.recover_expired([NAME]) == [job.id]  # retries spent now
    failed = await store.get(job.id)
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error.type == "WorkerLost" and failed.retry_count == 1
    stats = await store.stats(NAME)
    assert (stats.failed, stats.in_progress, stats.queued) == (1, 0, 0)


async def test_recover_worker_takes_only_that_workers_jobs(store: JobStore) -> None:
    a = await store.create(new(max_retries=1))
    b = await store.create(new(max_retries=0))
    c = await store.create(new(max_retries=1))
    await store.claim("dead", [NAME], count=2, lease_seconds=30)
    kept = await claim_one(store, worker="alive")
    assert kept.job.id == c.id
    assert sorted(await store.recover_worker("dead", [NAME])) == sorted([a.id, b.id])
    requeued, failed = await store.get(a.id), await store.get(b.id)
    assert requeued.status is JobStatus.QUEUED and requeued.retry_count == 1
    assert failed.status is JobStatus.FAILED and failed.error is not None
    assert failed.error.type == "WorkerLost"
    assert (await store.get(c.id)).status is JobStatus.IN_PROGRESS
    assert await store.recover_worker("dead", [NAME]) == []
    stats = await store.stats(NAME)
    assert (stats.queued, stats.in_progress, stats.failed) == (1, 1, 1)


# --- progress, stats, retention, names, workers -----------------------------------------------


async def test_report_progress_is_visible_and_reset_on_a_new_claim(store: JobStore) -> None:
    job = await store.create(new(max_retries=2))
    claimed = await claim_one(store)
    assert await store.report_progress(claimed.lease, 0.25, "a quarter") is True
    seen = await store.get(job.id)
    assert (seen.progress, seen.progress_message) == (0.25, "a quarter")
    assert await store.report_progress(claimed.lease, 1.5, None) is True
    seen = await store.get(job.id)
    assert (seen.progress, seen.progress_message) == (1.0, None)
    await store.release([claimed.lease])
    again = await claim_one(store)
    assert again.job.progress is None
    assert (await store.get(job.id)).progress is None


async def test_stats_count_states_and_finishes(store: JobStore) -> None:
    await store.create_many([new(max_retries=1) for _ in range(6)])
    c1, c2, c3, c4 = await store.claim("w", [NAME], count=4, lease_seconds=30)
    await store.complete(c1.lease, b"1")
    await store.fail(c2.lease, BOOM, retry_delay=None)
    await store.fail(c3.lease, BOOM, retry_delay=60)
    await store.cancel(c4.job.id)
    stats = await store.stats(NAME)
    assert (stats.queued, stats.scheduled, stats.in_progress) == (2, 1, 0)
    assert (stats.completed, stats.failed, stats.canceled) == (1, 1, 1)
    assert stats.name == NAME and stats.backlog == 2
    empty = await store.stats(OTHER)
    assert (empty.queued, empty.completed) == (0, 0)


async def test_finished_jobs_expire_after_the_retention(kit: StoreKit) -> None:
    store = await kit.fresh(retention_seconds=1.0)
    done, live = await store.create(new()), await store.create(new())
    claimed = await claim_one(store)
    await store.complete(claimed.lease, b"1")
    assert (await store.get(done.id)).status is JobStatus.COMPLETED
    await asyncio.sleep(1.5)
    with pytest.raises(JobNotFoundError):
        await store.get(done.id)
    assert (await store.get(live.id)).status is JobStatus.QUEUED  # unfinished jobs stay


async def test_names_lists_registered_names(store: JobStore) -> None:
    await store.register_names([NAME, OTHER])
    assert {NAME, OTHER} <= set(await store.names())


async def test_workers_registry_and_dead_workers(store: JobStore) -> None:
    await store.create_many([new(), new()])
    await store.register_worker(WorkerInfo("short", (NAME,), concurrency=2), ttl=1.0)
    await store.register_worker(WorkerInfo("long", (NAME,), concurrency=3), ttl=30.0)
    live = {w.worker_id: w for w in await store.workers()}
    assert set(live) == {"short", "long"}
    assert live["long"].concurrency == 3 and live["long"].names == (NAME,)
    await claim_one(store, worker="short")
    await claim_one(store, worker="long")
    assert await store.dead_workers([NAME]) == []
    await asyncio.sleep(1.3)
    assert [w.worker_id for w in await store.workers()] == ["long"]
    assert await store.dead_workers([NAME]) == ["short"]
    await store.unregister_worker("long")
    assert await store.workers() == []
    assert sorted(await store.dead_workers([NAME])) == ["long", "short"]
    await store.recover_worker("short", [NAME])
    assert await store.dead_workers([NAME]) == ["long"]
