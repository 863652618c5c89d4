"""The worker id: settings, else POD_NAME, else host-pid."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable

import pytest

from asyncendpoints import AsyncEndpoints, Settings
from tests.worker.apps import Recorder
from tests.worker.conftest import finished
from worker.identity import resolve_worker_id
from worker.runtime import Worker

MakeApp = Callable[..., tuple[AsyncEndpoints, Recorder]]
StartWorker = Callable[..., Awaitable[Worker]]


def test_worker_id_is_the_pod_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASYNCENDPOINTS_WORKER_ID", raising=False)
    monkeypatch.setenv("POD_NAME", "reports-7d9f-abcde")
    assert resolve_worker_id(Settings()) == "reports-7d9f-abcde"


def test_setting_wins_over_pod_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "reports-7d9f-abcde")
    assert resolve_worker_id(Settings(worker_id="explicit")) == "explicit"


def test_worker_id_falls_back_to_host_and_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAME", raising=False)
    monkeypatch.delenv("ASYNCENDPOINTS_WORKER_ID", raising=False)
    assert resolve_worker_id(Settings()) == f"{socket.gethostname()}-{os.getpid()}"


async def test_running_worker_registers_and_leases_under_the_pod_name(
    make_app: MakeApp,
    start_worker: StartWorker,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POD_NAME", "pool-a-5c6b7-xyz12")
    app, _ = make_app(make_settings(worker_id=None))
    worker = await start_worker(app)
    assert worker.worker_id == "pool-a-5c6b7-xyz12"
    assert "pool-a-5c6b7-xyz12" in {w.worker_id for w in await app.store.workers()}
    done = await finished(app, (await app.submit("echo", {})).id)
    assert done.worker_id == "pool-a-5c6b7-xyz12"
