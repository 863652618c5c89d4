"""HTTP submission rate: the echo endpoint of ``examples.reports`` (validate, store a job in
a real Redis, answer 202) against a bare FastAPI endpoint that only answers 202.

Both servers run the same way, one uvicorn process each, configured and run by
``api.service.server_config`` and ``run_server`` as ``asyncendpoints api`` runs (uvloop,
httptools, no access log, the GC frozen after startup). The same client loads both from
a process of its own over loopback: ``wrk`` when installed (``apt-get install wrk``),
else a small keep-alive HTTP/1.1 load generator on asyncio streams (a fixed number of
requests at a fixed concurrency). The rounds alternate between the two servers; the
table shows medians, and each server's CPU time per request (from /proc), which a busy
machine blurs less than the rates. Target: ratio >= 0.5.

    .venv/bin/python benchmarks/http_submit.py                    # wrk if installed
    .venv/bin/python benchmarks/http_submit.py --client asyncio --requests 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BODY = b'{"message": "hello"}'
PATH = "/echo"
TARGET_RATIO = 0.5
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "http_submit.md"


# --- where the processes run ---------------------------------------------------------------
CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPUS = set(CPUS[:1]) if len(CPUS) >= 2 else set(CPUS)
"""The server under test gets a CPU of its own; the client and Redis share the others."""
OTHER_CPUS = set(CPUS[1:]) if len(CPUS) >= 2 else set(CPUS)


def on_other_cpus() -> None:
    os.sched_setaffinity(0, OTHER_CPUS)


# --- the servers ---------------------------------------------------------------------------
def bare_app() -> Any:
    from fastapi import FastAPI
    from starlette.responses import Response

    app = FastAPI()

    @app.post(PATH, status_code=202)
    async def accepted() -> Response:
        return Response(status_code=202)

    return app


def echo_app() -> Any:
    from api import create_app
    from asyncendpoints import load_app

    return create_app(load_app("examples.reports:app"))


def serve(kind: str, port: int) -> None:
    """Serve one of the apps exactly as ``asyncendpoints api`` serves (same uvicorn
    config, same ``run_server``)."""
    from api.service import run_server, server_config

    os.sched_setaffinity(0, SERVER_CPUS)
    app = bare_app() if kind == "bare" else echo_app()
    run_server(server_config(app, host="127.0.0.1", port=port))


# --- the asyncio load generator ------------------------------------------------------------
async def load(port: int, total: int, concurrency: int) -> dict[str, Any]:
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY
    remaining = total
    statuses: Counter[int] = Counter()
    latencies: list[float] = []

    async def connection() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while remaining > 0:
            remaining -= 1
            sent = time.perf_counter()
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1
        writer.close()
        await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": total,
        "rate": total / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "non_202": sum(n for status, n in statuses.items() if status != 202),
    }


def run_asyncio_client(port: int, total: int, concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            str(port),
            "--requests",
            str(total),
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        check=True,
        text=True,
        preexec_fn=on_other_cpus,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def run_wrk(port: int, seconds: float, concurrency: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = '{BODY.decode()}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}{PATH}",
            ],
            capture_output=True,
            check=True,
            text=True,
            preexec_fn=on_other_cpus,
        ).stdout
    finally:
        os.unlink(script.name)

    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match is None:
            return float("nan")
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_202": int(non2xx.group(1)) if non2xx else 0,
    }


# --- the run -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after 30 s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def queued(url: str, prefix: str) -> int:
    import redis

    from asyncendpoints.job import name_tag

    client = redis.Redis.from_url(url)
    try:
        return int(client.llen(f"{prefix}:{{{name_tag('echo')}}}:queue:echo"))
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=["auto", "wrk", "asyncio"], default="auto")
    parser.add_argument("--requests", type=int, default=10000, help="per round (asyncio)")
    parser.add_argument("--seconds", type=float, default=5, help="per round (wrk)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="the markdown report (and the README table)"
    )
    parser.add_argument("--serve", choices=["bare", "echo"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.load:
        import uvloop

        result = uvloop.run(load(args.load, args.requests, args.concurrency))
        print(json.dumps(result))
        return 0

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "asyncio"

    from tests.support.redis_server import RedisServer

    redis_server = RedisServer()
    redis_server.start()
    assert redis_server.process is not None
    os.sched_setaffinity(redis_server.process.pid, OTHER_CPUS)
    prefix = f"bench{os.getpid()}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASYNCENDPOINTS_")},
        "ASYNCENDPOINTS_REDIS_URL": redis_server.url,
        "ASYNCENDPOINTS_KEY_PREFIX": prefix,
        "ASYNCENDPOINTS_MAX_QUEUE_SIZE": "100000000",
    }
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        for kind in ("bare", "echo"):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, __file__, "--serve", kind, "--port", str(port)], env=env, cwd=ROOT
            )
            servers[kind] = (port, process)
            wait_listening(port, process)

        def measure(kind: str, warmup: bool = False) -> dict[str, Any]:
            port, process = servers[kind]
            cpu = cpu_seconds(process.pid)
            if client == "wrk":
                result = run_wrk(port, 1 if warmup else args.seconds, args.concurrency)
            else:
                result = run_asyncio_client(
                    port, 500 if warmup else args.requests, args.concurrency
                )
            result["cpu_us"] = 1e6 * (cpu_seconds(process.pid) - cpu) / result["requests"]
            return result

        results: dict[str, list[dict[str, Any]]] = {"bare": [], "echo": []}
        for kind in results:
            measure(kind, warmup=True)
        before = queued(redis_server.url, prefix)
        for _ in range(args.rounds):
            for kind in ("bare", "echo"):
                results[kind].append(measure(kind))
        stored = queued(redis_server.url, prefix) - before
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait(10)
        redis_server.stop()

    rates = {kind: statistics.median(r["rate"] for r in rounds) for kind, rounds in results.items()}
    ratio = rates["echo"] / rates["bare"]
    sent_echo = sum(r["requests"] for r in results["echo"])
    load_desc = (
        f"wrk -t1 -c{args.concurrency}, {args.seconds:g} s per round"
        if client == "wrk"
        else f"asyncio keep-alive client, {args.requests} requests at concurrency {args.concurrency}"
    )
    lines = [
        f"HTTP submission rate, {load_desc}, median of {args.rounds} rounds; "
        f"uvicorn (uvloop, httptools), one process per server on CPU {sorted(SERVER_CPUS)}, "
        f"client and Redis on CPU {sorted(OTHER_CPUS)}.",
        "",
        "| server | req/s (median) | rounds | server CPU µs/req | p50 ms | p99 ms | non-202 |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    names = {"bare": "bare FastAPI, answers 202", "echo": "AsyncEndpoints echo, job in Redis"}
    for kind, rounds in results.items():
        each = ", ".join(f"{r['rate']:.0f}" for r in rounds)
        p50 = statistics.median(r["p50_ms"] for r in rounds)
        p99 = statistics.median(r["p99_ms"] for r in rounds)
        bad = sum(r["non_202"] for r in rounds)
        cpu = statistics.median(r["cpu_us"] for r in rounds)
        lines.append(
            f"| {names[kind]} | {rates[kind]:.0f} | {each} | {cpu:.0f} | {p50:.2f} | {p99:.2f} "
            f"| {bad} |"
        )
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    cpu_ratio = statistics.median(r["cpu_us"] for r in results["bare"]) / statistics.median(
        r["cpu_us"] for r in results["echo"]
    )
    # wrk counts the answers it read; requests still in flight when it stops may be stored
    lines += [
        "",
        f"Ratio echo / bare: **{ratio:.2f}** ({verdict} the target of {TARGET_RATIO}); "
        f"server CPU per request, bare / echo: {cpu_ratio:.2f}; "
        f"jobs stored in Redis by the measured echo rounds: {stored} (answered {sent_echo}).",
    ]
    report = "\n".join(lines)
    print("\n" + report)
    if args.out is not None:
        args.out.write_text(
            f"# HTTP submission rate\n\n{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{report}\n"
        )
        if args.out.resolve() == DEFAULT_OUT.resolve():
            from benchmarks.report import fill

            fill(ROOT / "README.md", "http", report)
    failed = any(r["non_202"] for rounds in results.values() for r in rounds)
    lost = stored < sent_echo if client == "wrk" else stored != sent_echo
    return 1 if failed or lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
