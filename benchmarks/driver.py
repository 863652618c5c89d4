"""Benchmark ONE system against a running Redis and print its results as JSON.

``python -m benchmarks.driver --system rq --redis-url redis://127.0.0.1:6379/0 --jobs 20000``

:mod:`benchmarks.run` starts one driver process per system (so that the systems' libraries,
global brokers and event loops never meet) and bounds it in time. Steps, each bounded too:

1. FLUSHALL and CONFIG RESETSTAT; open the system's producer.
2. Batch enqueue of N jobs, timed (the system's fastest batch API, see each module).
3. Start ONE worker process (the system's own CLI); time until every job's handler has run
   (records in the FIFO) and the system's own state says its queue is drained.
   ``INFO commandstats`` before step 2 and after step 3 give Redis commands per job; the
   worker's redis-py round trips are counted in the worker; VmHWM of its process tree.
4. Idle latency: the same worker, idle; one job at a time, ~5 ms apart; latency is the
   handler's ``time.time()`` at start minus ``time.time()`` just before the submit call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks import rtcount
from benchmarks.harness import (
    EXCLUDED,
    SCRIPT_CALLS,
    EventReader,
    WorkerProcess,
    commandstats,
    diff,
    percentile,
)

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(__file__).resolve().parent / "_site"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--system", required=True)
    p.add_argument(
        "--tag", default=None, help="file name for logs and profiles (default: the system)"
    )
    p.add_argument("--redis-url", required=True)
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--latency-samples", type=int, default=300)
    p.add_argument("--latency-spacing", type=float, default=0.005, help="seconds between samples")
    p.add_argument("--enqueue-timeout", type=float, default=120)
    p.add_argument("--drain-timeout", type=float, default=120)
    p.add_argument("--latency-budget", type=float, default=60, help="seconds for all samples")
    p.add_argument("--out", type=Path, default=None, help="write the JSON here (else stdout)")
    p.add_argument("--keep-logs", type=Path, default=None, help="copy the worker log here")
    p.add_argument(
        "--worker-pid-file",
        type=Path,
        default=None,
        help="write the worker's pid (its session id) here, for the runner's timeout",
    )
    p.add_argument(
        "--cprofile",
        type=Path,
        default=None,
        help="run the worker under cProfile (CPU time); <system>.prof goes here (written at its exit)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="sample the worker with py-spy during the drain; collapsed stacks go here",
    )
    return p.parse_args(argv)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    n = args.jobs
    url = args.redis_url
    os.environ["BENCH_REDIS_URL"] = url
    os.environ["ASYNCENDPOINTS_REDIS_URL"] = url
    os.environ.setdefault("ASYNCENDPOINTS_MAX_QUEUE_SIZE", str(max(100_000, 2 * n)))

    work = Path(tempfile.mkdtemp(prefix=f"bench-{args.system}-"))
    fifo = work / "events"
    os.mkfifo(fifo)
    worker_rt = work / "rt-worker"
    worker_rt.mkdir()
    driver_rt = work / "rt-driver"
    driver_rt.mkdir()
    rtcount.install(str(driver_rt))

    from benchmarks.systems import load
    from benchmarks.systems.base import Monitor

    try:
        system = load(args.system, url)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    out: dict[str, Any] = {
        "system": system.name,
        "version": system.version(),
        "worker_config": system.worker_config,
        "enqueue_method": system.enqueue_method,
        "completion_method": system.completion_method,
        "jobs": n,
    }
    mon = Monitor(url)
    reader = EventReader(fifo)
    worker: WorkerProcess | None = None
    profiler: subprocess.Popen[bytes] | None = None
    try:
        mon.client.flushall()
        mon.client.config_resetstat()
        await asyncio.wait_for(system.open(), 30)

        # --- batch enqueue ------------------------------------------------------------
        before = commandstats(mon.client)
        rt0 = rtcount.local_count()
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(system.enqueue_batch(range(n)), args.enqueue_timeout)
        except TimeoutError:
            out["enqueue"] = {"status": "timeout", "seconds": args.enqueue_timeout}
            return out
        seconds = time.perf_counter() - t0
        out["enqueue"] = {
            "status": "ok",
            "seconds": seconds,
            "jobs_per_s": n / seconds,
            "round_trips_per_job": (rtcount.local_count() - rt0) / n,
        }

        # --- drain with one worker process ------------------------------------------------
        argv, extra = system.worker_command()
        if args.cprofile is not None:
            args.cprofile.mkdir(parents=True, exist_ok=True)
            argv = [
                sys.executable,
                "-m",
                "benchmarks.cprofile_run",
                str(args.cprofile / f"{args.tag or args.system}.prof"),
                *argv,
            ]
        env = dict(os.environ)
        env.update(extra)
        env.update(
            BENCH_FIFO=str(fifo),
            BENCH_RT_DIR=str(worker_rt),
            PYTHONPATH=os.pathsep.join([str(SITE), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
            PYTHONUNBUFFERED="1",
        )
        worker = WorkerProcess(argv, env, work / "worker.log", ROOT)
        spawned = worker.started
        if args.worker_pid_file is not None:
            args.worker_pid_file.write_text(str(worker.proc.pid))
        profiler = start_profiler(args, worker) if args.profile else None
        drain: dict[str, Any] = {"status": "ok"}
        out["drain"] = drain
        deadline = time.monotonic() + args.drain_timeout
        while reader.seen() < n:
            if not worker.alive():
                drain.update(
                    status="error",
                    message=f"worker exited ({worker.proc.returncode}): {worker.log_tail()}",
                )
                return out
            if time.monotonic() > deadline:
                drain.update(status="timeout", seconds=args.drain_timeout, handled=reader.seen())
                return out
            await asyncio.sleep(0.002)
        handlers_done = time.time()
        while not system.drained(mon, n):
            if time.monotonic() > deadline:
                drain.update(
                    status="timeout",
                    seconds=args.drain_timeout,
                    handled=reader.seen(),
                    message="every handler ran but the system never reported its queue drained",
                )
                return out
            await asyncio.sleep(0.002)
        done = time.time()
        if profiler is not None:
            stop_profiler(profiler)
            profiler = None
        after = commandstats(mon.client)
        worker_round_trips = rtcount.read_total(worker_rt)
        rss_mib, processes = worker.peak_rss()
        first = reader.first or spawned
        drain.update(
            seconds_from_spawn=done - spawned,
            startup_seconds=first - spawned,
            seconds_from_first_start=done - first,
            state_lag_seconds=done - handlers_done,
            jobs_per_s=n / (done - spawned),
            jobs_per_s_excl_startup=n / (done - first),
            duplicates=reader.records - reader.seen(),
        )
        delta = diff(after, before)
        for name, count in mon.counts.items():  # the harness's own polling is not the system's work
            if name in delta:
                delta[name] -= count
        work_commands = {k: v for k, v in delta.items() if k not in EXCLUDED and v}
        out["redis"] = {
            "commands_per_job": sum(work_commands.values()) / n,
            "script_calls_per_job": sum(v for k, v in delta.items() if k in SCRIPT_CALLS) / n,
            "commands": dict(sorted(work_commands.items(), key=lambda kv: -kv[1])),
            "excluded": {k: v for k, v in delta.items() if k in EXCLUDED},
            "harness_polling": dict(mon.counts),
        }
        out["worker"] = {
            "round_trips_per_job": worker_round_trips / n,
            "round_trips": worker_round_trips,
            "rss_peak_mib": rss_mib,
            "processes": processes,
        }

        # --- idle latency ------------------------------------------------------------------
        out["latency"] = await latency(system, reader, worker, args, base=n)
        return out
    finally:
        if profiler is not None:
            stop_profiler(profiler)
        if worker is not None:
            worker.stop()
            if args.keep_logs is not None:
                args.keep_logs.mkdir(parents=True, exist_ok=True)
                shutil.copy(worker.log_path, args.keep_logs / f"{args.tag or args.system}.log")
        try:
            await asyncio.wait_for(system.close(), 10)
        except Exception:
            pass
        reader.close()
        shutil.rmtree(work, ignore_errors=True)


def start_profiler(
    args: argparse.Namespace, worker: WorkerProcess
) -> subprocess.Popen[bytes] | None:
    """py-spy (``BENCH_PYSPY`` or on PATH) sampling the worker tree without pausing it."""
    binary = os.environ.get("BENCH_PYSPY") or shutil.which("py-spy")
    if not binary:
        print("py-spy not found: no profile", file=sys.stderr)
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(worker.proc.pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(args.profile / f"{args.tag or args.system}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def latency(
    system: Any, reader: EventReader, worker: WorkerProcess, args: argparse.Namespace, *, base: int
) -> dict[str, Any]:
    await asyncio.sleep(0.5)  # let the worker settle into its idle wait
    budget_end = time.monotonic() + args.latency_budget
    per_job = min(10.0, args.latency_budget / 4)
    samples: list[float] = []
    warmup = 10
    status = "ok"
    i = base
    for k in range(warmup + args.latency_samples):
        if time.monotonic() > budget_end:
            status = "budget"
            break
        i += 1
        submitted = time.time()
        await system.submit_one(i)
        started = await asyncio.to_thread(reader.wait_index, i, per_job)
        if started is None:
            status = "timeout" if worker.alive() else "worker exited"
            break
        if k >= warmup:
            samples.append((started - submitted) * 1000)
        await asyncio.sleep(args.latency_spacing)
    result: dict[str, Any] = {"status": status, "samples": len(samples)}
    if samples:
        result.update(
            p50_ms=percentile(samples, 50),
            p99_ms=percentile(samples, 99),
            max_ms=max(samples),
            mean_ms=sum(samples) / len(samples),
        )
    return result


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so that the finally blocks stop the worker


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = asyncio.run(bench(args))
    except Exception as exc:
        result = {
            "system": args.system,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.write_text(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
