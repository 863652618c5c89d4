"""Test apps for the worker: in-process (``build_app``) and for real worker processes.

``asyncendpoints worker tests.worker.apps:app`` serves:

* ``echo``: returns its payload (the no-op job of the drain benchmark).
* ``stamp``: returns the wall-clock time its handler started (idle-latency probe).
* ``chaos``: sleeps ``ms`` milliseconds, then records its execution with ``HINCRBY
  <prefix>:test:exec <job id> 1`` in the job store's Redis, so a test can count how
  often each job ran.
* ``forever``: sleeps ``seconds`` (a job a shutdown has to cut short); records its start
  in ``<prefix>:test:started`` and a cancellation in ``<prefix>:test:cancelled``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel

from asyncendpoints import AsyncEndpoints, JobContext, JobStore, PermanentError, Settings


class Echo(BaseModel):
    n: int = 0
    text: str = ""


class Sleep(BaseModel):
    seconds: float = 0.0
    fail_times: int = 0


class Chaos(BaseModel):
    ms: float = 5.0


@dataclass
class Recorder:
    """What the in-process handlers saw, for the tests to assert on."""

    attempts: dict[str, list[int]] = field(default_factory=dict)
    threads: list[str] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    running: int = 0
    max_running: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    """``gated`` and ``progress`` jobs wait for this."""
    progress_calls: int = 0

    def attempt(self, ctx: JobContext) -> None:
        self.attempts.setdefault(ctx.job_id, []).append(ctx.attempt)


def build_app(
    settings: Settings | None = None, *, store: JobStore | None = None
) -> tuple[AsyncEndpoints, Recorder]:
    """An app with one handler per behaviour the worker tests exercise."""
    app = AsyncEndpoints(settings, store=store)
    rec = Recorder()

    @app.post("/echo", name="echo")
    async def echo(request: Echo) -> Echo:
        return request

    @app.post("/stamp", name="stamp")
    async def stamp(request: Echo) -> dict[str, float]:
        return {"t": time.time()}

    @app.post("/sync-echo", name="sync-echo")
    def sync_echo(request: Echo, ctx: JobContext) -> Echo:
        rec.threads.append(threading.current_thread().name)
        rec.attempt(ctx)
        return Echo(n=request.n * 2, text=request.text)

    @app.post("/flaky", name="flaky", max_retries=2)
    async def flaky(request: Sleep, ctx: JobContext) -> dict[str, int]:
        rec.attempt(ctx)
        if ctx.retry_count < request.fail_times:
            raise RuntimeError(f"boom on attempt {ctx.attempt}")
        return {"attempt": ctx.attempt}

    @app.post("/permanent", name="permanent", max_retries=5)
    async def permanent(request: Echo, ctx: JobContext) -> None:
        rec.attempt(ctx)
        raise PermanentError("this request can never succeed")

    @app.post("/slow", name="slow", max_retries=1, timeout=0.2)
    async def slow(request: Sleep, ctx: JobContext) -> dict[str, bool]:
        rec.attempt(ctx)
        try:
            await asyncio.sleep(request.seconds)
        except asyncio.CancelledError:
            rec.cancelled.add(ctx.job_id)
            raise
        return {"slept": True}

    @app.post("/sleep", name="sleep", max_retries=0)
    async def sleep(request: Sleep, ctx: JobContext) -> dict[str, bool]:
        rec.attempt(ctx)
        rec.started[ctx.job_id] = time.perf_counter()
        rec.running += 1
        rec.max_running = max(rec.max_running, rec.running)
        try:
            await asyncio.sleep(request.seconds)
        except asyncio.CancelledError:
            rec.cancelled.add(ctx.job_id)
            raise
        finally:
            rec.running -= 1
        return {"slept": True}

    @app.post("/gated", name="gated")
    async def gated(request: Echo, ctx: JobContext) -> Echo:
        rec.attempt(ctx)
        await rec.gate.wait()
        return request

    @app.post("/progress", name="progress")
    async def progress(request: Echo, ctx: JobContext) -> Echo:
        rec.attempt(ctx)
        for i in range(request.n):
            rec.progress_calls += 1
            await ctx.report_progress(min(0.99, i / max(1, request.n)), f"step {i}")
        await ctx.report_progress(0.5 if request.n == 0 else 0.99, request.text or "half")
        await rec.gate.wait()
        return request

    @app.post("/chaos", name="chaos")
    async def chaos(request: Chaos, ctx: JobContext) -> dict[str, str]:
        await asyncio.sleep(request.ms / 1000)
        await _redis(app).hincrby(_key(app, "exec"), ctx.job_id, 1)
        return {"ran": ctx.job_id}

    @app.post("/forever", name="forever", max_retries=0)
    async def forever(request: Sleep, ctx: JobContext) -> dict[str, bool]:
        client = _redis(app)
        await client.rpush(_key(app, "started"), ctx.job_id)
        try:
            await asyncio.sleep(request.seconds)
        except asyncio.CancelledError:
            await asyncio.shield(client.rpush(_key(app, "cancelled"), ctx.job_id))
            raise
        return {"slept": True}

    return app, rec


_clients: dict[int, Any] = {}


def _key(app: AsyncEndpoints, what: str) -> str:
    return f"{app.settings.key_prefix}:test:{what}"


def _redis(app: AsyncEndpoints) -> Any:
    """One client per app, to the job store's Redis (only the subprocess apps use it)."""
    client = _clients.get(id(app))
    if client is None:
        url = str(app.settings.redis_url or os.environ["ASYNCENDPOINTS_REDIS_URL"])
        client = _clients[id(app)] = aioredis.Redis.from_url(url)
    return client


app, recorder = build_app()
