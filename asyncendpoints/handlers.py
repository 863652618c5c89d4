"""Handlers: how a declared function is described, and how one job runs through it.

A handler takes its request body as a parameter annotated with a pydantic model (or
any type pydantic can validate), and optionally a :class:`JobContext`. It returns
anything pydantic can serialize. Sync handlers run in a thread pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, get_type_hints

import orjson
from pydantic import TypeAdapter, ValidationError

from asyncendpoints.context import JobContext
from asyncendpoints.errors import ConfigurationError, PayloadError
from asyncendpoints.types import Handler, JSONBytes

PrecheckFn = Callable[..., Any]


@dataclass(frozen=True)
class Endpoint:
    """One declared async endpoint: its route, its job name, and its handler."""

    name: str
    method: str
    path: str
    handler: Handler
    body_param: str | None
    body_type: Any
    context_param: str | None
    result_type: Any
    max_retries: int | None
    timeout: float | None
    precheck: PrecheckFn | None
    summary: str | None
    is_async: bool

    @functools.cached_property
    def body_adapter(self) -> TypeAdapter[Any] | None:
        return None if self.body_type is None else TypeAdapter(self.body_type)

    @functools.cached_property
    def result_adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.result_type)

    def encode_body(self, body: Any) -> JSONBytes:
        """A request body (model, dict or bytes) as validated JSON bytes."""
        if self.body_adapter is None:
            return b"null"
        try:
            if isinstance(body, bytes | bytearray | str):
                value = self.body_adapter.validate_json(body)
            else:
                value = self.body_adapter.validate_python(body)
        except ValidationError as exc:
            raise PayloadError(f"invalid payload for {self.name!r}: {exc}") from exc
        return self.body_adapter.dump_json(value)

    def decode_body(self, payload: JSONBytes) -> Any:
        if self.body_adapter is None:
            return None
        try:
            return self.body_adapter.validate_json(payload)
        except ValidationError as exc:
            raise PayloadError(f"stored payload does not fit {self.name!r}: {exc}") from exc

    def encode_result(self, value: Any) -> JSONBytes:
        try:
            return self.result_adapter.dump_json(value)
        except Exception as exc:  # pydantic raises several types here
            raise PayloadError(f"result of {self.name!r} is not serializable: {exc}") from exc

    async def run(
        self, payload: JSONBytes, ctx: JobContext, executor: Executor | None
    ) -> JSONBytes:
        """Decode the payload, call the handler, encode its result."""
        kwargs: dict[str, Any] = {}
        if self.body_param is not None:
            kwargs[self.body_param] = self.decode_body(payload)
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        if self.is_async:
            value = await self.handler(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            call = functools.partial(contextvars.copy_context().run, self.handler, **kwargs)
            value = await loop.run_in_executor(executor, call)
        return self.encode_result(value)


def describe(
    handler: Handler,
    *,
    name: str,
    method: str,
    path: str,
    max_retries: int | None,
    timeout: float | None,
    precheck: PrecheckFn | None,
    summary: str | None,
) -> Endpoint:
    """Read a handler's signature: which parameter is the body, which the context."""
    try:
        hints = get_type_hints(handler)
    except Exception as exc:
        raise ConfigurationError(f"cannot read the annotations of {handler!r}: {exc}") from exc
    body_param = context_param = None
    body_type: Any = None
    for param in inspect.signature(handler).parameters.values():
        hint = hints.get(param.name, Any)
        if hint is JobContext:
            context_param = param.name
        elif body_param is None:
            body_param, body_type = param.name, hint
        else:
            raise ConfigurationError(
                f"handler {name!r} takes one body parameter and an optional JobContext; "
                f"{param.name!r} is a second body parameter"
            )
    result_type = hints.get("return", Any)
    if result_type is type(None):
        result_type = Any
    return Endpoint(
        name=name,
        method=method,
        path=path,
        handler=handler,
        body_param=body_param,
        body_type=body_type,
        context_param=context_param,
        result_type=result_type,
        max_retries=max_retries,
        timeout=timeout,
        precheck=precheck,
        summary=summary,
        is_async=inspect.iscoroutinefunction(handler),
    )


def dumps(value: Any) -> JSONBytes:
    return orjson.dumps(value)
