"""The app object: where users declare async endpoints and their job handlers.

.. code-block:: python

    app = AsyncEndpoints()

    @app.post("/reports/{region}", name="generate-report", max_retries=3, timeout=300)
    async def generate_report(request: ReportRequest, ctx: JobContext) -> Report: ...

Each declaration is both an HTTP route (served by ``asyncendpoints api`` or mounted into
an existing FastAPI app with :meth:`AsyncEndpoints.install`) and a job handler (run by
``asyncendpoints worker``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from asyncendpoints.errors import ConfigurationError
from asyncendpoints.handlers import Endpoint, PrecheckFn, describe
from asyncendpoints.job import NAME_PATTERN, HttpContext, Job
from asyncendpoints.manager import JobManager
from asyncendpoints.settings import Settings
from asyncendpoints.store import JobStore, make_store
from asyncendpoints.types import JobId, JobName

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

F = TypeVar("F", bound=Callable[..., Any])


class AsyncEndpoints:
    """The registry of async endpoints, with the store and the job manager they use."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: JobStore | None = None,
        title: str = "AsyncEndpoints",
    ) -> None:
        self.settings = settings or Settings()
        self.title = title
        self.endpoints: dict[JobName, Endpoint] = {}
        self._store = store
        self._manager: JobManager | None = None
        self._opened = False

    # --- declaring ---------------------------------------------------------------------
    def route(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        precheck: PrecheckFn | None = None,
        summary: str | None = None,
    ) -> Callable[[F], F]:
        """Declare ``handler`` as the job behind ``METHOD path``."""

        def register(handler: F) -> F:
            job_name = name or handler.__name__.replace("_", "-")
            if not NAME_PATTERN.fullmatch(job_name):
                raise ConfigurationError(f"job name {job_name!r} must match {NAME_PATTERN.pattern}")
            if job_name in self.endpoints:
                raise ConfigurationError(f"job name {job_name!r} is declared twice")
            if max_retries is not None and max_retries < 0:
                raise ConfigurationError("max_retries must be 0 or more")
            if timeout is not None and timeout <= 0:
                raise ConfigurationError("timeout must be positive")
            self.endpoints[job_name] = describe(
                handler,
                name=job_name,
                method=method.upper(),
                path=path,
                max_retries=max_retries,
                timeout=timeout,
                precheck=precheck,
                summary=summary,
            )
            return handler

        return register

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("DELETE", path, **options)

    def endpoint(self, name: JobName) -> Endpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            raise ConfigurationError(f"no async endpoint is named {name!r}") from None

    # --- the store -----------------------------------------------------------------------
    @property
    def store(self) -> JobStore:
        if self._store is None:
            self._store = make_store(self.settings)
        return self._store

    @property
    def manager(self) -> JobManager:
        if self._manager is None:
            self._manager = JobManager(self.store, self.settings)
        return self._manager

    async def startup(self) -> None:
        """Open the store and register the job names (idempotent)."""
        if not self._opened:
            await self.store.open()
            await self.store.register_names(list(self.endpoints))
            self._opened = True

    async def shutdown(self) -> None:
        if self._opened:
            await self.store.close()
            self._opened = False

    # --- submitting from Python -------------------------------------------------------------
    async def submit(
        self,
        name: JobName,
        payload: Any = None,
        *,
        context: HttpContext | None = None,
        tenant: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Validate ``payload`` against the handler's model and store a Queued job."""
        await self.startup()
        endpoint = self.endpoint(name)
        job = self.manager.new_job(
            name,
            endpoint.encode_body(payload),
            max_retries=endpoint.max_retries,
            timeout=endpoint.timeout,
            context=context,
            tenant=tenant,
        )
        return await self.manager.create(job, idempotency_key=idempotency_key)

    async def submit_many(self, name: JobName, payloads: Sequence[Any]) -> list[Job]:
        """Store many jobs in one round trip (a pipeline on Redis)."""
        await self.startup()
        endpoint = self.endpoint(name)
        jobs = [
            self.manager.new_job(
                name,
                endpoint.encode_body(payload),
                max_retries=endpoint.max_retries,
                timeout=endpoint.timeout,
            )
            for payload in payloads
        ]
        return await self.manager.create_many(jobs)

    async def get(self, job_id: JobId) -> Job:
        await self.startup()
        return await self.manager.get(job_id)

    async def wait(self, job_id: JobId, timeout: float = 30.0) -> Job:
        """The job once it finished (or as it is after ``timeout`` seconds)."""
        await self.startup()
        return await self.manager.wait_finished(job_id, timeout)

    # --- HTTP -------------------------------------------------------------------------------
    def router(self, *, dependencies: Sequence[Any] = ()) -> APIRouter:
        """A FastAPI router with the submit routes and ``/jobs`` routes; ``dependencies``
        (``Depends(...)``) run on each of them."""
        from asyncendpoints.http import build_router

        return build_router(self, dependencies=dependencies)

    def install(
        self, fastapi_app: FastAPI, *, prefix: str = "", dependencies: Sequence[Any] = ()
    ) -> None:
        """Mount the async endpoints into an existing FastAPI app (its middleware,
        exception handlers and dependencies apply, and ``dependencies`` too), with
        problem+json error handlers and the store opened and closed with the app's
        lifespan."""
        from asyncendpoints.http import install

        install(self, fastapi_app, prefix=prefix, dependencies=dependencies)


def load_app(reference: str) -> AsyncEndpoints:
    """Import ``module:attr`` and return the :class:`AsyncEndpoints` it names."""
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"app reference {reference!r} is not of the form module:attr")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigurationError(f"{module_name!r} has no attribute {attr!r}")
    if not isinstance(target, AsyncEndpoints):
        raise ConfigurationError(f"{reference!r} is a {type(target).__name__}, not AsyncEndpoints")
    return target
