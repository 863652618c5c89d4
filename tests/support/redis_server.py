"""A real ``redis-server`` process on a free loopback port, for the tests and benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_pong(port: int, what: str, timeout: float = 10.0) -> None:
    """Until the server on ``port`` answers PING (fails after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{what} did not answer on port {port}")


def redis_server_binary() -> str:
    """The path of ``redis-server``; a RuntimeError that says how to get it when missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: `apt-get install redis-server` "
            "(the Debian package), or run `make test`, which installs it"
        )
    return binary


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 5 s; nothing when the process is gone already."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class RedisServer:
    """Start, stop and restart a throwaway redis-server (no persistence)."""

    def __init__(self, port: int | None = None, *, replica_of: int | None = None) -> None:
        self.binary = redis_server_binary()
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ae-redis-"))
        self.replica_of = replica_of
        """The port of the primary this server replicates (None: a primary)."""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--protected-mode",
                "yes",
                "--loglevel",
                "warning",
                *(("--replicaof", "127.0.0.1", str(self.replica_of)) if self.replica_of else ()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_pong(self.port, "redis-server")

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class RedisSentinel:
    """A real Sentinel (``redis-server --sentinel``) that monitors one primary as ``name``.

    Quorum 1, the primary deemed down after 1 s, so that a test can fail it over with
    ``SENTINEL FAILOVER`` (or by killing it) in a few seconds.
    """

    def __init__(self, primary_port: int, name: str = "ae") -> None:
        self.binary = redis_server_binary()  # it runs the Sentinel too
        self.name = name
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ae-sentinel-"))
        self.config = self.dir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {name} 127.0.0.1 {primary_port} 1\n"
            f"sentinel down-after-milliseconds {name} 1000\n"
            f"sentinel failover-timeout {name} 5000\n"
            f"sentinel parallel-syncs {name} 1\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        """The store's DSN for the primary this Sentinel monitors."""
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.name}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, str(self.config), "--sentinel", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_pong(self.port, "the Sentinel")

    def stop(self) -> None:
        terminate(self.process)
        self.process = None
