"""``install()`` into a user's FastAPI app: their middleware and dependencies apply to the
async routes, Location respects the prefix, and the store follows the app's lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from asyncendpoints import InMemoryJobStore, Settings
from asyncendpoints.http import build_router
from tests.api.apps import make_app
from tests.api.conftest import serving
from tests.api.test_submit import assert_problem


class CountingStore(InMemoryJobStore):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def open(self) -> None:
        self.events.append("open")

    async def close(self) -> None:
        self.events.append("close")


async def require_user(x_user: str | None = Header(default=None)) -> str:
    if x_user != "alice":
        raise HTTPException(403, "who are you?")
    return x_user


def user_app(store: CountingStore) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.events.append("user startup")
        yield
        store.events.append("user shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.middleware("http")
    async def stamp(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["X-User-Middleware"] = "seen"
        return response

    @app.exception_handler(HTTPException)
    async def own_errors(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"mine": exc.detail}, status_code=exc.status_code)

    @app.get("/own/{job_id}")
    async def own_route(job_id: str) -> dict[str, str]:
        job = await ae.get(job_id)  # domain errors here get the installed handlers
        return {"status": job.status.value}

    @app.get("/own-missing")
    async def own_missing() -> None:
        raise HTTPException(404, "mine")

    ae = make_app(Settings(), store)
    ae.install(app, prefix="/async", dependencies=[Depends(require_user)])  # the public API
    return app


async def test_installed_routes_get_the_users_middleware_and_dependencies() -> None:
    store = CountingStore()
    app = user_app(store)
    async with serving(app) as client:
        refused = await client.post("/async/echo", json={"message": "x"})
        assert_problem(refused, 403)
        assert refused.json()["detail"] == "who are you?"
        assert refused.headers["x-user-middleware"] == "seen"
        assert (await store.stats("echo")).queued == 0

        user = {"X-User": "alice"}
        accepted = await client.post("/async/echo", json={"message": "x"}, headers=user)
        assert accepted.status_code == 202
        assert accepted.headers["x-user-middleware"] == "seen"
        location = accepted.headers["location"]
        assert location.startswith("/async/jobs/")
        assert accepted.json()["links"]["cancel"] == f"{location}/cancel"
        assert_problem(await client.get(location), 403)
        read = await client.get(location, headers=user)
        assert read.status_code == 200 and read.json()["id"] == accepted.json()["id"]
        assert (await client.get("/jobs/" + read.json()["id"])).status_code == 404
        own = await client.get("/own/" + read.json()["id"])
        assert own.json() == {"status": "Queued"}
        assert store.events == ["open", "user startup"]
    assert store.events == ["open", "user startup", "user shutdown", "close"]


async def test_the_users_own_errors_keep_their_handlers_and_domain_errors_are_problems() -> None:
    app = user_app(CountingStore())
    async with serving(app) as client:
        own = await client.get("/own-missing")
        assert own.status_code == 404 and own.json() == {"mine": "mine"}
        domain = await client.get("/own/0123abcd-AAAAAAAAAAAAAAAAAAAAAA")
        assert_problem(domain, 404, "job-not-found")


async def test_app_level_dependencies_apply_to_an_included_router() -> None:
    ae = make_app(Settings(), InMemoryJobStore())
    app = FastAPI(dependencies=[Depends(require_user)])
    app.include_router(build_router(ae), prefix="/v1")
    async with serving(app) as client:
        assert_problem(await client.post("/v1/echo", json={"message": "x"}), 403)
        ok = await client.post("/v1/echo", json={"message": "x"}, headers={"X-User": "alice"})
        assert ok.status_code == 202
        assert ok.headers["location"].startswith("/v1/jobs/")


async def test_ae_install_behind_a_proxy_prefix() -> None:
    ae = make_app(Settings(), InMemoryJobStore())
    app = FastAPI()
    ae.install(app, prefix="/async")
    transport = httpx.ASGITransport(app=app, root_path="/behind-proxy")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api.test") as client,
    ):
        response = await client.post("/behind-proxy/async/echo", json={"message": "x"})
        assert response.status_code == 202
        location = response.headers["location"]
        assert location.startswith("/behind-proxy/async/jobs/")
        assert (await client.get(location)).json()["id"] == response.json()["id"]
