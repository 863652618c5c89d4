"""Bearer-token auth: 401 without a valid token, tenants isolated, tokens never stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncendpoints.http.auth import Authenticator, tenant_of
from tests.api.apps import TOKEN_A, TOKEN_B
from tests.api.conftest import MOUNTS, Api, MakeApi, auth
from tests.api.test_submit import assert_problem


@pytest.fixture(params=MOUNTS)
def mount(request: pytest.FixtureRequest) -> str:
    mounted: str = request.param
    return mounted


async def secured(make_api: MakeApi) -> Api:
    return await make_api(auth_tokens=[TOKEN_A, TOKEN_B])


async def test_no_token_is_401_with_a_bearer_challenge(make_api: MakeApi) -> None:
    api = await secured(make_api)
    response = await api.client.post("/echo", json={"message": "x"})
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "invalid_token" not in response.headers["www-authenticate"]
    assert_problem(await api.client.get("/jobs/0123abcd-AAAAAAAAAAAAAAAAAAAAAA"), 401)
    assert await api.queued("echo") == 0


async def test_a_wrong_token_or_scheme_is_401(make_api: MakeApi) -> None:
    api = await secured(make_api)
    wrong = await api.client.post("/echo", json={"message": "x"}, headers=auth("nope"))
    assert_problem(wrong, 401, "unauthorized")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    basic = await api.client.post(
        "/echo", json={"message": "x"}, headers={"Authorization": f"Basic {TOKEN_A}"}
    )
    assert_problem(basic, 401, "unauthorized")
    assert await api.queued("echo") == 0


async def test_auth_comes_before_the_body_checks(make_api: MakeApi) -> None:
    api = await secured(make_api)
    response = await api.client.post(
        "/echo", content=b"not json", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 401, "unauthorized")


async def test_a_job_is_visible_only_to_its_tenant(make_api: MakeApi) -> None:
    api = await secured(make_api)
    created = await api.client.post("/echo", json={"message": "x"}, headers=auth(TOKEN_A))
    assert created.status_code == 202
    location = created.headers["location"]
    assert (await api.client.get(location, headers=auth(TOKEN_A))).status_code == 200
    assert_problem(await api.client.get(location, headers=auth(TOKEN_B)), 404, "job-not-found")
    other_cancel = await api.client.post(f"{location}/cancel", headers=auth(TOKEN_B))
    assert_problem(other_cancel, 404, "job-not-found")
    assert_problem(await api.client.delete(location, headers=auth(TOKEN_B)), 404)
    assert (await api.client.get(location, headers=auth(TOKEN_A))).json()["status"] == "Queued"
    own_cancel = await api.client.post(f"{location}/cancel", headers=auth(TOKEN_A))
    assert own_cancel.json()["status"] == "Canceled"


async def test_the_tenant_is_a_hash_of_the_token_never_the_token(make_api: MakeApi) -> None:
    api = await secured(make_api)
    created = await api.client.post("/echo", json={"message": "x"}, headers=auth(TOKEN_A))
    job = await api.job(created)
    assert job.tenant == tenant_of(TOKEN_A) != tenant_of(TOKEN_B)
    assert TOKEN_A not in (job.tenant or "")
    assert TOKEN_A not in repr(job)


async def test_idempotency_keys_are_per_tenant(make_api: MakeApi) -> None:
    api = await secured(make_api)
    key = {"Idempotency-Key": "same-key"}
    a = await api.client.post("/echo", json={"message": "x"}, headers=auth(TOKEN_A) | key)
    b = await api.client.post("/echo", json={"message": "x"}, headers=auth(TOKEN_B) | key)
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]
    assert await api.queued("echo") == 2


async def test_tokens_come_from_a_mounted_file(make_api: MakeApi, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"\n{TOKEN_B}\n\n")
    api = await make_api(auth_tokens_file=tokens)
    assert (await api.client.post("/echo", json={"message": "x"})).status_code == 401
    ok = await api.client.post("/echo", json={"message": "x"}, headers=auth(TOKEN_B))
    assert ok.status_code == 202


def test_the_authenticator_checks_every_token() -> None:
    authenticator = Authenticator(["one", "two", ""])
    assert authenticator.enabled
    assert authenticator.valid("two") and authenticator.valid("one")
    assert not authenticator.valid("three") and not authenticator.valid("")
    assert not Authenticator([]).enabled
