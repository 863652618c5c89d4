"""Submit routes: 202 with Location and the job resource, the captured context, and every
rejection (422, 413, 415, 429, 400) storing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from asyncendpoints.http import PROBLEM_MEDIA_TYPE, JobResource
from asyncendpoints.http.resources import iso
from tests.api.conftest import MOUNTS, Api, MakeApi


@pytest.fixture(params=MOUNTS)
def mount(request: pytest.FixtureRequest) -> str:
    mounted: str = request.param
    return mounted


PROBLEM_KEYS = {"type", "title", "status"}


def assert_problem(response: object, status: int, reason: str | None = None) -> dict[str, object]:
    assert hasattr(response, "status_code") and hasattr(response, "json")
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE  # type: ignore[attr-defined]
    doc: dict[str, object] = response.json()
    assert doc.keys() >= PROBLEM_KEYS and doc["status"] == status
    if reason is not None:
        assert doc["type"] == f"urn:asyncendpoints:problem:{reason}"
    return doc


async def test_submit_answers_202_with_location_and_the_job(api: Api) -> None:
    response = await api.client.post("/echo", json={"message": "hello"})
    assert response.status_code == 202
    resource = JobResource.model_validate(response.json())
    assert resource.status == "Queued" and resource.name == "echo"
    assert response.headers["location"] == f"/jobs/{resource.id}"
    assert resource.links.self == f"/jobs/{resource.id}"
    assert resource.links.cancel == f"/jobs/{resource.id}/cancel"
    assert resource.maxRetries == 0 and resource.retryCount == 0
    assert resource.result is None and resource.error is None and resource.progress is None
    job = await api.job(response)
    assert orjson.loads(job.payload) == {"message": "hello"}
    assert response.json()["createdAt"] == iso(job.created_at)
    assert response.json()["createdAt"].endswith("Z")
    assert await api.queued("echo") == 1


async def test_the_job_resource_reads_back_the_same(api: Api) -> None:
    submitted = await api.client.post("/echo", json={"message": "hi"})
    read = await api.client.get(submitted.headers["location"])
    assert read.status_code == 200
    assert read.json() == submitted.json()
    assert read.headers["cache-control"] == "no-store"


async def test_route_query_and_headers_are_captured_without_secrets(make_api: MakeApi) -> None:
    api = await make_api(sensitive_headers=["x-private-note"])
    response = await api.client.post(
        "/reports/eu-west?detail=full&tag=a&tag=b",
        json={"month": "2026-11"},
        headers={
            "Authorization": "Bearer not-stored",
            "Cookie": "session=not-stored",
            "Proxy-Authorization": "Basic not-stored",
            "X-Api-Key": "not-stored",
            "X-Private-Note": "not-stored",
            "X-Trace-Id": "trace-1",
        },
    )
    assert response.status_code == 202, response.text
    context = (await api.job(response)).context
    assert context.route_params == {"region": "eu-west"}
    assert context.query_params == {"detail": "full", "tag": "b"}
    assert context.headers["x-trace-id"] == "trace-1"
    for secret in ("authorization", "cookie", "proxy-authorization", "x-api-key", "x-private-note"):
        assert secret not in context.headers
    assert "not-stored" not in repr(context)


async def test_path_convertors_type_the_route_parameters(api: Api) -> None:
    response = await api.client.put("/items/42", json={"name": "pen"})
    assert response.status_code == 202, response.text
    assert (await api.job(response)).context.route_params == {"item_id": "42"}
    assert (await api.client.put("/items/pen", json={"name": "pen"})).status_code == 404
    assert await api.queued("item") == 1


async def test_an_endpoint_without_a_body_takes_none(api: Api) -> None:
    response = await api.client.post("/ping")
    assert response.status_code == 202
    assert (await api.job(response)).payload == b"null"


async def test_invalid_body_is_422_with_field_errors(api: Api) -> None:
    response = await api.client.post("/reports/eu", json={"month": "November", "pages": 0})
    doc = assert_problem(response, 422, "validation")
    errors = {tuple(e["loc"]): e["type"] for e in doc["errors"]}  # type: ignore[attr-defined]
    assert errors == {
        ("body", "month"): "string_pattern_mismatch",
        ("body", "pages"): "greater_than_equal",
    }
    assert "November" not in response.text  # inputs are not echoed
    assert await api.queued("report") == 0


async def test_malformed_json_and_missing_body_are_422(api: Api) -> None:
    bad = await api.client.post(
        "/echo", content=b'{"message": ', headers={"content-type": "application/json"}
    )
    assert_problem(bad, 422, "validation")
    assert_problem(await api.client.post("/echo"), 422, "validation")
    assert await api.queued("echo") == 0


async def test_wrong_content_type_is_415(api: Api) -> None:
    text = await api.client.post(
        "/echo", content=b'{"message": "x"}', headers={"content-type": "text/plain"}
    )
    assert_problem(text, 415, "unsupported-media-type")
    form = await api.client.post("/echo", data={"message": "x"})
    assert_problem(form, 415, "unsupported-media-type")
    bare = await api.client.post("/echo", content=b'{"message": "x"}')
    assert "content-type" not in bare.request.headers
    assert_problem(bare, 415, "unsupported-media-type")
    vendor = await api.client.post(
        "/echo", content=b'{"message": "x"}', headers={"content-type": "application/vnd.x+json"}
    )
    assert vendor.status_code == 202
    assert await api.queued("echo") == 1


async def test_a_body_over_the_limit_is_413_by_content_length(make_api: MakeApi) -> None:
    api = await make_api(max_body_bytes=100)
    response = await api.client.post("/echo", json={"message": "x" * 150})
    assert int(response.request.headers["content-length"]) > 100
    assert_problem(response, 413, "too-large")
    assert await api.queued("echo") == 0


async def test_a_streamed_body_over_the_limit_is_413(make_api: MakeApi) -> None:
    api = await make_api(max_body_bytes=100)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"message": "'
        for _ in range(20):
            yield b"x" * 10
        yield b'"}'

    response = await api.client.post(
        "/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "too-large")
    assert await api.queued("echo") == 0

    async def small() -> AsyncIterator[bytes]:
        yield b'{"message": '
        yield b'"fits"}'

    ok = await api.client.post(
        "/echo", content=small(), headers={"content-type": "application/json"}
    )
    assert ok.status_code == 202
    assert orjson.loads((await api.job(ok)).payload) == {"message": "fits"}


async def test_a_full_queue_is_429_with_retry_after(make_api: MakeApi) -> None:
    api = await make_api(max_queue_size=2)
    for _ in range(2):
        assert (await api.client.post("/echo", json={"message": "x"})).status_code == 202
    response = await api.client.post("/echo", json={"message": "x"})
    doc = assert_problem(response, 429, "queue-full")
    assert int(response.headers["retry-after"]) >= 1
    assert doc["jobName"] == "echo" and doc["queueLimit"] == 2
    assert await api.queued("echo") == 2


async def test_idempotent_submit_stores_one_job(api: Api) -> None:
    headers = {"Idempotency-Key": "order-17"}
    first = await api.client.post("/echo", json={"message": "once"}, headers=headers)
    second = await api.client.post("/echo", json={"message": "once"}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    # X-Async-Request-Id is the same key; an RFC 8941 quoted string too
    third = await api.client.post(
        "/echo", json={"message": "once"}, headers={"X-Async-Request-Id": '"order-17"'}
    )
    assert third.json()["id"] == first.json()["id"]
    assert await api.queued("echo") == 1


async def test_an_idempotency_key_reused_for_another_request_is_422(api: Api) -> None:
    headers = {"Idempotency-Key": "k-1"}
    assert (await api.client.post("/echo", json={"message": "a"}, headers=headers)).is_success
    response = await api.client.post("/echo", json={"message": "b"}, headers=headers)
    assert_problem(response, 422, "idempotency-key-reused")
    assert await api.queued("echo") == 1


async def test_invalid_idempotency_keys_are_400(api: Api) -> None:
    for headers in (
        {"Idempotency-Key": "has space"},
        {"Idempotency-Key": "x" * 256},
        {"Idempotency-Key": "a", "X-Async-Request-Id": "b"},
    ):
        response = await api.client.post("/echo", json={"message": "x"}, headers=headers)
        assert_problem(response, 400, "invalid-idempotency-key")
    assert await api.queued("echo") == 0


async def test_openapi_documents_the_body_model_and_the_answers(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    post = spec["paths"]["/reports/{region}"]["post"]
    schema_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/ReportRequest")
    assert post["parameters"][0]["name"] == "region"
    assert {"202", "400", "401", "413", "415", "422", "429", "503"} <= post["responses"].keys()
    assert "Location" in post["responses"]["202"]["headers"]
    assert PROBLEM_MEDIA_TYPE in post["responses"]["429"]["content"]
    put = spec["paths"]["/items/{item_id}"]["put"]
    assert put["parameters"][0]["schema"]["type"] == "integer"
    assert {"get", "delete"} <= spec["paths"]["/jobs/{job_id}"].keys()
    assert "post" in spec["paths"]["/jobs/{job_id}/cancel"]
