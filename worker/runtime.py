"""The worker: claims jobs in batches, runs their handlers, stores their outcomes.

One claim loop keeps up to ``concurrency`` jobs running: it claims as many jobs as
there are free slots (at most ``batch_size`` per round trip), starts one task per job,
and claims again as soon as slots free up. When the queues are empty it blocks in
``store.wait_for_work`` (BLPOP on Redis), so an idle worker costs nothing and starts a
new job within a round trip of its submission.

Running the jobs themselves is :class:`~worker.jobs.JobRunner`'s (one task per job,
results through the completion batcher, failures through the job manager); the
heartbeat and the recovery sweeps are :mod:`worker.heartbeat`'s.

Shutdown (:meth:`Worker.stop`, SIGTERM): stop claiming at once, let the running jobs
finish within the grace period, cancel the rest and release their leases (front of the
queue, no attempt counted), store the pending results, unregister.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter

from asyncendpoints.app import AsyncEndpoints
from asyncendpoints.errors import ConfigurationError
from asyncendpoints.handlers import Endpoint
from asyncendpoints.job import WorkerInfo
from asyncendpoints.types import JobName, WorkerId
from worker.claiming import ClaimOrder
from worker.health import HealthServer
from worker.heartbeat import Heartbeat, Recovery
from worker.identity import resolve_worker_id
from worker.jobs import JobRunner
from worker.metrics import COMPLETED, RELEASED, WorkerCollector, WorkerMetrics, build_registry
from worker.tasks import cancel_and_wait

log = logging.getLogger("asyncendpoints.worker")

IDLE_WAIT_SECONDS = 1.0
"""How long one ``wait_for_work`` blocks before the claim loop looks again."""
CANCEL_WAIT_SECONDS = 2.0
"""How long shutdown waits for canceled jobs to unwind."""


class Worker:
    """Runs the jobs of an :class:`AsyncEndpoints` app from its store."""

    def __init__(
        self,
        app: AsyncEndpoints,
        *,
        names: Sequence[JobName] | None = None,
        concurrency: int | None = None,
        batch_size: int | None = None,
        worker_id: WorkerId | None = None,
        health_port: int | None = None,
        health_host: str = "0.0.0.0",
        grace_seconds: float | None = None,
        idle_wait_seconds: float = IDLE_WAIT_SECONDS,
        process_metrics: bool = True,
    ) -> None:
        settings = app.settings
        self.app = app
        self.settings = settings
        chosen = list(names or settings.worker_names or app.endpoints)
        if not chosen:
            raise ConfigurationError("the app declares no async endpoints: nothing to run")
        unknown = [n for n in chosen if n not in app.endpoints]
        if unknown:
            raise ConfigurationError(
                f"job names {unknown} are not declared by the app "
                f"(it declares {sorted(app.endpoints)})"
            )
        self.names: tuple[JobName, ...] = tuple(dict.fromkeys(chosen))
        self.endpoints: dict[JobName, Endpoint] = {n: app.endpoints[n] for n in self.names}
        self.concurrency = concurrency or settings.concurrency
        self.batch_size = batch_size or settings.batch_size
        if self.concurrency < 1 or self.batch_size < 1:
            raise ConfigurationError("concurrency and batch size must be at least 1")
        self.worker_id: WorkerId = worker_id or resolve_worker_id(settings)
        self.lease_seconds = settings.lease_seconds
        self.grace_seconds = (
            settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        )
        self.idle_wait_seconds = idle_wait_seconds
        self.metrics = WorkerMetrics(self.names)
        self.health_port = settings.worker_health_port if health_port is None else health_port
        self.health_host = health_host
        self._process_metrics = process_metrics
        self.health: HealthServer | None = None

        self._store = app.store
        self._runner = runner = JobRunner(
            store=self._store,
            manager=app.manager,
            endpoints=self.endpoints,
            metrics=self.metrics,
            max_batch=self.batch_size,
        )
        self._tasks = runner.tasks
        self._batcher = runner.completions
        self._executor: ThreadPoolExecutor | None = None
        self._heartbeat = Heartbeat(
            self._store,
            interval=settings.heartbeat_seconds,
            lease_seconds=self.lease_seconds,
            leases=runner.leases.values,
            info=self.info,
            on_lost=runner.lost,
            on_error=runner.store_error,
        )
        self._recovery = Recovery(
            self._store,
            names=self.names,
            interval=settings.recovery_seconds,
            own_id=self.worker_id,
            on_error=runner.store_error,
        )
        self._order = ClaimOrder(self.names)
        self._saturated = False
        self._backlog_limit = 2 * max(self.concurrency, self.batch_size)
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._force = asyncio.Event()
        self._cancellable = False
        self._claimer: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._drained: asyncio.Task[None] | None = None
        self._started_at = 0.0
        self._started = False
        self._registered = False
        self.fatal: BaseException | None = None

    # --- state ----------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Jobs running now."""
        return len(self._tasks)

    @property
    def draining(self) -> bool:
        return self._stopping

    def info(self) -> WorkerInfo:
        return WorkerInfo(
            worker_id=self.worker_id,
            names=self.names,
            concurrency=self.concurrency,
            in_flight=len(self._tasks),
            started_at=self._started_at,
            last_seen=time.time(),
        )

    async def live(self) -> tuple[bool, str]:
        if self.fatal is not None:
            return False, f"worker loop failed: {self.fatal!r}"
        return True, "ok"

    async def ready(self) -> tuple[bool, str]:
        if self._stopping:
            return False, "draining"
        if self.fatal is not None:
            return False, f"worker loop failed: {self.fatal!r}"
        try:
            async with asyncio.timeout(2.0):
                await self._store.ping()
        except Exception as exc:
            return False, f"store unreachable: {exc}"
        return True, "ok"

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store, register, and start claiming."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        self._runner.debug = log.isEnabledFor(logging.DEBUG)
        await self.app.startup()
        if any(not e.is_async for e in self.endpoints.values()):
            self._executor = ThreadPoolExecutor(
                max_workers=self.settings.sync_threads, thread_name_prefix="ae-sync"
            )
            self._runner.executor = self._executor
        self._started_at = time.time()
        await self._heartbeat.register()
        self._registered = True
        if self.health_port:
            collector = WorkerCollector(
                self.metrics,
                in_flight=lambda: len(self._tasks),
                concurrency=self.concurrency,
                draining=lambda: self._stopping,
            )
            self.health = HealthServer(
                host=self.health_host,
                port=self.health_port,
                live=self.live,
                ready=self.ready,
                registry=build_registry(collector, process=self._process_metrics),
            )
            await self.health.start()
        self._batcher.start()
        self._background = [
            loop.create_task(self._heartbeat.run()),
            loop.create_task(self._recovery.run()),
        ]
        self._claimer = loop.create_task(self._claim_loop())
        self._claimer.add_done_callback(self._claimer_done)
        log.info(
            "worker started",
            extra={
                "worker_id": self.worker_id,
                "names": list(self.names),
                "concurrency": self.concurrency,
                "batch_size": self.batch_size,
            },
        )

    def stop(self) -> None:
        """Stop claiming at once; the running jobs get the grace period (idempotent)."""
        if self._stopping:
            return
        self._stopping = True
        self._stop_event.set()
        self._runner.slot_freed.set()
        if self._claimer is not None and self._cancellable:
            self._claimer.cancel()

    def force_stop(self) -> None:
        """Skip (the rest of) the grace period: release the running jobs now."""
        self.stop()
        self._force.set()

    async def wait_stopping(self) -> None:
        """Until :meth:`stop` is called (or the claim loop dies)."""
        await self._stop_event.wait()

    async def run(self) -> None:
        """Start, run until :meth:`stop`, then drain."""
        try:
            await self.start()
            await self.wait_stopping()
        finally:
            await self.drain()

    async def drain(self) -> None:
        """The shutdown sequence (idempotent; concurrent callers share it)."""
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_task(self._shutdown())
        await asyncio.shield(self._drained)

    async def _shutdown(self) -> None:
        self.stop()
        if not self._started:
            return
        started = time.monotonic()
        if self._claimer is not None:
            await asyncio.wait([self._claimer])
        running = [task for task, _ in self._tasks.values()]
        if running and not self._force.is_set():
            log.info(
                "draining: waiting for running jobs",
                extra={"jobs": len(running), "grace_seconds": self.grace_seconds},
            )
            finished = asyncio.ensure_future(asyncio.wait(running))
            forced = asyncio.ensure_future(self._force.wait())
            await asyncio.wait(
                [finished, forced], timeout=self.grace_seconds, return_when="FIRST_COMPLETED"
            )
            finished.cancel()
            forced.cancel()
        await self._runner.cancel_running(CANCEL_WAIT_SECONDS)
        await self._batcher.close(timeout=1.0 if self._force.is_set() else 5.0)
        held = list(self._runner.leases.values())
        if held:
            try:
                released = await self._store.release(held)
            except Exception as exc:
                log.warning(
                    "could not release leases (they will expire): %s", exc,
                    extra={"jobs": len(held)},
                )  # fmt: skip
            else:
                for lease in held:
                    self.metrics.count(lease.name, RELEASED)
                log.info("released unfinished jobs to their queues", extra={"jobs": released})
            self._runner.leases.clear()
        await cancel_and_wait(self._background, CANCEL_WAIT_SECONDS)
        if self._registered:
            try:
                await self._store.unregister_worker(self.worker_id)
            except Exception as exc:
                log.warning("could not unregister the worker: %s", exc)
        if self.health is not None:
            await self.health.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        log.info(
            "worker stopped",
            extra={
                "worker_id": self.worker_id,
                "drain_seconds": round(time.monotonic() - started, 3),
                "completed": self.metrics.outcome(COMPLETED),
            },
        )

    def stuck_threads(self, timeout: float = 0.5) -> int:
        """Sync handlers still running in threads after shutdown (Python cannot stop a
        thread; the process must exit without joining them)."""
        executor = self._executor
        if executor is None:
            return 0
        deadline = time.monotonic() + timeout
        threads: set[threading.Thread] = getattr(executor, "_threads", set())
        for thread in list(threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in threads)

    def _claimer_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.fatal = exc
            log.error("the claim loop failed; stopping the worker", exc_info=exc)
            self.stop()

    # --- claiming ---------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        tasks = self._tasks
        batcher = self._batcher
        runner = self._runner
        observe = self.metrics.observe_claim
        concurrency = self.concurrency
        batch_size = self.batch_size
        delay = 0.0
        idle = False  # the last wait-and-claim came up short: the queues were empty
        while not self._stopping:
            free = concurrency - len(tasks)
            if free <= 0 or batcher.backlog > self._backlog_limit:
                runner.slot_wanted = True
                runner.slot_freed.clear()
                await runner.slot_freed.wait()
                runner.slot_wanted = False
                continue
            count = free if free < batch_size else batch_size
            if idle:
                # Skip the claim that would find nothing: ``wait_and_claim`` claims at
                # once when work is queued (or a Scheduled job is due) by now.
                idle, claimed = False, 0
            else:
                began = perf_counter()
                try:
                    claimed = await self._claim(count)
                except Exception as exc:
                    delay = await self._store_trouble("claim", exc, delay)
                    continue
                observe(perf_counter() - began, claimed)
                if delay:
                    log.info("store reachable again: claiming")
                    delay = 0.0
            if claimed < count and not self._stopping:
                # Every queue came up short: block until work arrives, and claim it in
                # the same round trip (the store pipelines the claim behind the wait).
                want = max(1, concurrency - len(tasks))
                self._cancellable = True
                try:
                    claims = await self._store.wait_and_claim(
                        self.worker_id,
                        self.names,
                        count=want,
                        lease_seconds=self.lease_seconds,
                        timeout=self.idle_wait_seconds,
                    )
                    for claim in claims:
                        runner.launch(claim)
                    if claims:
                        # Let the new jobs' handlers start before this loop spends its
                        # time on the next round trip (the woken job's latency).
                        await asyncio.sleep(0)
                    idle = len(claims) < want
                except asyncio.CancelledError:
                    if self._stopping:
                        return
                    raise
                except Exception as exc:
                    self._cancellable = False
                    delay = await self._store_trouble("wait for work", exc, delay)
                finally:
                    self._cancellable = False

    async def _claim(self, count: int) -> int:
        """Claim and start up to ``count`` jobs, name by name in :class:`ClaimOrder`'s
        order (each name's jobs start before the next name is asked). Returns how many."""
        store = self._store
        launch = self._runner.launch
        if len(self.names) == 1:
            claims = await store.claim(
                self.worker_id, self.names, count=count, lease_seconds=self.lease_seconds
            )
            for claim in claims:
                launch(claim)
            return len(claims)
        claimed = 0
        for name in self._order.plan(self._saturated):
            got = await store.claim(
                self.worker_id, [name], count=count - claimed, lease_seconds=self.lease_seconds
            )
            self._order.found(name, len(got))
            for claim in got:
                launch(claim)
            claimed += len(got)
            if claimed >= count:
                break
        self._saturated = claimed >= count
        return claimed

    async def _store_trouble(self, what: str, exc: BaseException, delay: float) -> float:
        """Log (once per outage) and back off; returns the next delay."""
        self.metrics.store_errors += 1
        if not delay:
            log.warning("store error during %s (backing off): %s", what, exc)
        delay = min(max(delay * 2, 0.05), 2.0)
        self._cancellable = True
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            self._cancellable = False
        return delay


__all__ = ["Worker"]
