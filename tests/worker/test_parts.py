"""The worker's parts on their own: completion batcher, claim order, metrics, progress
throttling, signal handling, stopping background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence

import pytest

from asyncendpoints import InMemoryJobStore, Lease, StoreUnavailableError
from worker.claiming import ClaimOrder
from worker.completions import CompletionBatcher, Item
from worker.metrics import Histogram
from worker.progress import MIN_INTERVAL, ProgressReporter
from worker.signals import install_shutdown_handlers
from worker.tasks import cancel_and_wait


def lease(i: int) -> Lease:
    return Lease(job_id=f"job-{i}", name="echo", token=1, worker_id="w")


class FakeStore(InMemoryJobStore):
    """Records complete_many calls; can fail the first ``failures`` of them."""

    def __init__(self, failures: int = 0, delay: float = 0.0) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.failures = failures
        self.delay = delay
        self.progress: list[tuple[float, str | None]] = []
        self.current = True

    async def complete_many(self, items: Sequence[tuple[Lease, bytes]]) -> list[bool]:
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise StoreUnavailableError("down")
        self.calls.append(len(items))
        return [True] * len(items)

    async def report_progress(self, lease: Lease, fraction: float, message: str | None) -> bool:
        self.progress.append((fraction, message))
        return self.current


async def test_results_of_one_loop_turn_go_in_one_call() -> None:
    store = FakeStore()
    stored: list[Item] = []
    batcher = CompletionBatcher(store, max_batch=100, on_result=lambda b, d: stored.extend(b))
    batcher.start()
    for i in range(50):
        batcher.add(lease(i), b"1")
    assert batcher.backlog == 50
    assert await batcher.close(timeout=1)
    assert store.calls == [50]
    assert [item[0].job_id for item in stored] == [f"job-{i}" for i in range(50)]


async def test_a_lone_result_is_stored_on_the_next_turns() -> None:
    store = FakeStore()
    batcher = CompletionBatcher(store, max_batch=100, on_result=lambda b, d: None)
    batcher.start()
    batcher.add(lease(1), b"1")
    for _ in range(5):
        await asyncio.sleep(0)
    assert store.calls == [1]
    await batcher.close(timeout=1)


async def test_batches_are_capped_and_pile_up_while_a_call_is_in_flight() -> None:
    store = FakeStore(delay=0.02)
    batcher = CompletionBatcher(store, max_batch=40, on_result=lambda b, d: None)
    batcher.start()
    for i in range(100):
        batcher.add(lease(i), b"1")
    await asyncio.sleep(0.005)  # the first call (40) is in flight
    for i in range(100, 130):
        batcher.add(lease(i), b"1")
    assert await batcher.close(timeout=2)
    assert store.calls == [40, 40, 40, 10]


async def test_store_errors_are_retried_without_losing_results() -> None:
    store = FakeStore(failures=2)
    errors: list[BaseException] = []
    done: list[bool] = []
    batcher = CompletionBatcher(
        store, max_batch=10, on_result=lambda b, d: done.extend(d), on_error=errors.append
    )
    batcher.start()
    for i in range(5):
        batcher.add(lease(i), b"1")
    assert await batcher.close(timeout=2)
    assert len(errors) == 2
    assert store.calls == [5]
    assert done == [True] * 5


async def test_close_gives_up_after_its_timeout() -> None:
    store = FakeStore(failures=1000)
    batcher = CompletionBatcher(store, max_batch=10, on_result=lambda b, d: None)
    batcher.start()
    batcher.add(lease(1), b"1")
    began = time.monotonic()
    assert await batcher.close(timeout=0.2) is False
    assert time.monotonic() - began < 1


def test_claim_order_puts_names_with_work_first_and_rotates_them() -> None:
    order = ClaimOrder(["a", "b", "c", "d"], probe_seconds=60)
    order.found("a", 0)
    order.found("c", 0)
    first = order.plan(saturated=False)
    assert set(first[:2]) == {"b", "d"} and set(first[2:]) == {"a", "c"}
    firsts = {order.plan(saturated=False)[0] for _ in range(4)}
    assert firsts == {"b", "d"}  # busy names take turns at the front


def test_claim_order_probes_idle_names_while_saturated() -> None:
    order = ClaimOrder(["hot", "cold"], probe_seconds=0.05)
    order.found("cold", 0)
    assert order.plan(saturated=False)[0] == "hot"
    assert order.plan(saturated=True)[0] == "hot"  # probed just now (at the short claim)
    time.sleep(0.06)
    assert order.plan(saturated=True)[0] == "cold"  # due: the idle name goes first once
    assert order.plan(saturated=True)[0] == "hot"


def test_claim_order_with_one_name() -> None:
    assert ClaimOrder(["only"]).plan(saturated=True) == ["only"]
    with pytest.raises(ValueError):
        ClaimOrder([])


def test_histogram_buckets_are_cumulative() -> None:
    hist = Histogram([0.1, 1.0])
    for value in (0.05, 0.1, 0.5, 5.0):
        hist.observe(value)
    assert hist.buckets() == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert hist.count == 4
    assert hist.total == pytest.approx(5.65)


async def test_progress_is_throttled_but_the_last_update_lands() -> None:
    store = FakeStore()
    lost: list[Lease] = []
    reporter = ProgressReporter(store, lease(1), lost.append)
    for i in range(100):
        await reporter(i / 100, f"step {i}")
    assert store.progress == [(0.0, "step 0")]
    await asyncio.sleep(MIN_INTERVAL * 1.5)
    assert store.progress == [(0.0, "step 0"), (0.99, "step 99")]
    await reporter(1.0, "done")  # 1.0 is written at once
    assert store.progress[-1] == (1.0, "done")
    assert lost == []


async def test_progress_on_a_lost_lease_reports_it() -> None:
    store = FakeStore()
    store.current = False
    lost: list[Lease] = []
    reporter = ProgressReporter(store, lease(2), lost.append)
    await reporter(0.5, None)
    assert lost == [lease(2)]


async def test_closed_reporter_drops_held_updates() -> None:
    store = FakeStore()
    reporter = ProgressReporter(store, lease(3), lambda _: None)
    await reporter(0.1, None)
    await reporter(0.2, None)  # held
    reporter.close()
    await asyncio.sleep(MIN_INTERVAL * 1.5)
    assert store.progress == [(0.1, None)]


async def test_first_signal_drains_and_the_second_stops_at_once() -> None:
    calls: list[str] = []
    loop = asyncio.get_running_loop()
    restore = install_shutdown_handlers(
        loop, graceful=lambda: calls.append("graceful"), immediate=lambda: calls.append("now")
    )
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert calls == ["graceful"]
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.05)
        assert calls == ["graceful", "now"]
    finally:
        restore()


async def test_cancel_and_wait_stops_a_task_that_swallowed_a_cancellation() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # as a library's I/O may: on to the next sleep

    task = asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)
    await cancel_and_wait([task], timeout=2.0)
    assert task.cancelled()
    assert swallowed == 1


async def test_cancel_and_wait_gives_up_after_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()

    async def deaf() -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)

    task = asyncio.get_running_loop().create_task(deaf())
    await asyncio.sleep(0)
    await cancel_and_wait([task], timeout=0.2)
    assert not task.done()
    assert "background tasks still running after shutdown" in caplog.text
    stop.set()
    task.cancel()
    await asyncio.wait([task], timeout=1.0)
    assert task.done()
