"""Recovery under chaos: worker processes SIGKILLed at random while 10,000 jobs run.

``python -m benchmarks.chaos [--jobs 10000] [--workers 3] [--kills 8] [--job-ms 50]``

One throwaway ``redis-server``; ``--workers`` real ``asyncendpoints worker`` processes (each
with a worker id of its own, as pods have); N jobs enqueued with ``submit_many``. While the
jobs run, a killer sends SIGKILL to a random worker every 0.3 to 1.5 s (``--kills`` times)
and starts a replacement with a new id, as a Deployment would. No controller runs: the
surviving workers' own recovery sweeps bring the dead workers' jobs back (lease expiry, or
the dead worker's registration running out). Then it checks, from the store itself:

* every job is Completed, none Failed, nothing left queued, scheduled or in progress;
* the store accepted exactly N completions (its ``completed`` counter): no job completed
  twice, although the handlers of the jobs a killed worker held ran again (at least once
  is the contract; the fencing token makes the completion exactly once);
* every job's handler ran to its end at least once (the app's execution counts).

It prints a markdown report (also ``benchmarks/results/chaos.md``) and exits 1 when a
check fails. Bounded: ``--timeout`` seconds for the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from benchmarks.harness import WorkerProcess  # noqa: E402
from benchmarks.systems.base import cli  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "chaos.md"
CONCURRENCY = 16
LEASE_SECONDS = 3
HEARTBEAT_SECONDS = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--kills", type=int, default=8)
    p.add_argument("--job-ms", type=float, default=50.0, help="each handler's sleep")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


class Fleet:
    """The worker processes; ``kill_one`` SIGKILLs one and starts its replacement."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.spawned = 0
        self.live: dict[str, WorkerProcess] = {}
        self.killed: list[str] = []

    def spawn(self) -> str:
        worker_id = f"chaos-{self.spawned}"
        self.spawned += 1
        argv = [cli("asyncendpoints"), "worker", "benchmarks.chaos_app:app"]
        env = {**self.env, "POD_NAME": worker_id}
        self.live[worker_id] = WorkerProcess(argv, env, self.logs / f"{worker_id}.log", ROOT)
        return worker_id

    def kill_one(self, rng: random.Random) -> str:
        worker_id = rng.choice(sorted(self.live))
        process = self.live.pop(worker_id)
        os.killpg(process.proc.pid, signal.SIGKILL)
        process.proc.wait(10)
        self.killed.append(worker_id)
        self.spawn()
        return worker_id

    def stop(self) -> None:
        for process in self.live.values():
            process.stop(grace=10)


async def run(args: argparse.Namespace) -> tuple[str, bool]:
    from tests.support.redis_server import RedisServer

    rng = random.Random(args.seed)
    server = RedisServer()
    server.start()
    prefix = f"chaos{os.getpid()}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASYNCENDPOINTS_")},
        "ASYNCENDPOINTS_REDIS_URL": server.url,
        "ASYNCENDPOINTS_KEY_PREFIX": prefix,
        "ASYNCENDPOINTS_CONCURRENCY": str(CONCURRENCY),
        "ASYNCENDPOINTS_LEASE_SECONDS": str(LEASE_SECONDS),
        "ASYNCENDPOINTS_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "ASYNCENDPOINTS_RECOVERY_SECONDS": "1",
        "ASYNCENDPOINTS_WORKER_HEALTH_PORT": "0",
        "ASYNCENDPOINTS_LOG_LEVEL": "WARNING",
        "ASYNCENDPOINTS_MAX_QUEUE_SIZE": str(max(args.jobs, 1)),
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("ASYNCENDPOINTS_")})
    from benchmarks.chaos_app import app, executions_key

    logs = Path(tempfile.mkdtemp(prefix="ae-chaos-"))
    fleet = Fleet(env, logs)
    started = time.monotonic()
    try:
        await app.startup()
        for _ in range(args.workers):
            fleet.spawn()
        ids: list[str] = []
        for start in range(0, args.jobs, 1000):
            count = min(1000, args.jobs - start)
            ids += [j.id for j in await app.submit_many("chaos", [{"ms": args.job_ms}] * count)]
        deadline = started + args.timeout
        store = app.store

        async def completed() -> int:
            return (await store.stats("chaos")).completed

        while len(fleet.killed) < args.kills and time.monotonic() < deadline:
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            if await completed() >= args.jobs:
                break
            fleet.kill_one(rng)
        while await completed() < args.jobs and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        wall = time.monotonic() - started
        stats = await store.stats("chaos")
        jobs: list[Any] = []
        for start in range(0, len(ids), 500):
            jobs += await asyncio.gather(*(store.get(i) for i in ids[start : start + 500]))
        async with aioredis.Redis.from_url(server.url) as redis:
            raw = await redis.hgetall(executions_key(prefix))
        runs = {k.decode(): int(v) for k, v in raw.items()}
    finally:
        fleet.stop()
        await app.shutdown()
        server.stop()

    statuses: dict[str, int] = {}
    for job in jobs:
        statuses[job.status.value] = statuses.get(job.status.value, 0) + 1
    never_ran = [i for i in ids if runs.get(i, 0) == 0]
    reran = sum(1 for i in ids if runs.get(i, 0) > 1)
    recovered = sum(1 for job in jobs if job.retry_count > 0)
    checks = [
        ("every job Completed", statuses == {"Completed": args.jobs}, f"{statuses}"),
        (
            "exactly N completions accepted (none completed twice)",
            stats.completed == args.jobs,
            f"completed counter {stats.completed} for {args.jobs} jobs",
        ),
        (
            "nothing failed, queued, scheduled or in progress",
            (stats.failed, stats.queued, stats.scheduled, stats.in_progress) == (0, 0, 0, 0),
            f"failed {stats.failed}, queued {stats.queued}, scheduled {stats.scheduled}, "
            f"in progress {stats.in_progress}",
        ),
        ("every handler ran to its end", not never_ran, f"{len(never_ran)} never ran"),
        ("workers killed", len(fleet.killed) == args.kills, f"{len(fleet.killed)} of {args.kills}"),
    ]
    ok = all(passed for _, passed, _ in checks)
    lines = [
        f"{args.jobs:,} jobs of {args.job_ms:g} ms, {args.workers} worker processes "
        f"(concurrency {CONCURRENCY}, lease {LEASE_SECONDS} s, heartbeat {HEARTBEAT_SECONDS} s), "
        f"{len(fleet.killed)} SIGKILLs at random 0.3-1.5 s apart, each worker replaced; "
        f"no controller: the workers' own recovery sweeps; all done in {wall:.1f} s.",
        "",
        "| check | result | measured |",
        "|---|---|---|",
        *(f"| {name} | {'yes' if passed else 'NO'} | {what} |" for name, passed, what in checks),
        "",
        f"Jobs recovered from a killed worker (attempt counted): {recovered}; handlers that ran "
        f"more than once (at least once): {reran}; killed: {', '.join(fleet.killed)}.",
    ]
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report, ok = asyncio.run(run(args))
    print(report)
    if args.out is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        args.out.write_text(f"# Recovery under chaos\n\n{stamp}\n\n{report}\n")
        if args.out.resolve() == DEFAULT_OUT.resolve():
            from benchmarks.report import fill

            fill(ROOT / "README.md", "chaos", report)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
