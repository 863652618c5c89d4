"""The markdown report of a run (``latest.md``) from its JSON (``latest.json``).

``python -m benchmarks.report benchmarks/results/latest.json`` prints it again.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

OURS = "ours"

# Targets of /work/shared/DESIGN.md ("Targets").
DRAIN_FACTOR = 3.0
P50_MS = 1.0
P99_MS = 3.0
COMMANDS_PER_JOB = 8.0
ROUND_TRIPS_PER_JOB = 0.1


def fill(readme: Path, marker: str, body: str) -> None:
    """Replace what stands between ``<!-- MARKER:start -->`` and ``<!-- MARKER:end -->``."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        return
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    readme.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def _get(result: dict[str, Any], *path: str) -> float | None:
    node: Any = result
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, (int, float)) and not (isinstance(node, float) and math.isnan(node)):
        return float(node)
    return None


def _ok(result: dict[str, Any], step: str) -> bool:
    return "error" not in result and result.get(step, {}).get("status") == "ok"


METRICS: dict[str, tuple[Callable[[dict[str, Any]], float | None], bool]] = {
    # name: (getter, higher is better)
    "drain": (lambda r: _get(r, "drain", "jobs_per_s") if _ok(r, "drain") else None, True),
    "drain_run": (
        lambda r: _get(r, "drain", "jobs_per_s_excl_startup") if _ok(r, "drain") else None,
        True,
    ),
    "p50": (lambda r: _get(r, "latency", "p50_ms"), False),
    "p99": (lambda r: _get(r, "latency", "p99_ms"), False),
    "enqueue": (lambda r: _get(r, "enqueue", "jobs_per_s") if _ok(r, "enqueue") else None, True),
    "commands": (lambda r: _get(r, "redis", "commands_per_job"), False),
    "round_trips": (lambda r: _get(r, "worker", "round_trips_per_job"), False),
    "rss": (lambda r: _get(r, "worker", "rss_peak_mib"), False),
}


def best_peer(results: list[dict[str, Any]], metric: str) -> tuple[str, float] | None:
    getter, higher = METRICS[metric]
    values = [
        (r["system"], v)
        for r in results
        if r.get("system") != OURS and (v := getter(r)) is not None
    ]
    if not values:
        return None
    return (max if higher else min)(values, key=lambda sv: sv[1])


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "n/a"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _cell(result: dict[str, Any], results: list[dict[str, Any]], metric: str, digits: int) -> str:
    getter, _ = METRICS[metric]
    value = getter(result)
    if value is None:
        return "n/a"
    text = _fmt(value, digits)
    peer = best_peer(results, metric)
    if peer is not None and peer[1] > 0:
        ratio = value / peer[1]
        text += f" ({ratio:.2f}x)" if ratio < 10 else f" ({ratio:.0f}x)"
    return text


def _latency_cell(result: dict[str, Any], results: list[dict[str, Any]]) -> str:
    lat = result.get("latency") or {}
    if not lat.get("samples"):
        return f"n/a ({lat.get('status', 'not run')})"
    text = f"{_cell(result, results, 'p50', 2)} / {_cell(result, results, 'p99', 2)}"
    if lat.get("status") != "ok" or lat["samples"] < 50:
        text += f" [{lat['samples']} samples, {lat.get('status')}]"
    return text


def _notes(results: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in results:
        drain = r.get("drain") or {}
        dups = drain.get("duplicates")
        if dups:
            out.append(
                f"- {_label(r)}: {dups} of {r.get('jobs', 0):,} handlers ran a second time during the "
                "drain (the FIFO saw their index twice); no worker was killed."
            )
        lat = r.get("latency") or {}
        if lat and lat.get("status") not in (None, "ok"):
            out.append(f"- {_label(r)}: latency step ended early ({lat.get('status')}).")
    return out


def _idle(result: dict[str, Any]) -> str:
    idle = result.get("idle_before_percent")
    return "n/a" if idle is None else f"{idle:.0f}%"


def _problem(result: dict[str, Any]) -> str | None:
    if "error" in result:
        return str(result["error"]).splitlines()[0]
    for step in ("enqueue", "drain"):
        part = result.get(step)
        if part is None:
            return f"{step}: not reached"
        if part.get("status") != "ok":
            return f"{step}: {part.get('status')} {part.get('message', '')}".strip()[:300]
    return None


def _load_line(doc: dict[str, Any]) -> str:
    load = doc.get("load_average")
    if not load:
        return ""
    start, end = load["start"], load["end"]
    return (
        f"Load average (1/5/15 min) at start {start[0]:.2f}/{start[1]:.2f}/{start[2]:.2f}, at end "
        f"{end[0]:.2f}/{end[1]:.2f}/{end[2]:.2f} (other work on the machine shares its "
        f"{doc['machine']['cores']} cores).  "
    )


HEADER = [
    "| system | drain jobs/s from worker start | drain jobs/s from first job | idle latency p50 / p99 ms "
    "| batch enqueue jobs/s | Redis commands/job | script calls/job | worker round trips/job "
    "| worker peak RSS MiB | CPUs idle before |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def _label(r: dict[str, Any]) -> str:
    name = r.get("system", "?")
    label = f"**{name}**" if name == OURS else name
    variant = r.get("variant")
    if variant:
        label += " with " + ", ".join(f"`{k}={v}`" for k, v in variant.items())
    return label


def _row(r: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """One table row; ratios against the best peer of ``results``."""
    label = _label(r)
    problem = _problem(r)
    script_calls = _get(r, "redis", "script_calls_per_job")
    rss = _get(r, "worker", "rss_peak_mib")
    procs = (r.get("worker") or {}).get("processes")
    rss_text = _cell(r, results, "rss", 0) if rss is not None else "n/a"
    if procs and procs > 1:
        rss_text += f" [{procs} processes]"
    if problem and "drain" not in r:
        return (
            f"| {label} | {problem} | | | {_cell(r, results, 'enqueue', 0)} | | | | | {_idle(r)} |"
        )
    cells = [
        label,
        _cell(r, results, "drain", 0) if _ok(r, "drain") else f"**{problem}**",
        _cell(r, results, "drain_run", 0),
        _latency_cell(r, results),
        _cell(r, results, "enqueue", 0),
        _cell(r, results, "commands", 2),
        _fmt(script_calls, 3),
        _cell(r, results, "round_trips", 3),
        rss_text,
        _idle(r),
    ]
    return "| " + " | ".join(cells) + " |"


def render(doc: dict[str, Any]) -> str:
    everything: list[dict[str, Any]] = doc["results"]
    main = [r for r in everything if not r.get("variant")]
    variants = [r for r in everything if r.get("variant")]
    results = main
    m = doc["machine"]
    s = doc["settings"]
    lines = [
        "# Benchmarks: AsyncEndpoints (`ours`) vs arq, RQ, Celery, saq, taskiq, dramatiq",
        "",
        f"{doc['when']}; `{doc['command']}`; full run {doc['wall_seconds']:.0f} s wall.  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Python {m['python']}, "
        f"redis-server {m['redis']} on loopback (no persistence), one Redis for every system, "
        "FLUSHALL and CONFIG RESETSTAT before each.  ",
        _load_line(doc),
        f"Jobs per throughput run: {s['jobs']:,}"
        + "".join(f", {k}: {v:,}" for k, v in s.get("jobs_for", {}).items())
        + f"; idle-latency samples: {s['latency_samples']} per system, {s['latency_spacing_s'] * 1000:g} ms apart "
        "(after 10 warm-up jobs).",
        "",
        "## Results",
        "",
        *HEADER,
    ]
    lines += [_row(r, main) for r in main]
    notes = _notes(everything)
    if notes:
        lines += ["", *notes]
    lines += [
        "",
        "(x) = value / the best peer's value in that column (best = highest rate; lowest latency, "
        'commands, round trips, memory). For `ours` it reads as "times the best peer".',
        "",
        "## Targets (/work/shared/DESIGN.md)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += _targets(results)
    if variants:
        lines += [
            "",
            "## Variants (other settings; not counted as peers, nor as ours in the targets)",
            "",
            *HEADER,
        ]
        lines += [_row(r, main) for r in variants]
        lines += ["", "(x) against the best peer of the main table."]
    lines += [
        "",
        "## How each system ran",
        "",
        "| system | version | worker (one process) | batch enqueue | done when |",
        "|---|---|---|---|---|",
    ]
    for r in everything:
        lines.append(
            f"| {_label(r)} | {r.get('version', '?')} | {r.get('worker_config', '')} | "
            f"{r.get('enqueue_method', '')} | {r.get('completion_method', '')} |"
        )
    lines += ["", "## Method", "", *METHOD, ""]
    lines += ["## Redis commands per job, by command", ""]
    for r in everything:
        commands = (r.get("redis") or {}).get("commands")
        n = r.get("jobs") or 0
        if commands and n:
            top = ", ".join(
                f"{k} {v / n:.2f}" for k, v in list(commands.items())[:12] if v / n >= 0.005
            )
            lines.append(f"- {_label(r)}: {top}")
    lines.append("")
    return "\n".join(lines)


def _targets(results: list[dict[str, Any]]) -> list[str]:
    ours = next((r for r in results if r.get("system") == OURS), None)
    rows: list[str] = []

    def row(target: str, measured: str, met: bool | None) -> None:
        rows.append(
            f"| {target} | {measured} | {'yes' if met else 'no' if met is not None else 'n/a'} |"
        )

    if ours is None:
        return ["| (ours was not run) | | |"]
    drain = METRICS["drain"][0](ours)
    drain_run = METRICS["drain_run"][0](ours)
    peer = best_peer(results, "drain")
    peer_run = best_peer(results, "drain_run")
    if drain is not None and peer is not None:
        text = f"{drain:,.0f}/s vs {peer[0]} {peer[1]:,.0f}/s = {drain / peer[1]:.2f}x"
        if drain_run is not None and peer_run is not None:
            text += f" (from first job: {drain_run:,.0f} vs {peer_run[0]} {peer_run[1]:,.0f} = {drain_run / peer_run[1]:.2f}x)"
        row(f"drain ≥ {DRAIN_FACTOR:g}x the fastest peer", text, drain >= DRAIN_FACTOR * peer[1])
    else:
        row(f"drain ≥ {DRAIN_FACTOR:g}x the fastest peer", "n/a", None)
    p50, p99 = METRICS["p50"][0](ours), METRICS["p99"][0](ours)
    row(
        f"idle latency p50 ≤ {P50_MS:g} ms",
        _fmt(p50, 2) + " ms",
        None if p50 is None else p50 <= P50_MS,
    )
    row(
        f"idle latency p99 ≤ {P99_MS:g} ms",
        _fmt(p99, 2) + " ms",
        None if p99 is None else p99 <= P99_MS,
    )
    enqueue = METRICS["enqueue"][0](ours)
    rq = next((r for r in results if r.get("system") == "rq"), None)
    rq_enqueue = METRICS["enqueue"][0](rq) if rq else None
    if enqueue is not None and rq_enqueue is not None:
        row(
            "batch enqueue ≥ rq's pipelined rate",
            f"{enqueue:,.0f}/s vs rq {rq_enqueue:,.0f}/s = {enqueue / rq_enqueue:.2f}x",
            enqueue >= rq_enqueue,
        )
    else:
        row("batch enqueue ≥ rq's pipelined rate", _fmt(enqueue, 0) + "/s (rq not run)", None)
    commands = METRICS["commands"][0](ours)
    acked_peers = [r for r in results if r.get("system") not in (OURS, "taskiq")]
    fewest = best_peer(acked_peers, "commands")
    text = _fmt(commands, 2)
    if fewest is not None:
        text += f" (fewest of the peers that keep acknowledgements or state: {fewest[0]} {fewest[1]:.2f})"
    met = (
        None
        if commands is None
        else commands <= COMMANDS_PER_JOB and (fewest is None or commands < fewest[1])
    )
    row(
        f"≤ {COMMANDS_PER_JOB:g} Redis commands per job, fewer than every peer that keeps acks",
        text,
        met,
    )
    rt = METRICS["round_trips"][0](ours)
    row(
        f"≤ {ROUND_TRIPS_PER_JOB:g} client round trips per job under load (worker)",
        _fmt(rt, 3),
        None if rt is None else rt <= ROUND_TRIPS_PER_JOB,
    )
    return rows


METHOD = [
    "- **Order per system**: FLUSHALL, CONFIG RESETSTAT; batch-enqueue N jobs (timed: *batch enqueue*); "
    "then start ONE worker process with the system's own CLI (timed from `Popen` until done: *drain*); "
    "then, with that worker idle, the latency samples; then SIGTERM (SIGKILL after 10 s). "
    "Each system runs in its own driver process, killed (with its worker) when it overruns its time budget.",
    "- **The task** of every system is the same no-op: it takes one integer and writes "
    "`(index, time.time())` (16 bytes, one `write(2)`) into a FIFO the harness reads. Nothing goes to "
    "Redis, so no system's Redis counts change, and the FIFO tells the harness when each handler started.",
    "- **Done** (drain end) = every job's handler has started (FIFO) AND the system's own state says "
    "its queue is drained and every job finished (column *done when*; polled every 2 ms after the last "
    "handler started, so deferred bookkeeping such as batched completions is inside the time). "
    "taskiq keeps no completion record: its queue being empty is all there is.",
    "- **Drain jobs/s from worker start** = N / (done - worker spawn): includes interpreter start and "
    "imports. *From first job* = N / (done - first handler start): the steady drain rate.",
    "- **Idle latency** = handler's `time.time()` at start - `time.time()` just before the submit call "
    "(the ordinary single-job API), one job at a time with the worker idle, "
    "the next submitted after the previous started plus the spacing. Nearest-rank p50 / p99.",
    "- **Batch enqueue** = N / time of the enqueue phase with the system's fastest batch API "
    "(pipelined where the system has one; else concurrent or sequential calls, see the table above).",
    "- **Redis commands per job** = Redis' own `INFO commandstats` calls, after - before "
    "(before the enqueue, after done), summed over every command except "
    "EVAL/EVALSHA(/_RO)/FCALL, INFO, SCRIPT, CONFIG, CLIENT, HELLO, SELECT, PING, AUTH, COMMAND, "
    "FLUSHALL; commands run inside Lua scripts are counted by Redis under their own names, MULTI/EXEC/"
    "WATCH count; the harness's own polling commands are subtracted by name; divided by N. So it is "
    "enqueue + claim + completion + whatever the worker does meanwhile (heartbeats, polls). "
    "*Script calls/job* = EVAL+EVALSHA calls / N.",
    "- **Worker round trips per job** = requests the worker process tree wrote to Redis during the drain "
    "(from spawn to done) / N. Every system here talks to Redis through redis-py, which sends each "
    "request (one command, one pipeline of k commands, one script call, one blocking pop) with one "
    "`send_packed_command`; a `sitecustomize` put on the worker's PYTHONPATH wraps that method and "
    "counts calls per process (an mmap'd counter per pid, forked children included). Redis cannot "
    "count round trips itself (`total_commands_processed` includes commands inside scripts).",
    "- **Worker peak RSS** = sum of `VmHWM` (/proc) over the worker's process tree, read at drain end "
    "(supervisor + worker process for taskiq and dramatiq).",
    "- **Configs**: library defaults except: one process, per-job INFO logging off (WARNING) for "
    "every system, Celery's `solo` pool and acks_late, RQ's SimpleWorker (the default Worker forks a "
    "process per job), arq's poll_delay 10 ms (its 0.5 s default caps a drain at ~200 jobs/s and "
    "sets its idle latency to ~250 ms). Knobs (env): BENCH_ARQ_POLL_DELAY, BENCH_ARQ_MAX_JOBS, "
    "BENCH_CELERY_POOL, BENCH_CELERY_PREFETCH, BENCH_SAQ_CONCURRENCY, BENCH_DRAMATIQ_THREADS, "
    "BENCH_OURS_CHUNK and every ASYNCENDPOINTS_* setting for ours.",
    "- **CPUs idle before** = share of both CPUs idle over the second before the system's run "
    "(the runner waits up to `--quiet-max` s for `--quiet-idle` %, default 30 s / 60 %): other work "
    "on the machine takes CPU from the worker and from Redis.",
    "- A shared 2-core machine is noisy: drain and latency figures move ±15% between runs; "
    "commands and round trips per job do not.",
]


def main() -> None:
    path = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).parent / "results" / "latest.json"
    )
    sys.stdout.write(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
