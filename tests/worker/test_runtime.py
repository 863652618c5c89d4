"""The worker in-process, on the in-memory store and on a real Redis: handlers of every
kind, retries, timeouts, cancellation, progress, leases and recovery."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from asyncendpoints import AsyncEndpoints, JobStatus, Settings, WorkerInfo
from tests.worker.apps import Recorder
from tests.worker.conftest import finished, status_is, wait_for
from worker.metrics import COMPLETED, FAILED, LOST, RETRIED
from worker.runtime import Worker

MakeApp = Callable[..., tuple[AsyncEndpoints, Recorder]]
StartWorker = Callable[..., Awaitable[Worker]]


async def test_async_handler_result_is_stored(make_app: MakeApp, start_worker: StartWorker) -> None:
    app, _ = make_app()
    worker = await start_worker(app)
    job = await app.submit("echo", {"n": 5, "text": "hi"})
    done = await finished(app, job.id)
    assert done.status is JobStatus.COMPLETED
    assert orjson.loads(done.result or b"") == {"n": 5, "text": "hi"}
    assert done.worker_id == worker.worker_id
    assert done.retry_count == 0
    await wait_for(lambda: worker.metrics.outcome(COMPLETED, "echo") == 1, what="the metric")


async def test_sync_handler_runs_in_the_thread_pool(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()
    await start_worker(app)
    jobs = [await app.submit("sync-echo", {"n": n}) for n in range(5)]
    for n, job in enumerate(jobs):
        done = await finished(app, job.id)
        assert done.status is JobStatus.COMPLETED
        assert orjson.loads(done.result or b"")["n"] == 2 * n
    assert len(rec.threads) == 5
    assert all(name.startswith("ae-sync") for name in rec.threads), rec.threads


async def test_raising_handler_is_retried_then_failed(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()
    worker = await start_worker(app)
    job = await app.submit("flaky", {"fail_times": 10})  # max_retries=2
    done = await finished(app, job.id)
    assert done.status is JobStatus.FAILED
    assert done.retry_count == 2
    assert rec.attempts[job.id] == [1, 2, 3]
    assert done.error is not None and done.error.type == "RuntimeError"
    assert "attempt 3" in done.error.message
    assert worker.metrics.outcome(RETRIED) == 2
    assert worker.metrics.outcome(FAILED) == 1


async def test_raising_handler_succeeds_on_a_retry(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()
    await start_worker(app)
    job = await app.submit("flaky", {"fail_times": 1})
    done = await finished(app, job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.retry_count == 1
    assert orjson.loads(done.result or b"") == {"attempt": 2}
    assert rec.attempts[job.id] == [1, 2]


async def test_timeout_cancels_the_handler_and_is_retried(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()
    await start_worker(app)
    began = time.monotonic()
    job = await app.submit("slow", {"seconds": 30})  # timeout=0.2, max_retries=1
    done = await finished(app, job.id)
    assert done.status is JobStatus.FAILED
    assert done.error is not None and done.error.type == "JobTimeoutError"
    assert rec.attempts[job.id] == [1, 2]
    assert job.id in rec.cancelled  # the handler saw the cancellation
    assert time.monotonic() - began < 3


async def test_permanent_error_fails_at_once(make_app: MakeApp, start_worker: StartWorker) -> None:
    app, rec = make_app()
    await start_worker(app)
    job = await app.submit("permanent", {})  # max_retries=5
    done = await finished(app, job.id)
    assert done.status is JobStatus.FAILED
    assert done.retry_count == 0
    assert rec.attempts[job.id] == [1]
    assert done.error is not None and done.error.type == "PermanentError"


async def test_cancel_while_running_stops_the_handler(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()
    worker = await start_worker(app)
    job = await app.submit("sleep", {"seconds": 30})
    await wait_for(lambda: job.id in rec.started, what="the handler to start")
    await app.manager.cancel(job.id)
    # Stopped at the next heartbeat (0.2 s here).
    await wait_for(lambda: job.id in rec.cancelled, timeout=2, what="the handler's cancellation")
    await wait_for(lambda: worker.in_flight == 0, timeout=1, what="the slot to free")
    assert (await app.get(job.id)).status is JobStatus.CANCELED
    assert worker.metrics.outcome(LOST) == 1
    assert worker.metrics.outcome(COMPLETED) == 0


async def test_progress_is_visible_while_running(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()
    await start_worker(app)
    job = await app.submit("progress", {"n": 0, "text": "half way"})

    async def reported() -> bool:
        current = await app.get(job.id)
        return current.progress == 0.5

    await wait_for(reported, what="the progress")
    current = await app.get(job.id)
    assert current.status is JobStatus.IN_PROGRESS
    assert current.progress_message == "half way"
    rec.gate.set()
    assert (await finished(app, job.id)).status is JobStatus.COMPLETED


async def test_progress_writes_are_throttled_and_the_last_one_lands(
    make_app: MakeApp, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, rec = make_app()
    writes: list[float] = []
    original = app.store.report_progress

    async def counting(lease: Any, fraction: float, message: str | None) -> bool:
        writes.append(fraction)
        return await original(lease, fraction, message)

    monkeypatch.setattr(app.store, "report_progress", counting)
    await start_worker(app)
    job = await app.submit("progress", {"n": 500})  # 500 reports in a tight loop, then 0.99

    async def last_landed() -> bool:
        return (await app.get(job.id)).progress == 0.99

    await wait_for(last_landed, timeout=2, what="the held-back progress write")
    assert rec.progress_calls == 500
    assert 1 <= len(writes) <= 3, writes
    rec.gate.set()
    await finished(app, job.id)


async def test_concurrency_is_bounded(
    make_app: MakeApp, start_worker: StartWorker, make_settings: Callable[..., Settings]
) -> None:
    app, rec = make_app(make_settings(concurrency=4))
    await start_worker(app)
    jobs = await app.submit_many("sleep", [{"seconds": 0.05}] * 20)
    for job in jobs:
        assert (await finished(app, job.id)).status is JobStatus.COMPLETED
    assert rec.max_running == 4


async def test_completions_and_claims_are_batched(
    make_app: MakeApp, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = make_app()
    calls = {"complete_many": 0, "claim": 0}
    for method in calls:
        original = getattr(app.store, method)

        def counted(*args: Any, _original: Any = original, _m: str = method, **kw: Any) -> Any:
            calls[_m] += 1
            return _original(*args, **kw)

        monkeypatch.setattr(app.store, method, counted)
    jobs = await app.submit_many("echo", [{"n": i} for i in range(1000)])
    worker = await start_worker(app, concurrency=200, batch_size=100, names=["echo"])
    await wait_for(lambda: worker.metrics.outcome(COMPLETED) == 1000, what="1000 completions")
    assert (await app.get(jobs[-1].id)).status is JobStatus.COMPLETED
    # 1000 jobs: claims of 100 and completions of many per round trip.
    assert calls["claim"] <= 15, calls
    assert calls["complete_many"] <= 40, calls


async def test_stale_completion_is_logged_and_dropped(
    make_app: MakeApp,
    start_worker: StartWorker,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Heartbeats too rare to notice the cancel: the result reaches the store's fencing.
    app, rec = make_app(make_settings(heartbeat_seconds=5, lease_seconds=30))
    worker = await start_worker(app)
    job = await app.submit("gated", {"n": 1})
    await wait_for(lambda: job.id in rec.attempts, what="the handler to start")
    await app.manager.cancel(job.id)
    with caplog.at_level(logging.INFO, logger="asyncendpoints.worker"):
        rec.gate.set()
        await wait_for(lambda: worker.metrics.outcome(LOST) == 1, what="the dropped result")
    assert (await app.get(job.id)).status is JobStatus.CANCELED
    dropped = [r for r in caplog.records if r.getMessage().startswith("result dropped")]
    assert dropped and getattr(dropped[0], "job_id", None) == job.id
    assert getattr(dropped[0], "job_name", None) == "gated"


async def test_idle_worker_starts_a_new_job_within_milliseconds(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()
    await start_worker(app, names=["sleep"])
    await asyncio.sleep(0.3)  # idle: blocked in wait_for_work
    delays = []
    for _ in range(15):
        submitted = time.perf_counter()
        job = await app.submit("sleep", {"seconds": 0})
        await wait_for(lambda job=job: job.id in rec.started, timeout=2, interval=0.001)
        delays.append(rec.started[job.id] - submitted)
        await asyncio.sleep(0.05)
    assert statistics.median(delays) < 0.02, delays


async def test_heartbeats_keep_a_long_job_leased(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, rec = make_app()  # lease 2 s, heartbeat 0.2 s, recovery sweeps every 0.3 s
    await start_worker(app)
    job = await app.submit("sleep", {"seconds": 3.5})
    done = await finished(app, job.id, timeout=8)
    assert done.status is JobStatus.COMPLETED
    assert done.retry_count == 0  # never recovered although it outlived its lease
    assert rec.attempts[job.id] == [1]


async def test_expired_lease_of_a_vanished_worker_is_recovered(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, _ = make_app()
    await app.startup()
    job = await app.submit("echo", {"n": 7})
    [ghost] = await app.store.claim("ghost", ["echo"], count=1, lease_seconds=1)
    assert ghost.job.id == job.id
    await app.store.register_worker(WorkerInfo("ghost", ("echo",)), ttl=60)  # looks alive
    worker = await start_worker(app)
    done = await finished(app, job.id, timeout=5)
    assert done.status is JobStatus.COMPLETED
    assert done.retry_count == 1  # the recovery counted the lost attempt
    assert done.worker_id == worker.worker_id


async def test_dead_workers_jobs_are_recovered_before_their_lease_expires(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, _ = make_app()
    await app.startup()
    job = await app.submit("echo", {"n": 8})
    await app.store.register_worker(WorkerInfo("dead", ("echo",)), ttl=0.2)
    await app.store.claim("dead", ["echo"], count=1, lease_seconds=120)
    began = time.monotonic()
    worker = await start_worker(app)
    done = await finished(app, job.id, timeout=5)
    assert done.status is JobStatus.COMPLETED
    assert done.worker_id == worker.worker_id
    assert time.monotonic() - began < 5  # far sooner than the 120 s lease


async def test_worker_registers_while_running_and_unregisters_after(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, _ = make_app()
    worker = await start_worker(app, names=["echo", "sleep"], concurrency=3)
    [info] = [w for w in await app.store.workers() if w.worker_id == worker.worker_id]
    assert info.names == ("echo", "sleep")
    assert info.concurrency == 3
    await worker.drain()
    assert worker.worker_id not in {w.worker_id for w in await app.store.workers()}


async def test_each_name_is_claimed_by_a_worker_serving_several(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, _ = make_app()
    await start_worker(app, names=["echo", "sync-echo", "stamp"])
    echo = await app.submit_many("echo", [{"n": i} for i in range(30)])
    sync = await app.submit_many("sync-echo", [{"n": i} for i in range(30)])
    stamp = await app.submit("stamp", {})
    for job in [*echo, *sync, stamp]:
        assert (await finished(app, job.id)).status is JobStatus.COMPLETED


async def test_worker_serves_only_its_names(make_app: MakeApp, start_worker: StartWorker) -> None:
    app, _ = make_app()
    await start_worker(app, names=["echo"])
    other = await app.submit("stamp", {})
    mine = await app.submit("echo", {})
    await finished(app, mine.id)
    await asyncio.sleep(0.1)
    assert await status_is(app, other.id, JobStatus.QUEUED)
