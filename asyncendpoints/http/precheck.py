"""The optional per-endpoint precheck: a last word before a job is stored.

.. code-block:: python

    def month_is_open(request: ReportRequest, http: Request) -> Response | None:
        if request.month > current_month():
            raise HTTPException(400, "that month has not happened yet")
        return None

    @app.post("/reports/{region}", precheck=month_is_open)
    async def generate_report(request: ReportRequest, ctx: JobContext) -> Report: ...

A precheck is sync (run in the thread pool) or async. It gets the validated body, and
the :class:`~starlette.requests.Request` if it declares a parameter annotated with it.
It returns None to go on, or a Response to answer the request itself; it may raise
``HTTPException``. Either way, no job is stored.
"""

from __future__ import annotations

import inspect
from typing import Any, get_type_hints

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from asyncendpoints.errors import ConfigurationError
from asyncendpoints.handlers import PrecheckFn
from asyncendpoints.http.problems import from_http_exception


class Precheck:
    """A precheck function and how to call it."""

    def __init__(self, fn: PrecheckFn) -> None:
        self.fn = fn
        try:
            hints = get_type_hints(fn)
        except Exception as exc:
            raise ConfigurationError(f"cannot read the annotations of {fn!r}: {exc}") from exc
        self.request_param: str | None = None
        self.body_param: str | None = None
        for param in inspect.signature(fn).parameters.values():
            hint = hints.get(param.name)
            if isinstance(hint, type) and issubclass(hint, Request):
                self.request_param = param.name
            elif self.body_param is None:
                self.body_param = param.name
        call = getattr(fn, "__call__", None)  # noqa: B004 - a callable object's method
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)

    async def __call__(self, body: Any, request: Request) -> Response | None:
        """None to go on, or the Response to answer with; HTTPException becomes a problem."""
        kwargs: dict[str, Any] = {}
        if self.body_param is not None:
            kwargs[self.body_param] = body
        if self.request_param is not None:
            kwargs[self.request_param] = request
        try:
            if self.is_async:
                answer = await self.fn(**kwargs)
            else:
                answer = await run_in_threadpool(self.fn, **kwargs)
        except HTTPException as exc:
            raise from_http_exception(exc, reason="precheck") from exc
        if answer is None or isinstance(answer, Response):
            return answer
        raise TypeError(
            f"precheck {self.fn!r} returned a {type(answer).__name__}; "
            "return None to go on, or a Response"
        )


__all__ = ["Precheck"]
