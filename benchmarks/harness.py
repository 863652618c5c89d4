"""Pieces the driver uses: the event FIFO reader, worker processes, Redis counters."""

from __future__ import annotations

import fcntl
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.systems._events import RECORD

# Left out of "Redis commands per job": script calls (their inner commands are counted by
# Redis under their own names) and connection/admin chatter.
EXCLUDED = frozenset(
    {
        "eval",
        "evalsha",
        "eval_ro",
        "evalsha_ro",
        "fcall",
        "fcall_ro",
        "info",
        "script",
        "config",
        "client",
        "hello",
        "select",
        "ping",
        "flushall",
        "flushdb",
        "command",
        "auth",
    }
)
SCRIPT_CALLS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})


class EventReader:
    """Reads the (index, start time) records the tasks write into the FIFO, in a thread.

    The thread polls (non-blocking reads, 1 ms apart) instead of blocking in ``read``: a
    task's write into a pipe whose reader sleeps in ``read`` must wake that reader, a
    cross-CPU wake-up that costs tens of microseconds on a small VM (and may preempt the
    worker). A write into a pipe nobody waits on costs about a microsecond, the same
    for every system.
    """

    POLL_SECONDS = 0.001

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        # Our own writer end: the reader never sees EOF while workers come and go.
        self.keep = os.open(path, os.O_WRONLY)
        # A big pipe (up to 1 MiB = 65,536 records) so that a task's write never waits.
        for size in (1 << 20, 1 << 18, 1 << 16):
            try:
                fcntl.fcntl(self.fd, fcntl.F_SETPIPE_SZ, size)
                break
            except OSError:
                continue
        self.pipe_size = fcntl.fcntl(self.fd, fcntl.F_GETPIPE_SZ)
        self.cond = threading.Condition()
        self.starts: dict[int, float] = {}
        self.records = 0
        self.first: float | None = None
        self.last: float | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        size = RECORD.size
        pending = b""
        while not self._closed:
            try:
                data = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                time.sleep(self.POLL_SECONDS)
                continue
            except OSError:
                return
            if not data:
                time.sleep(self.POLL_SECONDS)
                continue
            pending += data
            whole = len(pending) - len(pending) % size
            chunk, pending = pending[:whole], pending[whole:]
            with self.cond:
                for i, started in RECORD.iter_unpack(chunk):
                    self.records += 1
                    if i not in self.starts:
                        self.starts[i] = started
                    if self.first is None or started < self.first:
                        self.first = started
                    if self.last is None or started > self.last:
                        self.last = started
                self.cond.notify_all()

    def seen(self) -> int:
        return len(self.starts)

    def wait_index(self, i: int, timeout: float) -> float | None:
        """The start time of job ``i`` once its record arrived (None after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while i not in self.starts:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)
            return self.starts[i]

    def close(self) -> None:
        self._closed = True
        self._thread.join(1)
        for fd in (self.keep, self.fd):
            try:
                os.close(fd)
            except OSError:
                pass


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        found.extend(int(c) for c in text.split())
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a process (``VmHWM``), in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class WorkerProcess:
    """One worker command in its own session (so that its whole tree can be stopped)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115
        self.started = time.time()
        self.proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def peak_rss(self) -> tuple[float, int]:
        """(sum of VmHWM over the worker's process tree in MiB, number of processes)."""
        pids = process_tree(self.proc.pid)
        return sum(vm_hwm_kib(p) for p in pids) / 1024, len(pids)

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the session (children of a supervisor), by its group id.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


def commandstats(client: Any) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (subcommands folded into their command)."""
    calls: dict[str, int] = {}
    for key, value in client.info("commandstats").items():
        name = key.removeprefix("cmdstat_").split("|", 1)[0].lower()
        calls[name] = calls.get(name, 0) + int(value["calls"])
    return calls


def diff(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    names = set(after) | set(before)
    out = {n: after.get(n, 0) - before.get(n, 0) for n in names}
    return {n: v for n, v in sorted(out.items(), key=lambda kv: -kv[1]) if v}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
