"""A tiny HTTP server for the kubelet and Prometheus: ``/healthz``, ``/readyz``, ``/metrics``.

It runs in the worker's event loop on ``settings.worker_health_port`` (0 turns it off),
speaks just enough HTTP/1.1 for probes and scrapers (one request per connection), and
costs nothing while nobody asks.

* ``/healthz``: 200 while the worker's loops are alive (the liveness probe).
* ``/readyz``: 200 when the store answers a ping and the worker is not draining, else 503.
* ``/metrics``: the Prometheus text exposition of the worker's registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

log = logging.getLogger("asyncendpoints.worker")

Check = Callable[[], Awaitable[tuple[bool, str]]]

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}  # fmt: skip
_READ_TIMEOUT = 5.0
_MAX_HEADER_LINES = 100


class HealthServer:
    """Serves the three endpoints on ``host:port`` (``port`` 0 picks a free one)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        live: Check,
        ready: Check,
        registry: CollectorRegistry,
    ) -> None:
        self.host = host
        self.port = port
        self._live = live
        self._ready = ready
        self._registry = registry
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("health server listening", extra={"host": self.host, "port": self.port})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT):
                request_line = await reader.readline()
                for _ in range(_MAX_HEADER_LINES):
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
            status, content_type, body, head = await self._respond(request_line)
            writer.write(
                (
                    f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                    f"Content-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    "Cache-Control: no-store\r\n"
                    "Connection: close\r\n\r\n"
                ).encode("latin-1")
                + (b"" if head else body)
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("health server failed to answer")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(self, request_line: bytes) -> tuple[int, str, bytes, bool]:
        text = "text/plain; charset=utf-8"
        parts = request_line.decode("latin-1").split()
        if len(parts) < 2:
            return 400, text, b"bad request\n", False
        method, target = parts[0], parts[1]
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            return 405, text, b"method not allowed\n", False
        path = target.split("?", 1)[0]
        if path == "/healthz" or path == "/readyz":
            check = self._live if path == "/healthz" else self._ready
            ok, detail = await check()
            return (200 if ok else 503), text, (detail + "\n").encode(), head
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry), head
        return 404, text, b"not found\n", head


__all__ = ["HealthServer"]
