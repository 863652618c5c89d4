"""The worker's health port: /healthz, /readyz, /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from asyncendpoints import AsyncEndpoints, StoreUnavailableError
from tests.support.redis_server import free_port
from tests.worker.apps import Recorder
from tests.worker.conftest import finished
from worker.runtime import Worker

MakeApp = Callable[..., tuple[AsyncEndpoints, Recorder]]
StartWorker = Callable[..., Awaitable[Worker]]


@pytest.mark.parametrize("store_kind", ["memory"], indirect=True)
async def test_health_port_answers_probes_and_scrapes(
    make_app: MakeApp, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, _ = make_app()
    port = free_port()
    worker = await start_worker(app, health_port=port, health_host="127.0.0.1")
    assert worker.health is not None and worker.health.port == port
    await finished(app, (await app.submit("echo", {"n": 1})).id)
    await finished(app, (await app.submit("permanent", {})).id)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        live = await client.get("/healthz")
        assert (live.status_code, live.text) == (200, "ok\n")
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.text) == (200, "ok\n")
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        assert 'asyncendpoints_worker_jobs_total{name="echo",outcome="completed"} 1.0' in text
        assert 'asyncendpoints_worker_jobs_total{name="permanent",outcome="failed"} 1.0' in text
        assert 'asyncendpoints_worker_job_duration_seconds_count{name="echo"} 1.0' in text
        assert "asyncendpoints_worker_jobs_in_flight 0.0" in text
        assert "asyncendpoints_worker_claim_latency_seconds_count" in text
        assert (await client.get("/nope")).status_code == 404
        assert (await client.post("/healthz")).status_code == 405
        head = await client.head("/healthz")
        assert head.status_code == 200 and head.content == b""

        async def down() -> None:
            raise StoreUnavailableError("connection refused")

        monkeypatch.setattr(app.store, "ping", down)
        unready = await client.get("/readyz")
        assert unready.status_code == 503 and "store unreachable" in unready.text
        monkeypatch.undo()
        worker.stop()
        draining = await client.get("/readyz")
        assert (draining.status_code, draining.text) == (503, "draining\n")
        assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("store_kind", ["memory"], indirect=True)
async def test_port_zero_turns_the_health_server_off(
    make_app: MakeApp, start_worker: StartWorker
) -> None:
    app, _ = make_app()
    worker = await start_worker(app, health_port=0)
    assert worker.health is None
