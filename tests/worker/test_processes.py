"""Real worker processes (``asyncendpoints worker tests.worker.apps:app``) on a real Redis:
the command line, signals, the health port, and chaos (SIGKILL and SIGTERM mid-run)."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from asyncendpoints import AsyncEndpoints, JobStatus, Settings
from asyncendpoints.store.redis import RedisJobStore
from tests.support.redis_server import free_port
from tests.worker.apps import build_app
from tests.worker.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("asyncendpoints")
APP = "tests.worker.apps:app"


@functools.cache
def worker_command() -> tuple[str, ...]:
    """``asyncendpoints worker``; ``python -m worker`` (same code) while the installed
    command cannot start (``test_console_script_runs_the_worker`` reports that)."""
    probe = subprocess.run([str(SCRIPT), "worker", "--help"], capture_output=True, cwd=ROOT)
    if probe.returncode == 0:
        return (str(SCRIPT), "worker")
    return (sys.executable, "-m", "worker")


def clean_env(**settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCENDPOINTS_")}
    env.pop("POD_NAME", None)
    env.update({f"ASYNCENDPOINTS_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """One worker process with its output in a log file."""

    def __init__(self, log: Path, env: dict[str, str], *args: str) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*worker_command(), APP, *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.signalled_at = 0.0

    def send(self, sig: int) -> None:
        self.signalled_at = time.monotonic()
        self.proc.send_signal(sig)

    async def exited(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail(f"worker did not exit within {timeout} s:\n{self.output()}")
            await asyncio.sleep(0.02)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    procs: list[WorkerProcess] = []

    def start(env: dict[str, str], *args: str, name: str = "worker") -> WorkerProcess:
        proc = WorkerProcess(tmp_path / f"{name}-{len(procs)}.log", env, *args)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
async def client_app(redis_url: str, key_prefix: str) -> AsyncIterator[AsyncEndpoints]:
    """The test's side: the same app on the same Redis and prefix as the workers."""
    settings = Settings(redis_url=redis_url, key_prefix=key_prefix)
    app, _ = build_app(settings, store=RedisJobStore(redis_url, prefix=key_prefix))
    await app.startup()
    yield app
    await app.shutdown()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def fast_env(redis_url: str, prefix: str, **more: Any) -> dict[str, str]:
    settings: dict[str, Any] = {
        "redis_url": redis_url,
        "key_prefix": prefix,
        "lease_seconds": 2,
        "heartbeat_seconds": 0.5,
        "recovery_seconds": 0.5,
        "worker_health_port": 0,
        "log_format": "json",
        "log_level": "INFO",
    }
    settings.update(more)
    return clean_env(**settings)


async def registered(app: AsyncEndpoints, count: int) -> None:
    async def enough() -> bool:
        return len(await app.store.workers()) >= count

    await wait_for(enough, timeout=20, interval=0.05, what=f"{count} workers to register")


# --- the command line -------------------------------------------------------------------------
def test_console_script_runs_the_worker() -> None:
    out = subprocess.run(
        [str(SCRIPT), "worker", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    for option in ("--names", "--concurrency", "--batch-size", "--redis-url", "--health-port"):
        assert option in out.stdout


def test_worker_refuses_to_run_without_redis() -> None:
    out = subprocess.run(
        [*worker_command(), APP], capture_output=True, text=True, cwd=ROOT, env=clean_env()
    )
    assert out.returncode == 2
    assert "needs Redis" in out.stderr


def test_unknown_job_name_is_refused() -> None:
    env = clean_env(redis_url="redis://127.0.0.1:1/0")
    out = subprocess.run(
        [*worker_command(), APP, "--names", "echo,nope"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 2
    assert "nope" in out.stderr and "not declared" in out.stderr


# --- signals ---------------------------------------------------------------------------------
@pytest.mark.redis
async def test_sigterm_lets_running_jobs_finish_then_exits_zero(
    spawn: Callable[..., WorkerProcess],
    client_app: AsyncEndpoints,
    redis_client: Any,
    redis_url: str,
    key_prefix: str,
) -> None:
    worker = spawn(fast_env(redis_url, key_prefix, shutdown_grace_seconds=10), "--names", "forever")
    await registered(client_app, 1)
    jobs = await client_app.submit_many("forever", [{"seconds": 1.0}] * 4)

    async def all_started() -> bool:
        return int(await redis_client.llen(f"{key_prefix}:test:started")) == 4

    await wait_for(all_started, what="four jobs to start")
    worker.send(signal.SIGTERM)
    assert await worker.exited(timeout=5) == 0, worker.output()
    assert time.monotonic() - worker.signalled_at < 3  # the jobs' second, not the 10 s grace
    for job in jobs:
        assert (await client_app.get(job.id)).status is JobStatus.COMPLETED
    assert await redis_client.llen(f"{key_prefix}:test:cancelled") == 0
    assert '"message":"worker stopped"' in worker.output()
    assert await client_app.store.workers() == []


@pytest.mark.redis
async def test_sigterm_releases_what_outlives_the_grace(
    spawn: Callable[..., WorkerProcess],
    client_app: AsyncEndpoints,
    redis_client: Any,
    redis_url: str,
    key_prefix: str,
) -> None:
    worker = spawn(fast_env(redis_url, key_prefix, shutdown_grace_seconds=1), "--names", "forever")
    await registered(client_app, 1)
    jobs = await client_app.submit_many("forever", [{"seconds": 60}] * 2)

    async def started() -> bool:
        return int(await redis_client.llen(f"{key_prefix}:test:started")) == 2

    await wait_for(started, what="two jobs to start")
    worker.send(signal.SIGTERM)
    assert await worker.exited(timeout=6) == 0, worker.output()
    elapsed = time.monotonic() - worker.signalled_at
    assert 1.0 <= elapsed < 4, elapsed
    for job in jobs:
        current = await client_app.get(job.id)
        assert current.status is JobStatus.QUEUED
        assert current.retry_count == 0
    cancelled_key = f"{key_prefix}:test:cancelled"
    cancelled = {x.decode() for x in await redis_client.lrange(cancelled_key, 0, -1)}
    assert cancelled == {job.id for job in jobs}


@pytest.mark.redis
async def test_second_signal_releases_at_once(
    spawn: Callable[..., WorkerProcess],
    client_app: AsyncEndpoints,
    redis_client: Any,
    redis_url: str,
    key_prefix: str,
) -> None:
    worker = spawn(fast_env(redis_url, key_prefix, shutdown_grace_seconds=60), "--names", "forever")
    await registered(client_app, 1)
    job = await client_app.submit("forever", {"seconds": 120})

    async def started() -> bool:
        return int(await redis_client.llen(f"{key_prefix}:test:started")) == 1

    await wait_for(started, what="the job to start")
    worker.send(signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert worker.proc.poll() is None  # draining: waiting within its 60 s grace
    worker.send(signal.SIGINT)
    assert await worker.exited(timeout=5) == 0, worker.output()
    assert time.monotonic() - worker.signalled_at < 3
    assert (await client_app.get(job.id)).status is JobStatus.QUEUED


@pytest.mark.redis
async def test_worker_process_serves_its_health_port(
    spawn: Callable[..., WorkerProcess],
    client_app: AsyncEndpoints,
    redis_url: str,
    key_prefix: str,
) -> None:
    port = free_port()
    worker = spawn(fast_env(redis_url, key_prefix), "--health-port", str(port), "--names", "echo")
    await registered(client_app, 1)
    job = await client_app.submit("echo", {"n": 1})
    assert (await client_app.wait(job.id, 5)).status is JobStatus.COMPLETED
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        text = (await http.get("/metrics")).text
    assert 'asyncendpoints_worker_jobs_total{name="echo",outcome="completed"} 1.0' in text
    assert "process_cpu_seconds_total" in text
    worker.send(signal.SIGTERM)
    assert await worker.exited(timeout=5) == 0


# --- chaos -------------------------------------------------------------------------------------
JOBS = 5000
CONCURRENCY = 8


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_chaos_sigkill_and_sigterm_mid_run_lose_nothing_and_complete_once(
    spawn: Callable[..., WorkerProcess],
    client_app: AsyncEndpoints,
    redis_client: Any,
    redis_url: str,
    key_prefix: str,
) -> None:
    env = fast_env(
        redis_url,
        key_prefix,
        shutdown_grace_seconds=3,
        lease_seconds=3,
        heartbeat_seconds=1,  # registration lives 3 s: a busy machine does not look dead
        concurrency=CONCURRENCY,
        batch_size=50,
        log_level="WARNING",
    )
    workers = [
        spawn(env, "--names", "chaos", "--worker-id", f"chaos-{i}", name=f"chaos-{i}")
        for i in range(3)
    ]
    await registered(client_app, 3)
    ids: list[str] = []
    for start in range(0, JOBS, 1000):
        batch = await client_app.submit_many("chaos", [{"ms": 10}] * min(1000, JOBS - start))
        ids += [job.id for job in batch]

    async def completed_at_least(n: int) -> bool:
        return (await client_app.store.stats("chaos")).completed >= n

    await wait_for(lambda: completed_at_least(JOBS // 5), timeout=60, what="a fifth done")
    killed, stopped, survivor = workers
    killed.send(signal.SIGKILL)
    await wait_for(lambda: completed_at_least(JOBS // 2), timeout=60, what="half done")
    stopped.send(signal.SIGTERM)
    assert await stopped.exited(timeout=3 + 2) == 0, stopped.output()
    assert time.monotonic() - stopped.signalled_at < 3 + 1  # within its grace (3 s)
    assert await killed.exited(timeout=1) == -signal.SIGKILL

    await wait_for(lambda: completed_at_least(JOBS), timeout=90, interval=0.1, what="all done")
    stats = await client_app.store.stats("chaos")
    # Exactly one completion per job: the store counts every accepted completion.
    assert stats.completed == JOBS, stats
    assert (stats.failed, stats.queued, stats.in_progress, stats.scheduled) == (0, 0, 0, 0)
    jobs = []
    for start in range(0, JOBS, 500):
        jobs += await asyncio.gather(*(client_app.get(i) for i in ids[start : start + 500]))
    assert {job.status for job in jobs} == {JobStatus.COMPLETED}
    assert {orjson.loads(job.result or b"")["ran"] for job in jobs} == set(ids)
    # Every job ran (at least once: the killed worker's in-flight jobs ran again).
    raw = await redis_client.hgetall(f"{key_prefix}:test:exec")
    executions = {k.decode(): int(v) for k, v in raw.items()}
    assert set(executions) == set(ids)
    rerun = [i for i, n in executions.items() if n > 1]
    recovered = [job for job in jobs if job.retry_count > 0]
    # The killed worker's leases came back (lease expiry or dead-worker recovery) ...
    assert recovered, "no job of the killed worker was recovered"
    assert all(job.worker_id != "chaos-0" for job in recovered)
    # ... and only those: at most what it held (running plus results not yet stored).
    assert len(recovered) <= 3 * CONCURRENCY, len(recovered)
    assert len(rerun) <= len(recovered)
    assert survivor.proc.poll() is None  # the survivor is still serving
    survivor.send(signal.SIGTERM)
    assert await survivor.exited(timeout=5) == 0, survivor.output()
