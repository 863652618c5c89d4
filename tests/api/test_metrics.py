"""/metrics: submissions by name and outcome, rejections by reason, request latency;
each app has its own registry."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Api, MakeApi


async def samples(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_submissions_and_rejections_are_counted(make_api: MakeApi) -> None:
    api = await make_api(max_queue_size=1)
    await api.client.post("/echo", json={"message": "x"}, headers={"Idempotency-Key": "k"})
    await api.client.post("/echo", json={"message": "x"}, headers={"Idempotency-Key": "k"})
    await api.client.post("/echo", json={"message": "y"})  # the queue is full
    await api.client.post("/echo", json={})  # invalid
    await api.client.post("/reports/eu", json={"month": "0000-00"})  # answered by its precheck
    await api.client.get("/jobs/nope")
    got = await samples(api)
    submitted = "asyncendpoints_http_submissions_total"
    assert got[(submitted, (("name", "echo"), ("outcome", "accepted")))] == 1
    assert got[(submitted, (("name", "echo"), ("outcome", "replayed")))] == 1
    assert got[(submitted, (("name", "echo"), ("outcome", "rejected")))] == 2
    assert got[(submitted, (("name", "report"), ("outcome", "answered")))] == 1
    rejected = "asyncendpoints_http_rejections_total"
    assert got[(rejected, (("reason", "queue-full"),))] == 1
    assert got[(rejected, (("reason", "validation"),))] == 1
    assert got[(rejected, (("reason", "job-not-found"),))] == 1
    latency = "asyncendpoints_http_request_duration_seconds_count"
    route = (("method", "POST"), ("route", "/echo"), ("status", "202"))
    assert got[(latency, route)] == 2
    assert got[(latency, (("method", "POST"), ("route", "/echo"), ("status", "429")))] == 1
    assert any(name == "process_cpu_seconds_total" for name, _ in got) or any(
        name.startswith("python_gc") for name, _ in got
    )


async def test_each_app_counts_on_its_own(make_api: MakeApi) -> None:
    first = await make_api()
    second = await make_api()
    await first.client.post("/echo", json={"message": "x"})
    key = ("asyncendpoints_http_submissions_total", (("name", "echo"), ("outcome", "accepted")))
    assert (await samples(first))[key] == 1
    assert key not in await samples(second)
