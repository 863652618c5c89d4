"""What every benchmark task does: stamp ``time.time()`` at its start into a FIFO.

The harness creates the FIFO and reads it; the path comes in ``BENCH_FIFO``. Each record is
16 bytes (job index, start time), written with one ``write(2)``, which is atomic on a pipe,
so several processes may write. Nothing goes to Redis, so every system pays the same
(a syscall of about a microsecond) and no system's Redis counts change.
"""

from __future__ import annotations

import os
import struct
import time

RECORD = struct.Struct("<qd")
_fd: int | None = None
_pid = 0


def record(i: int) -> None:
    started = time.time()
    global _fd, _pid
    path = os.environ.get("BENCH_FIFO")
    if not path:
        return
    if _fd is None or _pid != os.getpid():
        _fd = os.open(path, os.O_WRONLY)
        _pid = os.getpid()
    os.write(_fd, RECORD.pack(int(i), started))
