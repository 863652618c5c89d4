"""Run the side-by-side benchmark and write ``latest.md`` and ``latest.json``.

    .venv/bin/python -m benchmarks.run                       # every system, defaults
    .venv/bin/python -m benchmarks.run --systems ours,dramatiq --jobs 5000

One redis-server (``tests/support/redis_server.py``, loopback, no persistence) serves every
system in turn; each system runs in its own driver process (:mod:`benchmarks.driver`),
which starts with FLUSHALL and CONFIG RESETSTAT, and which this runner kills (with its
worker) when it overruns its time budget: a peer that hangs is reported as a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.report import fill, render
from benchmarks.systems import ALL

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JOBS_FOR = "rq=5000"
"""RQ drains ~200 jobs/s here (about 20 round trips per job): 5,000 keep a full run short."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--systems", default=",".join(ALL), help=f"comma-separated, from {','.join(ALL)}"
    )
    p.add_argument("--jobs", type=int, default=20_000, help="jobs per throughput run")
    p.add_argument(
        "--jobs-for",
        default=DEFAULT_JOBS_FOR,
        help="per-system job counts, e.g. 'rq=5000,saq=10000' ('' for none)",
    )
    p.add_argument("--latency-samples", type=int, default=300)
    p.add_argument("--latency-spacing", type=float, default=0.005, help="seconds between samples")
    p.add_argument(
        "--latency-budget", type=float, default=60, help="seconds per system for latency"
    )
    p.add_argument("--enqueue-timeout", type=float, default=120)
    p.add_argument("--drain-timeout", type=float, default=180)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument(
        "--redis-url", default=None, help="use this Redis (default: start a throwaway one)"
    )
    p.add_argument(
        "--quiet-idle",
        type=float,
        default=60,
        help="before each system, wait until the CPUs were at least this %% idle over 1 s ...",
    )
    p.add_argument("--quiet-max", type=float, default=30, help="... but at most this many seconds")
    p.add_argument("--profile", type=Path, default=None, help="py-spy the workers; stacks go here")
    p.add_argument(
        "--cprofile",
        type=Path,
        default=None,
        help="cProfile (CPU time) the workers; .prof files go here",
    )
    p.add_argument("--keep-logs", type=Path, default=None, help="keep the workers' logs here")
    return p.parse_args(argv)


def jobs_for(args: argparse.Namespace) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in filter(None, (x.strip() for x in args.jobs_for.split(","))):
        name, _, value = part.partition("=")
        out[name.strip()] = int(value)
    return out


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``name`` or ``name@VAR=value@VAR=value``: a system, or a variant of it with its
    worker and producer run with extra environment (e.g. ``ours@ASYNCENDPOINTS_CONCURRENCY=100``)."""
    name, *assignments = spec.split("@")
    env = {}
    for assignment in assignments:
        var, sep, value = assignment.partition("=")
        if not sep or not var:
            raise ValueError(f"bad variant {assignment!r} in {spec!r}: expected VAR=value")
        env[var] = value
    return name, env


def run_driver(
    system: str, url: str, args: argparse.Namespace, jobs: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    label = system + "".join(f"@{k}={v}" for k, v in (env or {}).items())
    tag = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    budget = args.enqueue_timeout + args.drain_timeout + args.latency_budget + 90
    with tempfile.NamedTemporaryFile(prefix=f"bench-{tag}-", suffix=".json", delete=False) as f:
        out_file = Path(f.name)
    pid_file = out_file.with_suffix(".pid")
    argv = [
        sys.executable,
        "-m",
        "benchmarks.driver",
        "--system",
        system,
        "--redis-url",
        url,
        "--jobs",
        str(jobs),
        "--latency-samples",
        str(args.latency_samples),
        "--latency-spacing",
        str(args.latency_spacing),
        "--latency-budget",
        str(args.latency_budget),
        "--enqueue-timeout",
        str(args.enqueue_timeout),
        "--drain-timeout",
        str(args.drain_timeout),
        "--out",
        str(out_file),
        "--worker-pid-file",
        str(pid_file),
        "--tag",
        tag,
    ]
    if args.profile is not None:
        argv += ["--profile", str(args.profile)]
    if args.cprofile is not None:
        argv += ["--cprofile", str(args.cprofile)]
    if args.keep_logs is not None:
        argv += ["--keep-logs", str(args.keep_logs)]
    began = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True
    )
    try:
        proc.wait(budget)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the driver stop its worker; then both sessions are killed by id.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        kill_session(pid_file)
        out_file.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        return {
            "system": system,
            "jobs": jobs,
            "error": f"timeout: the driver overran its {budget:.0f} s budget",
        }
    pid_file.unlink(missing_ok=True)  # the driver stopped its worker itself
    try:
        result: dict[str, Any] = json.loads(out_file.read_text())
    except (OSError, ValueError) as exc:
        result = {
            "system": system,
            "jobs": jobs,
            "error": f"driver exited {proc.returncode} without results: {exc}",
        }
    finally:
        out_file.unlink(missing_ok=True)
    result["driver_seconds"] = time.monotonic() - began
    return result


def cpu_idle(window: float = 1.0) -> float:
    """Percent of all CPUs' time spent idle (idle + iowait) over ``window`` seconds."""

    def snap() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])

    idle0, total0 = snap()
    time.sleep(window)
    idle1, total1 = snap()
    return 100.0 * (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(min_idle: float, max_wait: float) -> tuple[float, float]:
    """Wait (at most ``max_wait`` s) for a quiet machine; returns (idle %, seconds waited)."""
    began = time.monotonic()
    idle = cpu_idle()
    while idle < min_idle and time.monotonic() - began < max_wait:
        idle = cpu_idle()
    return idle, time.monotonic() - began


def kill_session(pid_file: Path) -> None:
    """SIGKILL what is left of a worker's session (normally nothing)."""
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        redis_version = (
            subprocess.run(
                ["redis-server", "--version"], capture_output=True, text=True, timeout=10
            )
            .stdout.split()[2]
            .removeprefix("v=")
        )
    except Exception:
        redis_version = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": redis_version,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    specs = [s.strip() for s in args.systems.split(",") if s.strip()]
    try:
        systems = [parse_spec(s) for s in specs]
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    unknown = [s for s, _ in systems if s not in ALL]
    if unknown:
        print(f"unknown systems: {unknown}; choose from {ALL}", file=sys.stderr)
        return 2
    per_system = jobs_for(args)
    load_before = os.getloadavg()
    command = "python -m benchmarks.run " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    started = time.monotonic()
    server = None
    url = args.redis_url
    if url is None:
        sys.path.insert(0, str(ROOT))
        from tests.support.redis_server import RedisServer

        server = RedisServer()
        server.start()
        url = server.url
    results: list[dict[str, Any]] = []
    try:
        for system, env in systems:
            jobs = per_system.get(system, args.jobs)
            idle, waited = wait_quiet(args.quiet_idle, args.quiet_max)
            print(
                f"[bench] {system}: {jobs} jobs (CPUs {idle:.0f}% idle, waited {waited:.0f} s) ...",
                file=sys.stderr,
                flush=True,
            )
            result = run_driver(system, url, args, jobs, env)
            if env:
                result["variant"] = env
            result["idle_before_percent"] = round(idle, 1)
            results.append(result)
            print(f"[bench] {system}: {summary(result)}", file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.stop()
    wall = time.monotonic() - started
    doc = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command.strip(),
        "wall_seconds": wall,
        "machine": machine(),
        "load_average": {
            "start": [round(x, 2) for x in load_before],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "jobs": args.jobs,
            "jobs_for": per_system,
            "latency_samples": args.latency_samples,
            "latency_spacing_s": args.latency_spacing,
        },
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "latest.md").write_text(render(doc))
    if args.out.resolve() == (ROOT / "benchmarks" / "results").resolve():
        update_readme(render(doc))
    print(f"[bench] wrote {args.out / 'latest.md'} ({wall:.0f} s)", file=sys.stderr)
    return 0


def update_readme(report: str) -> None:
    """Put the report between ``benchmarks/README.md``'s ``latest`` markers (its title
    dropped), and its results and targets between the project README's ``bench`` markers."""
    body = report.split("\n", 1)[1].strip()
    fill(ROOT / "benchmarks" / "README.md", "latest", body.replace("\n## ", "\n### "))
    sections = {part.split("\n", 1)[0]: part for part in ("\n" + body).split("\n## ")[1:]}
    short = "\n\n".join(
        "#### " + sections[title].strip()
        for title in ("Results", "Targets (/work/shared/DESIGN.md)")
        if title in sections
    )
    fill(ROOT / "README.md", "bench", short.replace("(/work/shared/DESIGN.md)", "(DESIGN.md)"))


def summary(result: dict[str, Any]) -> str:
    if "error" in result:
        return result["error"].splitlines()[0]
    drain = result.get("drain", {})
    lat = result.get("latency", {})
    if drain.get("status") != "ok":
        return f"drain {drain.get('status')} {drain.get('message', '')[:200]}"
    return (
        f"drain {drain['jobs_per_s']:,.0f}/s, latency p50 {lat.get('p50_ms', float('nan')):.2f} ms, "
        f"enqueue {result['enqueue']['jobs_per_s']:,.0f}/s, {result['redis']['commands_per_job']:.2f} cmds/job, "
        f"{result['worker']['round_trips_per_job']:.3f} rt/job"
    )


if __name__ == "__main__":
    raise SystemExit(main())
