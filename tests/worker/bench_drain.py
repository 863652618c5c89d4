"""Quick worker benchmark (not a test): drain rate, round trips per job, idle latency.

    .venv/bin/python -m tests.worker.bench_drain [--jobs 20000] [--concurrency 200]
        [--batch-size 100] [--mode process|inproc] [--latency 200]

Starts its own redis-server. ``--mode process`` (default) enqueues the jobs with
``app.submit_many``, then starts ONE ``asyncendpoints worker`` process and times the drain
from the first completion seen to the last; ``--mode inproc`` runs the worker in this
process (after the enqueue) and also counts the worker's Redis round trips (every
command or pipeline sent). Then measures idle latency: one job at a time to an idle
worker, from just before ``submit`` to the handler's first line (wall clock).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from asyncendpoints import Settings
from asyncendpoints.store.redis import RedisJobStore
from tests.support.redis_server import RedisServer
from tests.worker.apps import build_app

ROOT = Path(__file__).resolve().parents[2]


def _settings(url: str, prefix: str, **extra: Any) -> Settings:
    return Settings(redis_url=url, key_prefix=prefix, worker_health_port=0, **extra)


async def _enqueue(url: str, prefix: str, jobs: int) -> float:
    app, _ = build_app(_settings(url, prefix))
    began = time.perf_counter()
    for start in range(0, jobs, 1000):
        await app.submit_many("echo", [{"n": i} for i in range(start, min(jobs, start + 1000))])
    elapsed = time.perf_counter() - began
    await app.shutdown()
    return elapsed


async def _wait_drained(url: str, prefix: str, jobs: int, timeout: float) -> tuple[float, float]:
    store = RedisJobStore(url, prefix=prefix)
    await store.open()
    first = last = 0.0
    deadline = time.perf_counter() + timeout
    try:
        while time.perf_counter() < deadline:
            done = (await store.stats("echo")).completed
            now = time.perf_counter()
            if done and not first:
                first = now
            if done >= jobs:
                last = now
                break
            await asyncio.sleep(0.005)
    finally:
        await store.close()
    if not last:
        raise SystemExit(f"not drained within {timeout} s")
    return first, last


def _worker_env(url: str, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ASYNCENDPOINTS_REDIS_URL=url,
        ASYNCENDPOINTS_KEY_PREFIX=prefix,
        ASYNCENDPOINTS_WORKER_HEALTH_PORT="0",
        ASYNCENDPOINTS_LOG_LEVEL="WARNING",
    )
    return env


def _start_worker(
    url: str, prefix: str, args: argparse.Namespace, names: str
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "worker", "tests.worker.apps:app", "--names", names]
    cmd += ["--concurrency", str(args.concurrency), "--batch-size", str(args.batch_size)]
    return subprocess.Popen(cmd, cwd=ROOT, env=_worker_env(url, prefix))


async def _drain_process(url: str, args: argparse.Namespace) -> None:
    prefix = f"bench{os.getpid()}"
    enq = await _enqueue(url, prefix, args.jobs)
    print(f"enqueued {args.jobs} jobs in {enq:.2f} s ({args.jobs / enq:,.0f}/s)")
    proc = _start_worker(url, prefix, args, args.names or "echo")
    try:
        first, last = await _wait_drained(url, prefix, args.jobs, 120)
    finally:
        proc.terminate()
        proc.wait(10)
    print(
        f"drained by one worker process: {args.jobs / (last - first):,.0f} jobs/s "
        f"({last - first:.2f} s, exit code {proc.returncode})"
    )


async def _drain_inproc(url: str, args: argparse.Namespace) -> None:
    from redis.asyncio.connection import AbstractConnection

    from worker.runtime import Worker

    prefix = f"benchi{os.getpid()}"
    enq = await _enqueue(url, prefix, args.jobs)
    print(f"enqueued {args.jobs} jobs in {enq:.2f} s ({args.jobs / enq:,.0f}/s)")
    sent = 0
    original = AbstractConnection.send_packed_command

    async def counting(self: Any, command: Any, check_health: bool = True) -> None:
        nonlocal sent
        sent += 1
        await original(self, command, check_health)

    app, _ = build_app(_settings(url, prefix))
    names = (args.names or "echo").split(",")
    worker = Worker(app, names=names, concurrency=args.concurrency, batch_size=args.batch_size)
    await app.startup()
    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    began = time.perf_counter()
    cpu = time.process_time()
    await worker.start()
    try:
        while worker.metrics.outcome("completed") < args.jobs:
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu
        trips = sent
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
        await worker.drain()
        await app.shutdown()
    print(
        f"drained in-process: {args.jobs / elapsed:,.0f} jobs/s ({elapsed:.2f} s); "
        f"{trips} round trips = {trips / args.jobs:.3f} per job; "
        f"{worker._batcher.flushes} completion flushes; worker CPU "
        f"{cpu / args.jobs * 1e6:.0f} us per job (a core's ceiling: {args.jobs / cpu:,.0f}/s)"
    )


async def _latency(url: str, args: argparse.Namespace) -> None:
    prefix = f"lat{os.getpid()}"
    proc = _start_worker(url, prefix, args, args.names or "stamp")
    app, _ = build_app(_settings(url, prefix))
    try:
        await app.startup()
        while not await app.store.workers():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        lat: list[float] = []
        for _ in range(args.latency):
            t0 = time.time()
            job = await app.submit("stamp", {})
            done = await app.wait(job.id, 5)
            import orjson

            lat.append((orjson.loads(done.result or b"{}")["t"] - t0) * 1000)
            await asyncio.sleep(0.01)
        lat.sort()
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(
            f"idle latency submit -> handler start over {len(lat)} jobs: "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {lat[-1]:.2f} ms"
        )
    finally:
        await app.shutdown()
        proc.terminate()
        proc.wait(10)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--mode", choices=["process", "inproc"], default="process")
    parser.add_argument("--latency", type=int, default=200, help="idle-latency samples (0: skip)")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--names", default=None, help="names the worker serves (default: only the one used)"
    )
    args = parser.parse_args()
    server = None
    url = args.redis_url
    if url is None:
        server = RedisServer()
        server.start()
        url = server.url
    try:
        if args.jobs:
            if args.mode == "process":
                await _drain_process(url, args)
            else:
                await _drain_inproc(url, args)
        if args.latency:
            await _latency(url, args)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    import uvloop

    uvloop.run(main())
