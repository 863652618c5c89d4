"""Prechecks: called with the validated body (and the request), may answer or refuse;
either way no job is stored."""

from __future__ import annotations

import pytest

from tests.api.apps import calls
from tests.api.conftest import MOUNTS, Api
from tests.api.test_submit import assert_problem


@pytest.fixture(params=MOUNTS)
def mount(request: pytest.FixtureRequest) -> str:
    mounted: str = request.param
    return mounted


async def test_a_precheck_refusing_with_400_stores_nothing(api: Api) -> None:
    response = await api.client.post("/reports/eu", json={"month": "9999-12"})
    doc = assert_problem(response, 400)
    assert doc["detail"] == "that month has not happened yet"
    assert calls == [{"month": "9999-12", "path": "/reports/eu"}]
    assert await api.queued("report") == 0


async def test_a_precheck_may_answer_itself(api: Api) -> None:
    response = await api.client.post("/reports/eu", json={"month": "0000-00"})
    assert response.status_code == 200
    assert response.json() == {"answered": "by the precheck"}
    assert await api.queued("report") == 0


async def test_a_passing_precheck_lets_the_job_through(api: Api) -> None:
    response = await api.client.post("/reports/eu", json={"month": "2026-02"})
    assert response.status_code == 202
    assert calls == [{"month": "2026-02", "path": "/reports/eu"}]
    assert await api.queued("report") == 1


async def test_prechecks_run_after_validation(api: Api) -> None:
    assert_problem(await api.client.post("/reports/eu", json={"month": "x"}), 422)
    assert calls == []


async def test_a_sync_precheck_keeps_the_exception_headers(api: Api) -> None:
    refused = await api.client.put("/items/1", json={"name": "forbidden"})
    assert_problem(refused, 403)
    assert refused.headers["x-reason"] == "forbidden item"
    passed = await api.client.put("/items/1", json={"name": "pen"})
    assert passed.status_code == 202
    assert calls == [{"item": "forbidden"}, {"item": "pen"}]
    assert await api.queued("item") == 1


async def test_a_crashing_precheck_is_a_bare_500(api: Api) -> None:
    response = await api.client.post("/reports/eu", json={"month": "6666-66"})
    doc = assert_problem(response, 500)
    assert doc["type"] == "about:blank"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    assert await api.queued("report") == 0
