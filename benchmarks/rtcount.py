"""Count client round trips to Redis inside a process, without touching the library under test.

Every Redis client used here (ours, arq, RQ, Celery's kombu, saq, taskiq-redis, dramatiq) is
redis-py, and redis-py writes every request, a single command or a whole pipeline, with one
``send_packed_command`` call on a connection. Counting those calls counts round trips: a
pipeline of k commands is 1, a blocking BLPOP that waits is 1, a Lua script call is 1.

:func:`install` wraps the sync and the asyncio ``send_packed_command`` of redis-py and keeps the
count of this process in a small file (``<dir>/<pid>.rt``, an mmap'd little-endian int64), so a
harness in another process can read it at any moment and sum it over a worker's process tree.
A forked child starts its own file. Worker processes get it through ``benchmarks/_site/
sitecustomize.py`` when ``BENCH_RT_DIR`` is set.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

_SLOT = struct.Struct("<q")
_state: dict[str, object] = {}


class _Counter:
    __slots__ = ("count", "directory", "mm")

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.count = 0
        self.mm: mmap.mmap | None = None
        self.reopen()

    def reopen(self) -> None:
        path = os.path.join(self.directory, f"{os.getpid()}.rt")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, _SLOT.size)
            self.mm = mmap.mmap(fd, _SLOT.size)
        finally:
            os.close(fd)
        self.count = 0
        _SLOT.pack_into(self.mm, 0, 0)

    def hit(self) -> None:
        self.count += 1
        _SLOT.pack_into(self.mm, 0, self.count)  # type: ignore[arg-type]


def install(directory: str) -> None:
    """Count this process's redis-py round trips into ``directory`` (idempotent)."""
    if "counter" in _state:
        return
    import redis.asyncio.connection as aconn
    import redis.connection as sconn

    counter = _Counter(directory)
    _state["counter"] = counter
    os.register_at_fork(after_in_child=counter.reopen)

    sync_send = sconn.AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        counter.hit()
        return sync_send(self, command, check_health)

    async_send = aconn.AbstractConnection.send_packed_command

    async def asend_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        counter.hit()
        return await async_send(self, command, check_health)

    sconn.AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
    aconn.AbstractConnection.send_packed_command = asend_packed_command  # type: ignore[method-assign]


def local_count() -> int:
    """Round trips of this process so far (0 when not installed)."""
    counter = _state.get("counter")
    return counter.count if isinstance(counter, _Counter) else 0


def read_total(directory: str | Path) -> int:
    """Sum of the counts every process wrote into ``directory``."""
    total = 0
    for path in Path(directory).glob("*.rt"):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if len(data) >= _SLOT.size:
            total += _SLOT.unpack_from(data, 0)[0]
    return total
