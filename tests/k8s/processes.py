"""Child processes of the test control plane (no pytest in here).

:class:`ManagedProcess` runs a child in a process group of its own, its output in a log file;
the child gets SIGKILL should the Python process that started it die (Linux
``PR_SET_PDEATHSIG``), and :meth:`ManagedProcess.stop` terminates, then kills, its group.
Whatever is registered in :data:`LIVE` (a running control plane) is stopped at exit
(``atexit``). Also :func:`free_port` (a free loopback TCP port) and :func:`tail` (the end of a
log file).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGKILL when its parent dies (Linux only)."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    kill = int(signal.SIGKILL)

    def preexec() -> None:  # between fork and exec: no imports, no allocation-heavy work
        prctl(1, kill, 0, 0, 0)  # PR_SET_PDEATHSIG

    return preexec


_PREEXEC = _pdeathsig_preexec()


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """A child process in a process group of its own, its output in a log file."""

    def __init__(self, name: str, args: list[str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                args,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_PREEXEC,
            )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds, reap the process."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            try:
                self.popen.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # a straggler in the group (there should be none) gets SIGKILL too
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


class Stoppable(Protocol):
    def stop(self) -> None: ...


# what is still running (a started control plane), stopped at exit should nobody else stop it
LIVE: set[Stoppable] = set()


@atexit.register
def _stop_all() -> None:
    for plane in list(LIVE):
        plane.stop()
